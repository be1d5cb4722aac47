//! `secretport rollback --report R`: undo what one `migrate` or `reconcile` run wrote.
//!
//! The report says what the run did: its `ok` rows name each secret (ARN), the action, the
//! VersionId it wrote (`version_id`) and the one it replaced (`previous_version_id`). A report
//! is a file anyone can edit, so it is never trusted on its own: the config of the run is
//! required, a report naming another account or region than that config's target is refused
//! as a whole, and every row is checked against the secret as it is now. A row is acted on only
//! when the secret is **proven to be this job's** (its ownership proof verifies for its name,
//! the job's exact scope and prefix: [`crate::identity::ownership`], the same decision plan and
//! prune use) and claims the row's source path ([`crate::undo::owned_by_job`]). Then
//! ([`crate::undo::undo`] decides, purely):
//! - `create`/`rename`: still at the version the run wrote → scheduled for deletion (recovery
//!   window, never forced);
//! - `update`: still at the version the run wrote → `AWSCURRENT` moved back to the version it
//!   replaced;
//! - `delete` (a prune): still scheduled for deletion → restored;
//! - anything changed since (a later run, a hand edit, a rotation) → left alone, with the reason.
//!
//! Retags and restores are not undone (they carry no value). The rollback writes its own
//! report with action `rollback`, and asks for confirmation like every writing command
//! ([`super::confirm::ask`]). The pipeline is the engine's ([`crate::engine::Rollback`]: the
//! job's target and limiters as a run has them, the decisions of [`crate::undo`], the steps
//! through the executor, paced, retried, `concurrency` at a time); this module reads the
//! report, asks, shows the progress and renders the summary.

use std::path::Path;
use std::time::Instant;

use super::confirm::{self, Confirm};
use super::progress::Progress;
use crate::config::{JobConfig, LimitsConfig};
pub use crate::engine::RollbackError;
use crate::engine::{Event, Events, Rollback};
use crate::exit;
use crate::report::{Action, Report, Sink, Status};
use crate::shutdown::Shutdown;
use crate::undo::{read_report, Undo};

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
    let rollback = Rollback::prepare(opts.report, &writes, opts.config, &shutdown).await?;
    let plan = rollback.steps();
    let left_alone = |u: &Undo| matches!(u, Undo::Leave(_) | Undo::Unreadable(_));
    let acting = plan.iter().filter(|(_, u)| !left_alone(u)).count();
    if acting > 0 && !opts.yes {
        let account = match rollback.caller() {
            Ok(c) => c.account.clone(),
            Err(e) => format!("unknown ({e})"),
        };
        let n = |f: &dyn Fn(&Undo) -> bool| plan.iter().filter(|(_, u)| f(u)).count();
        let q = format!(
            "rollback of {} in AWS account {account}, region {}: schedule for deletion {}, move AWSCURRENT back {}, restore {}, leave alone {}. Proceed?",
            opts.report.display(),
            rollback.region(),
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
    rollback
        .execute(
            opts.recovery_window_days,
            &sink,
            &shutdown,
            &Steps(&progress),
        )
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
            super::summary::shown_counts(
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
