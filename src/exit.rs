//! Process exit codes, as README's "Commands" section documents them for scripts and alerting.

/// Success, or in sync.
pub const OK: i32 = 0;
/// At least one secret failed, or a fatal error.
pub const FAILED: i32 = 1;
/// Drift: found by `reconcile --check` or `plan --detailed-exitcode`, or left behind by a
/// writing run (a `migrate` that left secrets unmigrated, a `reconcile` that left drift).
pub const DRIFT: i32 = 2;
/// Bad usage or bad config (sysexits' EX_USAGE), overlapping jobs included.
pub const USAGE: i32 = 64;
