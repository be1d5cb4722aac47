//! The target, seen from the engine: SDK-free types and the [`Target`] trait.
//!
//! The planner and the executor only ever talk to a `&dyn Target`. The real one is
//! `aws::secrets::SecretsTarget` (AWS Secrets Manager through the SDK, every call under its
//! quota group's limiter and the one retry policy); [`dry::DryRun`] wraps any target and turns
//! every write into a no-op that answers "would succeed", so a dry run is decided in exactly one
//! place; unit tests and the scale bench use an in-memory fake ([`memory`], built only for
//! tests and with the `memory-target` feature: it is not part of a release build). Nothing here imports the AWS SDK.

pub mod dry;
pub mod limits;
pub mod listed;
#[cfg(any(test, feature = "memory-target"))]
pub mod memory;
pub mod tags;
pub(crate) mod token_key;

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::identity::{self, Ownership, Scope};
use crate::secret::SecretValue;

/// A secret that exists in the target (from `ListSecrets` or `DescribeSecret`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetSecret {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Tags (compact: a run holds those of every secret under its prefix).
    pub tags: tags::Tags,
    /// Description (carries the identity when the source tag is a hash).
    pub description: Option<String>,
    /// When it is scheduled for deletion, if it is.
    pub deleted_date: Option<String>,
    /// The VersionId labelled `AWSCURRENT`, when the listing says.
    pub current_version: Option<String>,
    /// The VersionId labelled `AWSPREVIOUS`, when there is one.
    pub previous_version: Option<String>,
    /// Its replicas in other regions (`DescribeSecret`'s `ReplicationStatus`); `None` when not
    /// known: `ListSecrets` does not say.
    pub replication: Option<Vec<Replica>>,
}

/// A region a secret is to be replicated to (AWS-native replication).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRegion {
    /// The replica's region.
    pub region: String,
    /// Its KMS key; `None`: the `aws/secretsmanager` key of that region (a KMS key id is
    /// regional, so the primary's key is never reused).
    pub kms_key_id: Option<String>,
}

/// How one replica stands (`ReplicationStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Its region.
    pub region: String,
    /// The replication state.
    pub status: ReplicaStatus,
    /// AWS's status message (why a replica failed).
    pub message: String,
}

/// `ReplicationStatus.Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaStatus {
    /// Replicated and current.
    InSync,
    /// Being replicated.
    InProgress,
    /// Replication failed (e.g. a secret of that name already exists in the region).
    Failed,
    /// A state this version does not know.
    Other(String),
}

impl ReplicaStatus {
    /// From AWS's spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "InSync" => ReplicaStatus::InSync,
            "InProgress" => ReplicaStatus::InProgress,
            "Failed" => ReplicaStatus::Failed,
            other => ReplicaStatus::Other(other.to_owned()),
        }
    }

    /// AWS's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ReplicaStatus::InSync => "InSync",
            ReplicaStatus::InProgress => "InProgress",
            ReplicaStatus::Failed => "Failed",
            ReplicaStatus::Other(s) => s,
        }
    }
}

impl TargetSecret {
    /// How the job with `scope` and `prefix` stands to it, its ownership proof verified with
    /// `key` (see [`identity::ownership`]).
    pub fn ownership(
        &self,
        scope: &Scope,
        prefix: &str,
        key: Option<&crate::identity::token::TokenDeriver>,
    ) -> Ownership {
        identity::ownership(
            scope,
            prefix,
            identity::Claim {
                name: &self.name,
                tags: &self.tags,
                description: self.description.as_deref(),
            },
            key,
        )
    }

    /// The raw source tag, for messages.
    pub fn source_tag(&self) -> Option<&str> {
        self.tags.get(identity::SOURCE_TAG)
    }
}

/// A value read from the target with the version it is.
#[derive(Debug)]
pub struct CurrentValue {
    /// The AWSCURRENT value.
    pub value: SecretValue,
    /// Its VersionId.
    pub version_id: Option<String>,
}

/// What a `PutSecretValue` answered: the version the token names and whether it is
/// `AWSCURRENT` now.
///
/// AWS (and moto) answer success to a put whose token names a version that already exists with
/// the same value, and change nothing: after a rollback or a hand-moved `AWSCURRENT` that
/// version may be `AWSPREVIOUS` or unlabelled. The answer's `VersionStages` tell; a write is
/// done only when its version is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The VersionId (the token).
    pub version_id: String,
    /// Whether the answer labels it `AWSCURRENT`; `None`: the answer did not say.
    pub current: Option<bool>,
}

/// Everything CreateSecret needs.
pub struct NewSecret<'a> {
    /// Name.
    pub name: &'a str,
    /// Value.
    pub value: &'a SecretValue,
    /// Idempotency token (becomes the VersionId).
    pub token: String,
    /// Description.
    pub description: &'a str,
    /// Customer managed key, if any.
    pub kms_key_id: Option<&'a str>,
    /// All tags.
    pub tags: &'a BTreeMap<String, String>,
    /// Regions to replicate it to (`AddReplicaRegions`), none for most secrets.
    pub replicas: &'a [ReplicaRegion],
}

/// What kind of failure a target call ended in; decides what the executor does next. Mapping
/// service error codes to these classes happens once, in the target implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The name exists already (or is scheduled for deletion: AWS and moto differ, so the
    /// executor asks `describe`).
    Exists,
    /// No such secret.
    NotFound,
    /// The request was refused as invalid (including "scheduled for deletion" on AWS).
    InvalidRequest,
    /// Access denied.
    Denied,
    /// Credentials or client configuration: nothing will work until a person fixes it.
    Credentials,
    /// The service or network failed (after retries).
    Unavailable,
    /// Anything else.
    Other,
}

/// A failed target call, naming the operation and the secret. Its message never holds a value
/// (server text is scrubbed of the value being written before it gets here).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} {name}: {message}")]
pub struct CallError {
    /// Operation, e.g. `CreateSecret`.
    pub op: crate::limits::Op,
    /// Secret name (or prefix) concerned.
    pub name: String,
    /// The class of failure.
    pub class: ErrorClass,
    /// Description.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

/// Result of an operation with its attempt count.
pub type Outcome<T> = Result<(T, u32), CallError>;

/// What one `BatchGetSecretValue` gave: values by ARN, per-secret errors by ARN.
#[derive(Debug, Default)]
pub struct BatchRead {
    /// Current values by the id asked for.
    pub values: BTreeMap<String, CurrentValue>,
    /// Per-secret errors by id.
    pub errors: BTreeMap<String, String>,
}

/// Who the target's credentials act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// AWS account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// A secrets store the executor writes to.
pub trait Target: Send + Sync {
    /// The region (for prompts and reports).
    fn region(&self) -> &str;

    /// Who the credentials act as.
    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>>;

    /// Every secret whose name starts with `prefix/` (every secret for `""`), planned deletions
    /// included, handed to `page` one `ListSecrets` page at a time as it arrives (in any
    /// order), so the caller keeps a compact record of each ([`listed::Inventory::read`]) and
    /// never the whole listing as strings.
    fn inventory<'a>(
        &'a self,
        prefix: &'a str,
        page: &'a mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> BoxFuture<'a, Result<(), CallError>>;

    /// Current values of up to [`limits::BATCH_GET_MAX`] secrets in one call.
    fn batch_get<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>>;

    /// The `AWSCURRENT` value of one secret (`None`: it has no current value). The stage is
    /// asked for explicitly: moto without one answers the last version written.
    fn get_value<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>>;

    /// One secret's metadata.
    fn describe<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>>;

    /// CreateSecret; returns (ARN, VersionId).
    fn create<'a>(&'a self, s: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>>;

    /// PutSecretValue; returns the version the token names and whether it is now `AWSCURRENT`
    /// (a token naming an existing version is answered with success and changes nothing).
    fn put_value<'a>(
        &'a self,
        id: &'a str,
        value: &'a SecretValue,
        token: String,
    ) -> BoxFuture<'a, Outcome<Written>>;

    /// TagResource (adds or changes the given tags, leaves others).
    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>>;

    /// ReplicateSecretToRegions (never overwriting a secret of the same name in a replica
    /// region); returns the replication status afterwards.
    fn replicate<'a>(
        &'a self,
        id: &'a str,
        regions: &'a [ReplicaRegion],
    ) -> BoxFuture<'a, Outcome<Vec<Replica>>>;

    /// RestoreSecret.
    fn restore<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<()>>;

    /// DeleteSecret with a recovery window (never forced); returns the deletion date.
    fn schedule_deletion<'a>(
        &'a self,
        id: &'a str,
        window_days: i64,
    ) -> BoxFuture<'a, Outcome<String>>;

    /// Moves `AWSCURRENT` from version `from` (`""`: none holds it) to version `to`
    /// (`UpdateSecretVersionStage`; AWS
    /// moves `AWSPREVIOUS` to `from`): the rollback of an update, and the repair of a put AWS
    /// ignored because its token names an existing version.
    fn move_current<'a>(
        &'a self,
        id: &'a str,
        to: &'a str,
        from: &'a str,
    ) -> BoxFuture<'a, Outcome<()>>;

    /// Whether this target performs writes (`false` for a dry run).
    fn writes(&self) -> bool {
        true
    }
}
