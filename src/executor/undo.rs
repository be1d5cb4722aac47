//! Rollback's undo steps, run like a run's items: through the job's rate-limited, retrying
//! target, `concurrency` at a time, one `rollback` row each through the [`Sink`], one
//! [`Event::Done`] each, and no new step once the shutdown signal is set.
//!
//! What to undo was decided before ([`crate::undo`]); here each decision becomes its one call
//! (`DeleteSecret` with a recovery window, `UpdateSecretVersionStage` back, `RestoreSecret`)
//! and its row.

use std::time::Instant;

use futures::stream::{self, StreamExt};

use crate::engine::{Event, Events};
use crate::report::{Action, Row, Sink, Status};
use crate::shutdown::Shutdown;
use crate::target::Target;
use crate::undo::{Undo, Written};

/// How the undo steps run.
pub(crate) struct UndoRun<'a> {
    /// The target, under the job's limiters and retry policy.
    pub(crate) target: &'a dyn Target,
    /// Recovery window of the deletions, in days.
    pub(crate) window_days: i64,
    /// Where the rows go.
    pub(crate) sink: &'a Sink,
    /// Once set, no new step starts.
    pub(crate) shutdown: &'a Shutdown,
    /// One [`Event::Done`] per step.
    pub(crate) events: &'a dyn Events,
    /// Steps in flight.
    pub(crate) concurrency: usize,
}

impl UndoRun<'_> {
    /// Runs every step.
    pub(crate) async fn run_all(&self, steps: &[(&Written, Undo)]) {
        stream::iter(steps)
            .map(|(w, u)| async move {
                let row = self.run_one(w, u).await;
                let failed = row.status == Status::Failed;
                self.sink.emit(row);
                self.events.event(&Event::Done { failed });
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect::<()>()
            .await;
    }

    async fn run_one(&self, w: &Written, u: &Undo) -> Row {
        let start = Instant::now();
        let mut row = Row::new(&w.source_path, &w.name, Action::Rollback, Status::Ok);
        row.target_arn.clone_from(&w.arn);
        if self.shutdown.is_triggered() {
            row.status = Status::Skipped;
            row.error = format!("interrupted: not started (undo of {})", w.action.as_str());
            return row;
        }
        let result = match u {
            Undo::Leave(why) | Undo::Unreadable(why) => {
                row.status = if matches!(u, Undo::Unreadable(_)) {
                    Status::Failed
                } else {
                    Status::Skipped
                };
                row.error = format!("{}: {why}", w.action.as_str());
                None
            }
            Undo::Delete => Some(
                self.target
                    .schedule_deletion(&w.arn, self.window_days)
                    .await
                    .map(|(date, a)| {
                        row.error = format!(
                            "{} undone: scheduled for deletion on {date} ({}-day recovery window)",
                            w.action.as_str(),
                            self.window_days
                        );
                        row.previous_version_id.clone_from(&w.version_id);
                        a
                    }),
            ),
            Undo::MoveBack { to, from } => Some(
                self.target
                    .move_current(&w.arn, to, from)
                    .await
                    .map(|(_, a)| {
                        row.error =
                            "update undone: AWSCURRENT moved back to the version it replaced"
                                .into();
                        row.version_id.clone_from(to);
                        row.previous_version_id.clone_from(from);
                        a
                    }),
            ),
            Undo::Restore => Some(self.target.restore(&w.arn).await.map(|(_, a)| {
                row.error = "prune undone: deletion cancelled".into();
                a
            })),
        };
        match result {
            None => {}
            Some(Ok(a)) => row.attempts = a,
            Some(Err(e)) => {
                row.status = Status::Failed;
                row.attempts = e.attempts;
                row.error = e.to_string();
            }
        }
        row.duration_ms = start.elapsed().as_millis();
        row
    }
}
