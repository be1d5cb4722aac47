//! `ClientRequestToken`s: idempotency for CreateSecret and PutSecretValue.
//!
//! The token is derived from the source identity, the value and the version being replaced, so a
//! retried request (or a rerun after a crash that races a request still in flight) carries the
//! same token and AWS turns the duplicate into a no-op instead of a second version. Including
//! the replaced version means a value that goes A → B → A gets a fresh token on its way back:
//! with a token derived from the value alone AWS would "ignore" the second A as a duplicate of
//! the first and leave B current.
//!
//! AWS shows tokens as VersionIds to principals with `DescribeSecret`/`ListSecretVersionIds`,
//! who may not be allowed to read values. With `[target] token_key_env` set, the token is an
//! HMAC-SHA256 under that key, so a VersionId reveals nothing about the value. Without it, the
//! token is a plain SHA-256 over the same inputs: stable and collision-free, but a principal
//! who can see VersionIds could test guesses of a low-entropy value against it. Either way the
//! token is truncated to 128 bits, formatted as a UUID, and never reaches a report or log.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secret::SecretValue;

/// Shortest key accepted for `token_key_env`, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

const DOMAIN: &[u8] = b"secretport/client-request-token/v1\0";

/// Derives tokens, keyed or not. `Debug` never shows the key.
#[derive(Default, Clone)]
pub struct TokenDeriver {
    key: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for TokenDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenDeriver")
            .field("keyed", &self.key.is_some())
            .finish()
    }
}

impl TokenDeriver {
    /// Plain SHA-256 tokens.
    pub fn unkeyed() -> Self {
        TokenDeriver { key: None }
    }

    /// HMAC-SHA256 tokens under `key`.
    pub fn keyed(key: Zeroizing<Vec<u8>>) -> Self {
        TokenDeriver { key: Some(key) }
    }

    /// The token for writing `value` for `identity` over `previous_version` (`None` for a
    /// create).
    pub fn token(
        &self,
        identity: &str,
        value: &SecretValue,
        previous_version: Option<&str>,
    ) -> String {
        let parts: [&[u8]; 6] = [
            DOMAIN,
            identity.as_bytes(),
            b"\0",
            previous_version.unwrap_or("").as_bytes(),
            b"\0",
            &value.digest(),
        ];
        let d: Vec<u8> = match &self.key {
            None => {
                let mut h = Sha256::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().to_vec()
            }
            Some(key) => {
                // HMAC accepts keys of any length (long ones are hashed first): this cannot
                // fail, and must never fall back to an unkeyed token.
                let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC-SHA256 accepts a key of any length");
                for p in parts {
                    m.update(p);
                }
                m.finalize().into_bytes().to_vec()
            }
        };
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_sensitive_to_each_input() {
        let d = TokenDeriver::unkeyed();
        let v = SecretValue::text("a".into());
        let t = d.token("file:x", &v, None);
        assert_eq!(t.len(), 36);
        assert_eq!(t, d.token("file:x", &v.clone(), None));
        assert_ne!(t, d.token("file:x", &v, Some("v1")));
        assert_ne!(t, d.token("file:y", &v, None));
        assert_ne!(t, d.token("file:x", &SecretValue::text("b".into()), None));
    }

    #[test]
    fn keyed_tokens_depend_on_the_key_and_hide_it() {
        let v = SecretValue::text("a".into());
        let k1 = TokenDeriver::keyed(Zeroizing::new(b"0123456789abcdef".to_vec()));
        let k2 = TokenDeriver::keyed(Zeroizing::new(b"0123456789abcdeX".to_vec()));
        let plain = TokenDeriver::unkeyed().token("file:x", &v, None);
        let t1 = k1.token("file:x", &v, None);
        assert_eq!(t1, k1.token("file:x", &v, None));
        assert_ne!(t1, k2.token("file:x", &v, None));
        assert_ne!(t1, plain);
        assert_eq!(t1.len(), 36);
        assert!(!format!("{k1:?}").contains("0123"));
    }
}
