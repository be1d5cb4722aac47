//! The dry-run gate: a [`Target`] that reads through to the real one and answers every write
//! with "would succeed" without sending it. `plan` and `reconcile --check` run the very same
//! executor code as `migrate` over this wrapper, so no write path can forget a dry-run check.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{
    BatchRead, CallError, Caller, CurrentValue, NewSecret, Outcome, Replica, ReplicaRegion, Target,
    TargetSecret, Written,
};
use crate::secret::SecretValue;

/// Reads pass through; writes are recorded and not sent.
pub(crate) struct DryRun<'t> {
    inner: &'t dyn Target,
    restored: Mutex<HashSet<String>>,
}

impl<'t> DryRun<'t> {
    /// Wraps `inner`.
    pub fn new(inner: &'t dyn Target) -> Self {
        DryRun {
            inner,
            restored: Mutex::new(HashSet::new()),
        }
    }
}

impl Target for DryRun<'_> {
    fn region(&self) -> &str {
        self.inner.region()
    }

    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>> {
        self.inner.caller()
    }

    fn inventory<'a>(
        &'a self,
        prefix: &'a str,
        page: &'a mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> BoxFuture<'a, Result<(), CallError>> {
        self.inner.inventory(prefix, page)
    }

    fn batch_get<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>> {
        self.inner.batch_get(ids)
    }

    fn get_value<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>> {
        // A secret "restored" in a dry run is still scheduled for deletion, and AWS refuses to
        // read it: its value is unknown, which the executor reports as an update.
        let restored = self
            .restored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id);
        if restored {
            return Box::pin(async { Ok((None, 0)) });
        }
        self.inner.get_value(id)
    }

    fn describe<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>> {
        self.inner.describe(id)
    }

    fn create<'a>(&'a self, _s: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>> {
        Box::pin(async { Ok(((String::new(), String::new()), 0)) })
    }

    fn put_value<'a>(
        &'a self,
        _id: &'a str,
        _v: &'a SecretValue,
        _t: String,
    ) -> BoxFuture<'a, Outcome<Written>> {
        Box::pin(async {
            Ok((
                Written {
                    version_id: String::new(),
                    current: Some(true),
                },
                0,
            ))
        })
    }

    fn tag<'a>(
        &'a self,
        _id: &'a str,
        _t: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async { Ok(((), 0)) })
    }

    fn replicate<'a>(
        &'a self,
        _id: &'a str,
        _regions: &'a [ReplicaRegion],
    ) -> BoxFuture<'a, Outcome<Vec<Replica>>> {
        Box::pin(async { Ok((Vec::new(), 0)) })
    }

    fn restore<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<()>> {
        self.restored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned());
        Box::pin(async { Ok(((), 0)) })
    }

    fn schedule_deletion<'a>(&'a self, _id: &'a str, _d: i64) -> BoxFuture<'a, Outcome<String>> {
        Box::pin(async { Ok((String::new(), 0)) })
    }

    /// Not sent: a dry run moves no stage (neither a rollback's nor the repair of an ignored
    /// put).
    fn move_current<'a>(
        &'a self,
        _id: &'a str,
        _to: &'a str,
        _from: &'a str,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async { Ok(((), 0)) })
    }

    fn writes(&self) -> bool {
        false
    }
}
