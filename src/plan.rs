//! The action planner: pure, deterministic, no I/O.
//!
//! Input: the source listing, the job's [`Scope`] and prefix, the naming rules and overrides,
//! and the target's inventory under the prefix. Output: one [`Item`] per source secret with its
//! target name and a [`Decision`] that needs no secret value, plus the orphans (secrets this job
//! owns whose source is gone, or whose mapping moved to a new name). Values are compared later,
//! by the executor, where the decision is [`Decision::Compare`]. `plan`, `migrate` and
//! `reconcile` all interpret this one plan; the run-level rules that sit on top of it (the
//! `on_conflict = fail` gate, the prune safety valve, drift and exit codes) live in
//! [`crate::policy`].
//!
//! **Ownership.** Every secret of the inventory is classified once ([`Ownership`]): unmanaged,
//! owned by this job (its identity inside the job's scope, written under the job's prefix), or
//! foreign (managed for another scope). Foreign secrets are never orphans and never compared;
//! a planned name held by one is a conflict naming its owner.
//!
//! **Sticky names and renames.** A source keeps the name of its owned secret when that name is
//! what the rules give it, or one of the rules' collision-hash variants (so a new colliding
//! source is the one disambiguated). Any other difference (an override added, a tightened
//! policy) is a planned rename: the new name is created, the old one becomes an orphan.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::OnConflict;
use crate::filter::PathFilter;
use crate::identity::token::TokenDeriver;
use crate::identity::{
    Ownership, Scope, SourceIdentity, Unproven, MANAGED_TAG, PREFIX_TAG, SOURCE_TAG,
};
use crate::naming::{self, Lean, NamingError, NamingRules, Overrides, ReasonSet};
use crate::source::{Listing, SourceRef};
use crate::target::limits::{MAX_TAGS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS};
use crate::target::listed::{Listed, Verdict};

/// What to do with one source secret, decided from names and tags alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The name is free: create.
    Create,
    /// Ours: compare values (update or unchanged), repair tags.
    Compare,
    /// The name is held by a secret that is not this source's, handled per `on_conflict`.
    Conflict {
        /// `None` = unmanaged; `Some(words)` = managed for another source (whose, in words).
        owner: Option<Box<str>>,
        /// The configured policy.
        policy: OnConflict,
    },
    /// The name holds a secret whose tags claim exactly this source in this job's scope, but
    /// whose ownership cannot be verified, and the run adopts (`reconcile --adopt`): compare
    /// values, write the proof and our tags.
    Adopt,
    /// The name is scheduled for deletion.
    ScheduledForDeletion {
        /// When AWS deletes it.
        date: Box<str>,
        /// Whether it is this source's (only those may be restored).
        ours: bool,
    },
}

/// One source secret in the plan. Kept small (a run holds one per source secret, up to a
/// region's 500,000): the source reference is moved in from the listing, the identity is
/// derived from it when needed ([`Item::identity`]), the reasons are a bit set.
#[derive(Debug, Clone)]
pub struct Item {
    /// The source reference.
    pub source: SourceRef,
    /// The target name planned for it ([`Item::target_name`]).
    pub target: ItemName,
    /// Why the target differs from the bare source path.
    pub reasons: ReasonSet,
    /// The secret at that name, if any: the inventory's compact record, shared with it, not a
    /// copy per item.
    pub existing: Option<Arc<Listed>>,
    /// What to do.
    pub decision: Decision,
    /// The name of this source's owned secret when the mapping moved away from it (a rename).
    pub(crate) renamed_from: Option<Box<str>>,
}

impl Item {
    /// Its identity in `scope` (the job's): tags, tokens, description.
    pub fn identity(&self, scope: &Scope) -> SourceIdentity {
        scope.identity(&self.source.path)
    }

    /// The target name planned for it.
    pub fn target_name(&self) -> Cow<'_, str> {
        self.target.of(&self.source.path)
    }
}

/// The target name of an item: most are their source path under the prefix, which is then
/// not stored again (at 500,000 secrets a copy of every name is tens of MiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemName {
    /// `prefix/path` (the path alone when the prefix is empty): the rules' plain name.
    Plain(Arc<str>),
    /// Any other name (rewritten, disambiguated, sticky, an override).
    Other(Box<str>),
}

impl ItemName {
    /// The name for the source path `path`.
    pub fn of<'p>(&'p self, path: &'p str) -> Cow<'p, str> {
        match self {
            ItemName::Plain(prefix) if prefix.is_empty() => Cow::Borrowed(path),
            ItemName::Plain(prefix) => Cow::Owned(format!("{prefix}/{path}")),
            ItemName::Other(name) => Cow::Borrowed(name),
        }
    }

    /// Whether the name for `path` is `name` (no allocation).
    pub fn is(&self, path: &str, name: &str) -> bool {
        match self {
            ItemName::Plain(prefix) if prefix.is_empty() => path == name,
            ItemName::Plain(prefix) => {
                name.strip_prefix(&**prefix)
                    .and_then(|n| n.strip_prefix('/'))
                    == Some(path)
            }
            ItemName::Other(other) => **other == *name,
        }
    }
}

impl From<&str> for ItemName {
    fn from(name: &str) -> ItemName {
        ItemName::Other(name.into())
    }
}

impl From<String> for ItemName {
    fn from(name: String) -> ItemName {
        ItemName::Other(name.into_boxed_str())
    }
}

/// A secret this job owns that no source item claims any more.
#[derive(Debug, Clone)]
pub struct Orphan {
    /// The secret.
    pub secret: Listed,
    /// Its recorded identity.
    pub identity: SourceIdentity,
    /// Why it is an orphan.
    pub why: OrphanWhy,
}

/// Why a secret is an orphan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanWhy {
    /// Its source is not in the listing.
    SourceGone,
    /// Its source now maps to another name.
    RenamedTo(String),
    /// Its source's current version is deleted or destroyed (found while reading).
    SourceDeleted(String),
}

impl OrphanWhy {
    /// Words for the report.
    pub fn words(&self) -> String {
        match self {
            OrphanWhy::SourceGone => "source is gone".into(),
            OrphanWhy::RenamedTo(n) => format!("renamed: its source now maps to {n}"),
            OrphanWhy::SourceDeleted(r) => format!("source {r}"),
        }
    }
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One item per source secret, sorted by source path.
    pub items: Vec<Item>,
    /// Owned, live secrets no item claims, sorted by name.
    pub orphans: Vec<Orphan>,
    /// Owned secrets that are live (the prune safety valve's denominator).
    pub(crate) owned_live: usize,
    /// Managed secrets of other scopes seen under the prefix (never touched).
    pub foreign: usize,
    /// Secrets whose tags claim this job's scope but whose ownership cannot be verified, at
    /// names no source item maps to (those at planned names are conflict or adopt items):
    /// reported, never touched.
    pub(crate) unverified: Vec<Unverified>,
}

/// A secret that claims this job's scope without a proof that verifies.
#[derive(Debug, Clone)]
pub(crate) struct Unverified {
    /// The secret.
    pub secret: Arc<Listed>,
    /// The source path its tags claim (relative to the job's base path).
    pub path: String,
    /// Why it is not proven.
    pub why: Unproven,
}

/// The report's words for a secret whose ownership cannot be verified.
pub(crate) fn unverified_words(why: Unproven) -> String {
    format!(
        "tagged as this job's secret, but ownership cannot be verified: {}; left alone (reconcile --adopt takes it over once you have checked it is yours)",
        why.words()
    )
}

impl Plan {
    /// Items whose decision is a conflict.
    pub fn conflicts(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|i| matches!(i.decision, Decision::Conflict { .. }))
    }
}

/// Everything [`build`] needs.
pub struct PlanInput<'a> {
    /// The source listing, consumed: its references move into the items.
    pub listing: Listing,
    /// What this job owns.
    pub scope: &'a Scope,
    /// Naming rules (their prefix is the job's prefix).
    pub rules: &'a NamingRules,
    /// Explicit renames.
    pub overrides: &'a Overrides,
    /// The target's secrets under the prefix, compact, sorted by name
    /// (`listed::Inventory::secrets`; shared: the plan's items keep the ones they concern
    /// without copying them).
    pub inventory: &'a [Arc<Listed>],
    /// Conflict policy.
    pub on_conflict: OnConflict,
    /// The job's `include` / `exclude` globs: an owned secret whose source path the job no
    /// longer takes is left alone, never an orphan.
    pub filter: &'a PathFilter,
    /// The token key ownership proofs are verified with (`None`: the account has none yet, so
    /// nothing is proven ours).
    pub key: Option<&'a TokenDeriver>,
    /// Take over the secrets at planned names whose tags claim exactly their source in this
    /// scope but carry no proof that verifies (`reconcile --adopt`).
    pub adopt: bool,
}

/// Builds the plan. The listing's references move into the items (nothing per secret is
/// copied: at 500,000 secrets every per-secret copy is tens of MiB of peak memory).
pub fn build(input: PlanInput<'_>) -> Result<Plan, NamingError> {
    let prefix = input.rules.prefix().unwrap_or("");
    let refs = input.listing.refs;
    debug_assert!(
        input
            .inventory
            .iter()
            .all(|s| s.is_for(input.scope, prefix)),
        "the inventory was listed for another job"
    );

    // ownership of every secret under the prefix, decided once (its standing was decided from
    // its tags as it was listed; here its proof is checked); this job's secrets are keyed by
    // their path relative to the job's scope, which is the listing's path
    let owners: Vec<Verdict> = input
        .inventory
        .iter()
        .map(|s| s.verdict(input.key))
        .collect();
    // the path an owned secret is this job's for (read from its record, not copied)
    fn owned_path<'s>(s: &'s Listed, o: &Verdict) -> Option<&'s str> {
        match o {
            Verdict::Owned => s.claimed_path(),
            _ => None,
        }
    }
    // Lookups go through sorted indexes (binary search), not hash maps: at a region's 500,000
    // secrets each hash map of the inventory is tens of MiB of peak memory.
    let inventory = input.inventory;
    // this job's secrets by path; for one path, the live one first, then the smallest name
    let mut owned: Vec<(&str, &Arc<Listed>)> = inventory
        .iter()
        .zip(&owners)
        .filter_map(|(s, o)| owned_path(s, o).map(|p| (p, s)))
        .collect();
    owned.sort_by(|(pa, a), (pb, b)| {
        pa.cmp(pb).then_with(|| {
            (a.deleted_date().is_some(), a.name()).cmp(&(b.deleted_date().is_some(), b.name()))
        })
    });
    let owned_of = |path: &str| -> &[(&str, &Arc<Listed>)] {
        let start = owned.partition_point(|(p, _)| *p < path);
        let end = start + owned[start..].partition_point(|(p, _)| *p == path);
        &owned[start..end]
    };

    let plain: Arc<str> = prefix.into();
    // the references move into the items first (then the listing's buffer is gone); names
    // and decisions are filled in below
    let mut items: Vec<Item> = refs
        .into_iter()
        .map(|r| Item {
            source: r,
            target: ItemName::Plain(Arc::clone(&plain)),
            reasons: ReasonSet::default(),
            existing: None,
            decision: Decision::Create,
            renamed_from: None,
        })
        .collect();

    // marked on this job's secrets, not copied into a map
    let mut sticky = Sticky {
        owned: &owned,
        keep: Vec::new(),
        count: 0,
    };
    if !owned.is_empty() {
        sticky.keep = vec![false; owned.len()];
        for r in items.iter().map(|i| &i.source) {
            if input.overrides.get(&r.path).is_some() {
                continue; // an override always wins, in the open
            }
            let at = owned.partition_point(|(p, _)| *p < r.path.as_str());
            if let Some((_, s)) = owned_of(&r.path).first() {
                if naming::is_rule_name(&r.path, s.name(), input.rules) {
                    if let Some(k) = sticky.keep.get_mut(at) {
                        *k = true;
                        sticky.count += 1;
                    }
                }
            }
        }
    }

    let (planned, first) = {
        let paths: Vec<&str> = items.iter().map(|i| i.source.path.as_str()).collect();
        naming::plan_names_lean(&paths, input.rules, input.overrides, &sticky)?
    };
    drop(sticky);
    // each item's name: a listing is sorted and distinct, so the planner's order is the
    // listing's (`first` is `None`); otherwise each distinct path's first occurrence gets it
    // and a repeat (sources never list a path twice: exports refuse duplicates) is dropped
    let mut named = first.as_ref().map(|_| vec![false; items.len()]);
    let at_of = |k: usize| first.as_ref().map_or(Some(k), |f| f.get(k).copied());
    for (k, Lean { target, reasons }) in planned.into_iter().enumerate() {
        let Some(item) = at_of(k).and_then(|i| items.get_mut(i)) else {
            continue;
        };
        if let Some(t) = target {
            item.target = ItemName::Other(t);
        }
        item.reasons = reasons;
        if let Some(slot) = named
            .as_mut()
            .and_then(|n| at_of(k).and_then(|i| n.get_mut(i)))
        {
            *slot = true;
        }
    }
    if let Some(named) = named {
        let mut named = named.into_iter();
        items.retain(|_| named.next().unwrap_or(false));
    }
    // the inventory is sorted by name (`listed::Inventory`)
    debug_assert!(inventory.windows(2).all(|w| w[0].name() < w[1].name()));
    let at = |name: &str| {
        inventory
            .binary_search_by(|s| s.name().cmp(name))
            .ok()
            .map(|i| {
                (
                    &inventory[i],
                    &owners[i],
                    owned_path(&inventory[i], &owners[i]),
                )
            })
    };

    // an unverified secret at a source's planned name that claims exactly that source
    let claims = |s: &Listed, o: &Verdict, path: &str| {
        matches!(o, Verdict::Unverified(_)) && s.claimed_path() == Some(path)
    };
    for item in &mut items {
        let r = &item.source;
        let name = item.target.of(&r.path);
        let renamed_from: Option<Box<str>> = owned_of(&r.path)
            .iter()
            .find(|(_, s)| s.deleted_date().is_none())
            .filter(|(_, s)| s.name() != name)
            .map(|(_, s)| s.name().into());
        let found = at(&name);
        let decision = match found {
            None => Decision::Create,
            Some((s, o, owned_as)) => {
                let ours = owned_as == Some(r.path.as_str());
                if let Some(date) = s.deleted_date() {
                    Decision::ScheduledForDeletion {
                        date: date.into(),
                        ours,
                    }
                } else if ours {
                    Decision::Compare
                } else if input.adopt && claims(s, o, &r.path) {
                    Decision::Adopt
                } else {
                    let owner = match s.ownership(input.key) {
                        Ownership::Unmanaged => None,
                        Ownership::Owned(other) => Some(format!(
                            "managed by secretport for another source of this job ({})",
                            other.path()
                        )),
                        Ownership::Unverified { why, .. } => Some(unverified_words(why)),
                        Ownership::Foreign(words) => Some(words),
                    }
                    .map(String::into_boxed_str);
                    Decision::Conflict {
                        owner,
                        policy: input.on_conflict,
                    }
                }
            }
        };
        drop(name);
        item.existing = found.map(|(s, _, _)| Arc::clone(s));
        item.decision = decision;
        item.renamed_from = renamed_from;
    }
    items.sort_by(|a, b| a.source.path.cmp(&b.source.path));

    // which name each source path claims (the items are sorted by path)
    let claimed = |path: &str| {
        items
            .binary_search_by(|i| i.source.path.as_str().cmp(path))
            .ok()
            .map(|k| &items[k])
    };
    // the names items map to, for the unverified secrets no item stands on
    let mut planned: Vec<Cow<'_, str>> = Vec::new();
    if owners.iter().any(|o| matches!(o, Verdict::Unverified(_))) {
        planned = items.iter().map(Item::target_name).collect();
        planned.sort_unstable();
    }
    let mut orphans = Vec::new();
    let mut unverified = Vec::new();
    let mut owned_live = 0;
    let mut foreign = 0;
    for (s, o) in input.inventory.iter().zip(&owners) {
        let path = match (o, owned_path(s, o)) {
            (Verdict::Owned, Some(path)) => path,
            (Verdict::Foreign, _) => {
                foreign += 1;
                continue;
            }
            (Verdict::Unverified(why), _) => {
                if planned.binary_search(&Cow::Borrowed(s.name())).is_err() {
                    unverified.push(Unverified {
                        secret: Arc::clone(s),
                        path: s.claimed_path().unwrap_or("").to_owned(),
                        why: *why,
                    });
                }
                continue;
            }
            _ => continue,
        };
        if !input.filter.admits(path) {
            continue; // excluded by the job's filter: not this run's business
        }
        if s.deleted_date().is_none() {
            owned_live += 1;
        }
        let why = match claimed(path) {
            Some(item) if item.target.is(&item.source.path, s.name()) => continue,
            Some(item) => OrphanWhy::RenamedTo(item.target_name().into_owned()),
            None => OrphanWhy::SourceGone,
        };
        // one already scheduled for deletion needs nothing more
        if s.deleted_date().is_some() {
            continue;
        }
        if let Some(identity) = s.claimed() {
            orphans.push(Orphan {
                secret: (**s).clone(),
                identity,
                why,
            });
        }
    }
    Ok(Plan {
        items,
        orphans,
        owned_live,
        foreign,
        unverified,
    })
}

/// Sticky names (`naming::StickyNames`): the first of this job's secrets for a listed path
/// (`owned`, sorted by path) whose name is what the rules give that path, marked in `keep`;
/// borrowed from the inventory, not copied (at 500,000 owned secrets a map of them is tens of
/// MiB).
struct Sticky<'a> {
    owned: &'a [(&'a str, &'a Arc<Listed>)],
    keep: Vec<bool>,
    count: usize,
}

impl naming::StickyNames for Sticky<'_> {
    fn name_of(&self, source: &str) -> Option<&str> {
        let at = self.owned.partition_point(|(p, _)| *p < source);
        match (self.owned.get(at), self.keep.get(at)) {
            (Some((p, s)), Some(true)) if *p == source => Some(s.name()),
            _ => None,
        }
    }

    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        Box::new(
            self.owned
                .iter()
                .zip(&self.keep)
                .filter(|(_, keep)| **keep)
                .map(|((p, s), _)| (*p, s.name())),
        )
    }

    fn count(&self) -> usize {
        self.count
    }
}

/// How many tags secretport itself puts on every secret it manages (`secretport:source`,
/// `secretport:prefix`, `secretport:managed`, and the ownership proof `secretport:owner` the
/// executor adds with the key): the room left for configured and copied tags is [`MAX_TAGS`]
/// minus this. The one place that count is written down.
pub(crate) const OUR_TAGS: usize = 4;

/// The tags a managed secret must carry: copied metadata (when given and valid as AWS tags),
/// configured tags, then ours, which win; never more than AWS allows. What is left out is in
/// [`tag_budget`]'s answer.
pub fn expected_tags(
    config_tags: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
    identity: &SourceIdentity,
    prefix: &str,
) -> BTreeMap<String, String> {
    tag_budget(config_tags, metadata, identity, prefix).tags
}

/// The expected tags of a managed secret and the source tags that could not be among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagBudget {
    /// Copied metadata that fits, the configured tags, and ours.
    pub tags: BTreeMap<String, String>,
    /// Source tags AWS cannot take (or that other tags take precedence over), by reason.
    pub(crate) left_out: TagsLeftOut,
}

/// Why a source tag (Vault `custom_metadata`, SSM parameter tag) is not copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LeftOutWhy {
    /// A valid tag beyond AWS's [`MAX_TAGS`] per secret (ours and the configured ones first).
    OverLimit,
    /// An empty key, or one over [`MAX_TAG_KEY_CHARS`] characters.
    KeyLength,
    /// A value over [`MAX_TAG_VALUE_CHARS`] characters.
    ValueLength,
    /// A key starting with `aws:` (reserved by AWS).
    AwsPrefix,
    /// A key starting with `secretport:` (ours are set by secretport).
    OurPrefix,
    /// Characters AWS does not take in tags.
    Characters,
    /// A configured `[target] tags` entry has the same key and wins.
    SetByConfig,
}

impl LeftOutWhy {
    fn words(self) -> String {
        match self {
            LeftOutWhy::OverLimit => format!("over AWS's {MAX_TAGS} per secret"),
            LeftOutWhy::KeyLength => format!("key empty or over {MAX_TAG_KEY_CHARS} characters"),
            LeftOutWhy::ValueLength => format!("value over {MAX_TAG_VALUE_CHARS} characters"),
            LeftOutWhy::AwsPrefix => "aws: prefix (reserved by AWS)".into(),
            LeftOutWhy::OurPrefix => "secretport: prefix (set by secretport)".into(),
            LeftOutWhy::Characters => {
                "characters AWS does not take (letters, digits, spaces and _ . : / = + - @ only)"
                    .into()
            }
            LeftOutWhy::SetByConfig => "[target] tags sets the same key".into(),
        }
    }
}

/// The source tags left out of one secret's tags, by reason (keys only: a row names them, and
/// never a value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TagsLeftOut {
    keys: BTreeMap<LeftOutWhy, Vec<String>>,
}

impl TagsLeftOut {
    /// Nothing was left out.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    #[cfg(test)]
    /// How many source tags were left out.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    #[cfg(test)]
    /// The keys left out for `why`, in key order.
    pub fn keys(&self, why: LeftOutWhy) -> &[String] {
        self.keys.get(&why).map_or(&[], Vec::as_slice)
    }

    fn push(&mut self, why: LeftOutWhy, key: &str) {
        self.keys.entry(why).or_default().push(key.to_owned());
    }

    /// One line for the report: `tags left out: 13 over AWS's 50 per secret: m47, m48, …;
    /// aws: prefix (reserved by AWS): aws:x`. Each key is named (a long one shortened, control
    /// characters shown as `?`), at most [`NAMED_PER_REASON`] per reason, then a count.
    pub fn words(&self) -> String {
        let parts: Vec<String> = self
            .keys
            .iter()
            .map(|(why, keys)| {
                let mut named: Vec<String> = keys
                    .iter()
                    .take(NAMED_PER_REASON)
                    .map(|k| shown_key(k))
                    .collect();
                if keys.len() > NAMED_PER_REASON {
                    named.push(format!("and {} more", keys.len() - NAMED_PER_REASON));
                }
                format!("{} {}: {}", keys.len(), why.words(), named.join(", "))
            })
            .collect();
        format!("tags left out: {}", parts.join("; "))
    }
}

/// How many keys a row names per reason before it only counts the rest.
pub(crate) const NAMED_PER_REASON: usize = 64;

/// A key as a report names it: control characters as `?`, at most 64 characters.
fn shown_key(k: &str) -> String {
    const SHOWN: usize = 64;
    let mut s: String = k
        .chars()
        .take(SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if k.chars().count() > SHOWN {
        s.push('…');
    }
    s
}

/// Why AWS would refuse this source tag, if it would.
pub(crate) fn unfit(k: &str, v: &str) -> Option<LeftOutWhy> {
    let ok_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
    };
    if k.is_empty() || k.chars().count() > MAX_TAG_KEY_CHARS {
        Some(LeftOutWhy::KeyLength)
    } else if k.starts_with("secretport:") {
        Some(LeftOutWhy::OurPrefix)
    } else if k.to_ascii_lowercase().starts_with("aws:") {
        Some(LeftOutWhy::AwsPrefix)
    } else if !ok_chars(k) || !ok_chars(v) {
        Some(LeftOutWhy::Characters)
    } else if v.chars().count() > MAX_TAG_VALUE_CHARS {
        Some(LeftOutWhy::ValueLength)
    } else {
        None
    }
}

/// The pure budget: which source tags fit beside `config_tags` and `ours` of secretport's own
/// tags within [`MAX_TAGS`], and why each of the others does not. Configured tags take
/// precedence over source tags of the same key; among valid source tags the first in key order
/// are kept.
pub(crate) fn fit_source_tags(
    config_tags: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
    ours: usize,
) -> (BTreeMap<String, String>, TagsLeftOut) {
    let mut room = MAX_TAGS.saturating_sub(ours + config_tags.len());
    let mut kept = BTreeMap::new();
    let mut left_out = TagsLeftOut::default();
    for (k, v) in metadata {
        let why = match unfit(k, v) {
            Some(why) => Some(why),
            None if config_tags.contains_key(k) => Some(LeftOutWhy::SetByConfig),
            None if room == 0 => Some(LeftOutWhy::OverLimit),
            None => None,
        };
        match why {
            Some(why) => left_out.push(why, k),
            None => {
                room -= 1;
                kept.insert(k.clone(), v.clone());
            }
        }
    }
    kept.extend(config_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    (kept, left_out)
}

/// The tags a managed secret must carry (see [`expected_tags`]) and what was left out.
pub(crate) fn tag_budget(
    config_tags: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
    identity: &SourceIdentity,
    prefix: &str,
) -> TagBudget {
    let (mut t, left_out) = fit_source_tags(config_tags, metadata, OUR_TAGS);
    t.insert(SOURCE_TAG.to_owned(), identity.tag_value());
    t.insert(PREFIX_TAG.to_owned(), prefix.to_owned());
    t.insert(MANAGED_TAG.to_owned(), "true".to_owned());
    // the proof (added where the key is) is the one of OUR_TAGS not yet here
    debug_assert!(t.len() < MAX_TAGS, "OUR_TAGS must count every tag of ours");
    TagBudget { tags: t, left_out }
}

/// Tags in `expected` that are missing from `actual` or differ there (extra tags are left
/// alone: they may be someone else's).
pub(crate) fn tag_drift(
    expected: &BTreeMap<String, String>,
    actual: &crate::target::tags::Tags,
) -> BTreeMap<String, String> {
    expected
        .iter()
        .filter(|(k, v)| actual.get(k) != Some(v.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::Policy;
    use crate::target::listed::Inventory;
    use crate::target::TargetSecret;

    const INSTANCE: &str = "/x/export.jsonl";

    fn scope(sub: &str) -> Scope {
        Scope::new("file", INSTANCE, sub)
    }

    fn key() -> TokenDeriver {
        TokenDeriver::keyed(zeroize::Zeroizing::new(
            b"plan-test-key-0123456789".to_vec(),
        ))
    }

    /// A secret written by the job with scope `sc` under `prefix` for the source at `path`
    /// (tags and proof as secretport writes them), or an unmanaged one.
    fn secret(name: &str, owner: Option<(&Scope, &str, &str)>, deleted: bool) -> TargetSecret {
        let tags = match owner {
            Some((sc, path, prefix)) => {
                let mut t = expected_tags(
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                    &sc.identity(path),
                    prefix,
                );
                t.insert(
                    crate::identity::OWNER_TAG.to_owned(),
                    key().ownership_proof(name, sc, prefix),
                );
                t
            }
            None => BTreeMap::new(),
        };
        TargetSecret {
            name: name.into(),
            arn: format!("arn:{name}"),
            tags: tags.into(),
            deleted_date: deleted.then(|| "2026-12-01T00:00:00Z".into()),
            ..TargetSecret::default()
        }
    }

    fn plan_with(
        sc: &Scope,
        paths: &[&str],
        inventory: &[TargetSecret],
        overrides: &str,
        policy: Policy,
    ) -> Plan {
        let listing = Listing {
            refs: paths.iter().map(|p| SourceRef::new(*p)).collect(),
            problems: vec![],
        };
        let rules = NamingRules::new(Some("p"), policy);
        let overrides = Overrides::parse(overrides, &rules).unwrap();
        build(PlanInput {
            listing,
            scope: sc,
            rules: &rules,
            overrides: &overrides,
            inventory: Inventory::of(inventory.to_vec(), sc, "p").secrets(),
            on_conflict: OnConflict::Skip,
            filter: &PathFilter::default(),
            key: Some(&key()),
            adopt: false,
        })
        .unwrap()
    }

    fn plan(paths: &[&str], inventory: &[TargetSecret]) -> Plan {
        plan_with(&scope(""), paths, inventory, "", Policy::Aws)
    }

    #[test]
    fn decisions_and_orphans() {
        let s = scope("");
        let inv = vec![
            secret("p/a", Some((&s, "a", "p")), false),
            secret("p/b", None, false),
            secret("p/c", Some((&s, "zzz", "p")), false),
            secret("p/d", Some((&s, "d", "p")), true),
            secret("p/gone", Some((&s, "gone", "p")), false),
            secret("p/gone2", Some((&s, "gone2", "p")), true),
        ];
        let p = plan(&["a", "b", "c", "d", "e"], &inv);
        let d: Vec<&Decision> = p.items.iter().map(|i| &i.decision).collect();
        assert_eq!(d[0], &Decision::Compare);
        assert!(matches!(d[1], Decision::Conflict { owner: None, .. }));
        assert!(matches!(d[2], Decision::Conflict { owner: Some(_), .. }));
        assert!(matches!(
            d[3],
            Decision::ScheduledForDeletion { ours: true, .. }
        ));
        assert_eq!(d[4], &Decision::Create);
        // p/c's source zzz is not listed: it is an orphan even though its name is taken
        let names: Vec<&str> = p.orphans.iter().map(|o| o.secret.name()).collect();
        assert_eq!(names, vec!["p/c", "p/gone"]);
        assert_eq!(p.owned_live, 3);
    }

    #[test]
    fn secrets_a_filter_excludes_are_never_orphans_nor_counted() {
        let s = scope("team");
        let inv = vec![
            secret("p/a/one", Some((&s, "a/one", "p")), false),
            secret("p/a/gone", Some((&s, "a/gone", "p")), false),
            secret("p/b/kept", Some((&s, "b/kept", "p")), false),
            secret("p/b/old", Some((&s, "b/old", "p")), false),
        ];
        let listing = Listing {
            refs: vec![SourceRef::new("a/one")],
            problems: vec![],
        };
        let rules = NamingRules::new(Some("p"), Policy::Aws);
        let filter = PathFilter::new(&["a/**".into()], &[]).unwrap();
        let p = build(PlanInput {
            listing,
            scope: &s,
            rules: &rules,
            overrides: &Overrides::default(),
            inventory: Inventory::of(inv, &s, "p").secrets(),
            on_conflict: OnConflict::Skip,
            filter: &filter,
            key: Some(&key()),
            adopt: false,
        })
        .unwrap();
        // b/* is outside the filter: neither orphan nor in the safety valve's denominator
        let names: Vec<&str> = p.orphans.iter().map(|o| o.secret.name()).collect();
        assert_eq!(names, vec!["p/a/gone"]);
        assert_eq!(p.owned_live, 2);
    }

    #[test]
    fn foreign_secrets_are_never_orphans_nor_counted() {
        let mine = scope("apps");
        let theirs = scope("apps2");
        let other_file = Scope::new("file", "/y/other.jsonl", "");
        let inv = vec![
            secret("p/db", Some((&mine, "db", "p")), false),
            secret("p/x", Some((&theirs, "x", "p")), false),
            secret("p/y", Some((&other_file, "y", "p")), false),
            // same source scope, but written under a nested prefix by another config
            secret("p/q/db", Some((&mine, "db", "p/q")), false),
        ];
        let p = plan_with(&mine, &[], &inv, "", Policy::Aws);
        let names: Vec<&str> = p.orphans.iter().map(|o| o.secret.name()).collect();
        assert_eq!(names, vec!["p/db"]);
        assert_eq!(p.owned_live, 1);
        assert_eq!(p.foreign, 3);
        // a name clash with a foreign secret names its scope
        let p = plan_with(&mine, &["x"], &inv, "", Policy::Aws);
        match &p.items[0].decision {
            Decision::Conflict { owner: Some(w), .. } => assert!(w.contains("apps2/x"), "{w}"),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn sticky_names_survive_a_new_collision() {
        // "a b" was migrated as p/a_b; now "a#b" (same candidate) appears: "a b" keeps it
        let s = scope("");
        let inv = vec![secret("p/a_b", Some((&s, "a b", "p")), false)];
        let p = plan(&["a b", "a#b"], &inv);
        let m: BTreeMap<&str, Cow<str>> = p
            .items
            .iter()
            .map(|i| (i.source.path.as_str(), i.target_name()))
            .collect();
        assert_eq!(m["a b"], "p/a_b");
        assert_ne!(m["a#b"], "p/a_b");
        assert!(p.orphans.is_empty());
        assert!(p.items.iter().all(|i| i.renamed_from.is_none()));
    }

    #[test]
    fn a_collision_hash_name_stays_sticky_after_the_other_source_leaves() {
        let s = scope("");
        let first = plan(&["a b", "a#b"], &[]);
        let hashed = first.items.iter().find(|i| i.source.path == "a#b").unwrap();
        let inv = vec![secret(&hashed.target_name(), Some((&s, "a#b", "p")), false)];
        let p = plan(&["a#b"], &inv);
        assert_eq!(p.items[0].target_name(), hashed.target_name());
        assert_eq!(p.items[0].decision, Decision::Compare);
    }

    #[test]
    fn an_override_added_later_is_a_rename_in_the_open() {
        let s = scope("");
        let inv = vec![secret("p/a", Some((&s, "a", "p")), false)];
        let p = plan_with(&s, &["a"], &inv, "a,p/new\n", Policy::Aws);
        assert_eq!(p.items[0].target_name(), "p/new");
        assert_eq!(p.items[0].decision, Decision::Create);
        assert_eq!(p.items[0].renamed_from.as_deref(), Some("p/a"));
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].why, OrphanWhy::RenamedTo("p/new".into()));
    }

    #[test]
    fn a_tightened_policy_is_a_rename_too() {
        let s = scope("");
        let inv = vec![secret("p/a_b", Some((&s, "a_b", "p")), false)];
        let p = plan_with(&s, &["a_b"], &inv, "", Policy::Alphanumeric);
        assert_ne!(p.items[0].target_name(), "p/a_b");
        assert_eq!(p.items[0].renamed_from.as_deref(), Some("p/a_b"));
        assert_eq!(p.orphans.len(), 1);
    }

    #[test]
    fn tags() {
        let cfg = BTreeMap::from([("team".to_string(), "x".to_string())]);
        let meta = BTreeMap::from([
            ("owner".to_string(), "o".to_string()),
            ("bad#".to_string(), "v".to_string()),
            ("secretport:managed".to_string(), "false".to_string()),
        ]);
        let id = scope("").identity("a");
        let e = expected_tags(&cfg, &meta, &id, "p");
        assert_eq!(e.len(), 5);
        assert_eq!(e[MANAGED_TAG], "true");
        let actual = BTreeMap::from([("team".to_string(), "y".to_string())]);
        assert_eq!(tag_drift(&e, &(&actual).into()).len(), 5);
        assert!(tag_drift(&e, &(&e).into()).is_empty());
        let many: BTreeMap<String, String> =
            (0..60).map(|i| (format!("k{i}"), "v".into())).collect();
        // room is left for the ownership proof, added where the key is
        assert_eq!(expected_tags(&cfg, &many, &id, "p").len(), MAX_TAGS - 1);
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn numbered(n: usize) -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("m{i:02}"), "v".into())).collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn tag_budget_table() {
        use LeftOutWhy::*;
        let long_key = "k".repeat(MAX_TAG_KEY_CHARS + 1);
        let long_value = "v".repeat(MAX_TAG_VALUE_CHARS + 1);
        let team = map(&[("team", "platform")]);
        let none = BTreeMap::new();
        // (case, config tags, source tags, kept source tags, left out by reason)
        let room = MAX_TAGS - OUR_TAGS;
        let cases: Vec<(
            &str,
            &BTreeMap<String, String>,
            BTreeMap<String, String>,
            usize,
            Vec<(LeftOutWhy, usize)>,
        )> = vec![
            ("under", &none, numbered(room - 1), room - 1, vec![]),
            ("at", &none, numbered(room), room, vec![]),
            (
                "over",
                &none,
                numbered(room + 13),
                room,
                vec![(OverLimit, 13)],
            ),
            (
                "over, with config",
                &team,
                numbered(60),
                room - 1,
                vec![(OverLimit, 60 - (room - 1))],
            ),
            (
                "bad key",
                &none,
                map(&[("bad#", "v"), ("", "v"), (&long_key, "v"), ("ok", "v")]),
                1,
                vec![(KeyLength, 2), (Characters, 1)],
            ),
            (
                "bad value",
                &none,
                map(&[
                    ("a", &long_value),
                    ("b", "x\ny"),
                    ("c", &"v".repeat(MAX_TAG_VALUE_CHARS)),
                ]),
                1,
                vec![(ValueLength, 1), (Characters, 1)],
            ),
            (
                "aws: and ours",
                &none,
                map(&[
                    ("aws:x", "v"),
                    ("AWS:y", "v"),
                    ("secretport:managed", "false"),
                ]),
                0,
                vec![(AwsPrefix, 2), (OurPrefix, 1)],
            ),
            (
                "config wins",
                &team,
                map(&[("team", "other"), ("owner", "o")]),
                1,
                vec![(SetByConfig, 1)],
            ),
        ];
        for (case, cfg, meta, kept, left) in cases {
            let (tags, out) = fit_source_tags(cfg, &meta, OUR_TAGS);
            let copied = tags
                .keys()
                .filter(|k| meta.contains_key(*k) && !cfg.contains_key(*k))
                .count();
            assert_eq!(copied, kept, "{case}");
            assert!(tags.len() + OUR_TAGS <= MAX_TAGS, "{case}");
            for (k, v) in cfg.iter() {
                assert_eq!(tags.get(k), Some(v), "{case}: config tag {k}");
            }
            let got: Vec<(LeftOutWhy, usize)> =
                out.keys.iter().map(|(w, k)| (*w, k.len())).collect();
            assert_eq!(got, left, "{case}");
            assert_eq!(
                out.len() + kept,
                meta.len(),
                "{case}: every source tag kept or named"
            );
        }
    }

    #[test]
    fn left_out_tags_are_named_in_key_order() {
        let id = scope("").identity("a");
        let mut meta = numbered(60);
        meta.insert("aws:x".into(), "v".into());
        meta.insert("long".into(), "v".repeat(300));
        let b = tag_budget(&BTreeMap::new(), &meta, &id, "p");
        assert_eq!(b.tags.len() + 1, MAX_TAGS, "the proof's room kept");
        let over = b.left_out.keys(LeftOutWhy::OverLimit);
        assert_eq!(over.len(), 60 - (MAX_TAGS - OUR_TAGS));
        assert_eq!(over.last().map(String::as_str), Some("m59"));
        let w = b.left_out.words();
        assert!(
            w.starts_with(&format!(
                "tags left out: {} over AWS's 50 per secret: m",
                over.len()
            )),
            "{w}"
        );
        assert!(w.contains("1 value over 256 characters: long"), "{w}");
        assert!(w.contains("1 aws: prefix (reserved by AWS): aws:x"), "{w}");
        assert!(!w.contains("vvvv"), "values are never named: {w}");
        assert!(tag_budget(&BTreeMap::new(), &numbered(3), &id, "p")
            .left_out
            .is_empty());
        // a long key is shortened, control characters shown as ?
        let odd = map(&[(&format!("{}\n", "x".repeat(200)), "v")]);
        let w = tag_budget(&BTreeMap::new(), &odd, &id, "p")
            .left_out
            .words();
        assert!(w.ends_with(&format!("{}…", "x".repeat(64))), "{w}");
    }
}
