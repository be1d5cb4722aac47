//! The inventory as a run keeps it: one compact [`Listed`] record per secret under the prefix,
//! made page by page while `ListSecrets` is read ([`Inventory::read`]).
//!
//! A reconcile holds the inventory of its prefix while it plans, and each plan item keeps the
//! record of the secret at its name until it has run: up to a region's 500,000 secrets. A
//! [`TargetSecret`] with its name, ARN, tags, description and version ids as strings is
//! 0.7–1.6 KiB a secret (742 bytes in the scale bench); a `Listed` keeps what the
//! plan and the executor read in about a quarter (187 bytes there):
//!
//! - the name (once); the ARN as the 6 characters AWS appends to the name, the rest of it
//!   (partition, region, account) being the same for every secret of the inventory; the path
//!   its tags claim only when the name is not that path's under the prefix (a rewritten name);
//! - the `AWSCURRENT` and `AWSPREVIOUS` version ids as 16 bytes each when they are UUIDs (what
//!   secretport's tokens are), the ownership proof (`secretport:owner`) as its 16 bytes;
//! - what the tags say about ownership, decided while the page is read
//!   ([`identity::standing`], which needs no key): the proof itself is checked later against
//!   the record ([`Listed::verdict`], [`identity::proven`]), once the key is loaded; secretport's
//!   own tags as bits when they are exactly what they would be rebuilt as;
//! - everything else (a foreign ARN or version id, other tags, a deletion date, whose a foreign
//!   secret is) in a side box that most records do not have.
//!
//! Every field is stored compactly only when it is rebuilt byte for byte ([`Listed::tags`],
//! [`Listed::arn`], ...); anything else is kept as it came, so the plan, the executor and the
//! report see exactly what AWS listed. A foreign secret keeps only its name, ARN, deletion date
//! and the words naming its owner: nothing decides anything else about it.

use std::sync::{Arc, OnceLock};

use super::tags::Tags;
use super::{CallError, Target, TargetSecret};
use crate::identity::token::{uuid_text, TokenDeriver, PROOF_VERSION};
use crate::identity::{
    self, Claim, Ownership, Scope, SourceIdentity, Standing, Unproven, MANAGED_TAG, OWNER_TAG,
    PREFIX_TAG, SOURCE_TAG,
};

/// What every record of one inventory shares: the job's scope and prefix (secretport's tags
/// are rebuilt from them) and the part of the ARNs before the name.
#[derive(Debug)]
pub struct Common {
    scope: Scope,
    prefix: String,
    arn_base: OnceLock<Box<str>>,
}

impl Common {
    /// For the job with `scope` and `prefix`.
    pub fn new(scope: Scope, prefix: &str) -> Arc<Common> {
        Arc::new(Common {
            scope,
            prefix: prefix.to_owned(),
            arn_base: OnceLock::new(),
        })
    }

    /// `name` relative to the prefix (`prefix/` removed), when it is under it.
    fn relative<'n>(&self, name: &'n str) -> Option<&'n str> {
        if self.prefix.is_empty() {
            return Some(name);
        }
        name.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }
}

/// Bits of [`Listed::bits`].
mod bit {
    pub(crate) const CURRENT: u16 = 1 << 0;
    pub(crate) const PREVIOUS: u16 = 1 << 1;
    pub(crate) const PROOF: u16 = 1 << 2;
    /// The ARN is the base, the name, `-` and the 6-character tail.
    pub(crate) const ARN_TAIL: u16 = 1 << 3;
    /// The ARN is the base and the name.
    pub(crate) const ARN_PLAIN: u16 = 1 << 4;
    /// `secretport:managed` = `true`.
    pub(crate) const MANAGED: u16 = 1 << 5;
    /// `secretport:prefix` = the job's prefix.
    pub(crate) const PREFIX: u16 = 1 << 6;
    /// `secretport:source` = the tag value of the claimed identity.
    pub(crate) const SOURCE: u16 = 1 << 7;
    /// The claimed identity's path is the one of the name relative to the prefix.
    pub(crate) const PATH_IS_NAME: u16 = 1 << 8;
    /// Standing (two bits): unmanaged 0, foreign 1, legacy 2, claims 3.
    pub(crate) const STANDING_SHIFT: u16 = 9;
    pub(crate) const STANDING_MASK: u16 = 0b11 << STANDING_SHIFT;
}

/// What most records do not have: whatever could not be stored compactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rare {
    arn: Option<Box<str>>,
    current: Option<Box<str>>,
    previous: Option<Box<str>>,
    deleted_date: Option<Box<str>>,
    /// Tags not stored as bits.
    tags: Tags,
    /// Whose a foreign secret is.
    foreign: Option<Box<str>>,
}

/// One secret of the inventory, compact (see the module docs).
#[derive(Debug, Clone)]
pub struct Listed {
    common: Arc<Common>,
    name: Box<str>,
    current: [u8; 16],
    previous: [u8; 16],
    proof: [u8; 16],
    arn_tail: [u8; 6],
    bits: u16,
    /// The claimed identity's full path, when it is not the name's (a rewritten name).
    path: Option<Box<str>>,
    rare: Option<Box<Rare>>,
}

/// How the job stands to a listed secret once its proof is checked ([`Listed::verdict`]): the
/// classes of [`Ownership`] without their data, which the record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not written by secretport.
    Unmanaged,
    /// Ours, proven.
    Owned,
    /// Claims this job's scope without a proof that verifies.
    Unverified(Unproven),
    /// Managed for someone else.
    Foreign,
}

fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    let mut out = [0u8; 16];
    hex::decode_to_slice(&hex, &mut out).ok()?;
    (uuid_text(&out) == s).then_some(out)
}

fn proof_bytes(s: &str) -> Option<[u8; 16]> {
    let hex = s.strip_prefix(PROOF_VERSION)?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex, &mut out).ok()?;
    (hex::encode(out) == hex).then_some(out)
}

fn proof_text(b: &[u8; 16]) -> String {
    format!("{PROOF_VERSION}{}", hex::encode(b))
}

impl Listed {
    /// The compact record of `s`, listed for the job `common` describes; its standing is
    /// decided from its tags and description now ([`identity::standing`]).
    pub fn new(s: TargetSecret, common: &Arc<Common>) -> Listed {
        let TargetSecret {
            name,
            arn,
            tags,
            description,
            deleted_date,
            current_version,
            previous_version,
            replication: _,
        } = s;
        let mut rare = Rare {
            deleted_date: deleted_date.map(String::into_boxed_str),
            ..Rare::default()
        };
        let mut bits = 0u16;
        let standing = identity::standing(
            &common.scope,
            &common.prefix,
            Claim {
                name: &name,
                tags: &tags,
                description: description.as_deref(),
            },
        );
        let (code, claimed) = match standing {
            Standing::Unmanaged => (0, None),
            Standing::Foreign(words) => {
                rare.foreign = Some(words.into_boxed_str());
                (1, None)
            }
            Standing::Legacy(id) => (2, Some(id)),
            Standing::Claims(id) => (3, Some(id)),
        };
        bits |= code << bit::STANDING_SHIFT;
        let foreign = code == 1;
        // the ARN: base + name (+ "-" + 6 characters)
        let mut arn_tail = [0u8; 6];
        let split = if let Some(base) = arn.strip_suffix(name.as_str()) {
            Some((base, None))
        } else {
            arn.len()
                .checked_sub(7)
                .and_then(|cut| arn.get(..cut).zip(arn.get(cut..)))
                .and_then(|(head, tail)| {
                    let t = tail.strip_prefix('-')?;
                    Some((head.strip_suffix(name.as_str())?, Some(t)))
                })
        };
        let base_ok = |base: &str| &**common.arn_base.get_or_init(|| base.into()) == base;
        match split {
            Some((base, None)) if base_ok(base) => bits |= bit::ARN_PLAIN,
            Some((base, Some(t))) if base_ok(base) && t.len() == 6 => {
                arn_tail.copy_from_slice(t.as_bytes());
                bits |= bit::ARN_TAIL;
            }
            _ => rare.arn = Some(arn.into_boxed_str()),
        }
        // version ids (a foreign secret's are never read)
        let mut current = [0u8; 16];
        let mut previous = [0u8; 16];
        if !foreign {
            for (id, slot, flag, text) in [
                (
                    current_version,
                    &mut current,
                    bit::CURRENT,
                    &mut rare.current,
                ),
                (
                    previous_version,
                    &mut previous,
                    bit::PREVIOUS,
                    &mut rare.previous,
                ),
            ] {
                match id.as_deref().map(|v| (uuid_bytes(v), v)) {
                    Some((Some(b), _)) => {
                        *slot = b;
                        bits |= flag;
                    }
                    Some((None, v)) => *text = Some(v.into()),
                    None => {}
                }
            }
        }
        // tags: secretport's as bits where they are rebuilt exactly, the rest as they came (a
        // foreign secret's are never read)
        let mut proof = [0u8; 16];
        let mut path = None;
        let mut other: Vec<(&str, &str)> = Vec::new();
        if !foreign {
            let path_is_name = claimed.as_ref().is_some_and(|id| {
                common.relative(&name).is_some_and(|rel| {
                    common.scope.identity(rel) == *id
                        && common.scope.relative_path(id.path()) == rel
                })
            });
            if let Some(id) = &claimed {
                if path_is_name {
                    bits |= bit::PATH_IS_NAME;
                } else {
                    path = Some(id.path().into());
                }
            }
            let source_tag = claimed.as_ref().map(SourceIdentity::tag_value);
            for (k, v) in tags.iter() {
                let compact = match k {
                    MANAGED_TAG if v == "true" => bit::MANAGED,
                    PREFIX_TAG if v == common.prefix => bit::PREFIX,
                    SOURCE_TAG if source_tag.as_deref() == Some(v) => bit::SOURCE,
                    OWNER_TAG => match proof_bytes(v) {
                        Some(b) => {
                            proof = b;
                            bit::PROOF
                        }
                        None => 0,
                    },
                    _ => 0,
                };
                if compact == 0 {
                    other.push((k, v));
                } else {
                    bits |= compact;
                }
            }
        } else if tags.get(MANAGED_TAG) == Some("true") {
            bits |= bit::MANAGED;
        }
        rare.tags = other.into_iter().collect();
        let rare = (rare != Rare::default()).then(|| Box::new(rare));
        Listed {
            common: Arc::clone(common),
            name: name.into_boxed_str(),
            current,
            previous,
            proof,
            arn_tail,
            bits,
            path,
            rare,
        }
    }

    fn has(&self, b: u16) -> bool {
        self.bits & b != 0
    }

    fn rare(&self) -> Option<&Rare> {
        self.rare.as_deref()
    }

    /// Whether it was listed for the job with `scope` and `prefix` (its standing and tags
    /// are decided and rebuilt for that job).
    pub(crate) fn is_for(&self, scope: &Scope, prefix: &str) -> bool {
        self.common.scope == *scope && self.common.prefix == prefix
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its ARN, as listed.
    pub fn arn(&self) -> String {
        let base = self.common.arn_base.get().map_or("", |b| &**b);
        if self.has(bit::ARN_PLAIN) {
            format!("{base}{}", self.name)
        } else if self.has(bit::ARN_TAIL) {
            let tail = std::str::from_utf8(&self.arn_tail).unwrap_or_default();
            format!("{base}{}-{tail}", self.name)
        } else {
            self.rare()
                .and_then(|r| r.arn.as_deref())
                .unwrap_or_default()
                .to_owned()
        }
    }

    fn version(&self, flag: u16, bytes: &[u8; 16], text: Option<&str>) -> Option<String> {
        if self.has(flag) {
            Some(uuid_text(bytes))
        } else {
            text.map(str::to_owned)
        }
    }

    /// The VersionId labelled `AWSCURRENT`, when the listing says.
    pub fn current_version(&self) -> Option<String> {
        let text = self.rare().and_then(|r| r.current.as_deref());
        self.version(bit::CURRENT, &self.current, text)
    }

    /// The VersionId labelled `AWSPREVIOUS`, when there is one.
    pub(crate) fn previous_version(&self) -> Option<String> {
        let text = self.rare().and_then(|r| r.previous.as_deref());
        self.version(bit::PREVIOUS, &self.previous, text)
    }

    /// When it is scheduled for deletion, if it is.
    pub fn deleted_date(&self) -> Option<&str> {
        self.rare().and_then(|r| r.deleted_date.as_deref())
    }

    /// Whether secretport wrote it (for any job).
    pub(crate) fn is_managed(&self) -> bool {
        self.has(bit::MANAGED)
    }

    /// The identity its tags claim in the job's scope (also for a legacy instance), if they do.
    pub fn claimed(&self) -> Option<SourceIdentity> {
        let scope = &self.common.scope;
        match self.path.as_deref() {
            Some(path) => Some(scope.identity_at(path)),
            None if self.has(bit::PATH_IS_NAME) => {
                Some(scope.identity(self.common.relative(&self.name)?))
            }
            None => None,
        }
    }

    /// The path its tags claim relative to the job's base path, when they claim the scope.
    pub(crate) fn claimed_path(&self) -> Option<&str> {
        let scope = &self.common.scope;
        match self.path.as_deref() {
            Some(path) => Some(scope.relative_path(path)),
            None if self.has(bit::PATH_IS_NAME) => self.common.relative(&self.name),
            None => None,
        }
    }

    fn standing_code(&self) -> u16 {
        (self.bits & bit::STANDING_MASK) >> bit::STANDING_SHIFT
    }

    /// Its ownership proof (`secretport:owner`), as tagged.
    fn proof(&self) -> Option<String> {
        if self.has(bit::PROOF) {
            Some(proof_text(&self.proof))
        } else {
            self.rare()
                .and_then(|r| r.tags.get(OWNER_TAG))
                .map(str::to_owned)
        }
    }

    /// How the job stands to it, its proof checked with `key` ([`identity::ownership`]'s rules:
    /// the standing decided from its tags while it was listed, then [`identity::proven`]).
    pub fn ownership(&self, key: Option<&TokenDeriver>) -> Ownership {
        let common = &self.common;
        match (self.standing_code(), self.claimed()) {
            (2, Some(identity)) => Ownership::Unverified {
                identity,
                why: Unproven::LegacyInstance,
            },
            (3, Some(id)) => identity::proven(
                &common.scope,
                &common.prefix,
                &self.name,
                id,
                self.proof().as_deref(),
                key,
            ),
            (1, _) => Ownership::Foreign(
                self.rare()
                    .and_then(|r| r.foreign.as_deref())
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => Ownership::Unmanaged,
        }
    }

    /// [`Listed::ownership`] without its data (the record holds it).
    pub(crate) fn verdict(&self, key: Option<&TokenDeriver>) -> Verdict {
        match self.ownership(key) {
            Ownership::Unmanaged => Verdict::Unmanaged,
            Ownership::Owned(_) => Verdict::Owned,
            Ownership::Unverified { why, .. } => Verdict::Unverified(why),
            Ownership::Foreign(_) => Verdict::Foreign,
        }
    }

    /// Its tags, as listed (a foreign secret's are not kept: only `secretport:managed`).
    pub fn tags(&self) -> Tags {
        let mut ours: Vec<(String, String)> = Vec::new();
        if self.has(bit::MANAGED) {
            ours.push((MANAGED_TAG.into(), "true".into()));
        }
        if self.has(bit::PREFIX) {
            ours.push((PREFIX_TAG.into(), self.common.prefix.clone()));
        }
        if self.has(bit::SOURCE) {
            if let Some(id) = self.claimed() {
                ours.push((SOURCE_TAG.into(), id.tag_value()));
            }
        }
        if self.has(bit::PROOF) {
            ours.push((OWNER_TAG.into(), proof_text(&self.proof)));
        }
        let rest = self.rare().map(|r| r.tags.iter()).into_iter().flatten();
        rest.map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain(ours)
            .collect()
    }

    /// The raw source tag, for messages.
    pub fn source_tag(&self) -> Option<String> {
        self.tags().get(SOURCE_TAG).map(str::to_owned)
    }

    #[cfg(test)]
    /// The secret as a [`TargetSecret`] (no description, no replication: the listing's).
    pub(crate) fn to_secret(&self) -> TargetSecret {
        TargetSecret {
            name: self.name.to_string(),
            arn: self.arn(),
            tags: self.tags(),
            description: None,
            deleted_date: self.deleted_date().map(str::to_owned),
            current_version: self.current_version(),
            previous_version: self.previous_version(),
            replication: None,
        }
    }
}

/// Every secret under a job's prefix, compact, sorted by name.
#[derive(Debug)]
pub struct Inventory {
    secrets: Vec<Arc<Listed>>,
}

impl Inventory {
    /// Reads the inventory of `prefix` from `target` a page at a time, keeping a compact
    /// record of each secret (its standing toward the job with `scope` decided as the page
    /// arrives).
    pub async fn read(
        target: &dyn Target,
        scope: &Scope,
        prefix: &str,
    ) -> Result<Inventory, CallError> {
        let common = Common::new(scope.clone(), prefix);
        let mut secrets: Vec<Arc<Listed>> = Vec::new();
        let mut keep = |page: Vec<TargetSecret>| {
            secrets.extend(page.into_iter().map(|s| Arc::new(Listed::new(s, &common))));
        };
        target.inventory(prefix, &mut keep).await?;
        Ok(Inventory::from_listed(secrets))
    }

    /// An inventory of records already made (sorted and deduplicated by name here).
    pub(crate) fn from_listed(mut secrets: Vec<Arc<Listed>>) -> Inventory {
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        secrets.dedup_by(|a, b| a.name == b.name);
        secrets.shrink_to_fit();
        Inventory { secrets }
    }

    /// The inventory of `secrets` as listed for the job with `scope` and `prefix` (tests).
    pub fn of(secrets: Vec<TargetSecret>, scope: &Scope, prefix: &str) -> Inventory {
        let common = Common::new(scope.clone(), prefix);
        Inventory::from_listed(
            secrets
                .into_iter()
                .map(|s| Arc::new(Listed::new(s, &common)))
                .collect(),
        )
    }

    /// The records, sorted by name.
    pub fn secrets(&self) -> &[Arc<Listed>] {
        &self.secrets
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Whether any is managed by secretport (for any job).
    pub(crate) fn any_managed(&self) -> bool {
        self.secrets.iter().any(|s| s.is_managed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::expected_tags;
    use std::collections::BTreeMap;

    fn key() -> TokenDeriver {
        TokenDeriver::keyed(zeroize::Zeroizing::new(vec![7; 32]))
    }

    fn managed(scope: &Scope, path: &str) -> TargetSecret {
        let id = scope.identity(path);
        let name = format!("p/{path}");
        let mut tags = expected_tags(&BTreeMap::new(), &BTreeMap::new(), &id, "p");
        tags.insert(
            OWNER_TAG.to_owned(),
            key().ownership_proof(&name, scope, "p"),
        );
        TargetSecret {
            arn: format!("arn:aws:secretsmanager:eu-west-1:1:secret:{name}-AbC1e2"),
            name,
            tags: tags.into(),
            description: Some(id.description()),
            current_version: Some(uuid_text(&[3; 16])),
            previous_version: Some("hand-edited".into()),
            ..TargetSecret::default()
        }
    }

    fn common(scope: &Scope) -> Arc<Common> {
        Common::new(scope.clone(), "p")
    }

    #[test]
    fn a_record_gives_back_what_was_listed() {
        let scope = Scope::new("vault", "http://v/secret", "apps");
        let c = common(&scope);
        let mut s = managed(&scope, "db");
        let mut tags = s.tags.to_map();
        tags.insert("team".into(), "x".into());
        s.tags = tags.into();
        s.deleted_date = Some("2030-01-01T00:00:00Z".into());
        let l = Listed::new(s.clone(), &c);
        assert!(
            l.rare.is_some(),
            "the deletion date, the hand-made version and a tag"
        );
        assert_eq!(
            l.to_secret(),
            TargetSecret {
                description: None,
                ..s
            }
        );
        // the same with every field compact
        let s = managed(&scope, "db");
        let s = TargetSecret {
            previous_version: None,
            ..s
        };
        let l = Listed::new(s.clone(), &c);
        assert!(l.rare.is_none(), "{l:?}");
        assert_eq!(
            l.to_secret(),
            TargetSecret {
                description: None,
                ..s
            }
        );
        // fields that do not have the usual shape come back as they were
        let odd = TargetSecret {
            name: "p/db".into(),
            arn: "arn:somewhere-else:p/db".into(),
            tags: [
                (MANAGED_TAG, "yes"),
                (OWNER_TAG, "v1:ABCDEF0123456789abcdef0123456789"),
                (PREFIX_TAG, "q"),
                (SOURCE_TAG, "vault:x y"),
            ]
            .into_iter()
            .collect(),
            current_version: Some("3A3A3A3A-3A3A-3A3A-3A3A-3A3A3A3A3A3A".into()),
            ..TargetSecret::default()
        };
        let l = Listed::new(odd.clone(), &c);
        assert_eq!(l.to_secret(), odd);
        assert_eq!(l.arn(), "arn:somewhere-else:p/db");
    }

    #[test]
    fn ownership_is_decided_from_the_record_as_from_the_secret() {
        let scope = Scope::new("vault", "http://v/secret", "");
        let c = common(&scope);
        let other = Scope::new("vault", "http://v/secret", "db");
        let cases = [
            managed(&scope, "app/db"),
            // a long identity is a hash in the tag, proven by the description
            managed(&scope, &"x#".repeat(200)),
            // another job's (nested base path), another source's, unmanaged
            managed(&other, "x"),
            managed(&Scope::new("file", "e.jsonl", ""), "a"),
            TargetSecret {
                name: "p/free".into(),
                ..TargetSecret::default()
            },
        ];
        let mut copied = managed(&scope, "app/db");
        copied.name = "p/copy".into();
        for s in cases.into_iter().chain([copied]) {
            for key in [Some(key()), None] {
                let want = s.ownership(&scope, "p", key.as_ref());
                let l = Listed::new(s.clone(), &c);
                assert_eq!(l.ownership(key.as_ref()), want, "{}", s.name);
            }
        }
        let long = Listed::new(managed(&scope, &"x#".repeat(200)), &c);
        assert!(long.ownership(Some(&key())).is_owned());
        assert_eq!(long.claimed_path(), Some("x#".repeat(200).as_str()));
    }
}
