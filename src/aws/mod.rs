//! Shared AWS plumbing: building SDK configs from the configured credentials ([`client`]) and
//! AWS Secrets Manager as a [`crate::target::Target`] ([`secrets`]). Nothing outside this
//! module (and the KMS source's own client) touches an SDK client.

pub mod client;
pub mod secrets;

/// Renders an SDK error with its whole cause chain on one line. Callers that sent a secret
/// value scrub the text of it (`error_text::scrub`), since a server or proxy may echo a request.
pub fn describe_error<E: std::error::Error>(e: &E) -> String {
    crate::error_text::chain(e)
}
