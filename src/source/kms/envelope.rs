//! AES-256-GCM envelope encryption, exactly as the `kms` export format uses it (see the
//! [module docs](super) for the construction users must follow to produce exports).
//!
//! Plaintext data keys live only in [`DataKey`] (a `SecretBox<[u8; 32]>`: zeroized on drop,
//! `Debug` redacted, no `Clone`, no `Display`).

use std::collections::BTreeMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretBox};

/// Length of an AES-256 data key.
pub(crate) const KEY_LEN: usize = 32;
/// Length of the GCM nonce (`iv` field).
pub(crate) const IV_LEN: usize = 12;
/// Length of the GCM authentication tag appended to the ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// A plaintext AES-256 data key. Zeroized on drop; never printed.
pub(crate) struct DataKey(SecretBox<[u8; KEY_LEN]>);

impl DataKey {
    /// Copies a key out of `bytes` (which the caller keeps in a zeroizing buffer). `Err` with the
    /// actual length when it is not 32 bytes.
    pub(crate) fn from_slice(bytes: &[u8]) -> Result<DataKey, usize> {
        if bytes.len() != KEY_LEN {
            return Err(bytes.len());
        }
        Ok(DataKey(SecretBox::init_with_mut(
            |k: &mut [u8; KEY_LEN]| k.copy_from_slice(bytes),
        )))
    }

    /// A random key from the operating system's generator (tests; exports use KMS
    /// `GenerateDataKey`).
    #[cfg(test)]
    pub(crate) fn random() -> DataKey {
        use aes_gcm::aead::rand_core::RngCore;
        DataKey(SecretBox::init_with_mut(|k: &mut [u8; KEY_LEN]| {
            OsRng.fill_bytes(k)
        }))
    }

    /// The raw key bytes (tests). Callers must not log, format or persist them.
    #[cfg(test)]
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.expose_secret()))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

/// The GCM associated data for an encryption context: empty for no (or an empty) context,
/// otherwise the context as compact JSON with keys sorted by code point (a
/// `BTreeMap<String, String>` through `serde_json`), e.g. `{"app":"db","env":"prod"}`.
pub(crate) fn associated_data(context: &BTreeMap<String, String>) -> Vec<u8> {
    if context.is_empty() {
        return Vec::new();
    }
    // A map of strings always serializes.
    serde_json::to_vec(context).unwrap_or_default()
}

/// A fresh random 12-byte IV from the operating system's generator.
pub(crate) fn random_iv() -> [u8; IV_LEN] {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(nonce.as_slice());
    iv
}

/// Encrypts: returns the ciphertext with the 16-byte tag appended.
pub(crate) fn seal(key: &DataKey, iv: &[u8; IV_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    key.cipher()
        .encrypt(
            Nonce::from_slice(iv),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        // AES-GCM encryption only fails for inputs over 64 GiB
        .unwrap_or_else(|_| unreachable!("AES-GCM input too large"))
}

/// The GCM tag did not verify: wrong key, IV, associated data, or altered ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuthenticationFailed;

/// Decrypts `ciphertext` (tag appended). The plaintext is returned in a plain `Vec` so the caller
/// can move it into a [`SecretValue`](crate::secret::SecretValue) without a copy.
pub(crate) fn open(
    key: &DataKey,
    iv: &[u8; IV_LEN],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, AuthenticationFailed> {
    if ciphertext.len() < TAG_LEN {
        return Err(AuthenticationFailed);
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(iv),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_is_sorted_compact_json_or_empty() {
        assert!(associated_data(&BTreeMap::new()).is_empty());
        let ctx: BTreeMap<String, String> = [("env", "prod"), ("app", "d\"b"), ("é", "/")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            String::from_utf8(associated_data(&ctx)).unwrap(),
            "{\"app\":\"d\\\"b\",\"env\":\"prod\",\"é\":\"/\"}"
        );
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = DataKey::random();
        let iv = random_iv();
        let ct = seal(&key, &iv, b"hello", b"{\"a\":\"b\"}");
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(open(&key, &iv, &ct, b"{\"a\":\"b\"}").unwrap(), b"hello");
        assert_eq!(open(&key, &iv, &ct, b""), Err(AuthenticationFailed));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            open(&key, &iv, &bad, b"{\"a\":\"b\"}"),
            Err(AuthenticationFailed)
        );
        assert_eq!(
            open(&key, &iv, &ct[..ct.len() - 1], b"{\"a\":\"b\"}"),
            Err(AuthenticationFailed)
        );
        assert_eq!(open(&key, &iv, &ct[..3], b""), Err(AuthenticationFailed));
        let empty = seal(&key, &iv, b"", b"");
        assert_eq!(empty.len(), TAG_LEN);
        assert_eq!(open(&key, &iv, &empty, b"").unwrap(), b"");
        assert!(!format!("{key:?}").contains(&hex::encode(key.expose())));
        assert_eq!(DataKey::from_slice(&[0; 16]).unwrap_err(), 16);
    }
}
