//! A prepared job's writes: the conflict gate, then the plan through the executor, then its
//! orphans under the prune policy, ending in a typed [`JobReport`].
//!
//! The executor runs over the real target or, in a dry run, over [`DryRun`]: this is the one
//! place that chooses. What the run policy decides (the `on_conflict = fail` gate's words, the
//! prune decision, the exit code, the cost of the new secrets) is decided here from pure
//! functions; how it is shown (summary lines, the JSON summary, the sidecar) is the face's.

use std::time::{Duration, Instant};

use super::{Events, PreparedJob};
use crate::config::OnConflict;
use crate::cost::Cost;
use crate::decide;
use crate::executor::{Executor, Settings};
use crate::exit;
use crate::plan::Decision;
use crate::policy::{self, Mode, PruneFacts};
use crate::report::{Action, Counts, Row, Status};
use crate::shutdown::Shutdown;
use crate::target::dry::DryRun;
use crate::target::Target;

/// Why a job stopped before its first write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// `on_conflict = fail` and the plan holds conflicts: every item is reported, none run.
    OnConflicts {
        /// Conflicts found.
        conflicts: usize,
    },
}

/// How one job ended: everything its summary, exit code, JSON summary and metrics say.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// The job's exit code (policy).
    pub(crate) exit_code: i32,
    /// The job's report rows by action and status.
    pub counts: Counts,
    /// Set when the job stopped before any write.
    pub(crate) stopped: Option<Stopped>,
    /// Source secrets planned.
    pub secrets: usize,
    /// Managed secrets of other scopes left alone.
    pub(crate) foreign: usize,
    /// Write requests that succeeded.
    pub(crate) writes: u64,
    /// From the first write request to the end of the job.
    pub(crate) write_time: Duration,
    /// Dry run: values the source would not let it read.
    pub(crate) unread: u64,
    /// Replicas AWS reports `Failed`.
    pub(crate) failed_replicas: u64,
    /// The shutdown signal stopped it.
    pub(crate) interrupted: bool,
    /// What its new secrets add per month (created, or planned in a dry run).
    pub(crate) cost: Cost,
}

impl PreparedJob<'_> {
    /// `on_conflict = fail` with conflicts: the job stops before any write, every item
    /// reported (`None`: the job goes on).
    pub(crate) fn stop_on_conflicts(&self) -> Option<JobReport> {
        let conflicts = self.plan.conflicts().count();
        if self.job.target.on_conflict != OnConflict::Fail || conflicts == 0 {
            return None;
        }
        for item in self.plan.items() {
            let (action, status, why) = match item.decision() {
                Decision::Conflict { .. } => (
                    Action::Conflict,
                    Status::Failed,
                    "exists and is not this source's (on_conflict = fail)".to_owned(),
                ),
                _ => (
                    Action::Skip,
                    Status::Skipped,
                    format!("not started: on_conflict = fail and {conflicts} conflict(s) found"),
                ),
            };
            self.sink
                .emit(Row::new(item.path(), item.target_name(), action, status).error(why));
        }
        Some(JobReport {
            exit_code: exit::FAILED,
            stopped: Some(Stopped::OnConflicts { conflicts }),
            write_time: Duration::ZERO,
            cost: Cost::default(),
            ..self.report(Counts::default(), false)
        })
    }

    /// Executes the job: its items, then its orphans under the prune policy. `shutdown`
    /// stops it between secrets; `events` gets one [`super::Event::Done`] per step
    /// ([`PreparedJob::steps`]).
    pub async fn execute(&self, mode: Mode, shutdown: &Shutdown, events: &dyn Events) -> JobReport {
        let dry = DryRun::new(self.target);
        let target: &dyn Target = if mode.dry_run() { &dry } else { self.target };
        let (job, cfg) = (self.job, self.cfg);
        let settings = Settings {
            rules: decide::Rules {
                restore_deleted: mode.restore_deleted(),
                copy_metadata: job.source.copy_metadata(),
                config_tags: job.target.tags.clone(),
                prefix: job.target.prefix.clone(),
                replicas: job.target.replicas.clone(),
            },
            kms_key_id: job.target.kms_key_id.clone(),
            concurrency: cfg.limits.concurrency,
            policy: job.naming.policy,
            tokens: self.key.clone(),
        };
        let exec = Executor::new(
            target,
            self.source.as_ref(),
            &settings,
            &self.sink,
            shutdown,
            events,
        );
        let write_start = Instant::now();
        exec.run_all(&self.plan).await;

        let mut orphans = self.plan.orphans.clone();
        orphans.extend(exec.take_gone());
        let plan = &self.plan;
        orphans.sort_by(|a, b| plan.secret(a).name().cmp(plan.secret(b).name()));
        let interrupted = shutdown.is_triggered();
        let prune = policy::prune(&PruneFacts {
            prune: matches!(mode, Mode::Reconcile { prune: true, .. }),
            force: matches!(
                mode,
                Mode::Reconcile {
                    force_prune: true,
                    ..
                }
            ),
            listing_problems: self.listing_problems,
            listed: self.listed,
            owned_live: self.plan.owned_live,
            orphans: orphans.len(),
            max_fraction: cfg.reconcile.max_prune_fraction,
            window_days: cfg.reconcile.recovery_window_days,
            interrupted,
            adopting: mode.adopt(),
        });
        exec.orphans(plan, &orphans, &prune).await;
        let counts = self.sink.counts();
        JobReport {
            exit_code: policy::exit_code(mode, &counts, interrupted),
            write_time: write_start.elapsed(),
            ..self.report(counts, interrupted)
        }
    }

    /// The report of the job as its sink stands, with `counts`.
    fn report(&self, counts: Counts, interrupted: bool) -> JobReport {
        let new = counts.done(Action::Create) + counts.done(Action::Rename);
        JobReport {
            exit_code: exit::OK,
            stopped: None,
            secrets: self.plan.len(),
            foreign: self.plan.foreign,
            writes: self.sink.writes(),
            write_time: Duration::ZERO,
            unread: self.sink.unread(),
            failed_replicas: self.sink.failed_replicas(),
            interrupted,
            cost: Cost::of(
                new,
                self.job.target.replicas.len(),
                self.cfg.cost.price_per_secret_month,
            ),
            counts,
        }
    }
}
