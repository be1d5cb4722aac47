//! An in-memory [`Target`]: Secrets Manager's behaviour that the executor relies on (versions
//! with `AWSCURRENT`/`AWSPREVIOUS`, tags (more than 50 refused, as AWS does and moto does not),
//! scheduled deletion, "exists" on a taken name), with no network and no quota. For the executor's unit tests and the in-process scale bench
//! (`benches/scale.rs`), never for a real run.
//!
//! It is taught AWS's quirks the executor must survive: a `PutSecretValue` (or a
//! `CreateSecret` on a taken name) whose token names an existing version with the same value is
//! answered with success and changes nothing (the answer carries that version's stages); moving
//! `AWSCURRENT` must name the version that holds it; deleting a secret already scheduled for
//! deletion is refused.
//!
//! With `keep_values = false` it keeps no value and no version history at all, only what the
//! listing shows (name, compact tags, description, the `AWSCURRENT`/`AWSPREVIOUS` ids), so a
//! bench of half a million secrets measures secretport's memory, not the fake's; such a target
//! answers value reads with an error.

use std::collections::{BTreeMap, HashMap};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{
    BatchRead, CallError, Caller, CurrentValue, ErrorClass, NewSecret, Outcome, Replica,
    ReplicaRegion, ReplicaStatus, Target, TargetSecret, Written,
};
use crate::limits::{Group, Op};
use crate::secret::SecretValue;
use crate::target::limits::MAX_TAGS;
use crate::target::tags::Tags;

const ARN_PREFIX: &str = "arn:memory:secret:";

/// One version's content.
#[derive(Clone, Debug)]
enum Content {
    Value(Vec<u8>, bool),
    Dropped,
}

/// One secret.
#[derive(Clone, Debug, Default)]
pub struct MemorySecret {
    /// Every version with its content; empty when values are not kept.
    versions: Vec<(Box<str>, Option<Content>)>,
    current: Option<Box<str>>,
    previous: Option<Box<str>>,
    /// Tags.
    pub tags: Tags,
    description: Option<Box<str>>,
    /// Scheduled for deletion.
    pub deleted: bool,
    /// Replicas in other regions (`DescribeSecret` shows them, the listing does not).
    pub replicas: Vec<Replica>,
}

impl MemorySecret {
    #[cfg(test)]
    /// Every VersionId it holds, oldest first (empty when values are not kept).
    pub(crate) fn version_ids(&self) -> Vec<String> {
        self.versions.iter().map(|(v, _)| v.to_string()).collect()
    }

    #[cfg(test)]
    /// The `AWSCURRENT` VersionId.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    #[cfg(test)]
    /// The `AWSPREVIOUS` VersionId.
    pub fn previous(&self) -> Option<&str> {
        self.previous.as_deref()
    }

    /// Whether version `token` exists holding `v` (what makes AWS ignore a write with that
    /// token); without kept values only the labelled versions are known.
    fn holds_version(&self, token: &str, v: &SecretValue) -> bool {
        if self.versions.is_empty() {
            return self.current.as_deref() == Some(token)
                || self.previous.as_deref() == Some(token);
        }
        self.versions.iter().any(|(id, c)| {
            &**id == token
                && matches!(c, Some(Content::Value(b, bin)) if b == v.expose_bytes() && *bin == v.is_binary())
        })
    }

    /// Moves `AWSCURRENT` to `to` by hand (as `UpdateSecretVersionStage` would), `AWSPREVIOUS`
    /// to the version that held it.
    pub(crate) fn move_current_to(&mut self, to: &str) {
        if self.current.as_deref() == Some(to) {
            return;
        }
        let from = self.current.replace(to.into());
        self.previous = from;
    }
}

/// Secrets by name, and calls by operation.
#[derive(Default)]
pub struct MemoryTarget {
    secrets: Mutex<HashMap<String, MemorySecret>>,
    calls: Mutex<BTreeMap<Op, u64>>,
    keep_values: bool,
    /// Answers creates without storing them (see [`MemoryTarget::forgetful`]).
    forget: bool,
    #[cfg(test)]
    versions: AtomicU64,
}

fn err(op: Op, id: &str, class: ErrorClass) -> CallError {
    CallError {
        op,
        name: id.into(),
        class,
        message: format!("{class:?}"),
        attempts: 1,
    }
}

fn name_of(id: &str) -> &str {
    id.strip_prefix(ARN_PREFIX).unwrap_or(id)
}

impl MemoryTarget {
    /// An empty target; `keep_values` stores values (else only their digests).
    pub fn new(keep_values: bool) -> Self {
        MemoryTarget {
            keep_values,
            ..MemoryTarget::default()
        }
    }

    fn count(&self, op: Op) {
        *self
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemorySecret>> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A target that answers every CreateSecret as AWS would and keeps nothing: stands in for
    /// AWS in the scale bench's `migrate`, whose memory is then secretport's alone (AWS keeps
    /// the secrets, not the process).
    pub fn forgetful() -> Self {
        MemoryTarget {
            forget: true,
            ..MemoryTarget::default()
        }
    }

    /// Calls made, by operation (its AWS name).
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(op, n)| (op.name(), *n))
            .collect()
    }

    /// Write calls made (every operation that changes the target: its quota group's).
    pub fn writes(&self) -> u64 {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(op, _)| op.group() == Group::Write)
            .map(|(_, n)| n)
            .sum()
    }

    /// Forgets the call counts.
    pub fn reset_calls(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Number of secrets.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// An estimate of the heap the store takes (strings, tags, values, the map's slots), for
    /// the scale bench to tell the fake's memory from the engine's.
    pub fn approx_bytes(&self) -> usize {
        let m = self.lock();
        let slot = std::mem::size_of::<(String, MemorySecret)>() + 1;
        m.iter()
            .map(|(name, s)| {
                let opt = |x: &Option<Box<str>>| x.as_ref().map_or(0, |v| v.len());
                name.capacity()
                    + opt(&s.current)
                    + opt(&s.previous)
                    + opt(&s.description)
                    + s.tags.heap_bytes()
                    + s.versions
                        .iter()
                        .map(|(v, c)| {
                            v.len()
                                + std::mem::size_of::<(Box<str>, Option<Content>)>()
                                + match c {
                                    Some(Content::Value(b, _)) => b.capacity(),
                                    _ => 0,
                                }
                        })
                        .sum::<usize>()
            })
            .sum::<usize>()
            + m.capacity() * slot
    }

    /// Whether it holds no secret.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds (or replaces) a secret with one text version `v0`, as someone else would.
    pub fn insert(&self, name: &str, value: &str, tags: BTreeMap<String, String>) {
        let s = MemorySecret {
            versions: vec![(
                "v0".into(),
                Some(Content::Value(value.as_bytes().to_vec(), false)),
            )],
            current: Some("v0".into()),
            tags: tags.into(),
            ..MemorySecret::default()
        };
        self.lock().insert(name.into(), s);
    }

    /// Changes a secret in place (a hand edit, a scheduled deletion).
    pub fn edit(&self, name: &str, f: impl FnOnce(&mut MemorySecret)) -> bool {
        self.lock().get_mut(name).map(f).is_some()
    }

    #[cfg(test)]
    /// Puts a new text version by hand (not through secretport).
    pub(crate) fn hand_edit(&self, name: &str, value: &str) {
        let id: Box<str> = format!("hand-{}", self.versions.fetch_add(1, Ordering::Relaxed)).into();
        let content = Some(Content::Value(value.as_bytes().to_vec(), false));
        self.edit(name, |s| {
            s.versions.push((id.clone(), content));
            s.previous = s.current.replace(id);
        });
    }

    /// A secret as a clone.
    pub fn get(&self, name: &str) -> Option<MemorySecret> {
        self.lock().get(name).cloned()
    }

    /// The current text value, when values are kept.
    pub fn value(&self, name: &str) -> Option<String> {
        let s = self.get(name)?;
        match current_content(&s)? {
            Content::Value(v, _) => String::from_utf8(v).ok(),
            Content::Dropped => None,
        }
    }

    /// The version list after writing `token` with value `v`: nothing when values are not
    /// kept (compact).
    fn add_version(
        &self,
        versions: &mut Vec<(Box<str>, Option<Content>)>,
        token: &str,
        v: &SecretValue,
    ) {
        if self.keep_values {
            versions.push((
                token.into(),
                Some(Content::Value(v.expose_bytes().to_vec(), v.is_binary())),
            ));
        }
    }

    fn listed(name: &str, s: &MemorySecret) -> TargetSecret {
        TargetSecret {
            name: name.into(),
            arn: format!("{ARN_PREFIX}{name}"),
            tags: s.tags.clone(),
            description: s.description.as_deref().map(str::to_owned),
            deleted_date: s.deleted.then(|| "2030-01-01T00:00:00Z".into()),
            current_version: s.current.as_deref().map(str::to_owned),
            previous_version: s.previous.as_deref().map(str::to_owned),
            replication: None,
        }
    }

    fn read(&self, op: Op, id: &str) -> Result<Option<CurrentValue>, CallError> {
        let m = self.lock();
        let s = m
            .get(name_of(id))
            .ok_or_else(|| err(op, id, ErrorClass::NotFound))?;
        if s.deleted {
            return Err(err(op, id, ErrorClass::InvalidRequest));
        }
        match current_content(s) {
            None => Ok(None),
            Some(Content::Value(v, binary)) => Ok(Some(CurrentValue {
                value: if binary {
                    SecretValue::binary(v)
                } else {
                    SecretValue::text(String::from_utf8_lossy(&v).into_owned())
                },
                version_id: s.current.as_deref().map(str::to_owned),
            })),
            Some(Content::Dropped) => Err(err(op, id, ErrorClass::Other)),
        }
    }
}

fn in_sync(r: &ReplicaRegion) -> Replica {
    Replica {
        region: r.region.clone(),
        status: ReplicaStatus::InSync,
        message: "Replication succeeded".into(),
    }
}

fn current_content(s: &MemorySecret) -> Option<Content> {
    let cur = s.current.as_ref()?;
    match s.versions.iter().find(|(v, _)| v == cur) {
        Some((_, c)) => c.clone(),
        None => Some(Content::Dropped), // values (and versions) not kept
    }
}

impl Target for MemoryTarget {
    fn region(&self) -> &str {
        "memory-1"
    }

    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>> {
        self.count(Op::GetCallerIdentity);
        Box::pin(async {
            Ok(Caller {
                account: "000000000000".into(),
                arn: "arn:memory:caller".into(),
            })
        })
    }

    fn inventory<'a>(
        &'a self,
        prefix: &'a str,
        page: &'a mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let want = format!("{prefix}/");
            let m = self.lock();
            let mut names: Vec<&String> = m
                .keys()
                .filter(|n| prefix.is_empty() || n.starts_with(&want))
                .collect();
            names.sort();
            // one ListSecrets page per 100, as AWS pages
            for chunk in names.chunks(100) {
                self.count(Op::ListSecrets);
                page(
                    chunk
                        .iter()
                        .filter_map(|n| Some(Self::listed(n, m.get(*n)?)))
                        .collect(),
                );
            }
            if names.is_empty() {
                self.count(Op::ListSecrets);
            }
            Ok(())
        })
    }

    fn batch_get<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>> {
        self.count(Op::BatchGetSecretValue);
        Box::pin(async move {
            let mut r = BatchRead::default();
            for id in ids {
                match self.read(Op::BatchGetSecretValue, id) {
                    Ok(Some(c)) => {
                        r.values.insert(id.clone(), c);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        r.errors.insert(id.clone(), e.message);
                    }
                }
            }
            Ok(r)
        })
    }

    fn get_value<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>> {
        self.count(Op::GetSecretValue);
        Box::pin(async move {
            match self.read(Op::GetSecretValue, id)? {
                None => Err(err(Op::GetSecretValue, id, ErrorClass::NotFound)),
                some => Ok((some, 1)),
            }
        })
    }

    fn describe<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>> {
        self.count(Op::DescribeSecret);
        Box::pin(async move {
            let m = self.lock();
            let name = name_of(id);
            m.get(name)
                .map(|s| {
                    let mut d = Self::listed(name, s);
                    d.replication = Some(s.replicas.clone());
                    (d, 1)
                })
                .ok_or_else(|| err(Op::DescribeSecret, id, ErrorClass::NotFound))
        })
    }

    fn create<'a>(&'a self, s: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>> {
        self.count(Op::CreateSecret);
        Box::pin(async move {
            let mut m = self.lock();
            if let Some(existing) = m.get(s.name) {
                // AWS ignores a create whose token names an existing version with the same
                // value, and answers success (a retry, or a concurrent run of the same config)
                if !existing.deleted && existing.holds_version(&s.token, s.value) {
                    return Ok(((format!("{ARN_PREFIX}{}", s.name), s.token.clone()), 1));
                }
                return Err(err(Op::CreateSecret, s.name, ErrorClass::Exists));
            }
            if s.tags.len() > MAX_TAGS {
                // AWS refuses the request (moto takes it): secretport must fit the tags itself
                return Err(err(Op::CreateSecret, s.name, ErrorClass::InvalidRequest));
            }
            if self.forget {
                return Ok(((format!("{ARN_PREFIX}{}", s.name), s.token.clone()), 1));
            }
            let mut versions = Vec::new();
            self.add_version(&mut versions, &s.token, s.value);
            m.insert(
                s.name.into(),
                MemorySecret {
                    versions,
                    current: Some(s.token.as_str().into()),
                    previous: None,
                    tags: s.tags.into(),
                    description: Some(s.description.into()),
                    deleted: false,
                    replicas: s.replicas.iter().map(in_sync).collect(),
                },
            );
            Ok(((format!("{ARN_PREFIX}{}", s.name), s.token.clone()), 1))
        })
    }

    fn put_value<'a>(
        &'a self,
        id: &'a str,
        value: &'a SecretValue,
        token: String,
    ) -> BoxFuture<'a, Outcome<Written>> {
        self.count(Op::PutSecretValue);
        Box::pin(async move {
            let mut m = self.lock();
            let s = m
                .get_mut(name_of(id))
                .ok_or_else(|| err(Op::PutSecretValue, id, ErrorClass::NotFound))?;
            if s.deleted {
                return Err(err(Op::PutSecretValue, id, ErrorClass::InvalidRequest));
            }
            // AWS's quirk: a token naming an existing version with the same value is answered
            // with success and that version's stages, and nothing changes
            if !s.holds_version(&token, value) {
                self.add_version(&mut s.versions, &token, value);
                s.previous = s.current.replace(token.as_str().into());
            }
            let current = Some(s.current.as_deref() == Some(token.as_str()));
            Ok((
                Written {
                    version_id: token,
                    current,
                },
                1,
            ))
        })
    }

    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>> {
        self.count(Op::TagResource);
        Box::pin(async move {
            let mut too_many = false;
            let found = self.edit(name_of(id), |s| {
                let merged = s
                    .tags
                    .merged(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                // AWS refuses a TagResource that would leave more than 50 tags (moto takes it)
                too_many = merged.len() > MAX_TAGS;
                if !too_many {
                    s.tags = merged;
                }
            });
            match (found, too_many) {
                (false, _) => Err(err(Op::TagResource, id, ErrorClass::NotFound)),
                (true, true) => Err(err(Op::TagResource, id, ErrorClass::InvalidRequest)),
                (true, false) => Ok(((), 1)),
            }
        })
    }

    fn replicate<'a>(
        &'a self,
        id: &'a str,
        regions: &'a [ReplicaRegion],
    ) -> BoxFuture<'a, Outcome<Vec<Replica>>> {
        self.count(Op::ReplicateSecretToRegions);
        Box::pin(async move {
            let mut m = self.lock();
            let s = m
                .get_mut(name_of(id))
                .ok_or_else(|| err(Op::ReplicateSecretToRegions, id, ErrorClass::NotFound))?;
            for r in regions {
                if !s.replicas.iter().any(|x| x.region == r.region) {
                    s.replicas.push(in_sync(r));
                }
            }
            Ok((s.replicas.clone(), 1))
        })
    }

    fn restore<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<()>> {
        self.count(Op::RestoreSecret);
        Box::pin(async move {
            self.edit(name_of(id), |s| s.deleted = false)
                .then_some(((), 1))
                .ok_or_else(|| err(Op::RestoreSecret, id, ErrorClass::NotFound))
        })
    }

    fn schedule_deletion<'a>(
        &'a self,
        id: &'a str,
        _window_days: i64,
    ) -> BoxFuture<'a, Outcome<String>> {
        self.count(Op::DeleteSecret);
        Box::pin(async move {
            let mut m = self.lock();
            let s = m
                .get_mut(name_of(id))
                .ok_or_else(|| err(Op::DeleteSecret, id, ErrorClass::NotFound))?;
            // AWS refuses to delete what is already scheduled for deletion
            if s.deleted {
                return Err(err(Op::DeleteSecret, id, ErrorClass::InvalidRequest));
            }
            s.deleted = true;
            Ok(("2030-01-01T00:00:00Z".into(), 1))
        })
    }

    fn move_current<'a>(
        &'a self,
        id: &'a str,
        to: &'a str,
        from: &'a str,
    ) -> BoxFuture<'a, Outcome<()>> {
        self.count(Op::UpdateSecretVersionStage);
        Box::pin(async move {
            let mut m = self.lock();
            let s = m
                .get_mut(name_of(id))
                .ok_or_else(|| err(Op::UpdateSecretVersionStage, id, ErrorClass::NotFound))?;
            // AWS: RemoveFromVersionId must name the version that holds AWSCURRENT, and the
            // target version must exist
            let known = s.versions.is_empty() || s.versions.iter().any(|(v, _)| &**v == to);
            if s.current.as_deref().unwrap_or("") != from || !known {
                return Err(err(
                    Op::UpdateSecretVersionStage,
                    id,
                    ErrorClass::InvalidRequest,
                ));
            }
            s.move_current_to(to);
            Ok(((), 1))
        })
    }
}
