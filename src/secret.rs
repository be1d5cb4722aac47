//! The one type that carries plaintext secret values through secretport.
//!
//! Every value read from a source or from AWS lives in a [`SecretValue`]: its `Debug` and
//! `Display` print `[REDACTED]`, it is zeroized when dropped (via `secrecy`), and it offers no
//! `Serialize`, so a value cannot reach a log line, an error message, a panic or a report by
//! accident. Code that must see the bytes calls [`SecretValue::expose_bytes`] or
//! [`SecretValue::expose_str`] explicitly, which keeps every such place greppable.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

/// AWS Secrets Manager's maximum size of a secret value (SecretString or SecretBinary).
pub use crate::target::limits::MAX_SECRET_BYTES;

/// A plaintext secret: text (stored as `SecretString`) or bytes (stored as `SecretBinary`).
pub enum SecretValue {
    /// UTF-8 text; for Vault KV data and JSON export objects this is the JSON document.
    Text(SecretString),
    /// Arbitrary bytes.
    Binary(SecretBox<Vec<u8>>),
}

impl SecretValue {
    /// Wraps text. The `String`'s buffer is moved, not copied, and zeroized on drop.
    pub fn text(s: String) -> Self {
        SecretValue::Text(SecretString::from(s))
    }

    /// Wraps bytes. The buffer is moved and zeroized on drop.
    pub fn binary(b: Vec<u8>) -> Self {
        SecretValue::Binary(SecretBox::new(Box::new(b)))
    }

    /// Text if the bytes are valid UTF-8, binary otherwise (used by decrypting sources).
    pub fn from_bytes(b: Vec<u8>) -> Self {
        match String::from_utf8(b) {
            Ok(s) => Self::text(s),
            Err(e) => Self::binary(e.into_bytes()),
        }
    }

    /// Whether this value is stored as `SecretBinary`.
    pub fn is_binary(&self) -> bool {
        matches!(self, SecretValue::Binary(_))
    }

    /// Size in bytes, as AWS counts it against [`MAX_SECRET_BYTES`].
    pub fn len(&self) -> usize {
        self.expose_bytes().len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw bytes. Callers must not log, format or persist them.
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            SecretValue::Text(s) => s.expose_secret().as_bytes(),
            SecretValue::Binary(b) => b.expose_secret().as_slice(),
        }
    }

    /// The text, when this is a text value.
    pub fn expose_str(&self) -> Option<&str> {
        match self {
            SecretValue::Text(s) => Some(s.expose_secret()),
            SecretValue::Binary(_) => None,
        }
    }

    /// Equality of kind and content (for "unchanged" decisions).
    pub fn same_as(&self, other: &SecretValue) -> bool {
        self.is_binary() == other.is_binary() && self.expose_bytes() == other.expose_bytes()
    }

    /// SHA-256 over kind and content. Never written anywhere: it only feeds keyed derivations
    /// such as the idempotency token (see `identity::token`).
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(if self.is_binary() { b"b" } else { b"t" });
        h.update(self.expose_bytes());
        h.finalize().into()
    }
}

impl Clone for SecretValue {
    fn clone(&self) -> Self {
        match self {
            SecretValue::Text(s) => Self::text(s.expose_secret().to_owned()),
            SecretValue::Binary(b) => Self::binary(b.expose_secret().clone()),
        }
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_binary() { "binary" } else { "text" };
        write!(f, "SecretValue::{kind}([REDACTED])")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANTED: &str = "pl4nted-S3cret-value-7f3a";

    #[test]
    fn debug_and_display_are_redacted() {
        let v = SecretValue::text(PLANTED.to_owned());
        let b = SecretValue::binary(PLANTED.as_bytes().to_vec());
        for s in [
            format!("{v:?}"),
            format!("{v}"),
            format!("{v:#?}"),
            format!("{b:?}"),
            format!("{b}"),
            format!("{:?}", Some(&v)),
            format!("{:?}", vec![v.clone()]),
        ] {
            assert!(!s.contains(PLANTED), "leaked in {s:?}");
            assert!(s.contains("REDACTED"), "{s:?}");
        }
    }

    #[test]
    fn kinds_and_equality() {
        let t = SecretValue::from_bytes(b"hello".to_vec());
        assert!(!t.is_binary());
        assert_eq!(t.expose_str(), Some("hello"));
        let b = SecretValue::from_bytes(vec![0xff, 0x00]);
        assert!(b.is_binary());
        assert_eq!(b.len(), 2);
        assert!(!t.same_as(&SecretValue::binary(b"hello".to_vec())));
        assert!(t.same_as(&SecretValue::text("hello".into())));
        assert_ne!(t.digest(), SecretValue::binary(b"hello".to_vec()).digest());
    }
}
