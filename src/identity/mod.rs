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
//! ## Scope and proof
//! A job's scope is its source instance (kind and instance), its configured base path (the
//! subtree) and its target prefix. A job owns a managed secret only when the secret was written
//! for **exactly** that scope: its identity lies in the subtree, its [`PREFIX_TAG`] is the
//! prefix, and its [`OWNER_TAG`] holds the proof only a holder of the token key can make for
//! that name, that scope and that prefix ([`token::TokenDeriver::ownership_proof`]). Containment
//! alone proves nothing: a job reading `apps/` does not own what a job reading `apps/shared/`
//! wrote into the same prefix (that secret's proof verifies for `apps/shared`, so it is
//! foreign). Tags anyone can write never suffice: a secret that claims the scope without a
//! verifying proof is [`Ownership::Unverified`], a conflict that nothing deletes and only an
//! explicit adoption takes over. Everything else that is managed is *foreign*: never updated,
//! never an orphan, never pruned. A secret whose identity cannot be read (hand-edited tags, an
//! identity from before this format) is foreign too: when in doubt, secretport leaves a secret
//! alone.

pub mod token;

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Tag that marks a secret as written by secretport (value `true`).
pub(crate) const MANAGED_TAG: &str = "secretport:managed";
/// Tag that records the source identity.
pub(crate) const SOURCE_TAG: &str = "secretport:source";
/// Tag that records the target prefix the secret was written under (`""` for none).
pub(crate) const PREFIX_TAG: &str = "secretport:prefix";
/// Tag that proves ownership: a keyed MAC of the secret's name, the writing job's exact scope
/// and its prefix ([`token::TokenDeriver::ownership_proof`]).
pub const OWNER_TAG: &str = "secretport:owner";
/// The description's fixed start; the identity text follows.
pub(crate) const DESCRIPTION_LEAD: &str = "Migrated by secretport from ";
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

    /// The description of a secret created for this identity when its source describes the
    /// secret itself (an SSM parameter's `Description`): the source's text, cut to AWS's limit,
    /// when the identity fits in the source tag (the description then proves nothing and is
    /// free); otherwise the identity's own [`description`](Self::description), which proves the
    /// hashed tag, and `false`: the source's text was left out.
    pub(crate) fn description_with(&self, source: Option<&str>) -> (String, bool) {
        match source.filter(|d| !d.is_empty()) {
            None => (self.description(), true),
            Some(_) if self.text().len() > MAX_TAG_VALUE_CHARS => (self.description(), false),
            Some(d) => {
                let cut = d
                    .char_indices()
                    .nth(MAX_DESCRIPTION_CHARS)
                    .map_or(d.len(), |(i, _)| i);
                (d[..cut].to_owned(), true)
            }
        }
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
pub(crate) const HASHED_TAG_LEAD: &str = "sha256:";

/// Reads the identity a managed secret's tags (and description) record, if it can be read.
pub(crate) fn recorded_identity(
    source_tag: &str,
    description: Option<&str>,
) -> Option<SourceIdentity> {
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

    /// The identity of the full path `path` (subtree included) in this scope's kind and
    /// instance.
    pub(crate) fn identity_at(&self, path: &str) -> SourceIdentity {
        SourceIdentity {
            kind: self.kind.clone(),
            instance: self.instance.clone(),
            path: path.to_owned(),
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
        Some(self.relative_path(&id.path))
    }

    /// The full path `path` of an identity inside this scope, relative to the subtree.
    pub(crate) fn relative_path<'p>(&self, path: &'p str) -> &'p str {
        if self.subtree.is_empty() {
            return path;
        }
        path.strip_prefix(self.subtree.as_str())
            .unwrap_or("")
            .trim_start_matches('/')
    }

    /// Human words for the scope, for messages.
    pub(crate) fn describe(&self) -> String {
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
    /// Ours, proven: its ownership proof verifies for its name, this job's exact scope and
    /// prefix.
    Owned(SourceIdentity),
    /// Its tags claim this job's scope and prefix, but no proof verifies: never updated,
    /// retagged, orphaned, pruned or rolled back; a conflict where a source maps to its name,
    /// taken over only by an explicit adoption (`reconcile --adopt`).
    Unverified {
        /// The identity its tags claim (inside this job's scope).
        identity: SourceIdentity,
        /// Why it cannot be verified.
        why: Unproven,
    },
    /// Managed by secretport for someone else; the words say whose.
    Foreign(String),
}

/// Why a secret whose tags claim a job's scope is not proven to be that job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unproven {
    /// It carries no [`OWNER_TAG`] (written before proofs existed, or tagged by hand).
    NoProof,
    /// Its proof does not verify for this name and scope (tags copied to another name,
    /// forged, or written under another token key).
    BadProof,
    /// No token key exists to verify a proof with.
    NoKey,
    /// Its tags name this source by the absolute path file-based sources recorded before
    /// their identity became relative to the config folder.
    LegacyInstance,
}

impl Unproven {
    /// Words for the report.
    pub fn words(self) -> &'static str {
        match self {
            Unproven::NoProof => "it carries no secretport:owner proof (written before ownership proofs, or tagged by hand)",
            Unproven::BadProof => "its secretport:owner proof does not verify for this name and scope (tags copied or forged, or another token key)",
            Unproven::NoKey => "no token key exists in this account to verify its proof with",
            Unproven::LegacyInstance => "its tags name this source by the absolute path earlier versions recorded",
        }
    }
}

impl Ownership {
    #[cfg(test)]
    /// Whether the secret is ours.
    pub(crate) fn is_owned(&self) -> bool {
        matches!(self, Ownership::Owned(_))
    }
}

/// What [`ownership`] reads of one secret.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Its name (the proof is bound to it).
    pub name: &'a str,
    /// Its tags.
    pub tags: &'a crate::target::tags::Tags,
    /// Its description (carries the identity when the source tag is a hash).
    pub description: Option<&'a str>,
}

/// Decides how the job with `scope` and `prefix` stands to a secret, verifying its ownership
/// proof with `key` (the token key; `None` when the account has none). The one place ownership
/// is decided: plan, reconcile, prune and rollback all ask it.
///
/// - Not tagged managed: [`Ownership::Unmanaged`].
/// - Recorded identity unreadable, of another source instance, outside the scope's subtree, or
///   another prefix: [`Ownership::Foreign`].
/// - Inside the subtree under this prefix: [`Ownership::Owned`] only when the proof verifies
///   for this name and this **exact** scope. A proof that verifies for another base path of the
///   same source (a nested or enclosing job: `svc/` vs `svc/tiny/`) is that job's:
///   [`Ownership::Foreign`]. Anything else is [`Ownership::Unverified`].
pub fn ownership(
    scope: &Scope,
    prefix: &str,
    claim: Claim<'_>,
    key: Option<&token::TokenDeriver>,
) -> Ownership {
    match standing(scope, prefix, claim) {
        Standing::Unmanaged => Ownership::Unmanaged,
        Standing::Foreign(words) => Ownership::Foreign(words),
        Standing::Legacy(identity) => Ownership::Unverified {
            identity,
            why: Unproven::LegacyInstance,
        },
        Standing::Claims(id) => proven(
            scope,
            prefix,
            claim.name,
            id,
            claim.tags.get(OWNER_TAG),
            key,
        ),
    }
}

/// How a secret stands to a job before its proof is checked: what its tags alone say (the
/// first half of [`ownership`], which needs no key). The inventory is classified so page by
/// page while it is read ([`crate::target::listed`]); the proof is checked once the key is in
/// hand ([`proven`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Not written by secretport.
    Unmanaged,
    /// Managed for someone else; the words say whose.
    Foreign(String),
    /// Its tags name this very source by the absolute path earlier versions recorded
    /// (identity in this scope's kind and instance): unverified, only `--adopt` takes it over.
    Legacy(SourceIdentity),
    /// Its tags claim this job's scope and prefix (the identity in this scope's kind and
    /// instance): owned only if its proof verifies ([`proven`]).
    Claims(SourceIdentity),
}

/// What a secret's tags (and description) say about the job with `scope` and `prefix`,
/// without its proof (see [`ownership`] for the rules).
pub(crate) fn standing(scope: &Scope, prefix: &str, claim: Claim<'_>) -> Standing {
    let tags = claim.tags;
    if tags.get(MANAGED_TAG) != Some("true") {
        return Standing::Unmanaged;
    }
    let Some(source) = tags.get(SOURCE_TAG) else {
        return Standing::Foreign("managed, without a source tag".into());
    };
    let Some(id) = recorded_identity(source, claim.description) else {
        return Standing::Foreign(format!(
            "managed for an unreadable source identity {source}"
        ));
    };
    let their_prefix = tags.get(PREFIX_TAG);
    if their_prefix == Some(prefix) && legacy_of(scope, &id) {
        // written before file-based instances were relative to the config folder: its tags
        // name this very source by its old absolute path; only `--adopt` may take it over
        return Standing::Legacy(SourceIdentity {
            kind: scope.kind.clone(),
            instance: scope.instance.clone(),
            path: id.path,
        });
    }
    if !scope.contains(&id) || their_prefix != Some(prefix) {
        let under = match their_prefix {
            Some("") => " (no prefix)".to_owned(),
            Some(p) => format!(" (prefix {p})"),
            None => " (no prefix tag)".to_owned(),
        };
        return Standing::Foreign(format!(
            "managed by secretport for {} {} path {}{under}",
            id.kind, id.instance, id.path
        ));
    }
    // share the scope's kind and instance rather than keep a copy per secret
    Standing::Claims(SourceIdentity {
        kind: scope.kind.clone(),
        instance: scope.instance.clone(),
        path: id.path,
    })
}

/// The second half of [`ownership`]: a secret `name` whose tags claim `id` in the job's scope
/// and prefix ([`Standing::Claims`]) is owned only when `proof` (its [`OWNER_TAG`]) verifies
/// under `key` for this name and this exact scope; a proof of another base path of the same
/// source is that job's ([`Ownership::Foreign`]); anything else is unverified.
pub fn proven(
    scope: &Scope,
    prefix: &str,
    name: &str,
    id: SourceIdentity,
    proof: Option<&str>,
    key: Option<&token::TokenDeriver>,
) -> Ownership {
    let Some(key) = key else {
        return Ownership::Unverified {
            identity: id,
            why: Unproven::NoKey,
        };
    };
    let Some(proof) = proof else {
        return Ownership::Unverified {
            identity: id,
            why: Unproven::NoProof,
        };
    };
    if key.ownership_proof(name, scope, prefix) == proof {
        return Ownership::Owned(id);
    }
    // another job of the same source whose base path is an ancestor or a descendant of ours
    // (every base that contains the secret's path is a candidate): its proof is genuine
    for base in bases_of(&id.path).filter(|b| *b != scope.subtree) {
        let other = Scope {
            kind: scope.kind.clone(),
            instance: scope.instance.clone(),
            subtree: base.to_owned(),
        };
        if key.ownership_proof(name, &other, prefix) == proof {
            return Ownership::Foreign(format!(
                "managed by secretport for another scope: {} (prefix {})",
                other.describe(),
                prefix_words(prefix)
            ));
        }
    }
    Ownership::Unverified {
        identity: id,
        why: Unproven::BadProof,
    }
}

/// Whether `id` is this file-based scope's source recorded under its old absolute-path instance
/// (see `source::instance::legacy_instance_matches`), inside the subtree.
fn legacy_of(scope: &Scope, id: &SourceIdentity) -> bool {
    use crate::source::SourceKind;
    let relative = match SourceKind::parse(&scope.kind) {
        Some(SourceKind::File | SourceKind::Kms) => scope.instance.as_ref(),
        Some(SourceKind::Sops) => "", // the old instance was the config folder; the path decides
        _ => return false,
    };
    id.kind == scope.kind
        && id.instance != scope.instance
        && crate::source::instance::legacy_instance_matches(relative, &id.instance)
        && Scope {
            kind: scope.kind.clone(),
            instance: id.instance.clone(),
            subtree: scope.subtree.clone(),
        }
        .contains(id)
}

fn prefix_words(prefix: &str) -> &str {
    if prefix.is_empty() {
        "none"
    } else {
        prefix
    }
}

/// Every base path that contains `path`: `""`, `a`, `a/b`, ... up to `path` itself.
fn bases_of(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(
        path.match_indices('/')
            .map(move |(i, _)| &path[..i])
            .chain((!path.is_empty()).then_some(path)),
    )
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

    fn key(k: &[u8]) -> token::TokenDeriver {
        token::TokenDeriver::keyed(zeroize::Zeroizing::new(k.to_vec()))
    }

    fn tags(source: &str, prefix: Option<&str>) -> crate::target::tags::Tags {
        tags_with(source, prefix, None)
    }

    fn tags_with(
        source: &str,
        prefix: Option<&str>,
        proof: Option<&str>,
    ) -> crate::target::tags::Tags {
        let mut t = BTreeMap::from([
            (MANAGED_TAG.to_owned(), "true".to_owned()),
            (SOURCE_TAG.to_owned(), source.to_owned()),
        ]);
        if let Some(p) = prefix {
            t.insert(PREFIX_TAG.to_owned(), p.to_owned());
        }
        if let Some(p) = proof {
            t.insert(OWNER_TAG.to_owned(), p.to_owned());
        }
        t.into()
    }

    fn claim<'a>(name: &'a str, tags: &'a crate::target::tags::Tags) -> Claim<'a> {
        Claim {
            name,
            tags,
            description: None,
        }
    }

    /// The tags a job with `scope` and `prefix` writes on `name` for the secret at `rel`.
    fn written(
        k: &token::TokenDeriver,
        scope: &Scope,
        prefix: &str,
        name: &str,
        rel: &str,
    ) -> crate::target::tags::Tags {
        let proof = k.ownership_proof(name, scope, prefix);
        tags_with(&scope.identity(rel).tag_value(), Some(prefix), Some(&proof))
    }

    #[test]
    fn exact_scope_nested_and_sibling() {
        let k = key(b"0123456789abcdef0123");
        let i = "http://v/secret";
        let outer = Scope::new("vault", i, "svc");
        let inner = Scope::new("vault", i, "svc/tiny");
        let sibling = Scope::new("vault", i, "svc2");
        let whole = Scope::new("vault", i, "");
        // the inner job's secret svc/tiny/t0, written as p/t0
        let t = written(&k, &inner, "p", "p/t0", "t0");
        assert!(ownership(&inner, "p", claim("p/t0", &t), Some(&k)).is_owned());
        // the outer job's scope contains it, but the proof is the inner job's: foreign
        for other in [&outer, &whole] {
            assert!(matches!(
                ownership(other, "p", claim("p/t0", &t), Some(&k)),
                Ownership::Foreign(w) if w.contains("under svc/tiny")
            ));
        }
        // the outer job's secret svc/tiny/t0 (named p/tiny/t0): the inner job's scope contains
        // it, the proof is the enclosing job's: foreign
        let t = written(&k, &outer, "p", "p/tiny/t0", "tiny/t0");
        assert!(ownership(&outer, "p", claim("p/tiny/t0", &t), Some(&k)).is_owned());
        assert!(matches!(
            ownership(&inner, "p", claim("p/tiny/t0", &t), Some(&k)),
            Ownership::Foreign(w) if w.contains("under svc (")
        ));
        // a sibling with a common name prefix is not inside at all
        let t = written(&k, &sibling, "p", "p/x", "x");
        assert!(matches!(
            ownership(&outer, "p", claim("p/x", &t), Some(&k)),
            Ownership::Foreign(_)
        ));
        // same scope, another prefix: foreign
        let t = written(&k, &outer, "q", "q/a", "a");
        assert!(matches!(
            ownership(&outer, "p", claim("q/a", &t), Some(&k)),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn the_proof_verifies_for_its_name_scope_prefix_and_key_only() {
        let k = key(b"0123456789abcdef0123");
        let scope = Scope::new("file", "exports/a.jsonl", "");
        let t = written(&k, &scope, "p", "p/db", "db");
        assert!(ownership(&scope, "p", claim("p/db", &t), Some(&k)).is_owned());
        let unverified = |o: Ownership, want: Unproven| {
            assert!(
                matches!(&o, Ownership::Unverified { why, .. } if *why == want),
                "{o:?}"
            )
        };
        // the same tags copied to another name (a backup script's `…copy`)
        unverified(
            ownership(&scope, "p", claim("p/db-copy", &t), Some(&k)),
            Unproven::BadProof,
        );
        // another key (another account's, a forger's)
        unverified(
            ownership(
                &scope,
                "p",
                claim("p/db", &t),
                Some(&key(b"another key, 16+ b")),
            ),
            Unproven::BadProof,
        );
        // no key in the account
        unverified(
            ownership(&scope, "p", claim("p/db", &t), None),
            Unproven::NoKey,
        );
        // our tags without a proof, with garbage, with another scope's proof for this name
        let id = scope.identity("db").tag_value();
        unverified(
            ownership(&scope, "p", claim("p/db", &tags(&id, Some("p"))), Some(&k)),
            Unproven::NoProof,
        );
        let garbage = tags_with(&id, Some("p"), Some("v1:00000000000000000000000000000000"));
        unverified(
            ownership(&scope, "p", claim("p/db", &garbage), Some(&k)),
            Unproven::BadProof,
        );
        let elsewhere = Scope::new("file", "exports/b.jsonl", "");
        let proof = k.ownership_proof("p/db", &elsewhere, "p");
        let lifted = tags_with(&id, Some("p"), Some(&proof));
        unverified(
            ownership(&scope, "p", claim("p/db", &lifted), Some(&k)),
            Unproven::BadProof,
        );
        // a proof says nothing about the key, and is stable
        let p1 = k.ownership_proof("p/db", &scope, "p");
        assert_eq!(p1, k.ownership_proof("p/db", &scope, "p"));
        assert!(
            p1.starts_with(token::PROOF_VERSION) && p1.len() == 35,
            "{p1}"
        );
        assert_ne!(p1, k.ownership_proof("p/db", &scope, "q"));
        assert_ne!(
            p1,
            k.ownership_proof("p/db", &Scope::new("file", "exports/a.jsonl", "x"), "p")
        );
    }

    #[test]
    fn an_absolute_path_identity_of_earlier_versions_is_adoptable_never_owned() {
        let k = key(b"0123456789abcdef0123");
        let scope = Scope::new("file", "exports/a.jsonl", "");
        let old = Scope::new("file", "/home/ci/work/exports/a.jsonl", "");
        let t = tags(&old.identity("db").tag_value(), Some("p"));
        assert!(matches!(
            ownership(&scope, "p", claim("p/db", &t), Some(&k)),
            Ownership::Unverified { why: Unproven::LegacyInstance, identity } if identity == scope.identity("db")
        ));
        // another file's, or another prefix: foreign
        let other = Scope::new("file", "/home/ci/work/exports/b.jsonl", "");
        let t = tags(&other.identity("db").tag_value(), Some("p"));
        assert!(matches!(
            ownership(&scope, "p", claim("p/db", &t), Some(&k)),
            Ownership::Foreign(_)
        ));
        let t = tags(&old.identity("db").tag_value(), Some("q"));
        assert!(matches!(
            ownership(&scope, "p", claim("p/db", &t), Some(&k)),
            Ownership::Foreign(_)
        ));
        // Vault instances never had that form
        let v = Scope::new("vault", "http://v/secret", "");
        let t = tags(
            &Scope::new("vault", "/x/http://v/secret", "")
                .identity("db")
                .tag_value(),
            Some("p"),
        );
        assert!(matches!(
            ownership(&v, "p", claim("p/db", &t), Some(&k)),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn bases_of_every_depth() {
        assert_eq!(
            bases_of("a/b/c").collect::<Vec<_>>(),
            ["", "a", "a/b", "a/b/c"]
        );
        assert_eq!(bases_of("a").collect::<Vec<_>>(), ["", "a"]);
        assert_eq!(bases_of("").collect::<Vec<_>>(), [""]);
    }

    #[test]
    fn ownership_needs_scope_and_prefix() {
        let k = key(b"0123456789abcdef0123");
        let scope = Scope::new("vault", "http://v/secret", "apps");
        let mine = written(&k, &scope, "devops", "devops/db", "db");
        assert!(ownership(&scope, "devops", claim("devops/db", &mine), Some(&k)).is_owned());
        // same source, written under a nested prefix by another config
        let src = scope.identity("db").tag_value();
        assert!(matches!(
            ownership(
                &scope,
                "devops",
                claim("devops/db", &tags(&src, Some("devops/x"))),
                Some(&k)
            ),
            Ownership::Foreign(_)
        ));
        let other = Scope::new("vault", "http://v/secret", "apps2").identity("db");
        assert!(matches!(
            ownership(&scope, "devops", claim("devops/db", &tags(&other.tag_value(), Some("devops"))), Some(&k)),
            Ownership::Foreign(w) if w.contains("apps2/db")
        ));
        assert_eq!(
            ownership(
                &scope,
                "devops",
                claim("devops/db", &Default::default()),
                Some(&k)
            ),
            Ownership::Unmanaged
        );
        assert!(matches!(
            ownership(
                &scope,
                "devops",
                claim("devops/db", &tags("file:a/b", Some("devops"))),
                Some(&k)
            ),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn long_identities_hash_and_prove_themselves_by_description() {
        let k = key(b"0123456789abcdef0123");
        let scope = Scope::new("vault", "http://v/secret", "");
        let id = scope.identity(&"x#".repeat(200));
        let tag = id.tag_value();
        assert!(tag.starts_with("sha256:") && tag.len() == 71);
        let proof = k.ownership_proof("n", &scope, "");
        let t = tags_with(&tag, Some(""), Some(&proof));
        let d = id.description();
        let with = |description| Claim {
            name: "n",
            tags: &t,
            description,
        };
        assert!(ownership(&scope, "", with(Some(&d)), Some(&k)).is_owned());
        // an edited description proves nothing: foreign, never pruned
        let edited = d.replace("x", "y");
        assert!(!ownership(&scope, "", with(Some(&edited)), Some(&k)).is_owned());
        assert!(!ownership(&scope, "", with(None), Some(&k)).is_owned());
    }

    #[test]
    fn a_sources_description_is_kept_only_where_the_identity_fits_its_tag() {
        let scope = Scope::new("ssm", "us-east-1", "prod");
        let short = scope.identity("db/password");
        let long = scope.identity(&"n".repeat(300));
        let own = |id: &SourceIdentity| (id.description(), true);
        // (identity, the source's description) -> (the secret's description, kept)
        let cases: Vec<(&SourceIdentity, Option<String>, (String, bool))> = vec![
            (&short, None, own(&short)),
            (&short, Some(String::new()), own(&short)),
            (
                &short,
                Some("DB password".into()),
                ("DB password".into(), true),
            ),
            (&long, None, own(&long)),
            (
                &long,
                Some("DB password".into()),
                (long.description(), false),
            ),
            // cut at AWS's limit on a character boundary
            (
                &short,
                Some("é".repeat(MAX_DESCRIPTION_CHARS + 5)),
                ("é".repeat(MAX_DESCRIPTION_CHARS), true),
            ),
        ];
        for (id, source, want) in cases {
            assert_eq!(id.description_with(source.as_deref()), want, "{source:?}");
        }
        assert!(long.tag_value().starts_with(HASHED_TAG_LEAD));
    }
}
