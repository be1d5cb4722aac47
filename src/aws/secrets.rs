//! AWS Secrets Manager as a [`Target`]: each operation under its quota group's limiter and the
//! one retry policy.
//!
//! Reads take the target's state in bulk: `inventory` pages through `ListSecrets` (name-prefix
//! filter, planned deletions included, tags, description and the `AWSCURRENT` version id in the
//! same answer) instead of one `DescribeSecret` per secret, handing each page on as it arrives
//! (the run keeps a compact record of each secret, `target::listed`), and `batch_get` compares values 20
//! at a time with `BatchGetSecretValue`. Writes carry the idempotency tokens of
//! `identity::token`. Service error codes become [`ErrorClass`]es here, from what the one table
//! (`aws::classify`) says they mean. The
//! SDK client never leaves this type, so no call can bypass pacing and retry.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_secretsmanager::types::{
    Filter, FilterNameStringType, ReplicaRegionType, ReplicationStatusType, Tag,
};
use aws_sdk_secretsmanager::Client;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::Blob;
use futures::future::BoxFuture;

use super::classify::{classify, Failure};
use crate::limits::{Limits, Op};
use crate::retry::{self, Attempted, RetryPolicy};
use crate::secret::SecretValue;
use crate::target::{
    BatchRead, CallError, Caller, CurrentValue, ErrorClass, NewSecret, Outcome, Replica,
    ReplicaRegion, ReplicaStatus, Target, TargetSecret, Written,
};

/// The error class of a Secrets Manager error code.
fn class_of(code: Option<&str>) -> ErrorClass {
    match classify(code) {
        Failure::Exists => ErrorClass::Exists,
        Failure::NotFound => ErrorClass::NotFound,
        Failure::InvalidRequest => ErrorClass::InvalidRequest,
        Failure::Denied => ErrorClass::Denied,
        Failure::Credentials => ErrorClass::Credentials,
        Failure::Throttled | Failure::Unavailable => ErrorClass::Unavailable,
        Failure::BadCiphertext | Failure::WrongKey | Failure::KeyUnusable | Failure::Unknown => {
            ErrorClass::Other
        }
    }
}

fn call_error<E>(
    op: Op,
    name: &str,
    a: Attempted<impl Sized, E>,
    value: Option<&SecretValue>,
) -> CallError
where
    E: std::error::Error + ProvideErrorMetadata,
{
    let (code, message) = match &a.result {
        Err(e) => (e.code().map(str::to_owned), super::describe_error(e)),
        Ok(_) => (None, String::new()),
    };
    let message = match value {
        Some(v) => crate::error_text::scrub(&message, v),
        None => message,
    };
    CallError {
        op,
        name: name.to_owned(),
        class: class_of(code.as_deref()),
        message,
        attempts: a.attempts,
    }
}

/// Runs a call and maps its outcome.
macro_rules! run {
    ($self:ident, $op:expr, $name:expr, $req:expr) => {
        run!($self, $op, $name, $req, None)
    };
    ($self:ident, $op:expr, $name:expr, $req:expr, $value:expr) => {{
        let limiter = $self.limits.for_op($op);
        let a = retry::call(limiter, &$self.policy, || $req.clone().send()).await;
        match a.result {
            Ok(v) => Ok((v, a.attempts)),
            Err(_) => Err(call_error($op, $name, a, $value)),
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

fn to_replica_regions(regions: &[ReplicaRegion]) -> Vec<ReplicaRegionType> {
    regions
        .iter()
        .map(|r| {
            ReplicaRegionType::builder()
                .region(&r.region)
                .set_kms_key_id(r.kms_key_id.clone())
                .build()
        })
        .collect()
}

fn replicas_of(status: Option<Vec<ReplicationStatusType>>) -> Vec<Replica> {
    status
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            Some(Replica {
                region: r.region?,
                status: ReplicaStatus::parse(r.status.as_ref().map_or("", |s| s.as_str())),
                message: r.status_message.unwrap_or_default(),
            })
        })
        .collect()
}

/// The Secrets Manager side of a run.
#[derive(Clone)]
pub(crate) struct SecretsTarget {
    client: Client,
    sts: aws_sdk_sts::Client,
    region: String,
    limits: Arc<Limits>,
    policy: RetryPolicy,
}

fn tags_of(tags: Option<Vec<Tag>>) -> crate::target::tags::Tags {
    tags.unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
        .collect()
}

/// The versions labelled `AWSCURRENT` and `AWSPREVIOUS`.
fn stages_of(
    stages: Option<std::collections::HashMap<String, Vec<String>>>,
) -> (Option<String>, Option<String>) {
    let (mut current, mut previous) = (None, None);
    for (v, labels) in stages.unwrap_or_default() {
        if labels.iter().any(|x| x == "AWSCURRENT") {
            current = Some(v.clone());
        }
        if labels.iter().any(|x| x == "AWSPREVIOUS") {
            previous = Some(v);
        }
    }
    (current, previous)
}

impl SecretsTarget {
    /// A target for the region and credentials of `sdk`.
    pub(crate) fn new(
        sdk: &aws_config::SdkConfig,
        limits: Arc<Limits>,
        policy: RetryPolicy,
    ) -> Self {
        SecretsTarget {
            client: Client::new(sdk),
            sts: aws_sdk_sts::Client::new(sdk),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            limits,
            policy,
        }
    }

    async fn caller_impl(&self) -> Result<Caller, CallError> {
        let req = self.sts.get_caller_identity();
        let (out, _) = run!(self, Op::GetCallerIdentity, "", req)?;
        Ok(Caller {
            account: out.account.unwrap_or_default(),
            arn: out.arn.unwrap_or_default(),
        })
    }

    async fn inventory_impl(
        &self,
        prefix: &str,
        page_to: &mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> Result<(), CallError> {
        let mut next: Option<String> = None;
        let want = (!prefix.is_empty()).then(|| format!("{prefix}/"));
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
            let (page, _) = run!(self, Op::ListSecrets, want.as_deref().unwrap_or("*"), req)?;
            let mut out = Vec::new();
            for e in page.secret_list.unwrap_or_default() {
                let Some(name) = e.name else { continue };
                // the Name filter is a case-insensitive prefix match; ours is exact
                if want.as_ref().is_some_and(|w| !name.starts_with(w.as_str())) {
                    continue;
                }
                let (current_version, previous_version) = stages_of(e.secret_versions_to_stages);
                out.push(TargetSecret {
                    name,
                    arn: e.arn.unwrap_or_default(),
                    tags: tags_of(e.tags),
                    description: e.description,
                    deleted_date: e.deleted_date.and_then(|d| d.fmt(Format::DateTime).ok()),
                    current_version,
                    previous_version,
                    replication: None, // ListSecrets does not carry ReplicationStatus
                });
            }
            page_to(out);
            next = page.next_token.filter(|t| !t.is_empty());
            if next.is_none() {
                break;
            }
        }
        Ok(())
    }

    async fn batch_get_impl(&self, ids: &[String]) -> Result<BatchRead, CallError> {
        let req = self
            .client
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.to_vec()));
        let label = ids.first().cloned().unwrap_or_default();
        let (out, _) = run!(self, Op::BatchGetSecretValue, &label, req)?;
        let mut read = BatchRead::default();
        for e in out.secret_values.unwrap_or_default() {
            let key = e.arn.clone().or(e.name.clone()).unwrap_or_default();
            if let Some(value) = value_of(e.secret_string, e.secret_binary) {
                read.values.insert(
                    key,
                    CurrentValue {
                        value,
                        version_id: e.version_id,
                    },
                );
            }
        }
        read.errors = out
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
        Ok(read)
    }

    async fn get_value_impl(&self, id: &str) -> Outcome<Option<CurrentValue>> {
        // AWSCURRENT explicitly: moto without a stage answers the last version written
        let req = self
            .client
            .get_secret_value()
            .secret_id(id)
            .version_stage("AWSCURRENT");
        let (out, attempts) = run!(self, Op::GetSecretValue, id, req)?;
        let version_id = out.version_id;
        Ok((
            value_of(out.secret_string, out.secret_binary)
                .map(|value| CurrentValue { value, version_id }),
            attempts,
        ))
    }

    async fn describe_impl(&self, id: &str) -> Outcome<TargetSecret> {
        let req = self.client.describe_secret().secret_id(id);
        let (d, attempts) = run!(self, Op::DescribeSecret, id, req)?;
        let (current_version, previous_version) = stages_of(d.version_ids_to_stages);
        Ok((
            TargetSecret {
                name: d.name.unwrap_or_else(|| id.to_owned()),
                arn: d.arn.unwrap_or_default(),
                tags: tags_of(d.tags),
                description: d.description,
                deleted_date: d.deleted_date.and_then(|x| x.fmt(Format::DateTime).ok()),
                current_version,
                previous_version,
                replication: Some(replicas_of(d.replication_status)),
            },
            attempts,
        ))
    }

    async fn create_impl(&self, s: &NewSecret<'_>) -> Outcome<(String, String)> {
        let mut req = self
            .client
            .create_secret()
            .name(s.name)
            .client_request_token(&s.token)
            .description(s.description)
            .set_kms_key_id(s.kms_key_id.map(str::to_owned))
            .set_tags(Some(to_tags(s.tags)));
        if !s.replicas.is_empty() {
            req = req
                .set_add_replica_regions(Some(to_replica_regions(s.replicas)))
                .force_overwrite_replica_secret(false);
        }
        req = match s.value.expose_str() {
            Some(text) => req.secret_string(text),
            None => req.secret_binary(Blob::new(s.value.expose_bytes().to_vec())),
        };
        let (out, attempts) = run!(self, Op::CreateSecret, s.name, req, Some(s.value))?;
        Ok((
            (
                out.arn.unwrap_or_default(),
                out.version_id.unwrap_or_else(|| s.token.clone()),
            ),
            attempts,
        ))
    }

    async fn put_value_impl(
        &self,
        id: &str,
        value: &SecretValue,
        token: String,
    ) -> Outcome<Written> {
        let mut req = self
            .client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(&token);
        req = match value.expose_str() {
            Some(text) => req.secret_string(text),
            None => req.secret_binary(Blob::new(value.expose_bytes().to_vec())),
        };
        let (out, attempts) = run!(self, Op::PutSecretValue, id, req, Some(value))?;
        let current = out
            .version_stages
            .map(|stages| stages.iter().any(|x| x == "AWSCURRENT"));
        Ok((
            Written {
                version_id: out.version_id.unwrap_or(token),
                current,
            },
            attempts,
        ))
    }

    async fn tag_impl(&self, id: &str, tags: &BTreeMap<String, String>) -> Outcome<()> {
        let req = self
            .client
            .tag_resource()
            .secret_id(id)
            .set_tags(Some(to_tags(tags)));
        let (_, attempts) = run!(self, Op::TagResource, id, req)?;
        Ok(((), attempts))
    }

    async fn replicate_impl(&self, id: &str, regions: &[ReplicaRegion]) -> Outcome<Vec<Replica>> {
        let req = self
            .client
            .replicate_secret_to_regions()
            .secret_id(id)
            .set_add_replica_regions(Some(to_replica_regions(regions)))
            .force_overwrite_replica_secret(false);
        let (out, attempts) = run!(self, Op::ReplicateSecretToRegions, id, req)?;
        Ok((replicas_of(out.replication_status), attempts))
    }

    async fn restore_impl(&self, id: &str) -> Outcome<()> {
        let req = self.client.restore_secret().secret_id(id);
        let (_, attempts) = run!(self, Op::RestoreSecret, id, req)?;
        Ok(((), attempts))
    }

    async fn schedule_deletion_impl(&self, id: &str, window_days: i64) -> Outcome<String> {
        let req = self
            .client
            .delete_secret()
            .secret_id(id)
            .recovery_window_in_days(window_days);
        let (out, attempts) = run!(self, Op::DeleteSecret, id, req)?;
        Ok((
            out.deletion_date
                .and_then(|d| d.fmt(Format::DateTime).ok())
                .unwrap_or_default(),
            attempts,
        ))
    }

    async fn move_current_impl(&self, id: &str, to: &str, from: &str) -> Outcome<()> {
        let req = self
            .client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(to)
            .set_remove_from_version_id((!from.is_empty()).then(|| from.to_owned()));
        let (_, attempts) = run!(self, Op::UpdateSecretVersionStage, id, req)?;
        Ok(((), attempts))
    }
}

impl Target for SecretsTarget {
    fn region(&self) -> &str {
        &self.region
    }

    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>> {
        Box::pin(self.caller_impl())
    }

    fn inventory<'a>(
        &'a self,
        prefix: &'a str,
        page: &'a mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(self.inventory_impl(prefix, page))
    }

    fn batch_get<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>> {
        Box::pin(self.batch_get_impl(ids))
    }

    fn get_value<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>> {
        Box::pin(self.get_value_impl(id))
    }

    fn describe<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>> {
        Box::pin(self.describe_impl(id))
    }

    fn create<'a>(&'a self, s: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>> {
        Box::pin(self.create_impl(s))
    }

    fn put_value<'a>(
        &'a self,
        id: &'a str,
        value: &'a SecretValue,
        token: String,
    ) -> BoxFuture<'a, Outcome<Written>> {
        Box::pin(self.put_value_impl(id, value, token))
    }

    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(self.tag_impl(id, tags))
    }

    fn replicate<'a>(
        &'a self,
        id: &'a str,
        regions: &'a [ReplicaRegion],
    ) -> BoxFuture<'a, Outcome<Vec<Replica>>> {
        Box::pin(self.replicate_impl(id, regions))
    }

    fn restore<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(self.restore_impl(id))
    }

    fn schedule_deletion<'a>(
        &'a self,
        id: &'a str,
        window_days: i64,
    ) -> BoxFuture<'a, Outcome<String>> {
        Box::pin(self.schedule_deletion_impl(id, window_days))
    }

    fn move_current<'a>(
        &'a self,
        id: &'a str,
        to: &'a str,
        from: &'a str,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(self.move_current_impl(id, to, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_codes_and_their_classes() {
        let table: &[(Option<&str>, ErrorClass)] = &[
            (Some("ResourceExistsException"), ErrorClass::Exists),
            (Some("ResourceNotFoundException"), ErrorClass::NotFound),
            (Some("InvalidRequestException"), ErrorClass::InvalidRequest),
            (
                Some("InvalidParameterException"),
                ErrorClass::InvalidRequest,
            ),
            (Some("AccessDeniedException"), ErrorClass::Denied),
            // an access key id AWS does not know: the credentials, not a policy
            (Some("UnrecognizedClientException"), ErrorClass::Credentials),
            (Some("ExpiredTokenException"), ErrorClass::Credentials),
            (Some("ThrottlingException"), ErrorClass::Unavailable),
            (Some("InternalServiceError"), ErrorClass::Unavailable),
            (Some("KMSInvalidStateException"), ErrorClass::Other),
            (Some("EncryptionFailure"), ErrorClass::Other),
            (None, ErrorClass::Other),
        ];
        for (code, want) in table {
            assert_eq!(class_of(*code), *want, "{code:?}");
        }
    }
}
