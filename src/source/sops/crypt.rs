//! Decrypting a SOPS tree and verifying its MAC, exactly as getsops/sops v3.11 does
//! (`aes/cipher.go`, `sops.go`: `Tree.Decrypt`, `shouldBeEncrypted`, `ToBytes`,
//! `cmd/sops/common`: the MAC check).
//!
//! - A value is `ENC[AES256_GCM,data:<b64>,iv:<b64>,tag:<b64>,type:<t>]`: AES-256-GCM with the
//!   32-byte data key, a 32-byte nonce (`iv`), the 16-byte `tag` after the ciphertext, and as
//!   additional data the value's path: the mapping keys from the top, each followed by `:`
//!   (`db:password:`; sequence items add nothing). `type` (`str`, `int`, `float`, `bool`,
//!   `time`, `bytes`) says how to read the plaintext; the empty string is stored as `""`.
//! - Which values are encrypted: all, unless a key on the path ends with `unencrypted_suffix`,
//!   or `encrypted_suffix` / `encrypted_regex` are set and no key on the path matches them, or
//!   a key matches `unencrypted_regex`.
//! - The MAC: SHA-512 over every non-null value in document order (only the encrypted ones
//!   with `mac_only_encrypted`, then after a fixed 32-byte prefix), each as SOPS's `ToBytes`
//!   renders it (`int` in decimal, `float` as Go's `FormatFloat(f, 'f', -1, 64)`, booleans as
//!   `True`/`False`), as upper-case hex; stored in `sops.mac` encrypted with the data key and
//!   `lastmodified` as additional data. A tampered value fails GCM; a tampered unencrypted value
//!   or a tampered MAC fails the comparison.
//!
//! Decrypted values live in [`Plain`], whose `Debug` is redacted and whose strings are zeroized
//! when dropped; errors name key paths, never values.

use std::fmt;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use super::format::{Meta, Node};

/// AES-256-GCM with SOPS's 32-byte nonce.
type SopsGcm = AesGcm<aes::Aes256, U32>;

/// `sha256("sops")`: the MAC's prefix with `mac_only_encrypted` (`MACOnlyEncryptedInitialization`).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A decrypted value.
pub(crate) enum Plain {
    /// Mapping, in file order.
    Map(Vec<(String, Plain)>),
    /// Sequence.
    List(Vec<Plain>),
    /// String (also `bytes` that are UTF-8).
    Str(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// A `time` value, as its text.
    Time(String),
    /// Null.
    Null,
}

impl fmt::Debug for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plain(<redacted>)")
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        match self {
            Plain::Str(s) | Plain::Time(s) => s.zeroize(),
            Plain::Int(i) => i.zeroize(),
            Plain::Float(x) => x.zeroize(),
            Plain::Bool(b) => b.zeroize(),
            Plain::Map(m) => {
                for (k, _) in m.iter_mut() {
                    k.zeroize();
                }
            }
            Plain::List(_) | Plain::Null => {}
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest digits that read back as `f`, never
/// an exponent. Rust's `Display` for `f64` is that too, except for the non-finite spellings.
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// A float as YAML 1.2's core schema (and `yaml-rust2`) reads it.
fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The parts of an `ENC[...]` value.
struct Enc {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse_enc(v: &str) -> Result<Enc, String> {
    let inner = v
        .strip_prefix("ENC[AES256_GCM,data:")
        .and_then(|r| r.strip_suffix(']'))
        .ok_or("not a SOPS-encrypted value (ENC[AES256_GCM,...])")?;
    let (data, rest) = inner.split_once(",iv:").ok_or("ENC value without iv")?;
    let (iv, rest) = rest.split_once(",tag:").ok_or("ENC value without tag")?;
    let (tag, kind) = rest.split_once(",type:").ok_or("ENC value without type")?;
    let b64 = |what: &str, s: &str| {
        B64.decode(s)
            .map_err(|e| format!("ENC value: {what} is not base64: {e}"))
    };
    Ok(Enc {
        data: b64("data", data)?,
        iv: b64("iv", iv)?,
        tag: b64("tag", tag)?,
        kind: kind.to_owned(),
    })
}

/// Decrypts one `ENC[...]` value with `aad`; the plaintext bytes and the type.
fn open(key: &[u8], value: &str, aad: &str) -> Result<(Zeroizing<Vec<u8>>, String), String> {
    let enc = parse_enc(value)?;
    if enc.iv.len() != 32 || enc.tag.len() != 16 {
        return Err(format!(
            "ENC value: iv of {} bytes and tag of {} (SOPS writes 32 and 16)",
            enc.iv.len(),
            enc.tag.len()
        ));
    }
    let cipher = SopsGcm::new_from_slice(key).map_err(|_| "the data key is not 32 bytes")?;
    let mut msg = Vec::with_capacity(enc.data.len() + 16);
    msg.extend_from_slice(&enc.data);
    msg.extend_from_slice(&enc.tag);
    let plain = cipher
        .decrypt(
            Nonce::<U32>::from_slice(&enc.iv),
            Payload {
                msg: &msg,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            "AES-GCM authentication failed: the value was altered, moved to another key, or \
             belongs to another file"
                .to_owned()
        })?;
    Ok((Zeroizing::new(plain), enc.kind))
}

/// Which values a file's metadata says are encrypted.
pub(crate) struct Rules {
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<regex::Regex>,
    encrypted_regex: Option<regex::Regex>,
    mac_only_encrypted: bool,
}

impl Rules {
    /// The rules of `meta`; a regex Rust cannot compile is an error.
    pub(crate) fn of(meta: &Meta) -> Result<Rules, String> {
        let re = |r: &Option<String>, what: &str| {
            r.as_deref()
                .map(|r| regex::Regex::new(r).map_err(|e| format!("sops.{what}: {e}")))
                .transpose()
        };
        Ok(Rules {
            unencrypted_suffix: meta.unencrypted_suffix.clone(),
            encrypted_suffix: meta.encrypted_suffix.clone(),
            unencrypted_regex: re(&meta.unencrypted_regex, "unencrypted_regex")?,
            encrypted_regex: re(&meta.encrypted_regex, "encrypted_regex")?,
            mac_only_encrypted: meta.mac_only_encrypted,
        })
    }

    /// SOPS's `shouldBeEncrypted` for a value at `path` (comment rules are refused earlier).
    fn encrypted(&self, path: &[String]) -> bool {
        let mut enc = true;
        if let Some(s) = &self.unencrypted_suffix {
            if path.iter().any(|p| p.ends_with(s.as_str())) {
                enc = false;
            }
        }
        if let Some(s) = &self.encrypted_suffix {
            enc = path.iter().any(|p| p.ends_with(s.as_str()));
        }
        if let Some(r) = &self.unencrypted_regex {
            if path.iter().any(|p| r.is_match(p)) {
                enc = false;
            }
        }
        if let Some(r) = &self.encrypted_regex {
            enc = path.iter().any(|p| r.is_match(p));
        }
        enc
    }
}

struct Walk<'a> {
    key: &'a [u8],
    rules: &'a Rules,
    hash: Sha512,
}

impl Walk<'_> {
    fn leaf(&mut self, node: &Node, path: &[String]) -> Result<Plain, String> {
        let encrypted = self.rules.encrypted(path);
        let at = || path.join(":");
        let plain = if encrypted {
            let Node::Str(v) = node else {
                return Err(format!(
                    "value at {} should be encrypted but is not a string",
                    at()
                ));
            };
            if v.is_empty() {
                Plain::Str(String::new())
            } else {
                let aad = format!("{}:", path.join(":"));
                let (bytes, kind) =
                    open(self.key, v, &aad).map_err(|e| format!("value at {}: {e}", at()))?;
                let text = || {
                    std::str::from_utf8(&bytes)
                        .map_err(|_| format!("value at {}: plaintext is not UTF-8", at()))
                };
                let bad =
                    |what: &str| format!("value at {}: plaintext is not a valid {what}", at());
                match kind.as_str() {
                    "str" | "bytes" => Plain::Str(text()?.to_owned()),
                    "int" => Plain::Int(text()?.parse().map_err(|_| bad("int"))?),
                    "float" => Plain::Float(text()?.parse().map_err(|_| bad("float"))?),
                    "bool" => Plain::Bool(parse_bool(text()?).ok_or_else(|| bad("bool"))?),
                    "time" => Plain::Time(text()?.to_owned()),
                    other => return Err(format!("value at {}: unknown SOPS type {other:?}", at())),
                }
            }
        } else {
            match node {
                Node::Str(s) => Plain::Str(s.clone()),
                Node::Int(i) => Plain::Int(*i),
                Node::Float(t) => Plain::Float(
                    parse_float(t).ok_or_else(|| format!("value at {}: bad float", at()))?,
                ),
                Node::Bool(b) => Plain::Bool(*b),
                Node::Null | Node::Map(_) | Node::List(_) => Plain::Null,
            }
        };
        if !self.rules.mac_only_encrypted || encrypted {
            let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(match &plain {
                Plain::Str(s) | Plain::Time(s) => s.as_bytes().to_vec(),
                Plain::Int(i) => i.to_string().into_bytes(),
                Plain::Float(f) => go_float(*f).into_bytes(),
                Plain::Bool(true) => b"True".to_vec(),
                Plain::Bool(false) => b"False".to_vec(),
                _ => Vec::new(),
            });
            self.hash.update(&bytes);
        }
        Ok(plain)
    }

    fn node(&mut self, node: &Node, path: &mut Vec<String>) -> Result<Plain, String> {
        match node {
            Node::Map(m) => self.map(m, path),
            Node::List(l) => {
                let mut out = Vec::with_capacity(l.len());
                for item in l {
                    out.push(self.node(item, path)?);
                }
                Ok(Plain::List(out))
            }
            // SOPS neither decrypts nor hashes nulls
            Node::Null => Ok(Plain::Null),
            leaf => self.leaf(leaf, path),
        }
    }

    fn map(&mut self, m: &[(String, Node)], path: &mut Vec<String>) -> Result<Plain, String> {
        let mut out = Vec::with_capacity(m.len());
        for (k, v) in m {
            path.push(k.clone());
            let p = self.node(v, path);
            path.pop();
            out.push((k.clone(), p?));
        }
        Ok(Plain::Map(out))
    }
}

/// Decrypts `tree` with the data key and verifies the file's MAC. Returns the top-level
/// mapping.
pub(crate) fn decrypt_tree(
    key: &[u8],
    tree: &[(String, Node)],
    meta: &Meta,
    rules: &Rules,
) -> Result<Plain, String> {
    let mut w = Walk {
        key,
        rules,
        hash: Sha512::new(),
    };
    if rules.mac_only_encrypted {
        w.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let plain = w.map(tree, &mut Vec::new())?;
    let computed = hex::encode_upper(w.hash.finalize());
    let (stored, _) = open(key, &meta.mac, &meta.lastmodified).map_err(|e| {
        format!("sops.mac cannot be decrypted ({e}): the MAC or lastmodified was altered")
    })?;
    if !stored.eq_ignore_ascii_case(computed.as_bytes()) {
        return Err(
            "MAC mismatch: the file was altered after SOPS wrote it (a value, a key, their order, \
             or an unencrypted value)"
                .into(),
        );
    }
    Ok(plain)
}

/// Decrypts only the value under the top-level key `top`, without hashing: for a file whose MAC
/// [`decrypt_tree`] has already verified (the parsed tree held in memory cannot change since).
pub(crate) fn decrypt_key(
    key: &[u8],
    tree: &[(String, Node)],
    top: &str,
    rules: &Rules,
) -> Result<Plain, String> {
    let node = tree
        .iter()
        .find(|(k, _)| k == top)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("key {top} is gone"))?;
    let mut w = Walk {
        key,
        rules,
        hash: Sha512::new(),
    };
    w.node(node, &mut vec![top.to_owned()])
}

/// Appends `p` as JSON to `out` (numbers as SOPS wrote them, key order kept).
pub(crate) fn write_json(p: &Plain, out: &mut Vec<u8>) -> Result<(), String> {
    match p {
        Plain::Map(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).map_err(|e| e.to_string())?;
                out.push(b':');
                write_json(v, out)?;
            }
            out.push(b'}');
        }
        Plain::List(l) => {
            out.push(b'[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(v, out)?;
            }
            out.push(b']');
        }
        Plain::Str(s) | Plain::Time(s) => {
            serde_json::to_writer(&mut *out, s).map_err(|e| e.to_string())?
        }
        Plain::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Plain::Float(f) if f.is_finite() => out.extend_from_slice(go_float(*f).as_bytes()),
        Plain::Float(_) => return Err("an infinite or NaN float has no JSON form".into()),
        Plain::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Plain::Null => out.extend_from_slice(b"null"),
    }
    Ok(())
}

/// One top-level value as a secret string: a string as it is, anything else as JSON.
pub(crate) fn value_text(p: &Plain) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::new());
    match p {
        Plain::Str(s) | Plain::Time(s) => out.extend_from_slice(s.as_bytes()),
        other => write_json(other, &mut out)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_format() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(5432.0), "5432");
        assert_eq!(go_float(-0.0), "-0");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
    }

    #[test]
    fn rules_follow_sops() {
        let meta = Meta {
            unencrypted_suffix: Some("_unencrypted".into()),
            ..Meta::default()
        };
        let r = Rules::of(&meta).unwrap();
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(r.encrypted(&p(&["db", "password"])));
        assert!(!r.encrypted(&p(&["a_unencrypted", "x"])));
        let meta = Meta {
            encrypted_regex: Some("^(data|stringData)$".into()),
            ..Meta::default()
        };
        let r = Rules::of(&meta).unwrap();
        assert!(r.encrypted(&p(&["data", "x"])));
        assert!(!r.encrypted(&p(&["metadata", "name"])));
    }

    #[test]
    fn enc_parsing_errors() {
        assert!(parse_enc("plain").is_err());
        assert!(parse_enc("ENC[AES256_GCM,data:%%,iv:AA==,tag:AA==,type:str]").is_err());
        let e = parse_enc("ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]").unwrap();
        assert_eq!((e.data.len(), e.kind.as_str()), (1, "str"));
        let err = open(
            &[0; 32],
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
            "a:",
        )
        .unwrap_err();
        assert!(err.contains("iv of 1 bytes"), "{err}");
    }

    #[test]
    fn json_output_keeps_order_and_number_text() {
        let p = Plain::Map(vec![
            ("z".into(), Plain::Int(5432)),
            ("a".into(), Plain::Float(1.5)),
            (
                "l".into(),
                Plain::List(vec![
                    Plain::Bool(true),
                    Plain::Null,
                    Plain::Str("é\n".into()),
                ]),
            ),
        ]);
        let mut out = Vec::new();
        write_json(&p, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"z":5432,"a":1.5,"l":[true,null,"é\n"]}"#
        );
        assert!(format!("{p:?}").contains("redacted"));
    }
}
