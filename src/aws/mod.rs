//! Everything that speaks to AWS: building clients from the configured credentials
//! ([`client`]), the Secrets Manager operations under the shared limiter and retry policy
//! ([`secrets`]), and the idempotency tokens ([`token`]).

pub mod client;
pub mod secrets;
pub mod token;

/// Renders an SDK error with its whole cause chain on one line. AWS error messages never echo a
/// request's secret value, so this is safe to log and report.
pub fn describe_error<E: std::error::Error>(e: &E) -> String {
    crate::error_text::chain(e)
}
