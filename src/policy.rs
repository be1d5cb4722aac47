//! Run-level rules on top of a plan: pure functions, tested here.
//!
//! - the `on_conflict = fail` gate (stop before any write when a conflict exists),
//! - the prune decision ([`Prune`]: delete with a recovery window, or keep with the
//!   [`Refusal`]; only under `--prune`, only from a complete, non-empty listing, only within the
//!   safety valve, never after an interruption),
//! - which counts are drift, what a `migrate` left unmigrated, and the exit code a script or
//!   cron sees.

use crate::exit;
use crate::report::{Action, Counts, Status};

/// Which command is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dry run of `migrate`.
    Plan {
        /// Exit 2 when anything would change.
        detailed_exitcode: bool,
    },
    /// Create and update.
    Migrate {
        /// Don't ask for confirmation.
        yes: bool,
        /// Restore our secrets scheduled for deletion.
        restore_deleted: bool,
    },
    /// Create, update, retag, report orphans; `check` writes nothing; `prune` deletes orphans.
    Reconcile {
        /// Read only; exit 2 on drift.
        check: bool,
        /// Schedule orphans for deletion.
        prune: bool,
        /// Override the prune safety valve.
        force_prune: bool,
        /// Restore our secrets scheduled for deletion.
        restore_deleted: bool,
        /// Take over the secrets whose tags claim this job's scope but whose ownership cannot
        /// be verified (`--adopt`); such a run deletes nothing.
        adopt: bool,
        /// Don't ask for confirmation.
        yes: bool,
    },
}

impl Mode {
    /// The command name (report file name, `command` column).
    pub fn command(self) -> &'static str {
        match self {
            Mode::Plan { .. } => "plan",
            Mode::Migrate { .. } => "migrate",
            Mode::Reconcile { .. } => "reconcile",
        }
    }

    /// Whether the run writes nothing.
    pub fn dry_run(self) -> bool {
        matches!(
            self,
            Mode::Plan { .. } | Mode::Reconcile { check: true, .. }
        )
    }

    /// Whether `--yes` was given.
    pub fn yes(self) -> bool {
        matches!(
            self,
            Mode::Migrate { yes: true, .. } | Mode::Reconcile { yes: true, .. }
        )
    }

    /// Whether `--adopt` was given.
    pub fn adopt(self) -> bool {
        matches!(self, Mode::Reconcile { adopt: true, .. })
    }

    /// Whether `--restore-deleted` was given.
    pub fn restore_deleted(self) -> bool {
        matches!(
            self,
            Mode::Migrate {
                restore_deleted: true,
                ..
            } | Mode::Reconcile {
                restore_deleted: true,
                ..
            }
        )
    }
}

/// What the prune decision looks at.
#[derive(Debug, Clone)]
pub(crate) struct PruneFacts {
    /// `--prune` given (and not `--check`).
    pub(crate) prune: bool,
    /// `--force-prune` given.
    pub(crate) force: bool,
    /// Listing problems (an incomplete listing prunes nothing).
    pub(crate) listing_problems: usize,
    /// Secrets the source listed.
    pub(crate) listed: usize,
    /// Live secrets this job owns (the valve's denominator; foreign secrets never count).
    pub(crate) owned_live: usize,
    /// Orphans that would be deleted (the valve's numerator).
    pub(crate) orphans: usize,
    /// Largest share of owned secrets one run may prune without `--force-prune`.
    pub(crate) max_fraction: f64,
    /// Recovery window in days.
    pub(crate) window_days: i64,
    /// The run was interrupted.
    pub(crate) interrupted: bool,
    /// The run adopts (`--adopt`): it deletes nothing.
    pub(crate) adopting: bool,
}

/// What becomes of a job's orphans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prune {
    /// Schedule them for deletion with this recovery window, in days.
    Delete {
        /// The recovery window.
        window_days: i64,
    },
    /// Report them and leave them, for this reason.
    Keep(Refusal),
}

/// Whether to schedule orphans for deletion, or why nothing is pruned.
pub(crate) fn prune(f: &PruneFacts) -> Prune {
    match refused(f) {
        Err(r) => Prune::Keep(r),
        Ok(()) => Prune::Delete {
            window_days: f.window_days,
        },
    }
}

/// The prune rules in order; `Err`: the first that refuses.
fn refused(f: &PruneFacts) -> Result<(), Refusal> {
    if !f.prune {
        return Err(Refusal::NotAsked);
    }
    if f.interrupted {
        return Err(Refusal::Refused("interrupted: nothing pruned".into()));
    }
    if f.adopting {
        return Err(Refusal::Refused(
            "a run that adopts (--adopt) deletes nothing: rerun reconcile --prune once the adopted secrets are checked".into(),
        ));
    }
    if f.listing_problems > 0 {
        return Err(Refusal::Refused(format!(
            "the listing was incomplete ({} problem(s)): nothing is pruned",
            f.listing_problems
        )));
    }
    if f.listed == 0 && f.owned_live > 0 {
        return Err(Refusal::Refused(format!(
            "the source listed 0 secrets while this job owns {}: nothing is pruned",
            f.owned_live
        )));
    }
    let allowed = (f.owned_live as f64 * f.max_fraction).floor() as usize;
    if f.orphans > allowed && !f.force {
        return Err(Refusal::Refused(format!(
            "prune refused: {} orphans of {} secrets this job owns exceeds max_prune_fraction {} (limit {allowed}); rerun with --force-prune if this is intended",
            f.orphans, f.owned_live, f.max_fraction
        )));
    }
    Ok(())
}

/// Why orphans are not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `--prune` was not given.
    NotAsked,
    /// `--prune` was given and refused, with the reason.
    Refused(String),
}

impl Refusal {
    /// Words for the report.
    pub(crate) fn words(&self) -> String {
        match self {
            Refusal::NotAsked => "run reconcile --prune to schedule its deletion".into(),
            Refusal::Refused(r) => r.clone(),
        }
    }
}

/// Rows that mean the target differs from the source (or would, in a dry run).
pub(crate) fn drift(counts: &Counts) -> u64 {
    counts.sum(|a, s| {
        s != Status::Failed
            && matches!(
                a,
                Action::Create
                    | Action::Update
                    | Action::Retag
                    | Action::Conflict
                    | Action::Orphan
                    | Action::Delete
                    | Action::Restore
                    | Action::Rename
                    | Action::Replicate
            )
    })
}

/// Drift a writing run leaves behind: conflicts it did not resolve, orphans it did not delete,
/// replicas that failed.
pub(crate) fn left_unrepaired(counts: &Counts) -> u64 {
    counts.sum(|a, s| {
        matches!(a, Action::Conflict | Action::Orphan | Action::Replicate) && s == Status::Skipped
    })
}

/// Source secrets a `migrate` left unmigrated: conflicts it did not resolve (an unmanaged or
/// foreign secret at the name, `on_conflict = skip`, a differing value under `adopt`) and
/// secrets skipped for safety (scheduled for deletion and not restored, another source's).
/// Orphans are not counted: `migrate` is not asked to prune them.
pub(crate) fn left_unmigrated(counts: &Counts) -> u64 {
    counts.sum(|a, s| {
        matches!(a, Action::Conflict | Action::Skip | Action::Replicate) && s == Status::Skipped
    })
}

/// The exit code of a run: 1 on any failure or an interruption; 2 for drift under `--check`
/// or `plan --detailed-exitcode`, for drift a writing `reconcile` left unrepaired, and for a
/// `migrate` that left secrets unmigrated (it never exits 0 then); 0 otherwise.
pub(crate) fn exit_code(mode: Mode, counts: &Counts, interrupted: bool) -> i32 {
    if counts.failed() > 0 || interrupted {
        return exit::FAILED;
    }
    let drifted = match mode {
        Mode::Plan {
            detailed_exitcode: true,
        }
        | Mode::Reconcile { check: true, .. } => drift(counts) > 0,
        Mode::Reconcile { check: false, .. } => left_unrepaired(counts) > 0,
        Mode::Migrate { .. } => left_unmigrated(counts) > 0,
        Mode::Plan {
            detailed_exitcode: false,
        } => false,
    };
    if drifted {
        exit::DRIFT
    } else {
        exit::OK
    }
}

/// The exit code of a run of several jobs: the most serious of theirs (usage, then failure,
/// then drift, then success), so one job's failure is never hidden by another's drift.
pub(crate) fn combine_exit_codes(codes: impl IntoIterator<Item = i32>) -> i32 {
    let rank = |c: i32| match c {
        exit::OK => 0,
        exit::DRIFT => 1,
        exit::FAILED => 2,
        exit::USAGE => 3,
        _ => 4,
    };
    codes
        .into_iter()
        .max_by_key(|c| rank(*c))
        .unwrap_or(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PruneFacts {
        PruneFacts {
            prune: true,
            force: false,
            listing_problems: 0,
            listed: 100,
            owned_live: 100,
            orphans: 5,
            max_fraction: 0.1,
            window_days: 7,
            interrupted: false,
            adopting: false,
        }
    }

    #[test]
    fn prune_only_when_asked_complete_and_within_the_valve() {
        let delete = Prune::Delete { window_days: 7 };
        assert_eq!(prune(&facts()), delete);
        let no = |f: PruneFacts| match prune(&f) {
            Prune::Keep(r) => r,
            Prune::Delete { .. } => panic!("pruned: {f:?}"),
        };
        assert_eq!(
            no(PruneFacts {
                prune: false,
                ..facts()
            }),
            Refusal::NotAsked
        );
        assert!(no(PruneFacts {
            interrupted: true,
            ..facts()
        })
        .words()
        .contains("interrupted"));
        // a run that adopts deletes nothing, even with --force-prune
        assert!(no(PruneFacts {
            adopting: true,
            force: true,
            ..facts()
        })
        .words()
        .contains("--adopt"));
        assert!(no(PruneFacts {
            listing_problems: 1,
            ..facts()
        })
        .words()
        .contains("incomplete"));
        assert!(no(PruneFacts {
            listed: 0,
            ..facts()
        })
        .words()
        .contains("0 secrets"));
        assert!(no(PruneFacts {
            orphans: 11,
            ..facts()
        })
        .words()
        .contains("--force-prune"));
        assert_eq!(
            prune(&PruneFacts {
                orphans: 11,
                force: true,
                ..facts()
            }),
            delete
        );
        // an empty listing with nothing owned is no reason to refuse (there is nothing to prune)
        assert_eq!(
            prune(&PruneFacts {
                listed: 0,
                owned_live: 0,
                orphans: 0,
                ..facts()
            }),
            delete
        );
    }

    #[test]
    fn several_jobs_exit_with_the_most_serious_code() {
        assert_eq!(combine_exit_codes([exit::OK, exit::DRIFT]), exit::DRIFT);
        assert_eq!(
            combine_exit_codes([exit::DRIFT, exit::FAILED, exit::OK]),
            exit::FAILED
        );
        assert_eq!(combine_exit_codes([exit::FAILED, exit::USAGE]), exit::USAGE);
        assert_eq!(combine_exit_codes([]), exit::OK);
    }

    #[test]
    fn exit_codes() {
        let c = |rows: &[(Action, Status)]| rows.iter().copied().collect::<Counts>();
        let check = Mode::Reconcile {
            check: true,
            prune: false,
            force_prune: false,
            restore_deleted: false,
            adopt: false,
            yes: false,
        };
        let fix = Mode::Reconcile {
            check: false,
            prune: true,
            force_prune: false,
            restore_deleted: false,
            adopt: false,
            yes: true,
        };
        let plan = Mode::Plan {
            detailed_exitcode: true,
        };
        let migrate = Mode::Migrate {
            yes: true,
            restore_deleted: false,
        };
        assert_eq!(
            exit_code(check, &c(&[(Action::Unchanged, Status::Planned)]), false),
            0
        );
        assert_eq!(
            exit_code(check, &c(&[(Action::Update, Status::Planned)]), false),
            2
        );
        assert_eq!(
            exit_code(plan, &c(&[(Action::Create, Status::Planned)]), false),
            2
        );
        assert_eq!(
            exit_code(
                Mode::Plan {
                    detailed_exitcode: false
                },
                &c(&[(Action::Create, Status::Planned)]),
                false
            ),
            0
        );
        assert_eq!(
            exit_code(fix, &c(&[(Action::Update, Status::Ok)]), false),
            0
        );
        assert_eq!(
            exit_code(fix, &c(&[(Action::Orphan, Status::Skipped)]), false),
            2
        );
        assert_eq!(
            exit_code(fix, &c(&[(Action::Conflict, Status::Skipped)]), false),
            2
        );
        // a failed replica: drift a writing reconcile leaves, drift under --check; an added
        // replica is repaired drift
        assert_eq!(
            exit_code(fix, &c(&[(Action::Replicate, Status::Skipped)]), false),
            2
        );
        assert_eq!(
            exit_code(check, &c(&[(Action::Replicate, Status::Planned)]), false),
            2
        );
        assert_eq!(
            exit_code(fix, &c(&[(Action::Replicate, Status::Ok)]), false),
            0
        );
        // a migrate that left secrets unmigrated never exits 0
        for left in [
            (Action::Conflict, Status::Skipped),
            (Action::Skip, Status::Skipped),
            (Action::Replicate, Status::Skipped),
        ] {
            assert_eq!(
                exit_code(migrate, &c(&[(Action::Create, Status::Ok), left]), false),
                2,
                "{left:?}"
            );
        }
        for fine in [
            (Action::Create, Status::Ok),
            (Action::Update, Status::Ok),
            (Action::Unchanged, Status::Ok),
            (Action::Retag, Status::Ok),
            (Action::Restore, Status::Ok),
            (Action::Replicate, Status::Ok),
            // an orphan is not a source secret left behind; migrate is not asked to prune
            (Action::Orphan, Status::Skipped),
        ] {
            assert_eq!(exit_code(migrate, &c(&[fine]), false), 0, "{fine:?}");
        }
        assert_eq!(
            exit_code(migrate, &c(&[(Action::Conflict, Status::Failed)]), false),
            1
        );
        // plan without --detailed-exitcode: 0 whatever it would leave
        assert_eq!(
            exit_code(
                Mode::Plan {
                    detailed_exitcode: false
                },
                &c(&[(Action::Conflict, Status::Planned)]),
                false
            ),
            0
        );
        assert_eq!(
            exit_code(fix, &c(&[(Action::Update, Status::Failed)]), false),
            1
        );
        assert_eq!(exit_code(migrate, &c(&[]), true), 1);
    }
}
