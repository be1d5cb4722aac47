//! Failures of the SSM and DynamoDB calls that the `ssm` and `credstash` sources make, told
//! apart the way the run needs them: refused credentials stop the whole run, a denied or
//! missing resource fails what needs it, the rest (throttling, 5xx after the retry policy) is
//! "unavailable". What a code means comes from the one table (`aws::classify`); KMS calls
//! describe their failures in [`super::kms::call`].

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{SourceError, SourceErrorKind};
use crate::aws::classify::{classify, Failure};
use crate::aws::describe_call;
use crate::limits::Op;
use crate::retry::{Class, Classify};

/// The AWS error code of a failed call, if the service answered with one.
pub(crate) fn code<E>(e: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(ctx) => ctx.err().code().map(str::to_owned),
        _ => None,
    }
}

/// One line describing a failed call `op` (`ssm:GetParametersByPath: ...`): the code, AWS's
/// message and the request id. AWS messages name resources, never parameter values.
pub(crate) fn detail<E>(op: Op, e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    format!("{}: {}", op.qualified(), describe_call(e))
}

/// How a failure that AWS described as `failure` (and the retry policy as `class`) affects
/// the run.
fn kind_of(failure: Failure, class: Class) -> SourceErrorKind {
    match failure {
        Failure::Credentials => SourceErrorKind::Auth,
        Failure::Denied => SourceErrorKind::Denied,
        Failure::NotFound => SourceErrorKind::NotFound,
        _ => match class {
            Class::Throttled | Class::Transient => SourceErrorKind::Unavailable,
            Class::Permanent => SourceErrorKind::Other,
        },
    }
}

/// How a failed call affects the run.
pub(crate) fn kind<E>(e: &SdkError<E, HttpResponse>) -> SourceErrorKind
where
    E: ProvideErrorMetadata,
{
    kind_of(classify(code(e).as_deref()), e.class())
}

/// A [`SourceError`] for the failed call `op`, about `path` (empty for the whole source).
pub(crate) fn error<E>(op: Op, path: &str, e: &SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    SourceError::new(kind(e), path, detail(op, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_stop_the_source_denied_resources_fail_their_secret() {
        let table: &[(&str, Class, SourceErrorKind)] = &[
            (
                "UnrecognizedClientException",
                Class::Permanent,
                SourceErrorKind::Auth,
            ),
            (
                "ExpiredTokenException",
                Class::Permanent,
                SourceErrorKind::Auth,
            ),
            (
                "AccessDeniedException",
                Class::Permanent,
                SourceErrorKind::Denied,
            ),
            (
                "ParameterNotFound",
                Class::Permanent,
                SourceErrorKind::NotFound,
            ),
            (
                "ThrottlingException",
                Class::Throttled,
                SourceErrorKind::Unavailable,
            ),
            (
                "InternalServerError",
                Class::Transient,
                SourceErrorKind::Unavailable,
            ),
            (
                "ValidationException",
                Class::Permanent,
                SourceErrorKind::Other,
            ),
        ];
        for (code, class, want) in table {
            assert_eq!(kind_of(classify(Some(code)), *class), *want, "{code}");
        }
    }
}
