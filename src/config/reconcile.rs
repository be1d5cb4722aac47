//! `[reconcile]`: how pruning is bounded: the recovery window a pruned secret keeps, and the
//! largest share of managed secrets one run may prune without `--force-prune`.

use super::validate::{Section, Validator};

/// `[reconcile]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconcileConfig {
    /// Recovery window for pruned secrets, 7..=30 days.
    pub(crate) recovery_window_days: i64,
    /// Largest share of managed secrets one run may prune without `--force-prune`.
    pub(crate) max_prune_fraction: f64,
}

impl Validator<'_> {
    pub(super) fn reconcile(&mut self, s: Option<Section>) -> ReconcileConfig {
        let mut r = ReconcileConfig {
            recovery_window_days: 30,
            max_prune_fraction: 0.10,
        };
        let Some(mut s) = s else { return r };
        if let Some(d) = s.opt::<i64>("recovery_window_days", "an integer") {
            if crate::target::limits::RECOVERY_WINDOW_DAYS.contains(&d) {
                r.recovery_window_days = d;
            } else {
                s.problem("recovery_window_days", format!("must be 7..=30, got {d}"));
            }
        }
        if let Some(f) = s.opt::<f64>("max_prune_fraction", "a number between 0 and 1") {
            if (0.0..=1.0).contains(&f) {
                r.max_prune_fraction = f;
            } else {
                s.problem("max_prune_fraction", format!("must be 0.0..=1.0, got {f}"));
            }
        }
        self.problems.extend(s.finish());
        r
    }
}
