//! Failures of the SSM and DynamoDB calls that the `ssm` and `credstash` sources make, told
//! apart the way the run needs them: refused credentials stop the whole run, a denied or
//! missing resource fails what needs it, the rest (throttling, 5xx after the retry policy) is
//! "unavailable". KMS calls have their own description in [`super::kms::call`].

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{SourceError, SourceErrorKind};
use crate::aws::describe_error;
use crate::retry::{Class, Classify};

/// Codes meaning the credentials themselves were refused: nothing can be read.
const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "ExpiredToken",
    "MissingAuthenticationToken",
];

/// The AWS error code of a failed call, if the service answered with one.
pub fn code<E>(e: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(ctx) => ctx.err().code().map(str::to_owned),
        _ => None,
    }
}

/// One line describing a failed call `op` (e.g. `ssm:GetParametersByPath`): the code, AWS's
/// message and the request id. AWS messages name resources, never parameter values.
pub fn detail<E>(op: &str, e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(ctx) => {
            let meta = ctx.err().meta();
            let mut d = format!(
                "{op}: {}, HTTP {}",
                meta.code().unwrap_or("unknown error"),
                ctx.raw().status().as_u16()
            );
            if let Some(m) = meta.message().filter(|m| !m.is_empty()) {
                d.push_str(&format!(": {m}"));
            }
            if let Some(id) = meta.extra("aws_request_id") {
                d.push_str(&format!(", request id {id}"));
            }
            d
        }
        _ => format!("{op}: {}", describe_error(e)),
    }
}

/// How a failed call affects the run.
pub fn kind<E>(e: &SdkError<E, HttpResponse>) -> SourceErrorKind
where
    E: ProvideErrorMetadata,
{
    let c = code(e);
    match c.as_deref() {
        Some(c) if AUTH_CODES.contains(&c) => SourceErrorKind::Auth,
        Some("AccessDeniedException") | Some("AccessDenied") => SourceErrorKind::Denied,
        Some("ResourceNotFoundException") | Some("ParameterNotFound") => SourceErrorKind::NotFound,
        _ => match e.class() {
            Class::Throttled | Class::Transient => SourceErrorKind::Unavailable,
            Class::Permanent => SourceErrorKind::Other,
        },
    }
}

/// A [`SourceError`] for the failed call `op`, about `path` (empty for the whole source).
pub fn error<E>(op: &str, path: &str, e: &SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    SourceError::new(kind(e), path, detail(op, e))
}
