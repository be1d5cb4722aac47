//! The strings secretport leaves in AWS for years: source identities, ownership tags and (in
//! [`token`]) idempotency tokens.
//!
//! A managed secret is found again, and its ownership decided, only through what this module
//! writes. Every string here is pinned by a golden file (`fixtures/identity/golden.txt`, checked
//! by `tests/suite/identity_golden.rs`, regenerated with `UPDATE_GOLDEN=1`): a refactor that
//! changes one byte of them would orphan every managed secret or duplicate versions after a
//! crash, and must fail a test instead.
//!
//! ## Identity
//! A [`SourceIdentity`] is (kind, instance, path): the kind of source (`vault`, `file`, ...), the
//! source *instance* (for Vault: address, namespace and mount; for an export file or a SOPS file
//! set: its path relative to the config folder, or a configured name, see `source::instance`;
//! for SSM: the region; ...) and the path of the secret inside that instance (for Vault:
//! the full path under the mount, subtree included). Its text form is
//! `<kind>:<instance> <path>`, where instance and path are escaped so that they never contain a
//! space and only use characters AWS accepts in a tag value: ASCII letters and digits and
//! `_ . : / + - @` stand for themselves, every other byte of the UTF-8 text is written `=XX`
//! (upper-case hex; `=` itself is `=3D`). The text therefore parses back unambiguously
//! ([`SourceIdentity::parse`]), whatever the path holds.
//!
//! ## Tags
//! Every secret secretport writes carries [`MANAGED_TAG`] = `true`, [`SOURCE_TAG`] = the identity
//! text (or `sha256:<hex of the text>` when the text is longer than the 256 characters AWS allows
//! in a tag value) and [`PREFIX_TAG`] = the target prefix it was written under. When the source
//! tag is a hash, the description (`Migrated by secretport from <identity text>`, up to 2,048
//! characters) carries the text; it is trusted only when it hashes to the tag.
//!
//! ## Scope
//! A job owns a managed secret only when the secret's identity lies inside the job's [`Scope`]
//! (same kind and instance, path under the configured subtree, compared segment by segment:
//! `apps` owns `apps/db` but not `apps2/db`) **and** it was written under the job's prefix.
//! Everything else that is managed is *foreign*: never updated, never an orphan, never pruned.
//! A secret whose identity cannot be read (hand-edited tags, an identity from before this
//! format) is foreign too: when in doubt, secretport leaves a secret alone.

pub mod token;

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Tag that marks a secret as written by secretport (value `true`).
pub const MANAGED_TAG: &str = "secretport:managed";
/// Tag that records the source identity.
pub const SOURCE_TAG: &str = "secretport:source";
/// Tag that records the target prefix the secret was written under (`""` for none).
pub const PREFIX_TAG: &str = "secretport:prefix";
/// The description's fixed start; the identity text follows.
pub const DESCRIPTION_LEAD: &str = "Migrated by secretport from ";
pub use crate::target::limits::{MAX_DESCRIPTION_CHARS, MAX_TAG_VALUE_CHARS};

/// Why an identity text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a secretport source identity ({why}): {text:?}")]
pub struct IdentityError {
    /// The text (an identity never contains a value).
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

/// Where one secret comes from: source kind, source instance, path inside the instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceIdentity {
    // kind and instance are the same for every secret of a run: shared, not copied per secret
    kind: Arc<str>,
    instance: Arc<str>,
    path: String,
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.:/+-@".contains(&b)
}

fn escape(s: &str, out: &mut String) {
    for &b in s.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push('=');
            out.push_str(&format!("{b:02X}"));
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
                {
                    return None;
                }
                let b = u8::from_str_radix(hex, 16).ok()?;
                if plain(b) {
                    return None; // not canonical: one text per identity
                }
                out.push(b);
                i += 3;
            }
            b if plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

impl SourceIdentity {
    /// An identity. `kind` is a lower-case word; `path` has no leading or trailing `/`.
    pub fn new(kind: &str, instance: &str, path: &str) -> Self {
        SourceIdentity {
            kind: kind.into(),
            instance: instance.into(),
            path: path.trim_matches('/').to_owned(),
        }
    }

    /// The source kind (`vault`, `file`, ...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The source instance.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The path inside the instance.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The canonical text: `<kind>:<escaped instance> <escaped path>`.
    pub fn text(&self) -> String {
        let mut s =
            String::with_capacity(self.kind.len() + self.instance.len() + self.path.len() + 2);
        s.push_str(&self.kind);
        s.push(':');
        escape(&self.instance, &mut s);
        s.push(' ');
        escape(&self.path, &mut s);
        s
    }

    /// Reads a canonical text back.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let err = |why| IdentityError {
            text: text.to_owned(),
            why,
        };
        let (kind, rest) = text.split_once(':').ok_or_else(|| err("no kind"))?;
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(err("bad kind"));
        }
        let (instance, path) = rest.split_once(' ').ok_or_else(|| err("no path"))?;
        let instance = unescape(instance).ok_or_else(|| err("bad escape in instance"))?;
        let path = unescape(path).ok_or_else(|| err("bad escape in path"))?;
        let id = SourceIdentity {
            kind: kind.into(),
            instance: instance.into(),
            path,
        };
        if id.text() != text {
            return Err(err("not canonical"));
        }
        Ok(id)
    }

    /// The value of the [`SOURCE_TAG`]: the text, or `sha256:<hex>` of it when too long.
    pub fn tag_value(&self) -> String {
        tag_value_of(&self.text())
    }

    /// The description of a secret created for this identity (cut to AWS's limit; a cut
    /// description no longer proves a hashed tag, which makes the secret foreign when its
    /// source is gone: never wrongly pruned).
    pub fn description(&self) -> String {
        let mut d = format!("{DESCRIPTION_LEAD}{}", self.text());
        if d.len() > MAX_DESCRIPTION_CHARS {
            d.truncate(MAX_DESCRIPTION_CHARS); // the text is ASCII: every index is a boundary
        }
        d
    }
}

impl fmt::Display for SourceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

fn tag_value_of(text: &str) -> String {
    if text.len() <= MAX_TAG_VALUE_CHARS {
        text.to_owned()
    } else {
        format!(
            "{HASHED_TAG_LEAD}{}",
            hex::encode(Sha256::digest(text.as_bytes()))
        )
    }
}

/// How a source tag that holds a hash of the identity (too long for a tag) begins; the
/// identity itself is then in the description.
pub const HASHED_TAG_LEAD: &str = "sha256:";

/// Reads the identity a managed secret's tags (and description) record, if it can be read.
pub fn recorded_identity(source_tag: &str, description: Option<&str>) -> Option<SourceIdentity> {
    if source_tag.starts_with(HASHED_TAG_LEAD) {
        let text = description?.strip_prefix(DESCRIPTION_LEAD)?;
        if tag_value_of(text) != source_tag {
            return None;
        }
        SourceIdentity::parse(text).ok()
    } else {
        SourceIdentity::parse(source_tag).ok()
    }
}

/// The part of a source a job reads, and therefore owns: kind, instance, subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    kind: Arc<str>,
    instance: Arc<str>,
    subtree: String,
}

impl Scope {
    /// A scope; `subtree` is `/`-separated, leading and trailing slashes ignored (`""` = all).
    pub fn new(kind: &str, instance: &str, subtree: &str) -> Self {
        Scope {
            kind: kind.into(),
            instance: instance.into(),
            subtree: subtree.trim_matches('/').to_owned(),
        }
    }

    /// The source kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The identity of the secret at `rel` (relative to the subtree).
    pub fn identity(&self, rel: &str) -> SourceIdentity {
        let rel = rel.trim_matches('/');
        let path = match (self.subtree.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_owned(),
            (false, true) => self.subtree.clone(),
            (false, false) => format!("{}/{rel}", self.subtree),
        };
        SourceIdentity {
            kind: self.kind.clone(),
            instance: self.instance.clone(),
            path: path.trim_matches('/').to_owned(),
        }
    }

    /// Whether `id` lies inside this scope: same kind and instance, and its path is the subtree
    /// or under it, segment by segment.
    pub fn contains(&self, id: &SourceIdentity) -> bool {
        id.kind == self.kind
            && id.instance == self.instance
            && (self.subtree.is_empty()
                || id.path == self.subtree
                || id
                    .path
                    .strip_prefix(self.subtree.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The path of `id` relative to the subtree (what [`Scope::identity`] was given), when `id`
    /// lies inside this scope.
    pub fn relative<'i>(&self, id: &'i SourceIdentity) -> Option<&'i str> {
        if !self.contains(id) {
            return None;
        }
        if self.subtree.is_empty() {
            return Some(&id.path);
        }
        Some(
            id.path
                .strip_prefix(self.subtree.as_str())
                .unwrap_or("")
                .trim_start_matches('/'),
        )
    }

    /// Human words for the scope, for messages.
    pub fn describe(&self) -> String {
        if self.subtree.is_empty() {
            format!("{} {}", self.kind, self.instance)
        } else {
            format!("{} {} under {}", self.kind, self.instance, self.subtree)
        }
    }
}

/// How a job stands to a secret found in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Not written by secretport.
    Unmanaged,
    /// Ours: inside our scope, under our prefix.
    Owned(SourceIdentity),
    /// Managed by secretport for someone else; the words say whose.
    Foreign(String),
}

impl Ownership {
    /// Whether the secret is ours.
    pub fn is_owned(&self) -> bool {
        matches!(self, Ownership::Owned(_))
    }
}

/// Decides how the job with `scope` and `prefix` stands to a secret with these tags and
/// description. The one place ownership is decided.
pub fn ownership(
    scope: &Scope,
    prefix: &str,
    tags: &crate::target::tags::Tags,
    description: Option<&str>,
) -> Ownership {
    if tags.get(MANAGED_TAG) != Some("true") {
        return Ownership::Unmanaged;
    }
    let Some(source) = tags.get(SOURCE_TAG) else {
        return Ownership::Foreign("managed, without a source tag".into());
    };
    let Some(id) = recorded_identity(source, description) else {
        return Ownership::Foreign(format!(
            "managed for an unreadable source identity {source}"
        ));
    };
    let their_prefix = tags.get(PREFIX_TAG);
    if scope.contains(&id) && their_prefix == Some(prefix) {
        // share the scope's kind and instance rather than keep a copy per secret
        Ownership::Owned(SourceIdentity {
            kind: scope.kind.clone(),
            instance: scope.instance.clone(),
            path: id.path,
        })
    } else {
        let under = match their_prefix {
            Some("") => " (no prefix)".to_owned(),
            Some(p) => format!(" (prefix {p})"),
            None => " (no prefix tag)".to_owned(),
        };
        Ownership::Foreign(format!(
            "managed by secretport for {} {} path {}{under}",
            id.kind, id.instance, id.path
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn text_round_trips_whatever_the_path_holds() {
        for (instance, path) in [
            ("http://127.0.0.1:8200/secret", "apps/db"),
            ("https://v.example.com/team-a/secret", "café/naïve"),
            ("/tmp/x y/export.jsonl", "a b/c#d=e%f"),
            ("", ""),
            ("us-east-1", "with\nnewline and 'quote'"),
        ] {
            let id = SourceIdentity::new("vault", instance, path);
            let t = id.text();
            assert_eq!(t.matches(' ').count(), 1, "{t}");
            assert_eq!(SourceIdentity::parse(&t).unwrap(), id, "{t}");
        }
    }

    #[test]
    fn parse_refuses_what_it_did_not_write() {
        for bad in [
            "vault:http://127.0.0.1:8200/secret/apps/db", // 0.1 form: no space
            "Vault:x y",
            ":x y",
            "vault:x y z",
            "vault:x =4",
            "vault:x =41", // 'A' escaped: not canonical
            "vault:x =c3=a9",
        ] {
            assert!(SourceIdentity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_is_segment_wise() {
        let s = Scope::new("vault", "http://v/secret", "apps/");
        let id = |p: &str| SourceIdentity::new("vault", "http://v/secret", p);
        assert!(s.contains(&id("apps/db")));
        assert!(s.contains(&id("apps")));
        assert!(!s.contains(&id("apps2/db")));
        assert!(!s.contains(&id("app")));
        assert!(!s.contains(&SourceIdentity::new("vault", "http://v/kv", "apps/db")));
        assert!(!s.contains(&SourceIdentity::new("file", "http://v/secret", "apps/db")));
        let all = Scope::new("vault", "http://v/secret", "");
        assert!(all.contains(&id("apps2/db")));
        assert_eq!(s.identity("db"), id("apps/db"));
    }

    fn tags(source: &str, prefix: Option<&str>) -> crate::target::tags::Tags {
        let mut t = BTreeMap::from([
            (MANAGED_TAG.to_owned(), "true".to_owned()),
            (SOURCE_TAG.to_owned(), source.to_owned()),
        ]);
        if let Some(p) = prefix {
            t.insert(PREFIX_TAG.to_owned(), p.to_owned());
        }
        t.into()
    }

    #[test]
    fn ownership_needs_scope_and_prefix() {
        let scope = Scope::new("vault", "http://v/secret", "apps");
        let mine = scope.identity("db").tag_value();
        assert!(ownership(&scope, "devops", &tags(&mine, Some("devops")), None).is_owned());
        // same source, written under a nested prefix by another config
        assert!(matches!(
            ownership(&scope, "devops", &tags(&mine, Some("devops/x")), None),
            Ownership::Foreign(_)
        ));
        let other = Scope::new("vault", "http://v/secret", "apps2").identity("db");
        assert!(matches!(
            ownership(&scope, "devops", &tags(&other.tag_value(), Some("devops")), None),
            Ownership::Foreign(w) if w.contains("apps2/db")
        ));
        assert_eq!(
            ownership(&scope, "devops", &Default::default(), None),
            Ownership::Unmanaged
        );
        assert!(matches!(
            ownership(&scope, "devops", &tags("file:a/b", Some("devops")), None),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn long_identities_hash_and_prove_themselves_by_description() {
        let scope = Scope::new("vault", "http://v/secret", "");
        let id = scope.identity(&"x#".repeat(200));
        let tag = id.tag_value();
        assert!(tag.starts_with("sha256:") && tag.len() == 71);
        let d = id.description();
        assert!(ownership(&scope, "", &tags(&tag, Some("")), Some(&d)).is_owned());
        // an edited description proves nothing: foreign, never pruned
        let edited = d.replace("x", "y");
        assert!(!ownership(&scope, "", &tags(&tag, Some("")), Some(&edited)).is_owned());
        assert!(!ownership(&scope, "", &tags(&tag, Some("")), None).is_owned());
    }
}
