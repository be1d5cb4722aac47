//! Progress on stderr: an `indicatif` bar on a terminal, plain periodic lines otherwise (cron
//! logs, CI), so long runs are never silent and logs stay readable. Part of the face: it is
//! advanced by the engine's [`crate::engine::Event::Done`] (one per step; the total is
//! [`crate::engine::PreparedJob::steps`] summed over the jobs, or a rollback's steps).
//!
//! Both show the same [`status`] text: done/total, failures so far, the rate with at most one
//! decimal, and an ETA. The ETA is not extrapolated from the first second (a run starts with the
//! limiter's burst and runs faster than it can last): it uses the observed average rate, capped
//! by the pace the write limiter allows when the run is writing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The steady rate the run can keep (the write limiter's current rate), if it is bounded.
pub(crate) type PaceFn = Box<dyn Fn() -> Option<f64> + Send + Sync>;

/// Progress of one phase.
pub(crate) struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    failed: AtomicU64,
    bar: Option<ProgressBar>,
    start: Instant,
    last_line: Mutex<Instant>,
    pace: Option<PaceFn>,
}

/// `done/total, N failed, R/s, ETA Ts` — the rate with one decimal, the ETA from the average
/// rate capped by `pace` (items per second the limiter allows), `?` before anything finished.
pub(crate) fn status(
    done: u64,
    total: u64,
    failed: u64,
    elapsed: Duration,
    pace: Option<f64>,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / secs;
    let steady = match pace {
        Some(p) if p > 0.0 => rate.min(p),
        _ => rate,
    };
    let left = total.saturating_sub(done);
    let eta = if left == 0 {
        "0s".to_owned()
    } else if steady > 0.0 {
        format!("{:.0}s", left as f64 / steady)
    } else {
        "?".to_owned()
    };
    format!("{done}/{total}, {failed} failed, {rate:.1}/s, ETA {eta}")
}

impl Progress {
    /// Starts progress for `total` items.
    pub(crate) fn new(label: &str, total: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(label.to_owned());
            Some(b)
        } else {
            None
        };
        Progress {
            label: label.to_owned(),
            total,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bar,
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
            pace: None,
        }
    }

    /// Caps the ETA's rate by `pace` (e.g. the write limiter's current rate).
    pub(crate) fn with_pace(mut self, pace: PaceFn) -> Progress {
        self.pace = Some(pace);
        self
    }

    fn text(&self, done: u64, failed: u64) -> String {
        let pace = self.pace.as_ref().and_then(|p| p());
        status(done, self.total, failed, self.start.elapsed(), pace)
    }

    /// One item finished.
    pub(crate) fn inc(&self, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = if failed {
            self.failed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.failed.load(Ordering::Relaxed)
        };
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(self.text(done, failures));
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= PLAIN_EVERY {
            *last = Instant::now();
            eprintln!("{}: {}", self.label, self.text(done, failures));
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_has_one_decimal_and_eta_follows_the_limiter() {
        // a burst: 100 done in 1 s, but the limiter allows 50/s: ETA from 50/s, not 100/s
        let s = status(100, 1100, 2, Duration::from_secs(1), Some(50.0));
        assert_eq!(s, "100/1100, 2 failed, 100.0/s, ETA 20s");
        // slower than the limiter: the observed rate
        let s = status(30, 130, 0, Duration::from_secs(3), Some(50.0));
        assert_eq!(s, "30/130, 0 failed, 10.0/s, ETA 10s");
        assert!(status(0, 10, 0, Duration::from_secs(1), None).ends_with("ETA ?"));
        assert!(status(10, 10, 0, Duration::from_secs(1), None).ends_with("ETA 0s"));
        assert_eq!(
            status(1, 3, 0, Duration::from_secs(3), None),
            "1/3, 0 failed, 0.3/s, ETA 6s"
        );
    }
}
