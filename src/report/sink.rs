//! Where a run's rows go: one [`Report`] per run, one [`Sink`] per job.
//!
//! The executor and the engine never hold the report itself: they hand rows to their job's
//! sink, which fills in the job, turns `ok`/`skipped` into `planned` in a dry run, counts the
//! row for the job and for the run, and writes it. The first error writing the report is kept
//! for the run to stop on ([`Sink::take_write_error`]), so a full disk is never silent. The
//! counters are private: the executor records through methods, the face reads accessors.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Counts, Report, Row, Status};

/// What all jobs of a run share: the report, the run's totals, the first write error.
struct Shared {
    report: Mutex<Report>,
    totals: Mutex<Counts>,
    write_error: Mutex<Option<std::io::Error>>,
}

/// Collects report rows and counts; shared by all tasks of a job. One report per run: the
/// sinks of a run's jobs ([`Sink::for_job`]) write to the same report and add to the same
/// totals, each keeping its own counts for the job's summary and exit code.
pub struct Sink {
    shared: Arc<Shared>,
    counts: Mutex<Counts>,
    /// Write requests that succeeded.
    writes: AtomicU64,
    /// Dry run only: values the source would not let us read (list-only access).
    unread: AtomicU64,
    /// Replicas AWS reports `Failed` (reported, left unrepaired).
    failed_replicas: AtomicU64,
    dry_run: bool,
    job: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sink {
    /// A sink writing to `report`; in a dry run `ok` and `skipped` become `planned`. Rows
    /// without a job get `job`.
    pub fn new(report: Report, dry_run: bool, job: &str) -> Sink {
        let shared = Arc::new(Shared {
            report: Mutex::new(report),
            totals: Mutex::new(Counts::default()),
            write_error: Mutex::new(None),
        });
        Sink::with(shared, dry_run, job)
    }

    fn with(shared: Arc<Shared>, dry_run: bool, job: &str) -> Sink {
        Sink {
            shared,
            counts: Mutex::new(Counts::default()),
            writes: AtomicU64::new(0),
            unread: AtomicU64::new(0),
            failed_replicas: AtomicU64::new(0),
            dry_run,
            job: job.to_owned(),
        }
    }

    /// A sink for job `job` writing to the same report and totals, with counts of its own.
    pub(crate) fn for_job(&self, job: &str) -> Sink {
        Sink::with(self.shared.clone(), self.dry_run, job)
    }

    /// Records a row in the report and the counters.
    pub(crate) fn emit(&self, mut row: Row) {
        if self.dry_run && matches!(row.status, Status::Ok | Status::Skipped) {
            row.status = Status::Planned;
        }
        if row.job.is_empty() {
            row.job.clone_from(&self.job);
        }
        lock(&self.counts).add(row.action, row.status);
        lock(&self.shared.totals).add(row.action, row.status);
        // A row about no secret is a fatal error that the command prints itself.
        let about_a_secret = !(row.source_path.is_empty() && row.target_name.is_empty());
        if row.status == Status::Failed && about_a_secret {
            tracing::warn!(job = %row.job, path = %row.source_path, target = %row.target_name, action = row.action.as_str(), error = %row.error, "failed");
        }
        let mut report = lock(&self.shared.report);
        if let Err(e) = report.write(&row) {
            let mut slot = lock(&self.shared.write_error);
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }

    /// This sink's counts by action and status so far (its job's).
    pub(crate) fn counts(&self) -> Counts {
        lock(&self.counts).clone()
    }

    /// Counts of every job of the run.
    pub(crate) fn totals(&self) -> Counts {
        lock(&self.shared.totals).clone()
    }

    /// A write request succeeded.
    pub(crate) fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Write requests that succeeded (this sink's).
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// A dry run could not read a value (list-only access).
    pub(crate) fn value_unread(&self) {
        self.unread.fetch_add(1, Ordering::Relaxed);
    }

    /// Values a dry run could not read (this sink's).
    pub(crate) fn unread(&self) -> u64 {
        self.unread.load(Ordering::Relaxed)
    }

    /// AWS reports a replica `Failed`.
    pub(crate) fn replica_failed(&self) {
        self.failed_replicas.fetch_add(1, Ordering::Relaxed);
    }

    /// Replicas AWS reports `Failed` (this sink's).
    pub(crate) fn failed_replicas(&self) -> u64 {
        self.failed_replicas.load(Ordering::Relaxed)
    }

    /// The first error writing the report, if any (taken).
    pub(crate) fn take_write_error(&self) -> Option<std::io::Error> {
        lock(&self.shared.write_error).take()
    }

    /// The report's path.
    pub(crate) fn report_path(&self) -> PathBuf {
        lock(&self.shared.report).path().to_owned()
    }

    /// The run's id (the report's).
    pub(crate) fn run_id(&self) -> String {
        lock(&self.shared.report).run_id().to_owned()
    }
}
