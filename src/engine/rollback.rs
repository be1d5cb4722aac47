//! A rollback's pipeline: from the writes a report records to the undo steps, and their run.
//!
//! [`Rollback::prepare`] reaches the job's target the way a run does ([`super::target_sdk`],
//! the job's limiters and retry policy), refuses a report of another account or region as a
//! whole ([`crate::undo::other_target`]), opens the job's source for its scope only, loads the
//! key ownership proofs verify with, and reads each written secret as it is now to decide
//! ([`crate::undo::owned_by_job`], [`crate::undo::undo`]) what to do about it.
//! [`Rollback::execute`] runs the steps through the executor ([`crate::executor::undo`]):
//! paced, retried, `concurrency` at a time, one `rollback` row each, one
//! [`super::Event::Done`] each. The question and the summary are the face's
//! (`commands::rollback`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Events, RunError};
use crate::aws::secrets::SecretsTarget;
use crate::config::{JobConfig, LimitsConfig};
use crate::executor::undo::UndoRun;
use crate::exit;
use crate::identity::Ownership;
use crate::limits::Limits;
use crate::report::Sink;
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::target::{CallError, Caller, ErrorClass, Target};
use crate::undo::{other_target, owned_by_job, undo, Undo, Written};

/// Why a rollback could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The report cannot be read or is not a secretport report.
    #[error("report {path}: {why}")]
    BadReport {
        /// The report.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The rollback's own report cannot be written.
    #[error("audit report: {0}")]
    Report(#[from] std::io::Error),
    /// AWS client configuration.
    #[error(transparent)]
    Client(#[from] crate::aws::client::ClientError),
    /// The report names secrets of another account or region than the config's target.
    #[error("report {path}: {why}; refused: nothing was changed (roll back with the config of the run that wrote it)")]
    OtherTarget {
        /// The report.
        path: PathBuf,
        /// Which account or region it names.
        why: String,
    },
    /// The job's source (its scope) or the target's key could not be had.
    #[error("{0}")]
    Run(#[from] RunError),
}

impl RollbackError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RollbackError::BadReport { .. } | RollbackError::OtherTarget { .. } => exit::USAGE,
            RollbackError::Run(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}

/// A rollback between its decisions and its writes.
pub struct Rollback<'w> {
    target: SecretsTarget,
    caller: Result<Caller, CallError>,
    steps: Vec<(&'w Written, Undo)>,
    concurrency: usize,
}

impl<'w> Rollback<'w> {
    /// Decides what to do about each of `writes` (read from `report`), for `job`'s target.
    pub(crate) async fn prepare(
        report: &Path,
        writes: &'w [Written],
        (job, limits_cfg): (&JobConfig, &LimitsConfig),
        shutdown: &Shutdown,
    ) -> Result<Rollback<'w>, RollbackError> {
        let limits = Arc::new(Limits::with_shutdown(limits_cfg, shutdown));
        let retry = RetryPolicy::new(limits_cfg.max_attempts);
        let sdk = super::target_sdk(&job.target, limits_cfg).await?;
        let target = SecretsTarget::new(&sdk, limits.clone(), retry);
        // the report's rows must all be in this target's account and region
        let caller = target.caller().await;
        let account = caller.as_ref().ok().map(|c| c.account.clone());
        if let Some(why) = other_target(writes, target.region(), account.as_deref()) {
            return Err(RollbackError::OtherTarget {
                path: report.to_owned(),
                why,
            });
        }
        // what the job owns: its source's scope, its prefix, and the key proofs verify with
        let source = super::open_source(job, limits_cfg, &limits, retry).await?;
        let scope = source.scope();
        drop(source);
        let prefix = job.target.prefix.as_str();
        let key = super::verification_key(job, &target)
            .await
            .map_err(RunError::from)?;

        // what the target holds now, and what to do about each write
        let mut steps: Vec<(&Written, Undo)> = Vec::with_capacity(writes.len());
        for w in writes {
            let now = match target.describe(&w.arn).await {
                Ok((s, _)) => Some(s),
                Err(e) if e.class == ErrorClass::NotFound => None,
                Err(e) => {
                    steps.push((w, Undo::Unreadable(format!("cannot read its state: {e}"))));
                    continue;
                }
            };
            let checked = now.as_ref().map(|n| {
                let o = n.ownership(&scope, prefix, key.as_ref());
                let relative = match &o {
                    Ownership::Owned(id) => scope.relative(id),
                    _ => None,
                };
                owned_by_job(w, &job.name, n, &o, relative)
            });
            let u = match checked {
                Some(Err(why)) => Undo::Leave(why),
                _ => undo(w, now.as_ref()),
            };
            steps.push((w, u));
        }
        Ok(Rollback {
            target,
            caller,
            steps,
            concurrency: limits_cfg.concurrency,
        })
    }

    /// Who the target is written as.
    pub(crate) fn caller(&self) -> &Result<Caller, CallError> {
        &self.caller
    }

    /// The target's region.
    pub(crate) fn region(&self) -> &str {
        self.target.region()
    }

    /// The steps, for the question and the progress total.
    pub(crate) fn steps(&self) -> &[(&'w Written, Undo)] {
        &self.steps
    }

    /// Runs every step: deletions with a `window_days` recovery window, rows to `sink`.
    pub(crate) async fn execute(
        &self,
        window_days: i64,
        sink: &Sink,
        shutdown: &Shutdown,
        events: &dyn Events,
    ) {
        UndoRun {
            target: &self.target,
            window_days,
            sink,
            shutdown,
            events,
            concurrency: self.concurrency,
        }
        .run_all(&self.steps)
        .await;
    }
}
