//! AWS Secrets Manager operations, each under the group's rate limiter and the one retry policy.
//!
//! Reads take the target's state in bulk: [`SecretsTarget::inventory`] pages through
//! `ListSecrets` (name-prefix filter, planned deletions included) instead of one
//! `DescribeSecret` per secret, and [`SecretsTarget::batch_get`] compares values 20 at a time
//! with `BatchGetSecretValue`. Writes ([`SecretsTarget::create`], [`SecretsTarget::put_value`],
//! tags, restore, delete) carry idempotency tokens from `aws::token`. Every call reports its
//! attempts so the audit row can show them.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use aws_sdk_secretsmanager::Client;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::Blob;

use crate::limits::Limits;
use crate::retry::{self, Attempted, RetryPolicy};
use crate::secret::SecretValue;

/// Tag that marks a secret as written by secretport.
pub const MANAGED_TAG: &str = "secretport:managed";
/// Tag that records the source identity (see `source::source_tag_value`).
pub const SOURCE_TAG: &str = "secretport:source";

/// BatchGetSecretValue's limit on secret ids per call.
pub const BATCH_GET_MAX: usize = 20;

/// A secret that exists in the target (from `ListSecrets` or `DescribeSecret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSecret {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// When it is scheduled for deletion, if it is.
    pub deleted_date: Option<String>,
}

impl TargetSecret {
    /// Whether secretport wrote it.
    pub fn is_managed(&self) -> bool {
        self.tags.get(MANAGED_TAG).is_some_and(|v| v == "true")
    }

    /// The recorded source identity tag, for managed secrets.
    pub fn source_tag(&self) -> Option<&str> {
        if self.is_managed() {
            self.tags.get(SOURCE_TAG).map(String::as_str)
        } else {
            None
        }
    }
}

/// A failed AWS call, naming the operation and the secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} {name}: {message}")]
pub struct CallError {
    /// Operation, e.g. `CreateSecret`.
    pub op: &'static str,
    /// Secret name (or prefix) concerned.
    pub name: String,
    /// AWS error code, when there is one.
    pub code: Option<String>,
    /// Description (never a value).
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
}

impl CallError {
    /// This error with every server-provided text scrubbed of `value` (the value the failed
    /// request carried): a proxy or WAF in front of AWS may quote the request body. See
    /// [`crate::error_text::scrub`].
    pub fn scrubbed(mut self, value: &SecretValue) -> CallError {
        self.message = crate::error_text::scrub(&self.message, value);
        self.code = self.code.map(|c| crate::error_text::scrub(&c, value));
        self
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

/// Result of an operation with its attempt count.
pub type Outcome<T> = Result<(T, u32), CallError>;

fn call_error<E>(op: &'static str, name: &str, a: Attempted<impl Sized, E>) -> CallError
where
    E: std::error::Error + ProvideErrorMetadata,
{
    let (code, message) = match &a.result {
        Err(e) => (e.code().map(str::to_owned), super::describe_error(e)),
        Ok(_) => (None, String::new()),
    };
    CallError {
        op,
        name: name.to_owned(),
        code,
        message,
        attempts: a.attempts,
    }
}

/// Runs a call and maps its outcome.
macro_rules! run {
    ($self:ident, $group:ident, $op:literal, $name:expr, $req:expr) => {{
        let a = retry::call(&$self.limits.$group, &$self.policy, || $req.clone().send()).await;
        match a.result {
            Ok(v) => Ok((v, a.attempts)),
            Err(_) => Err(call_error($op, $name, a)),
        }
    }};
}

fn value_of(s: Option<String>, b: Option<Blob>) -> Option<SecretValue> {
    match (s, b) {
        (Some(s), _) => Some(SecretValue::text(s)),
        (None, Some(b)) => Some(SecretValue::binary(b.into_inner())),
        (None, None) => None,
    }
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The Secrets Manager side of a run.
#[derive(Clone)]
pub struct SecretsTarget {
    client: Client,
    limits: Arc<Limits>,
    policy: RetryPolicy,
}

/// Everything CreateSecret needs.
pub struct NewSecret<'a> {
    /// Name.
    pub name: &'a str,
    /// Value.
    pub value: &'a SecretValue,
    /// Idempotency token.
    pub token: String,
    /// Description.
    pub description: &'a str,
    /// Customer managed key, if any.
    pub kms_key_id: Option<&'a str>,
    /// All tags.
    pub tags: &'a BTreeMap<String, String>,
}

impl SecretsTarget {
    /// Wraps a client.
    pub fn new(client: Client, limits: Arc<Limits>, policy: RetryPolicy) -> Self {
        SecretsTarget {
            client,
            limits,
            policy,
        }
    }

    /// Every secret whose name starts with `prefix/` (all secrets without a prefix), including
    /// those scheduled for deletion.
    pub async fn inventory(&self, prefix: Option<&str>) -> Result<Vec<TargetSecret>, CallError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        let want = prefix.map(|p| format!("{p}/"));
        loop {
            let mut req = self
                .client
                .list_secrets()
                .include_planned_deletion(true)
                .max_results(100)
                .set_next_token(next.clone());
            if let Some(w) = &want {
                req = req.filters(
                    Filter::builder()
                        .key(FilterNameStringType::Name)
                        .values(w)
                        .build(),
                );
            }
            let (page, _) = run!(
                self,
                read,
                "ListSecrets",
                want.as_deref().unwrap_or("*"),
                req
            )?;
            for e in page.secret_list.unwrap_or_default() {
                let Some(name) = e.name else { continue };
                // the Name filter is a case-insensitive prefix match; ours is exact
                if want.as_ref().is_some_and(|w| !name.starts_with(w.as_str())) {
                    continue;
                }
                out.push(TargetSecret {
                    name,
                    arn: e.arn.unwrap_or_default(),
                    tags: e
                        .tags
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
                        .collect(),
                    deleted_date: e.deleted_date.and_then(|d| d.fmt(Format::DateTime).ok()),
                });
            }
            next = page.next_token.filter(|t| !t.is_empty());
            if next.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    /// Current values of up to [`BATCH_GET_MAX`] secrets (by ARN or name) in one call.
    /// Per-secret errors come back in the second map; a failed call is an `Err`.
    #[allow(clippy::type_complexity)]
    pub async fn batch_get(
        &self,
        ids: &[String],
    ) -> Result<
        (
            BTreeMap<String, CurrentValue>,
            BTreeMap<String, String>,
            u32,
        ),
        CallError,
    > {
        let req = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.to_vec()));
        let label = ids.first().cloned().unwrap_or_default();
        let (out, attempts) = run!(self, read, "BatchGetSecretValue", &label, req)?;
        let mut values = BTreeMap::new();
        for e in out.secret_values.unwrap_or_default() {
            let key = e.arn.clone().or(e.name.clone()).unwrap_or_default();
            if let Some(value) = value_of(e.secret_string, e.secret_binary) {
                values.insert(
                    key,
                    CurrentValue {
                        value,
                        version_id: e.version_id,
                    },
                );
            }
        }
        let errors = out
            .errors
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                (
                    e.secret_id.unwrap_or_default(),
                    format!(
                        "{}: {}",
                        e.error_code.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    ),
                )
            })
            .collect();
        Ok((values, errors, attempts))
    }

    /// The current value of one secret.
    pub async fn get_value(&self, id: &str) -> Outcome<Option<CurrentValue>> {
        let req = self.client.get_secret_value().secret_id(id);
        let (out, attempts) = run!(self, read, "GetSecretValue", id, req)?;
        let version_id = out.version_id;
        Ok((
            value_of(out.secret_string, out.secret_binary)
                .map(|value| CurrentValue { value, version_id }),
            attempts,
        ))
    }

    /// Describes one secret (used to tell "scheduled for deletion" from "exists").
    pub async fn describe(&self, id: &str) -> Outcome<TargetSecret> {
        let req = self.client.describe_secret().secret_id(id);
        let (d, attempts) = run!(self, read, "DescribeSecret", id, req)?;
        Ok((
            TargetSecret {
                name: d.name.unwrap_or_else(|| id.to_owned()),
                arn: d.arn.unwrap_or_default(),
                tags: d
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
                    .collect(),
                deleted_date: d.deleted_date.and_then(|x| x.fmt(Format::DateTime).ok()),
            },
            attempts,
        ))
    }

    /// CreateSecret; returns the ARN.
    pub async fn create(&self, s: &NewSecret<'_>) -> Outcome<String> {
        let mut req = self
            .client
            .create_secret()
            .name(s.name)
            .client_request_token(&s.token)
            .description(s.description)
            .set_kms_key_id(s.kms_key_id.map(str::to_owned))
            .set_tags(Some(to_tags(s.tags)));
        req = match s.value.expose_str() {
            Some(text) => req.secret_string(text),
            None => req.secret_binary(Blob::new(s.value.expose_bytes().to_vec())),
        };
        let (out, attempts) =
            run!(self, write, "CreateSecret", s.name, req).map_err(|e| e.scrubbed(s.value))?;
        Ok((out.arn.unwrap_or_default(), attempts))
    }

    /// PutSecretValue (a new AWSCURRENT version).
    pub async fn put_value(&self, id: &str, value: &SecretValue, token: String) -> Outcome<()> {
        let mut req = self
            .client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token);
        req = match value.expose_str() {
            Some(text) => req.secret_string(text),
            None => req.secret_binary(Blob::new(value.expose_bytes().to_vec())),
        };
        let (_, attempts) =
            run!(self, write, "PutSecretValue", id, req).map_err(|e| e.scrubbed(value))?;
        Ok(((), attempts))
    }

    /// TagResource (adds or changes the given tags, leaves others).
    pub async fn tag(&self, id: &str, tags: &BTreeMap<String, String>) -> Outcome<()> {
        let req = self
            .client
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(to_tags(tags)));
        let (_, attempts) = run!(self, write, "TagResource", id, req)?;
        Ok(((), attempts))
    }

    /// RestoreSecret (cancels a scheduled deletion).
    pub async fn restore(&self, id: &str) -> Outcome<()> {
        let req = self.client.restore_secret().secret_id(id);
        let (_, attempts) = run!(self, write, "RestoreSecret", id, req)?;
        Ok(((), attempts))
    }

    /// DeleteSecret with a recovery window (never forced); returns the deletion date.
    pub async fn schedule_deletion(&self, id: &str, window_days: i64) -> Outcome<String> {
        let req = self
            .client
            .delete_secret()
            .secret_id(id)
            .recovery_window_in_days(window_days);
        let (out, attempts) = run!(self, write, "DeleteSecret", id, req)?;
        Ok((
            out.deletion_date
                .and_then(|d| d.fmt(Format::DateTime).ok())
                .unwrap_or_default(),
            attempts,
        ))
    }
}
