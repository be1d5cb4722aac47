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
//! who may not be allowed to read values. The token is therefore always an HMAC-SHA256 under a
//! key that only principals able to read values can read (see `commands::token_key` for where
//! that key lives), so a VersionId reveals nothing about the value. It is truncated to 128 bits,
//! formatted as a UUID, and never reaches a report or log.
//!
//! The same key makes **ownership proofs** ([`TokenDeriver::ownership_proof`], in another HMAC
//! domain): the `secretport:owner` tag of every secret secretport writes, bound to the secret's
//! name, the job's exact scope and its prefix. Tags can be written by anyone with
//! `TagResource` and copied by any backup script; the proof cannot be made without the key, so
//! a forged, copied or edited tag set proves nothing (see `identity::ownership`).
//!
//! Key material comes from the operating system's CSPRNG ([`random_bytes`], `getrandom`), never
//! from a fast PRNG: a key guessed from a 64-bit PRNG state would let anyone who sees VersionIds
//! test guesses of short values offline. A fast PRNG serves retry jitter only.

use hmac::{KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Scope, SourceIdentity};
use crate::secret::SecretValue;

/// Shortest key accepted for `token_key_env`, in bytes.
pub(crate) const MIN_KEY_BYTES: usize = 16;

/// The operating system's random number generator failed (no entropy source, a sandbox that
/// forbids it): no key can be made, and nothing is written.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(getrandom::Error);

/// `n` bytes from the operating system's CSPRNG (`getrandom`), for keys and anything else
/// that must not be guessed.
pub(crate) fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, RandomError> {
    let mut b = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut b).map_err(RandomError)?;
    Ok(b)
}

const DOMAIN: &[u8] = b"secretport/client-request-token/v1\0";
/// Domain of ownership proofs: the same key never makes a proof that is also a token.
const OWNER_DOMAIN: &[u8] = b"secretport/ownership-proof/v1\0";
/// How an ownership proof begins (its format version).
pub(crate) const PROOF_VERSION: &str = "v1:";

/// Derives tokens under a key. `Debug` never shows the key.
#[derive(Clone)]
pub struct TokenDeriver {
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TokenDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenDeriver")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TokenDeriver {
    /// HMAC-SHA256 tokens under `key`.
    pub fn keyed(key: Zeroizing<Vec<u8>>) -> Self {
        TokenDeriver { key }
    }

    /// A deriver under a fresh 32-byte key from the OS CSPRNG, for runs that never send a
    /// token (dry runs).
    pub(crate) fn ephemeral() -> Result<Self, RandomError> {
        Ok(TokenDeriver {
            key: random_bytes(32)?,
        })
    }

    /// The token for writing `value` for `identity` over `previous_version` (`None` for a
    /// create).
    pub fn token(
        &self,
        identity: &SourceIdentity,
        value: &SecretValue,
        previous_version: Option<&str>,
    ) -> String {
        let text = identity.text();
        let d = self.mac(&[
            DOMAIN,
            text.as_bytes(),
            b"\0",
            previous_version.unwrap_or("").as_bytes(),
            b"\0",
            &value.digest(),
        ]);
        uuid_text(&d[..16])
    }

    /// The ownership proof of the secret `name` written by the job with `scope` under
    /// `prefix`: the value of [`super::OWNER_TAG`]. Only a holder of the key can make it, it
    /// names exactly one (name, scope, prefix), and it tells nothing about the key or a value.
    pub fn ownership_proof(&self, name: &str, scope: &Scope, prefix: &str) -> String {
        let d = self.mac(&[
            OWNER_DOMAIN,
            name.as_bytes(),
            b"\0",
            scope.kind.as_bytes(),
            b"\0",
            scope.instance.as_bytes(),
            b"\0",
            scope.subtree.as_bytes(),
            b"\0",
            prefix.as_bytes(),
        ]);
        format!("{PROOF_VERSION}{}", hex::encode(&d[..16]))
    }

    /// HMAC-SHA256 of the concatenated parts.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC accepts keys of any length (long ones are hashed first): this cannot fail.
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC-SHA256 accepts a key of any length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// 16 bytes as a UUID-shaped string (`8-4-4-4-12` lower-case hex), the form AWS expects of a
/// `ClientRequestToken`.
pub(crate) fn uuid_text(bytes: &[u8]) -> String {
    let x = hex::encode(bytes);
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

    fn id(p: &str) -> SourceIdentity {
        SourceIdentity::new("file", "/x.jsonl", p)
    }

    #[test]
    fn stable_and_sensitive_to_each_input() {
        let d = TokenDeriver::keyed(Zeroizing::new(b"0123456789abcdef".to_vec()));
        let v = SecretValue::text("a".into());
        let t = d.token(&id("x"), &v, None);
        assert_eq!(t.len(), 36);
        assert_eq!(t, d.token(&id("x"), &v.clone(), None));
        assert_ne!(t, d.token(&id("x"), &v, Some("v1")));
        assert_ne!(t, d.token(&id("y"), &v, None));
        assert_ne!(t, d.token(&id("x"), &SecretValue::text("b".into()), None));
    }

    #[test]
    fn keys_come_from_the_os_csprng() {
        let (a, b) = (random_bytes(32).unwrap(), random_bytes(32).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(*a, *b);
        assert_ne!(*a, vec![0u8; 32]);
        let v = SecretValue::text("a".into());
        let (e1, e2) = (
            TokenDeriver::ephemeral().unwrap(),
            TokenDeriver::ephemeral().unwrap(),
        );
        assert_ne!(e1.token(&id("x"), &v, None), e2.token(&id("x"), &v, None));
        // no fast PRNG near key material (it is for retry jitter only)
        for src in [
            include_str!("token.rs"),
            include_str!("../target/token_key.rs"),
        ] {
            assert!(!src.contains(concat!("fast", "rand::")));
        }
    }

    #[test]
    fn tokens_depend_on_the_key_and_hide_it() {
        let v = SecretValue::text("a".into());
        let k1 = TokenDeriver::keyed(Zeroizing::new(b"0123456789abcdef".to_vec()));
        let k2 = TokenDeriver::keyed(Zeroizing::new(b"0123456789abcdeX".to_vec()));
        let t1 = k1.token(&id("x"), &v, None);
        assert_ne!(t1, k2.token(&id("x"), &v, None));
        assert_ne!(
            t1,
            TokenDeriver::ephemeral().unwrap().token(&id("x"), &v, None)
        );
        assert!(!format!("{k1:?}").contains("0123"));
    }
}
