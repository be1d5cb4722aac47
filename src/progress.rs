//! Progress on stderr: an `indicatif` bar on a terminal, plain periodic lines otherwise (cron
//! logs, CI), so long runs are never silent and logs stay readable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Progress of one phase.
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    failed: AtomicU64,
    bar: Option<ProgressBar>,
    start: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Starts progress for `total` items.
    pub fn new(label: &str, total: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
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
        }
    }

    /// One item finished.
    pub fn inc(&self, failed: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = if failed {
            self.failed.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.failed.load(Ordering::Relaxed)
        };
        if let Some(b) = &self.bar {
            b.inc(1);
            if failed {
                b.set_message(format!("{failures} failed"));
            }
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= PLAIN_EVERY {
            *last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64().max(1e-3);
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 {
                (self.total.saturating_sub(done)) as f64 / rate
            } else {
                0.0
            };
            eprintln!(
                "{}: {done}/{} ({rate:.1}/s), {failures} failed, ETA {eta:.0}s",
                self.label, self.total
            );
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
