//! `secretport rollback --report R`: undo what one `migrate` or `reconcile` run wrote.
//!
//! The report says what the run did: its `ok` rows name each secret (ARN), the action, the
//! VersionId it wrote (`version_id`) and the one it replaced (`previous_version_id`). A report
//! is a file anyone can edit, so it is never trusted on its own: the config of the run is
//! required, a report naming another account or region than that config's target is refused
//! as a whole, and every row is checked against the secret as it is now. A row is acted on only
//! when the secret is **proven to be this job's** (its ownership proof verifies for its name,
//! the job's exact scope and prefix: [`crate::identity::ownership`], the same decision plan and
//! prune use) and claims the row's source path ([`owned_by_job`]). Then ([`undo`] decides,
//! purely, in [`crate::undo`]):
//! - `create`/`rename`: still at the version the run wrote → scheduled for deletion (recovery
//!   window, never forced);
//! - `update`: still at the version the run wrote → `AWSCURRENT` moved back to the version it
//!   replaced;
//! - `delete` (a prune): still scheduled for deletion → restored;
//! - anything changed since (a later run, a hand edit, a rotation) → left alone, with the reason.
//!
//! Retags and restores are not undone (they carry no value). The rollback writes its own
//! report with action `rollback`, and asks for confirmation like every writing command
//! ([`super::confirm::ask`]). Its target is the engine's ([`engine::target_sdk`], the job's
//! limiters and retry policy), and its steps run through the executor
//! ([`crate::executor::undo`]): paced, retried, `concurrency` at a time, one row each, with the
//! progress display a run has. This module orders the steps and renders the question and the
//! summary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::confirm::{self, Confirm};
use super::progress::Progress;
use crate::aws::secrets::SecretsTarget;
use crate::config::{JobConfig, LimitsConfig};
use crate::engine::{self, Event, Events, RunError};
use crate::executor::undo::UndoRun;
use crate::exit;
use crate::identity::Ownership;
use crate::limits::Limits;
use crate::report::{Action, Report, Sink, Status};
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::target::Target;
use crate::undo::{other_target, owned_by_job, read_report, undo, Undo, Written};

/// What `rollback` needs.
pub struct Options<'a> {
    /// The report of the run to undo.
    pub report: &'a Path,
    /// The config of that run: the job whose writes are undone (its source scope, prefix and
    /// target), and the limits.
    pub config: (&'a JobConfig, &'a LimitsConfig),
    /// Only the rows of this job (`--job`; a run of several jobs may span several targets).
    pub job: Option<&'a str>,
    /// Where the rollback's own report goes.
    pub own_report: Option<&'a Path>,
    /// Recovery window for deletions.
    pub recovery_window_days: i64,
    /// Skip the confirmation.
    pub yes: bool,
}

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

/// How the rollback ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub exit_code: i32,
    /// One line.
    pub summary: String,
}

/// Each finished undo step on the progress display.
struct Steps<'a>(&'a Progress);

impl Events for Steps<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::Done { failed } = *event {
            self.0.inc(failed);
        }
    }
}

/// Runs a rollback.
pub async fn rollback(
    opts: &Options<'_>,
    shutdown: Shutdown,
    confirm: &dyn Confirm,
) -> Result<Outcome, RollbackError> {
    let started = Instant::now();
    let bad = |why: String| RollbackError::BadReport {
        path: opts.report.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(opts.report).map_err(|e| bad(e.to_string()))?;
    let mut writes = read_report(&text).map_err(bad)?;
    if let Some(job) = opts.job {
        writes.retain(|w| w.job == job);
    }
    let dir = opts.report.parent().unwrap_or(Path::new("."));
    let report = Report::create(dir, "rollback", opts.own_report)?;
    if writes.is_empty() {
        return Ok(Outcome {
            exit_code: exit::OK,
            summary: format!(
                "rollback: the run wrote nothing to undo; report {}",
                report.path().display()
            ),
        });
    }
    let (job, limits_cfg) = opts.config;
    let limits = Arc::new(Limits::with_shutdown(limits_cfg, &shutdown));
    let retry = RetryPolicy::new(limits_cfg.max_attempts);
    let sdk = engine::target_sdk(&job.target, limits_cfg).await?;
    let target = SecretsTarget::new(&sdk, limits.clone(), retry);
    // the report's rows must all be in this target's account and region
    let caller = target.caller().await;
    let account = caller.as_ref().ok().map(|c| c.account.clone());
    if let Some(why) = other_target(&writes, target.region(), account.as_deref()) {
        return Err(RollbackError::OtherTarget {
            path: opts.report.to_owned(),
            why,
        });
    }
    // what the job owns: its source's scope, its prefix, and the key proofs verify with
    let source = engine::open_source(job, limits_cfg, &limits, retry).await?;
    let scope = source.scope();
    drop(source);
    let prefix = job.target.prefix.as_str();
    let key = engine::verification_key(job, &target)
        .await
        .map_err(RunError::from)?;

    // what the target holds now, and what to do about each write
    let mut plan: Vec<(&Written, Undo)> = Vec::with_capacity(writes.len());
    for w in &writes {
        let now = match target.describe(&w.arn).await {
            Ok((s, _)) => Some(s),
            Err(e) if e.class == crate::target::ErrorClass::NotFound => None,
            Err(e) => {
                plan.push((w, Undo::Unreadable(format!("cannot read its state: {e}"))));
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
        plan.push((w, u));
    }
    let left_alone = |u: &Undo| matches!(u, Undo::Leave(_) | Undo::Unreadable(_));
    let acting = plan.iter().filter(|(_, u)| !left_alone(u)).count();
    if acting > 0 && !opts.yes {
        let account = match &caller {
            Ok(c) => c.account.clone(),
            Err(e) => format!("unknown ({e})"),
        };
        let n = |f: &dyn Fn(&Undo) -> bool| plan.iter().filter(|(_, u)| f(u)).count();
        let q = format!(
            "rollback of {} in AWS account {account}, region {}: schedule for deletion {}, move AWSCURRENT back {}, restore {}, leave alone {}. Proceed?",
            opts.report.display(),
            target.region(),
            n(&|u| *u == Undo::Delete),
            n(&|u| matches!(u, Undo::MoveBack { .. })),
            n(&|u| *u == Undo::Restore),
            n(&left_alone),
        );
        if let Err(declined) = confirm::ask(confirm, &q) {
            return Ok(Outcome {
                exit_code: declined.exit_code,
                summary: format!("rollback: {}", declined.why),
            });
        }
    }

    let sink = Sink::new(report, false, "");
    let progress = Progress::new("rollback", plan.len() as u64);
    UndoRun {
        target: &target,
        window_days: opts.recovery_window_days,
        sink: &sink,
        shutdown: &shutdown,
        events: &Steps(&progress),
        concurrency: limits_cfg.concurrency,
    }
    .run_all(&plan)
    .await;
    progress.finish();
    if let Some(e) = sink.take_write_error() {
        return Err(RollbackError::Report(e));
    }
    let counts = sink.counts();
    let rows = |status: Status| counts.get(Action::Rollback, status);
    let failed = rows(Status::Failed);
    let exit_code = if failed > 0 || shutdown.is_triggered() {
        exit::FAILED
    } else {
        exit::OK
    };
    Ok(Outcome {
        exit_code,
        summary: format!(
            "rollback: {} write(s) in the report: {}; {:.1}s; report {}",
            writes.len(),
            super::run::shown_counts(
                &[("failed".into(), failed)],
                &[
                    ("undone".into(), rows(Status::Ok)),
                    ("left alone".into(), rows(Status::Skipped))
                ],
            ),
            started.elapsed().as_secs_f64(),
            sink.report_path().display()
        ),
    })
}
