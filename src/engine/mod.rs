//! The engine: runs ONE job of a config, from its source to its report rows, and prints nothing.
//!
//! [`prepare`] opens the job's source, lists it, applies the job's filter, reads the target's
//! inventory and the ownership key, and plans ([`PreparedJob`]); the cheap, fatal checks come
//! there, before anything is written anywhere. [`PreparedJob::execute`] runs the plan through the
//! executor over the real target or the dry-run gate, handles orphans under the prune policy and
//! returns a typed [`JobReport`]. Between the two, the face (`commands/`, `main.rs`) asks its
//! confirmation question with the [`PreparedJob::intent`] of every job, and the conflict gate
//! ([`PreparedJob::stop_on_conflicts`]) stops a job under `on_conflict = fail`.
//!
//! [`preview`] is `rename --config`'s pipeline (each job's source listed by name, filtered and
//! its names planned, nothing read or written).
//!
//! Why it prints nothing: one job's engine runs beside others in one process, under tests and
//! benches, and with `--json` on stdout. So what a person should see while it works (the listing
//! started, how many passed the filter, what was planned, one step done) is an [`Event`] handed
//! to an [`Events`] sink the caller chooses: the binary renders them on stderr and drives its
//! progress display with them; tests and benches count them or mark phases with them.

use crate::aws::client::ClientError;
use crate::exit;
use crate::identity::Scope;
use crate::naming::NamingError;
use crate::source::SourceError;
use crate::target::token_key::KeyError;
use crate::target::CallError;

mod execute;
mod prepare;
pub(crate) mod preview;
mod rollback;

pub use execute::JobReport;
pub(crate) use execute::Stopped;
pub(crate) use prepare::{connect, open_source, overlapping, target_sdk, verification_key, Intent};
pub use prepare::{plan_job, prepare, JobInput, PreparedJob};
pub(crate) use rollback::Rollback;
pub use rollback::RollbackError;

/// A failure that stops a job (with a single job, the whole run).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The report could not be created or written.
    #[error("audit report: {0}")]
    Report(#[from] std::io::Error),
    /// AWS client configuration.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The source cannot be read at all.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// The source listed nothing, which is almost always a wrong setting: `advice` comes from
    /// the source ([`crate::source::Source::empty_advice`]) and names what to check for that
    /// kind.
    #[error("source: 0 secrets found at {location}: {advice}; or set allow_empty = true in [source] if an empty source is expected")]
    Empty {
        /// Where the listing looked ([`crate::source::Source::location`]).
        location: String,
        /// What to check, in the source's terms.
        advice: String,
    },
    /// The target's inventory cannot be read.
    #[error("target: {0}")]
    Target(#[from] CallError),
    /// The token key cannot be had.
    #[error("target: {0}")]
    Key(#[from] KeyError),
    /// Naming failed.
    #[error(transparent)]
    Naming(#[from] NamingError),
    /// A replica region is the target's own region (taken from the environment or profile,
    /// so the config check could not see it).
    #[error("target.replica_regions: {0:?} is the target's own region (from the environment or profile); list only the other regions to replicate to")]
    ReplicaIsPrimary(String),
}

impl RunError {
    /// The process exit code: 64 when the configuration (or the environment it names) is
    /// incomplete, so nothing useful could be contacted (no region anywhere, a named env var
    /// unset); 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Client(ClientError::NoRegion) | RunError::ReplicaIsPrimary(_) => exit::USAGE,
            _ => exit::FAILED,
        }
    }
}

/// What the engine tells the face while it works. Borrowed: an event lives for the call that
/// hands it over.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The job's source is open (an export indexed, a Vault session logged in); its listing
    /// starts.
    Listing {
        /// The job.
        job: &'a str,
        /// The source's kind (`vault`, `file`, ...).
        kind: crate::source::SourceKind,
    },
    /// The source is listed.
    Listed {
        /// The job.
        job: &'a str,
        /// Secrets the source listed.
        listed: usize,
        /// Those that pass the job's filter.
        passed: usize,
        /// The filter in words; `None` when the job takes every path.
        filter: Option<String>,
    },
    /// The target's inventory under the job's prefix is read.
    Inventory {
        /// The job.
        job: &'a str,
        /// Secrets under the prefix.
        secrets: usize,
    },
    /// The job is planned.
    Planned {
        /// The job.
        job: &'a str,
        /// Source secrets planned (after the filter).
        passed: usize,
        /// Entries the listing could not produce.
        problems: usize,
        /// What the source owns.
        scope: &'a Scope,
        /// Target secrets under the prefix.
        target_secrets: usize,
        /// The job's prefix.
        prefix: &'a str,
        /// Live secrets proven to be this job's.
        owned: usize,
        /// Secrets managed for other scopes (left alone).
        foreign: usize,
    },
    /// One step finished (a plan item, an orphan, an undo): what a progress display counts.
    /// Every step announced by [`PreparedJob::steps`] sends exactly one.
    Done {
        /// Whether it failed (a `failed` row was written for it).
        failed: bool,
    },
}

/// Where the engine's events go (the face's renderer, a test's `Quiet`, a bench's phase marks).
pub trait Events: Send + Sync {
    /// Takes one event.
    fn event(&self, event: &Event<'_>);
}

/// Drops every event (the executor's tests).
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quiet;

#[cfg(test)]
impl Events for Quiet {
    fn event(&self, _: &Event<'_>) {}
}
