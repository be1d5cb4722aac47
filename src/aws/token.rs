//! `ClientRequestToken`s: idempotency for CreateSecret and PutSecretValue.
//!
//! The token is derived from the source identity, the value and the version being replaced, so a
//! retried request (or a rerun after a crash that races a request still in flight) carries the
//! same token and AWS turns the duplicate into a no-op instead of a second version. Including
//! the replaced version means a value that goes A → B → A gets a fresh token on its way back:
//! with a token derived from the value alone AWS would "ignore" the second A as a duplicate of
//! the first and leave B current.
//!
//! AWS shows tokens as VersionIds to principals with `DescribeSecret`/`ListSecretVersionIds`.
//! The derivation is SHA-256 over a domain tag, the identity, the replaced version and the
//! value's digest, truncated to 128 bits; the token never reaches a report or log.

use sha2::{Digest, Sha256};

use crate::secret::SecretValue;

/// The token for writing `value` for `identity` over `previous_version` (`None` for a create).
pub fn client_request_token(
    identity: &str,
    value: &SecretValue,
    previous_version: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"secretport/client-request-token/v1\0");
    h.update(identity.as_bytes());
    h.update(b"\0");
    h.update(previous_version.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(value.digest());
    let d = h.finalize();
    let x = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_sensitive_to_each_input() {
        let v = SecretValue::text("a".into());
        let t = client_request_token("file:x", &v, None);
        assert_eq!(t.len(), 36);
        assert_eq!(t, client_request_token("file:x", &v.clone(), None));
        assert_ne!(t, client_request_token("file:y", &v, None));
        assert_ne!(t, client_request_token("file:x", &v, Some("v1")));
        assert_ne!(
            t,
            client_request_token("file:x", &SecretValue::text("b".into()), None)
        );
    }
}
