//! What an AWS error code means, whatever service answered it: the one table.
//!
//! The target (`aws::secrets`), the sources' SSM and DynamoDB calls (`source::aws_call`), their
//! KMS calls (`source::kms::call`) and the retry policy (`retry`) all ask here, so one code
//! cannot mean a credentials problem to one of them and a denied resource to another. Each
//! caller then turns a [`Failure`] into what its own decisions need: the target an
//! `ErrorClass`, a source a `SourceErrorKind`, the retry loop a `retry::Class`.
//!
//! `UnrecognizedClientException` (an access key id AWS does not know) is
//! [`Failure::Credentials`], with the expired token and the bad signature: no request signed
//! with those keys can succeed, so a source stops at once ("refused the credentials") instead
//! of failing every secret with "access denied", which would send the reader to IAM policies.

/// What a failed AWS call's error code says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The credentials themselves were refused (unknown access key id, bad signature,
    /// expired or missing token): nothing sent with them can succeed.
    Credentials,
    /// A known caller that may not do this (IAM, a key policy, grants).
    Denied,
    /// The resource (secret, parameter, table, key) does not exist.
    NotFound,
    /// A secret of that name exists already.
    Exists,
    /// The request was refused as invalid.
    InvalidRequest,
    /// KMS cannot decrypt the ciphertext (wrong context, altered, another key).
    BadCiphertext,
    /// The ciphertext was encrypted under another key than the one named.
    WrongKey,
    /// The KMS key cannot be used now (disabled, pending deletion, wrong usage).
    KeyUnusable,
    /// Over a quota.
    Throttled,
    /// A server-side failure worth another try.
    Unavailable,
    /// A code this table does not know, or no code at all.
    Unknown,
}

/// The meaning of `code` (`None`: the service answered without one).
pub(crate) fn classify(code: Option<&str>) -> Failure {
    let Some(code) = code else {
        return Failure::Unknown;
    };
    match code {
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "MissingAuthenticationToken" => Failure::Credentials,
        "AccessDeniedException" | "AccessDenied" | "NotAuthorized" => Failure::Denied,
        "ResourceNotFoundException" | "ParameterNotFound" | "NotFoundException" => {
            Failure::NotFound
        }
        "ResourceExistsException" => Failure::Exists,
        "InvalidRequestException"
        | "InvalidParameterException"
        | "ValidationException"
        | "InvalidGrantTokenException" => Failure::InvalidRequest,
        "InvalidCiphertextException" => Failure::BadCiphertext,
        "IncorrectKeyException" => Failure::WrongKey,
        "DisabledException"
        | "KeyUnavailableException"
        | "KMSInvalidStateException"
        | "InvalidKeyUsageException" => Failure::KeyUnusable,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ThrottledException"
        | "SlowDown"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "ProvisionedThroughputExceededException" => Failure::Throttled,
        "InternalServiceError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "InternalServerError"
        | "KMSInternalException"
        | "DependencyTimeoutException" => Failure::Unavailable,
        _ => Failure::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_mean_the_same_to_every_caller() {
        use Failure::*;
        let table: &[(Option<&str>, Failure)] = &[
            (Some("UnrecognizedClientException"), Credentials),
            (Some("InvalidClientTokenId"), Credentials),
            (Some("InvalidSignatureException"), Credentials),
            (Some("SignatureDoesNotMatch"), Credentials),
            (Some("ExpiredTokenException"), Credentials),
            (Some("ExpiredToken"), Credentials),
            (Some("MissingAuthenticationToken"), Credentials),
            (Some("AccessDeniedException"), Denied),
            (Some("AccessDenied"), Denied),
            (Some("NotAuthorized"), Denied),
            (Some("ResourceNotFoundException"), NotFound),
            (Some("ParameterNotFound"), NotFound),
            (Some("NotFoundException"), NotFound),
            (Some("ResourceExistsException"), Exists),
            (Some("InvalidRequestException"), InvalidRequest),
            (Some("InvalidParameterException"), InvalidRequest),
            (Some("ValidationException"), InvalidRequest),
            (Some("InvalidGrantTokenException"), InvalidRequest),
            (Some("InvalidCiphertextException"), BadCiphertext),
            (Some("IncorrectKeyException"), WrongKey),
            (Some("DisabledException"), KeyUnusable),
            (Some("KeyUnavailableException"), KeyUnusable),
            (Some("KMSInvalidStateException"), KeyUnusable),
            (Some("InvalidKeyUsageException"), KeyUnusable),
            (Some("ThrottlingException"), Throttled),
            (Some("Throttling"), Throttled),
            (Some("TooManyRequestsException"), Throttled),
            (Some("RequestLimitExceeded"), Throttled),
            (Some("ThrottledException"), Throttled),
            (Some("SlowDown"), Throttled),
            (Some("RequestThrottled"), Throttled),
            (Some("RequestThrottledException"), Throttled),
            (Some("ProvisionedThroughputExceededException"), Throttled),
            (Some("InternalServiceError"), Unavailable),
            (Some("InternalFailure"), Unavailable),
            (Some("ServiceUnavailable"), Unavailable),
            (Some("InternalServerError"), Unavailable),
            (Some("KMSInternalException"), Unavailable),
            (Some("DependencyTimeoutException"), Unavailable),
            (Some("LimitExceededException"), Unknown),
            (Some("accessdeniedexception"), Unknown), // codes are case-sensitive
            (None, Unknown),
        ];
        for (code, want) in table {
            assert_eq!(classify(*code), *want, "{code:?}");
        }
    }
}
