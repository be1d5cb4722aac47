//! Sources: where secrets come from.
//!
//! A source works in two steps so that planning and rename previews never touch plaintext:
//! [`Source::list`] returns references (path, version, metadata; no values), and
//! [`Source::fetch`] reads one value when the executor needs it. Problems with single entries
//! (a denied folder, a bad export line) are returned inside the [`Listing`] and do not stop the
//! listing; a listing with problems is *incomplete*, which reconciliation must respect (it never
//! treats an unseen secret as an orphan).

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::identity::Scope;

use crate::secret::SecretValue;

pub use self::kind::SourceKind;
pub(crate) use self::open::{OpenError, SourceContext};

pub(crate) mod aws_call;
pub mod credstash;
pub(crate) mod expiry;
pub(crate) mod export;
pub mod file;
pub mod instance;
mod kind;
pub mod kms;
mod open;
pub mod sops;
pub(crate) mod split;
pub mod ssm;
pub mod vault;

/// A secret in the source, without its value. Small (a listing holds one per source secret,
/// up to a region's 500,000, and the plan's items take them over): the path, the version when
/// the listing knows it, the export line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// Path relative to the configured subtree (`/`-separated); the rename planner's input.
    pub path: String,
    /// Source version when known at listing time (SSM, SOPS, credstash); `None` when only a
    /// read tells (Vault reads return it).
    pub version: Option<Box<str>>,
    /// Line in an export file, for messages.
    pub(crate) line: Option<usize>,
}

impl SourceRef {
    /// A reference with just a path.
    pub fn new(path: impl Into<String>) -> Self {
        SourceRef {
            path: path.into(),
            version: None,
            line: None,
        }
    }

    /// The same reference with its listing-time version.
    pub(crate) fn with_version(mut self, version: Option<String>) -> Self {
        self.version = version.map(String::into_boxed_str);
        self
    }
}

/// One entry the listing could not produce; reported as a failed row, and it makes the listing
/// incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProblem {
    /// The path (folder or secret) concerned, or `line N` for export files.
    pub path: String,
    /// Line number in an export file.
    pub line: Option<usize>,
    /// What went wrong (never contains a value).
    pub error: String,
}

/// What [`Source::list`] found.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Secrets found, sorted by path, unique.
    pub refs: Vec<SourceRef>,
    /// Entries that could not be listed.
    pub problems: Vec<ListProblem>,
}

impl Listing {
    /// True when every entry of the source was seen.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The result of reading one value.
#[derive(Debug)]
pub enum Fetched {
    /// The current value.
    Value {
        /// The plaintext.
        value: SecretValue,
        /// The version that was read, when the source has versions.
        version: Option<String>,
        /// Metadata read together with the value (Vault KV v2 `custom_metadata`), to be copied
        /// into tags when configured; empty when none.
        metadata: BTreeMap<String, String>,
    },
    /// The source holds no current value any more (KV v2 current version deleted or
    /// destroyed): the secret is gone from the source, and its managed copy is an orphan.
    Gone {
        /// Why.
        reason: String,
        /// The version concerned.
        version: Option<String>,
    },
}

/// How a source operation failed; decides whether the rest of the run can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Permission denied (403); the rest goes on.
    Denied,
    /// Not found (404); the rest goes on.
    NotFound,
    /// Bad data in an export record or undecryptable value; the rest goes on.
    BadRecord,
    /// Authentication failed (bad token, login refused): nothing can be read.
    Auth,
    /// Network or server failure.
    Unavailable,
    /// Anything else.
    Other,
}

/// A source failure, naming the path (and line) it concerns. Never holds a value.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{}{}{message}",
    line.map(|l| format!("line {l}: ")).unwrap_or_default(),
    if path.is_empty() { String::new() } else { format!("{path}: ") }
)]
pub struct SourceError {
    /// What kind of failure.
    pub kind: SourceErrorKind,
    /// The path concerned.
    pub path: String,
    /// The export line concerned.
    pub line: Option<usize>,
    /// Description.
    pub message: String,
}

impl SourceError {
    /// Builds an error.
    pub(crate) fn new(
        kind: SourceErrorKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        SourceError {
            kind,
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }

    /// Attaches an export line number.
    pub(crate) fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
}

/// A place secrets are read from.
pub trait Source: Send + Sync {
    /// Which kind of source this is (its `[source] kind`).
    fn kind(&self) -> SourceKind;

    /// What this source reads, and therefore owns in the target: kind, instance (address,
    /// namespace, mount, file, table...) and subtree. The identity of each secret (the
    /// `secretport:source` tag) is `scope().identity(&r.path)`; see [`crate::identity`].
    fn scope(&self) -> Scope;

    /// Words naming where an empty listing looked (`mount secret, path apps/`), for the
    /// "0 secrets" error.
    fn location(&self) -> String;

    /// What to check when the listing is empty, in this source's own terms (an export file
    /// with no records, an SSM path with no parameter of the configured types), for the
    /// "0 secrets" error: advice about Vault mounts is no help to someone reading a file.
    fn empty_advice(&self) -> String;

    /// Lists every secret of the configured subtree, without values. `Err` only for failures
    /// that make the whole listing impossible (authentication, unreachable server).
    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>>;

    /// Lists names only, for previews (`rename --config`): the listing itself, unless the
    /// source's listing reads values to save quota (`ssm`), which then lists without them.
    fn list_names(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        self.list()
    }

    /// Reads one value. `r` is a reference this source's listing gave (an export source
    /// finds the record by the line it carries).
    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>>;

    /// The watch on this source's credential end of life, when its credential can expire with
    /// no way to renew or replace it (a Vault token): the executor starts no secret once it is
    /// due ([`expiry::Expiry::stops_at`]). `None` for sources whose credentials refresh
    /// themselves.
    fn expiry(&self) -> Option<expiry::Expiry> {
        None
    }
}
