//! KMS calls under the shared limiter and retry policy, and how their failures are described.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::AtomicU64;

use aws_sdk_kms::primitives::Blob;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use zeroize::Zeroizing;

use crate::aws::classify::{classify, Failure};
use crate::aws::describe_call;
use crate::limits::{Limits, Op};
use crate::retry::{self, Class, Classify, RetryPolicy};
use crate::source::SourceErrorKind;

/// A failed KMS call, described without any plaintext or key material.
#[derive(Debug, Clone)]
pub struct KmsFailure {
    /// How the record (or run) is affected.
    pub(crate) kind: SourceErrorKind,
    /// What KMS's error code meant (`Failure::Unknown` when KMS did not answer with one).
    pub(crate) failure: Failure,
    /// One line for humans.
    pub(crate) message: String,
    /// Throttling, 5xx, timeout or connection failure (after the retry policy gave up): another
    /// try later may succeed, so the outcome is not cached.
    pub(crate) transient: bool,
}

/// What a failed KMS call means for the record (or the run), and how to say it.
fn kind_of(failure: Failure, class: Class) -> (SourceErrorKind, &'static str) {
    match failure {
        Failure::BadCiphertext => (
            SourceErrorKind::BadRecord,
            "KMS cannot decrypt the ciphertext: wrong encryption_context, ciphertext altered or \
             truncated, or encrypted under another key",
        ),
        Failure::WrongKey => (
            SourceErrorKind::BadRecord,
            "the ciphertext was not encrypted under the record's key_id",
        ),
        Failure::Denied => (
            SourceErrorKind::Denied,
            "access denied by KMS (key policy, grants or IAM; or key_id does not match the \
             ciphertext's key)",
        ),
        Failure::Credentials => (SourceErrorKind::Auth, "KMS refused the credentials"),
        Failure::KeyUnusable | Failure::NotFound => (
            SourceErrorKind::BadRecord,
            "the KMS key cannot be used (disabled, pending deletion, not found or wrong usage)",
        ),
        Failure::InvalidRequest => (SourceErrorKind::BadRecord, "KMS rejected the request"),
        Failure::Exists | Failure::Throttled | Failure::Unavailable | Failure::Unknown => {
            match class {
                Class::Throttled | Class::Transient => {
                    (SourceErrorKind::Unavailable, "KMS unavailable or throttled")
                }
                Class::Permanent => (SourceErrorKind::Other, "KMS call failed"),
            }
        }
    }
}

/// Describes a failed KMS call `op` (`Decrypt`, `Encrypt`, `GenerateDataKey`).
pub(crate) fn failure<E>(op: Op, e: &SdkError<E, HttpResponse>) -> KmsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let class = e.class();
    let failure = classify(e.code());
    let (kind, what) = kind_of(failure, class);
    KmsFailure {
        kind,
        failure,
        message: format!("{}: {what} ({})", op.qualified(), describe_call(e)),
        transient: class != Class::Permanent,
    }
}

/// `context` as the SDK wants it: `None` when empty (no `EncryptionContext` sent).
pub(crate) fn context_map(context: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

/// A KMS answer without the field `what` (e.g. `a Plaintext`) that `op` must return.
pub(crate) fn missing(op: Op, what: &str) -> KmsFailure {
    KmsFailure {
        kind: SourceErrorKind::Other,
        failure: Failure::Unknown,
        message: format!("{} answered without {what}", op.qualified()),
        transient: false,
    }
}

/// Sends the KMS request `op` (`send` builds and sends it, once per attempt) under its
/// limiter (`limits.kms`) and the retry policy, adding every attempt to `calls`.
pub(crate) async fn send<T, E, F, Fut>(
    limits: &Limits,
    policy: &RetryPolicy,
    calls: &AtomicU64,
    op: Op,
    send: F,
) -> Result<T, KmsFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    retry::call_op(limits, policy, calls, op, send)
        .await
        .map_err(|e| failure(op, &e))
}

/// `kms:Decrypt` of `blob` with `context` (and `KeyId` when given), under `limits.kms` and the
/// retry policy. Attempts are added to `calls`. The plaintext comes back in a zeroizing buffer.
pub(crate) async fn decrypt(
    client: &aws_sdk_kms::Client,
    limits: &Limits,
    policy: &RetryPolicy,
    calls: &AtomicU64,
    blob: &[u8],
    context: &BTreeMap<String, String>,
    key_id: Option<&str>,
) -> Result<Zeroizing<Vec<u8>>, KmsFailure> {
    let ctx = context_map(context);
    let out = send(limits, policy, calls, Op::Decrypt, || {
        client
            .decrypt()
            .ciphertext_blob(Blob::new(blob.to_vec()))
            .set_encryption_context(ctx.clone())
            .set_key_id(key_id.map(str::to_owned))
            .send()
    })
    .await?;
    out.plaintext
        .map(|p| Zeroizing::new(p.into_inner()))
        .ok_or_else(|| missing(Op::Decrypt, "a plaintext"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_failures_and_what_they_mean_for_a_record() {
        let table: &[(&str, Class, SourceErrorKind)] = &[
            (
                "InvalidCiphertextException",
                Class::Permanent,
                SourceErrorKind::BadRecord,
            ),
            (
                "IncorrectKeyException",
                Class::Permanent,
                SourceErrorKind::BadRecord,
            ),
            (
                "DisabledException",
                Class::Permanent,
                SourceErrorKind::BadRecord,
            ),
            (
                "NotFoundException",
                Class::Permanent,
                SourceErrorKind::BadRecord,
            ),
            (
                "ValidationException",
                Class::Permanent,
                SourceErrorKind::BadRecord,
            ),
            (
                "AccessDeniedException",
                Class::Permanent,
                SourceErrorKind::Denied,
            ),
            (
                "UnrecognizedClientException",
                Class::Permanent,
                SourceErrorKind::Auth,
            ),
            (
                "MissingAuthenticationToken",
                Class::Permanent,
                SourceErrorKind::Auth,
            ),
            (
                "KMSInternalException",
                Class::Transient,
                SourceErrorKind::Unavailable,
            ),
            (
                "ThrottlingException",
                Class::Throttled,
                SourceErrorKind::Unavailable,
            ),
            ("SomethingNew", Class::Permanent, SourceErrorKind::Other),
        ];
        for (code, class, want) in table {
            assert_eq!(kind_of(classify(Some(code)), *class).0, *want, "{code}");
        }
    }
}
