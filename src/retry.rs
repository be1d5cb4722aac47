//! The one retry policy, kept out of the components (as vector does).
//!
//! Every AWS call goes through [`call`]: it waits for the group's rate limiter, runs the request,
//! classifies a failure, and retries throttling, 5xx, timeouts and dispatch failures with
//! exponential backoff and full jitter, up to `max_attempts`. Validation and access errors are
//! returned at once, and so are credential and configuration errors that the SDK reports as
//! dispatch failures (a profile that is not defined, an SSO session never logged in, an endpoint
//! that cannot be resolved): retrying cannot fix them, and a retry of the profile provider even
//! replaces the real cause with "initialization error already taken". The SDK's own retries are disabled where clients are built (see
//! `aws::client`), so the two layers never multiply.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::limits::{AdaptiveLimiter, Limits, Op};

/// How a failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Over quota: back off and lower the rate.
    Throttled,
    /// Worth another try (5xx, timeout, connection failure).
    Transient,
    /// Retrying cannot help (validation, access, not found).
    Permanent,
}

/// Classifies an error code (by the one table, `aws::classify`) and HTTP status.
pub fn classify_parts(code: Option<&str>, status: Option<u16>) -> Class {
    use crate::aws::classify::{classify, Failure};
    match classify(code) {
        Failure::Throttled => Class::Throttled,
        _ if status == Some(429) => Class::Throttled,
        Failure::Unavailable => Class::Transient,
        _ if status.is_some_and(|s| s >= 500) => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Errors the retry loop can classify.
pub trait Classify {
    /// The class of this failure.
    fn class(&self) -> Class;
}

/// The class of a failure to send a request at all. Connection and timeout failures are
/// transient; credential-provider and configuration failures (surfaced as "other" dispatch
/// failures) are permanent, except a credential provider that timed out. (The providers that
/// talk to a service, IMDS and STS, retry on their own; a provider error that survived that is
/// not fixed by a few more seconds, and retrying the profile provider loses the cause.)
pub fn classify_dispatch(e: &aws_smithy_runtime_api::client::result::DispatchFailure) -> Class {
    use aws_credential_types::provider::error::CredentialsError;
    if e.is_io() || e.is_timeout() {
        return Class::Transient;
    }
    if e.is_user() {
        return Class::Permanent;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> =
        e.as_connector_error().map(|c| c as _);
    while let Some(err) = cur {
        if let Some(c) = err.downcast_ref::<CredentialsError>() {
            return match c {
                CredentialsError::ProviderTimedOut(_) => Class::Transient,
                _ => Class::Permanent,
            };
        }
        if err
            .downcast_ref::<aws_smithy_runtime_api::client::endpoint::error::ResolveEndpointError>()
            .is_some()
            || err
                .downcast_ref::<aws_credential_types::provider::error::TokenError>()
                .is_some()
        {
            return Class::Permanent;
        }
        cur = err.source();
    }
    Class::Transient
}

impl<E: ProvideErrorMetadata> Classify for SdkError<E, HttpResponse> {
    fn class(&self) -> Class {
        match self {
            SdkError::TimeoutError(_) => Class::Transient,
            SdkError::DispatchFailure(d) => classify_dispatch(d),
            SdkError::ResponseError(r) => {
                let s = r.raw().status().as_u16();
                match classify_parts(None, Some(s)) {
                    Class::Permanent => Class::Transient, // unparseable answer: try again
                    c => c,
                }
            }
            SdkError::ServiceError(ctx) => {
                classify_parts(ctx.err().code(), Some(ctx.raw().status().as_u16()))
            }
            _ => Class::Permanent,
        }
    }
}

/// Attempts and backoff.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The policy with `max_attempts` and the default backoff (100 ms doubling up to 20 s).
    pub fn new(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(20),
        }
    }

    /// Full-jitter backoff before attempt `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let ceiling = exp.min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// The outcome of a call and how many attempts it took.
pub struct Attempted<T, E> {
    /// Success or the last error.
    pub result: Result<T, E>,
    /// Attempts made (>= 1).
    pub attempts: u32,
}

/// Sends the AWS request `op` (`send` builds and sends it, once per attempt) under its quota
/// group's limiter ([`Op::group`](crate::limits::Op::group)) and the retry policy, adding every
/// attempt to `calls` (a source's count of the requests it sent).
pub(crate) async fn call_op<T, E, F, Fut>(
    limits: &Limits,
    policy: &RetryPolicy,
    calls: &AtomicU64,
    op: Op,
    send: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let attempted = call(limits.for_op(op), policy, send).await;
    calls.fetch_add(u64::from(attempted.attempts), Ordering::Relaxed);
    attempted.result
}

/// Runs `op` under `limiter` with the retry policy.
pub async fn call<T, E, F, Fut>(
    limiter: &AdaptiveLimiter,
    policy: &RetryPolicy,
    mut op: F,
) -> Attempted<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Classify,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        limiter.acquire().await;
        match op().await {
            Ok(v) => {
                limiter.on_success();
                return Attempted {
                    result: Ok(v),
                    attempts,
                };
            }
            Err(e) => {
                let class = e.class();
                if class == Class::Throttled {
                    limiter.on_throttle();
                }
                if class == Class::Permanent || attempts >= policy.max_attempts {
                    return Attempted {
                        result: Err(e),
                        attempts,
                    };
                }
                if limiter.shutdown().is_triggered() {
                    return Attempted {
                        result: Err(e),
                        attempts,
                    };
                }
                tracing::debug!(group = limiter.name(), attempts, ?class, "retrying");
                limiter.on_retry();
                tokio::select! {
                    _ = tokio::time::sleep(policy.backoff(attempts)) => {}
                    _ = limiter.shutdown().wait() => {
                        return Attempted { result: Err(e), attempts };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct E(Class);
    impl Classify for E {
        fn class(&self) -> Class {
            self.0
        }
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify_parts(Some("ThrottlingException"), Some(400)),
            Class::Throttled
        );
        assert_eq!(classify_parts(None, Some(429)), Class::Throttled);
        assert_eq!(classify_parts(None, Some(503)), Class::Transient);
        assert_eq!(
            classify_parts(Some("InternalServiceError"), Some(500)),
            Class::Transient
        );
        assert_eq!(
            classify_parts(Some("AccessDeniedException"), Some(400)),
            Class::Permanent
        );
        assert_eq!(
            classify_parts(Some("ValidationException"), Some(400)),
            Class::Permanent
        );
    }

    #[test]
    fn credential_and_config_failures_are_permanent() {
        use aws_credential_types::provider::error::CredentialsError;
        use aws_sdk_secretsmanager::operation::list_secrets::ListSecretsError;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use std::time::Duration;
        type E = SdkError<ListSecretsError, HttpResponse>;
        let other = |e: CredentialsError| {
            E::dispatch_failure(ConnectorError::other(Box::new(e), None)).class()
        };
        assert_eq!(
            other(CredentialsError::not_loaded("profile `x` was not defined")),
            Class::Permanent
        );
        assert_eq!(
            other(CredentialsError::invalid_configuration("bad")),
            Class::Permanent
        );
        assert_eq!(
            other(CredentialsError::unhandled("already taken")),
            Class::Permanent
        );
        assert_eq!(
            other(CredentialsError::provider_timed_out(Duration::from_secs(5))),
            Class::Transient
        );
        let io = E::dispatch_failure(ConnectorError::io("connection refused".into()));
        assert_eq!(io.class(), Class::Transient);
        let unknown = E::dispatch_failure(ConnectorError::other("hyper hiccup".into(), None));
        assert_eq!(unknown.class(), Class::Transient);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_not_permanent() {
        let l = AdaptiveLimiter::new("t", 1000);
        let p = RetryPolicy::new(4);
        let n = AtomicU32::new(0);
        let r = call(&l, &p, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(E(Class::Throttled))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.attempts, 3);
        assert!(matches!(r.result, Ok(7)));
        assert_eq!(l.throttles(), 2);
        assert_eq!(l.retries(), 2, "each call sent again counts once");

        let r = call(&l, &p, || async { Err::<(), _>(E(Class::Permanent)) }).await;
        assert_eq!(r.attempts, 1);
        assert_eq!(l.retries(), 2, "a permanent error is not retried");
        let r = call(&l, &p, || async { Err::<(), _>(E(Class::Transient)) }).await;
        assert_eq!(r.attempts, 4);
        assert_eq!(l.retries(), 5, "the last failed attempt is not a retry");
    }
}
