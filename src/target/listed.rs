//! The inventory as a run keeps it: one compact record per secret under the prefix, made page
//! by page while `ListSecrets` is read ([`Inventory::read`]) and read through [`Listed`].
//!
//! A reconcile holds the inventory of its prefix while it plans, and each plan item points at
//! the record of the secret at its name until it has run: up to a region's 500,000 secrets. A
//! [`TargetSecret`] with its name, ARN, tags, description and version ids as strings is
//! 0.7–1.6 KiB a secret (742 bytes in the scale bench); a record keeps what the plan and the
//! executor read in 80 bytes and its texts (about 140 bytes a secret there):
//!
//! - the name, in the inventory's arena (`crate::arena`: one buffer for every name, no
//!   allocation per secret; the plan adds its items' names to the same arena and points at a
//!   record's name instead of copying it); the ARN as the 6 characters AWS appends to the name,
//!   the rest of it (partition, region, account) being the same for every secret of the
//!   inventory; the path its tags claim only when the name is not that path's under the prefix
//!   (a rewritten name), also in the arena;
//! - the `AWSCURRENT` and `AWSPREVIOUS` version ids as 16 bytes each when they are UUIDs (what
//!   secretport's tokens are), the ownership proof (`secretport:owner`) as its 16 bytes;
//! - what the tags say about ownership, decided while the page is read
//!   ([`identity::standing`], which needs no key): the proof itself is checked later against
//!   the record ([`Listed::verdict`], [`identity::proven`]), once the key is loaded; secretport's
//!   own tags as bits when they are exactly what they would be rebuilt as;
//! - everything else (a foreign ARN or version id, other tags, a deletion date, whose a foreign
//!   secret is) in a side box that most records do not have.
//!
//! What the records share (the job's scope and prefix, the ARNs' common part) is the
//! [`Inventory`]'s, once. Every field is stored compactly only when it is rebuilt byte for
//! byte ([`Listed::tags`], [`Listed::arn`], ...); anything else is kept as it came, so the
//! plan, the executor and the report see exactly what AWS listed. A foreign secret keeps only
//! its name, ARN, deletion date and the words naming its owner: nothing decides anything else
//! about it.

use std::fmt;

use super::tags::Tags;
use super::{CallError, Target, TargetSecret};
use crate::arena::{Arena, Span};
use crate::identity::token::{uuid_text, TokenDeriver, PROOF_VERSION};
use crate::identity::{
    self, Claim, Ownership, Scope, SourceIdentity, Standing, Unproven, MANAGED_TAG, OWNER_TAG,
    PREFIX_TAG, SOURCE_TAG,
};

/// What every record of one inventory shares: the job's scope and prefix (secretport's tags
/// are rebuilt from them) and the part of the ARNs before the name.
#[derive(Debug)]
struct Common {
    scope: Scope,
    prefix: String,
    arn_base: Option<Box<str>>,
}

impl Common {
    /// `name` relative to the prefix (`prefix/` removed), when it is under it.
    fn relative<'n>(&self, name: &'n str) -> Option<&'n str> {
        if self.prefix.is_empty() {
            return Some(name);
        }
        name.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }
}

/// Bits of [`Record::bits`].
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
    /// The claimed identity's full path is at [`super::Record::path`] (a rewritten name).
    pub(crate) const HAS_PATH: u16 = 1 << 11;
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

/// One secret of the inventory as stored (80 bytes, its texts in the inventory's arena);
/// read through [`Listed`].
#[derive(Debug, Clone)]
pub(crate) struct Record {
    name: Span,
    /// The claimed identity's full path, when it is not the name's ([`bit::HAS_PATH`]).
    path: Span,
    current: [u8; 16],
    previous: [u8; 16],
    proof: [u8; 16],
    arn_tail: [u8; 6],
    bits: u16,
    rare: Option<Box<Rare>>,
}

/// One secret of the inventory, compact (see the module docs): a view of its record in the
/// [`Inventory`] that holds it.
#[derive(Clone, Copy)]
pub struct Listed<'a> {
    rec: &'a Record,
    inv: &'a Inventory,
}

impl fmt::Debug for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listed")
            .field("name", &self.name())
            .field("claimed_path", &self.claimed_path())
            .field("bits", &format_args!("{:#06x}", self.rec.bits))
            .field("rare", &self.rec.rare)
            .finish()
    }
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

impl Record {
    /// The compact record of `s`, listed for the job `common` describes, its texts stored in
    /// `names`; its standing is decided from its tags and description now
    /// ([`identity::standing`]).
    fn new(s: TargetSecret, common: &mut Common, names: &mut Arena) -> Record {
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
        let mut base_ok =
            |base: &str| &**common.arn_base.get_or_insert_with(|| base.into()) == base;
        match split {
            Some((base, None)) if base_ok(base) => bits |= bit::ARN_PLAIN,
            Some((base, Some(t))) if t.len() == 6 && base_ok(base) => {
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
        let mut path = Span::default();
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
                    path = names.push(id.path());
                    bits |= bit::HAS_PATH;
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
        Record {
            name: names.push(&name),
            path,
            current,
            previous,
            proof,
            arn_tail,
            bits,
            rare,
        }
    }
}

impl<'a> Listed<'a> {
    fn has(&self, b: u16) -> bool {
        self.rec.bits & b != 0
    }

    fn rare(&self) -> Option<&'a Rare> {
        self.rec.rare.as_deref()
    }

    fn common(&self) -> &'a Common {
        &self.inv.common
    }

    /// Its name.
    pub fn name(&self) -> &'a str {
        self.inv.names.get(self.rec.name)
    }

    /// Where its name lies in the inventory's arena (a plan item at this name keeps this
    /// span, not a copy).
    pub(crate) fn name_span(&self) -> Span {
        self.rec.name
    }

    /// Its ARN, as listed.
    pub fn arn(&self) -> String {
        let base = self.common().arn_base.as_deref().unwrap_or("");
        if self.has(bit::ARN_PLAIN) {
            format!("{base}{}", self.name())
        } else if self.has(bit::ARN_TAIL) {
            let tail = std::str::from_utf8(&self.rec.arn_tail).unwrap_or_default();
            format!("{base}{}-{tail}", self.name())
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
        self.version(bit::CURRENT, &self.rec.current, text)
    }

    /// The VersionId labelled `AWSPREVIOUS`, when there is one.
    pub(crate) fn previous_version(&self) -> Option<String> {
        let text = self.rare().and_then(|r| r.previous.as_deref());
        self.version(bit::PREVIOUS, &self.rec.previous, text)
    }

    /// When it is scheduled for deletion, if it is.
    pub fn deleted_date(&self) -> Option<&'a str> {
        self.rare().and_then(|r| r.deleted_date.as_deref())
    }

    /// Whether secretport wrote it (for any job).
    pub(crate) fn is_managed(&self) -> bool {
        self.has(bit::MANAGED)
    }

    /// The full path its tags claim, when it is not the name's.
    fn full_path(&self) -> Option<&'a str> {
        self.has(bit::HAS_PATH)
            .then(|| self.inv.names.get(self.rec.path))
    }

    /// The identity its tags claim in the job's scope (also for a legacy instance), if they do.
    pub fn claimed(&self) -> Option<SourceIdentity> {
        let common = self.common();
        match self.full_path() {
            Some(path) => Some(common.scope.identity_at(path)),
            None if self.has(bit::PATH_IS_NAME) => {
                Some(common.scope.identity(common.relative(self.name())?))
            }
            None => None,
        }
    }

    /// The path its tags claim relative to the job's base path, when they claim the scope.
    pub(crate) fn claimed_path(&self) -> Option<&'a str> {
        let common = self.common();
        match self.full_path() {
            Some(path) => Some(common.scope.relative_path(path)),
            None if self.has(bit::PATH_IS_NAME) => common.relative(self.name()),
            None => None,
        }
    }

    /// Where [`claimed_path`](Self::claimed_path) lies in the inventory's arena, when it is
    /// there (a plan item for that path keeps this span, not a copy).
    pub(crate) fn claimed_path_span(&self) -> Option<Span> {
        let path = self.claimed_path()?;
        let names = &self.inv.names;
        let (span, whole) = if self.has(bit::HAS_PATH) {
            (self.rec.path, names.get(self.rec.path))
        } else {
            (self.rec.name, self.name())
        };
        names.tail(span, whole.len() - path.len())
    }

    fn standing_code(&self) -> u16 {
        (self.rec.bits & bit::STANDING_MASK) >> bit::STANDING_SHIFT
    }

    /// Its ownership proof (`secretport:owner`), as tagged.
    fn proof(&self) -> Option<String> {
        if self.has(bit::PROOF) {
            Some(proof_text(&self.rec.proof))
        } else {
            self.rare()
                .and_then(|r| r.tags.get(OWNER_TAG))
                .map(str::to_owned)
        }
    }

    /// How the job stands to it, its proof checked with `key` ([`identity::ownership`]'s rules:
    /// the standing decided from its tags while it was listed, then [`identity::proven`]).
    pub fn ownership(&self, key: Option<&TokenDeriver>) -> Ownership {
        let common = self.common();
        match (self.standing_code(), self.claimed()) {
            (2, Some(identity)) => Ownership::Unverified {
                identity,
                why: Unproven::LegacyInstance,
            },
            (3, Some(id)) => identity::proven(
                &common.scope,
                &common.prefix,
                self.name(),
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
            ours.push((PREFIX_TAG.into(), self.common().prefix.clone()));
        }
        if self.has(bit::SOURCE) {
            if let Some(id) = self.claimed() {
                ours.push((SOURCE_TAG.into(), id.tag_value()));
            }
        }
        if self.has(bit::PROOF) {
            ours.push((OWNER_TAG.into(), proof_text(&self.rec.proof)));
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
    pub(crate) fn to_secret(self) -> TargetSecret {
        TargetSecret {
            name: self.name().to_owned(),
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

/// Every secret under a job's prefix, compact, sorted by name: the records and the arena
/// their texts are in (which the plan built from it goes on filling with its items' names,
/// so a name both hold is kept once).
#[derive(Debug)]
pub struct Inventory {
    common: Common,
    names: Arena,
    records: Vec<Record>,
}

impl Inventory {
    /// An empty inventory for the job with `scope` and `prefix`.
    fn empty(scope: &Scope, prefix: &str) -> Inventory {
        Inventory {
            common: Common {
                scope: scope.clone(),
                prefix: prefix.to_owned(),
                arn_base: None,
            },
            names: Arena::default(),
            records: Vec::new(),
        }
    }

    fn push(&mut self, s: TargetSecret) {
        let rec = Record::new(s, &mut self.common, &mut self.names);
        self.records.push(rec);
    }

    /// Sorts and deduplicates by name (in place: a stable sort's buffer is half the records
    /// again), and gives back unused capacity.
    fn finish(mut self) -> Inventory {
        let names = &self.names;
        self.records
            .sort_unstable_by(|a, b| names.get(a.name).cmp(names.get(b.name)));
        self.records
            .dedup_by(|a, b| names.get(a.name) == names.get(b.name));
        self.records.shrink_to_fit();
        self.names.shrink();
        self
    }

    /// Reads the inventory of `prefix` from `target` a page at a time, keeping a compact
    /// record of each secret (its standing toward the job with `scope` decided as the page
    /// arrives).
    pub async fn read(
        target: &dyn Target,
        scope: &Scope,
        prefix: &str,
    ) -> Result<Inventory, CallError> {
        let mut inv = Inventory::empty(scope, prefix);
        let mut keep = |page: Vec<TargetSecret>| {
            inv.records.reserve(page.len());
            for s in page {
                inv.push(s);
            }
        };
        target.inventory(prefix, &mut keep).await?;
        Ok(inv.finish())
    }

    /// The inventory of `secrets` as listed for the job with `scope` and `prefix` (tests).
    pub fn of(secrets: Vec<TargetSecret>, scope: &Scope, prefix: &str) -> Inventory {
        let mut inv = Inventory::empty(scope, prefix);
        for s in secrets {
            inv.push(s);
        }
        inv.finish()
    }

    /// Whether it was listed for the job with `scope` and `prefix` (its standing and tags
    /// are decided and rebuilt for that job).
    pub(crate) fn is_for(&self, scope: &Scope, prefix: &str) -> bool {
        self.common.scope == *scope && self.common.prefix == prefix
    }

    /// The record at `i` (an index this inventory gave: [`Inventory::find`], an item's).
    pub(crate) fn at(&self, i: u32) -> Listed<'_> {
        Listed {
            rec: &self.records[i as usize],
            inv: self,
        }
    }

    /// The records, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Listed<'_>> + '_ {
        self.records
            .iter()
            .map(move |rec| Listed { rec, inv: self })
    }

    /// The index of the secret named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<u32> {
        let names = &self.names;
        self.records
            .binary_search_by(|r| names.get(r.name).cmp(name))
            .ok()
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The arena of its texts (the plan adds its items' there).
    pub(crate) fn names(&self) -> &Arena {
        &self.names
    }

    /// The same, to add to.
    pub(crate) fn names_mut(&mut self) -> &mut Arena {
        &mut self.names
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether any is managed by secretport (for any job).
    pub(crate) fn any_managed(&self) -> bool {
        self.iter().any(|s| s.is_managed())
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

    /// The inventory of `s` alone, for the job with `scope` and prefix `p`.
    fn one(s: TargetSecret, scope: &Scope) -> Inventory {
        Inventory::of(vec![s], scope, "p")
    }

    #[test]
    fn a_record_gives_back_what_was_listed() {
        let scope = Scope::new("vault", "http://v/secret", "apps");
        let mut s = managed(&scope, "db");
        let mut tags = s.tags.to_map();
        tags.insert("team".into(), "x".into());
        s.tags = tags.into();
        s.deleted_date = Some("2030-01-01T00:00:00Z".into());
        let inv = one(s.clone(), &scope);
        let l = inv.at(0);
        assert!(
            l.rec.rare.is_some(),
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
        let inv = one(s.clone(), &scope);
        let l = inv.at(0);
        assert!(l.rec.rare.is_none(), "{l:?}");
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
        let inv = one(odd.clone(), &scope);
        let l = inv.at(0);
        assert_eq!(l.to_secret(), odd);
        assert_eq!(l.arn(), "arn:somewhere-else:p/db");
    }

    #[test]
    fn ownership_is_decided_from_the_record_as_from_the_secret() {
        let scope = Scope::new("vault", "http://v/secret", "");
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
                let inv = one(s.clone(), &scope);
                assert_eq!(inv.at(0).ownership(key.as_ref()), want, "{}", s.name);
            }
        }
        let inv = one(managed(&scope, &"x#".repeat(200)), &scope);
        let long = inv.at(0);
        assert!(long.ownership(Some(&key())).is_owned());
        assert_eq!(long.claimed_path(), Some("x#".repeat(200).as_str()));
        let span = long.claimed_path_span().unwrap();
        assert_eq!(inv.names().get(span), "x#".repeat(200));
    }
}
