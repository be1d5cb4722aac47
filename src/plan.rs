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

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;

use crate::arena::Span;
use crate::config::OnConflict;
use crate::filter::PathFilter;
use crate::identity::token::TokenDeriver;
use crate::identity::{
    Ownership, Scope, SourceIdentity, Unproven, MANAGED_TAG, PREFIX_TAG, SOURCE_TAG,
};
use crate::naming::{self, Lean, NamingError, NamingRules, Overrides, ReasonSet};
use crate::source::{Listing, SourceRef};
use crate::target::limits::{MAX_TAGS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS};
use crate::target::listed::{Inventory, Listed, Verdict};

/// What to do with one source secret, decided from names and tags alone. No text: whose a
/// conflicting secret is ([`Item::owner`]) and when a deleted one goes
/// ([`Item::deleted_date`]) are read from the secret at the name, so a plan item stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The name is free: create.
    Create,
    /// Ours: compare values (update or unchanged), repair tags.
    Compare,
    /// The name is held by a secret that is not this source's, handled per `on_conflict`.
    Conflict {
        /// Managed by secretport for another source, job or scope (whose: [`Item::owner`]);
        /// `false`: unmanaged.
        managed: bool,
        /// The configured policy.
        policy: OnConflict,
    },
    /// The name holds a secret whose tags claim exactly this source in this job's scope, but
    /// whose ownership cannot be verified, and the run adopts (`reconcile --adopt`): compare
    /// values, write the proof and our tags.
    Adopt,
    /// The name is scheduled for deletion (when: [`Item::deleted_date`]).
    ScheduledForDeletion {
        /// Whether it is this source's (only those may be restored).
        ours: bool,
    },
}

/// "None" of an [`Entry`]'s inventory index.
const NO: u32 = u32::MAX;

/// One source secret of the plan as stored: 44 bytes, its texts in the plan's arena (the
/// inventory's: a name the plan shares with a listed secret, its target name or its path, is
/// the listed secret's span, not a copy); read through [`Item`].
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The source path (relative to the configured subtree).
    path: Span,
    /// The target name planned for it.
    target: Span,
    /// The source version when known at listing time (empty: not known).
    version: Span,
    /// Its line in an export file.
    line: Option<NonZeroU32>,
    /// The inventory's secret at the target name ([`NO`]: none).
    existing: u32,
    /// The inventory's secret this source owned when the mapping moved away from it ([`NO`]:
    /// none).
    renamed_from: u32,
    reasons: ReasonSet,
    decision: Decision,
}

/// One source secret in the plan: its source reference, the target name planned for it, why
/// that differs from the bare source path, the secret at that name if any, and what to do.
/// A view of the plan's compact storage (a run holds one per source secret, up to a region's
/// 500,000: the identity is derived when needed ([`Item::identity`]), the reasons are a bit
/// set, the names are spans of one arena).
#[derive(Clone, Copy)]
pub struct Item<'p> {
    entry: &'p Entry,
    plan: &'p Plan,
}

impl fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("path", &self.path())
            .field("target", &self.target_name())
            .field("reasons", &self.entry.reasons)
            .field("existing", &self.existing())
            .field("decision", &self.entry.decision)
            .field("renamed_from", &self.renamed_from())
            .finish()
    }
}

impl<'p> Item<'p> {
    /// The source path (relative to the configured subtree).
    pub fn path(&self) -> &'p str {
        self.plan.text(self.entry.path)
    }

    /// The target name planned for it.
    pub fn target_name(&self) -> &'p str {
        self.plan.text(self.entry.target)
    }

    /// The source version when known at listing time.
    pub fn version(&self) -> Option<&'p str> {
        Some(self.plan.text(self.entry.version)).filter(|v| !v.is_empty())
    }

    /// Its source reference, to fetch the value with (made when asked: the plan keeps only
    /// spans).
    pub fn source(&self) -> SourceRef {
        let mut r = SourceRef::new(self.path());
        r.version = self.version().map(Into::into);
        r.line = self.entry.line.map(|l| l.get() as usize);
        r
    }

    /// Its identity in `scope` (the job's): tags, tokens, description.
    pub fn identity(&self, scope: &Scope) -> SourceIdentity {
        scope.identity(self.path())
    }

    /// Why the target differs from the bare source path.
    pub fn reasons(&self) -> ReasonSet {
        self.entry.reasons
    }

    /// What to do.
    pub fn decision(&self) -> &'p Decision {
        &self.entry.decision
    }

    /// The secret at the target name, if any.
    pub fn existing(&self) -> Option<Listed<'p>> {
        self.existing_index().map(|i| self.plan.inventory.at(i))
    }

    /// The index of [`existing`](Self::existing) in the plan's inventory.
    pub(crate) fn existing_index(&self) -> Option<u32> {
        Some(self.entry.existing).filter(|&i| i != NO)
    }

    /// The name of this source's owned secret when the mapping moved away from it (a rename).
    pub fn renamed_from(&self) -> Option<&'p str> {
        Some(self.entry.renamed_from)
            .filter(|&i| i != NO)
            .map(|i| self.plan.inventory.at(i).name())
    }

    /// Whose the secret at the target name is, in words, when secretport manages it for
    /// someone else (a [`Decision::Conflict`] with `managed`); `None` when it is unmanaged or
    /// there is none.
    pub fn owner(&self) -> Option<String> {
        let existing = self.existing()?;
        owner_words(&existing, self.plan.key.as_ref())
    }

    /// When the secret at the target name is deleted, when it is scheduled for deletion.
    pub fn deleted_date(&self) -> Option<&'p str> {
        self.existing()?.deleted_date()
    }
}

/// A secret this job owns that no source item claims any more.
#[derive(Debug, Clone)]
pub struct Orphan {
    /// The secret: its index in the plan's inventory ([`Plan::secret`]).
    pub(crate) secret: u32,
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

/// The whole plan: its items, its orphans, and the inventory they point into (whose arena
/// holds the items' names too).
#[derive(Debug)]
pub struct Plan {
    /// One entry per source secret, sorted by source path ([`Plan::items`]).
    entries: Vec<Entry>,
    /// Owned, live secrets no item claims, sorted by name.
    pub orphans: Vec<Orphan>,
    /// Owned secrets that are live (the prune safety valve's denominator).
    pub(crate) owned_live: usize,
    /// Managed secrets of other scopes seen under the prefix (never touched).
    pub foreign: usize,
    /// Secrets whose tags claim this job's scope but whose ownership cannot be verified, at
    /// names no source item maps to (those at planned names are conflict or adopt items):
    /// reported, never touched (indexes in the inventory, with why).
    unverified: Vec<(u32, Unproven)>,
    inventory: Inventory,
    /// The key proofs were verified with (whose a conflicting secret is is read with it).
    key: Option<TokenDeriver>,
}

/// The report's words for a secret whose ownership cannot be verified.
pub(crate) fn unverified_words(why: Unproven) -> String {
    format!(
        "tagged as this job's secret, but ownership cannot be verified: {}; left alone (reconcile --adopt takes it over once you have checked it is yours)",
        why.words()
    )
}

impl Plan {
    fn text(&self, span: Span) -> &str {
        self.inventory.names().get(span)
    }

    /// One item per source secret, sorted by source path.
    pub fn items(&self) -> impl ExactSizeIterator<Item = Item<'_>> + '_ {
        self.entries
            .iter()
            .map(move |entry| Item { entry, plan: self })
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The items in slices of `n` (the executor's windows).
    pub(crate) fn windows(&self, n: usize) -> impl Iterator<Item = Vec<Item<'_>>> + '_ {
        self.entries.chunks(n.max(1)).map(move |chunk| {
            chunk
                .iter()
                .map(|entry| Item { entry, plan: self })
                .collect()
        })
    }

    /// The secret an orphan is (or one found gone while the items ran).
    pub fn secret(&self, orphan: &Orphan) -> Listed<'_> {
        self.inventory.at(orphan.secret)
    }

    /// The secrets that claim this job's scope without a proof that verifies, at names no item
    /// maps to, with why.
    pub(crate) fn unverified(&self) -> impl Iterator<Item = (Listed<'_>, Unproven)> + '_ {
        self.unverified
            .iter()
            .map(|&(i, why)| (self.inventory.at(i), why))
    }

    /// Items whose decision is a conflict.
    pub fn conflicts(&self) -> impl Iterator<Item = Item<'_>> {
        self.items()
            .filter(|i| matches!(i.decision(), Decision::Conflict { .. }))
    }
}

#[cfg(test)]
impl Plan {
    /// A plan of one item, for `path` at `target` in `scope` under `prefix`, deciding
    /// `decision`, with `existing` at that name (the decision tables' items).
    pub(crate) fn one(
        scope: &Scope,
        prefix: &str,
        (path, target): (&str, &str),
        decision: Decision,
        existing: Option<crate::target::TargetSecret>,
    ) -> Plan {
        let mut inventory = Inventory::of(existing.into_iter().collect(), scope, prefix);
        let existing = if inventory.is_empty() { NO } else { 0 };
        let names = inventory.names_mut();
        let entry = Entry {
            path: names.push(path),
            target: names.push(target),
            version: Span::default(),
            line: None,
            reasons: ReasonSet::default(),
            existing,
            renamed_from: NO,
            decision,
        };
        Plan {
            entries: vec![entry],
            orphans: Vec::new(),
            owned_live: 0,
            foreign: 0,
            unverified: Vec::new(),
            inventory,
            key: None,
        }
    }

    /// Its first item (a plan of one).
    pub(crate) fn only(&self) -> Item<'_> {
        self.items().next().expect("a plan of one item")
    }
}

/// Everything [`build`] needs.
pub struct PlanInput<'a> {
    /// The source listing, consumed: its paths move into the plan's arena.
    pub listing: Listing,
    /// What this job owns.
    pub scope: &'a Scope,
    /// Naming rules (their prefix is the job's prefix).
    pub rules: &'a NamingRules,
    /// Explicit renames.
    pub overrides: &'a Overrides,
    /// The target's secrets under the prefix, compact, sorted by name, consumed: the plan
    /// keeps them (its items point into it) and adds its names to its arena.
    pub inventory: Inventory,
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

/// Builds the plan. The listing's paths move into the plan's arena, where a path or name the
/// inventory already holds is not stored again (at 500,000 secrets every per-secret copy is
/// tens of MiB of peak memory). Two passes, so that no two per-secret tables of the whole
/// listing are held at once: the references become entries (their paths stored, the listing
/// freed) before the names are planned over those paths; then each entry gets its name and
/// decision.
pub fn build(input: PlanInput<'_>) -> Result<Plan, NamingError> {
    let prefix = input.rules.prefix().unwrap_or("");
    let mut inventory = input.inventory;
    debug_assert!(
        inventory.is_for(input.scope, prefix),
        "the inventory was listed for another job"
    );

    // ownership of every secret under the prefix, decided once (its standing was decided from
    // its tags as it was listed; here its proof is checked); this job's secrets are keyed by
    // their path relative to the job's scope, which is the listing's path
    let owners: Vec<Verdict> = inventory.iter().map(|s| s.verdict(input.key)).collect();
    // Lookups go through sorted indexes (binary search), not hash maps: at a region's 500,000
    // secrets each hash map of the inventory is tens of MiB of peak memory. This job's
    // secrets (their indexes) by path; for one path, the live one first, then the smallest
    // name.
    let owned: Vec<u32> = {
        let inv = &inventory;
        let mut owned: Vec<(u32, &str)> = inv
            .iter()
            .zip(&owners)
            .zip(0u32..)
            .filter(|((_, o), _)| **o == Verdict::Owned)
            .filter_map(|((s, _), i)| s.claimed_path().map(|p| (i, p)))
            .collect();
        owned.sort_unstable_by(|(a, pa), (b, pb)| {
            let (a, b) = (inv.at(*a), inv.at(*b));
            pa.cmp(pb).then_with(|| {
                (a.deleted_date().is_some(), a.name()).cmp(&(b.deleted_date().is_some(), b.name()))
            })
        });
        owned.into_iter().map(|(i, _)| i).collect()
    };

    // 1. Entries, in listing order: each path stored once ("prefix/path", the path its tail,
    // so a plain name costs nothing more), or the span of the text an owned secret of that
    // path already has; the listing is gone after this pass.
    let mut entries: Vec<Entry> = Vec::with_capacity(input.listing.refs.len());
    let mut full = String::new();
    for r in input.listing.refs {
        let inv = &inventory;
        let mine = owned
            .get(owned_range(inv, &owned, &r.path))
            .unwrap_or_default();
        full.clear();
        if !prefix.is_empty() {
            full.push_str(prefix);
            full.push('/');
        }
        full.push_str(&r.path);
        let cut = full.len() - r.path.len();
        // the owned secret's name when it is the plain name, else the path its tags claim
        let reused = mine.first().and_then(|&i| {
            let s = inv.at(i);
            if s.name() == full {
                Some((Some(s.name_span()), inv.names().tail(s.name_span(), cut)?))
            } else {
                Some((None, s.claimed_path_span()?))
            }
        });
        let names = inventory.names_mut();
        let (plain, path) = match reused {
            Some(spans) => spans,
            None => {
                let whole = names.push(&full);
                let path = names
                    .tail(whole, cut)
                    .unwrap_or_else(|| names.push(&r.path));
                (Some(whole), path)
            }
        };
        let version = r
            .version
            .as_deref()
            .map_or(Span::default(), |v| names.push(v));
        let line = r
            .line
            .and_then(|l| u32::try_from(l).ok())
            .and_then(NonZeroU32::new);
        entries.push(Entry {
            path,
            // the plain name when it is stored (otherwise the empty span: named in pass 3)
            target: plain.unwrap_or_default(),
            version,
            line,
            existing: NO,
            renamed_from: NO,
            reasons: ReasonSet::default(),
            decision: Decision::Create,
        });
    }

    // 2. Sticky names, marked on this job's secrets (not copied into a map), then every name.
    let (planned, first) = {
        let inv = &inventory;
        let path_of = |e: &Entry| inv.names().get(e.path);
        let mut sticky = Sticky {
            inventory: inv,
            owned: &owned,
            keep: Vec::new(),
            count: 0,
        };
        if !owned.is_empty() {
            sticky.keep = vec![false; owned.len()];
            for path in entries.iter().map(path_of) {
                if input.overrides.get(path).is_some() {
                    continue; // an override always wins, in the open
                }
                let range = owned_range(inv, &owned, path);
                if let Some(&s) = owned.get(range.clone()).and_then(<[u32]>::first) {
                    if naming::is_rule_name(path, inv.at(s).name(), input.rules) {
                        if let Some(k) = sticky.keep.get_mut(range.start) {
                            *k = true;
                            sticky.count += 1;
                        }
                    }
                }
            }
        }
        let paths: Vec<&str> = entries.iter().map(path_of).collect();
        naming::plan_names_lean(&paths, input.rules, input.overrides, &sticky)?
    };
    // one entry per distinct path, in the planner's order (sorted by path): a listing is
    // sorted and distinct (`first` is `None`: the entries are in that order already);
    // otherwise each distinct path's first occurrence is the one kept (sources never list a
    // path twice: exports refuse duplicates)
    if let Some(first) = first {
        entries = first
            .iter()
            .filter_map(|&i| entries.get(i).cloned())
            .collect();
    }

    // 3. Names and decisions.
    // an unverified secret at a source's planned name that claims exactly that source
    let claims = |s: &Listed<'_>, o: &Verdict, path: &str| {
        matches!(o, Verdict::Unverified(_)) && s.claimed_path() == Some(path)
    };
    let mut name = String::new();
    for (e, lean) in entries.iter_mut().zip(planned) {
        let Lean {
            target,
            sticky,
            reasons,
        } = lean;
        let inv = &inventory;
        let path = inv.names().get(e.path);
        let mine = owned
            .get(owned_range(inv, &owned, path))
            .unwrap_or_default();
        // the plain name's span, when pass 1 stored it; the sticky name is the first owned
        // secret's of the path
        let plain = Some(e.target).filter(|t| *t != Span::default());
        let sticky = mine.first().filter(|_| sticky).map(|&i| inv.at(i).name());
        name.clear();
        match (&target, sticky, plain) {
            (Some(t), _, _) => name.push_str(t),
            (None, Some(s), _) => name.push_str(s),
            (None, None, Some(p)) => name.push_str(inv.names().get(p)),
            (None, None, None) if prefix.is_empty() => name.push_str(path),
            (None, None, None) => {
                name.push_str(prefix);
                name.push('/');
                name.push_str(path);
            }
        }
        drop(target);
        let renamed_from = mine
            .iter()
            .copied()
            .find(|&i| inv.at(i).deleted_date().is_none())
            .filter(|&i| inv.at(i).name() != name)
            .unwrap_or(NO);
        let found = inv.find(&name);
        let decision = match found {
            None => Decision::Create,
            Some(f) => {
                let (s, o) = (inv.at(f), owners.get(f as usize).copied());
                let ours = o == Some(Verdict::Owned) && s.claimed_path() == Some(path);
                if s.deleted_date().is_some() {
                    Decision::ScheduledForDeletion { ours }
                } else if ours {
                    Decision::Compare
                } else if input.adopt && o.is_some_and(|o| claims(&s, &o, path)) {
                    Decision::Adopt
                } else {
                    Decision::Conflict {
                        managed: !matches!(o, None | Some(Verdict::Unmanaged)),
                        policy: input.on_conflict,
                    }
                }
            }
        };
        let stored = found
            .map(|f| inv.at(f).name_span())
            .or(plain.filter(|_| naming::rules::is_plain(&name, input.rules.prefix(), path)));
        e.target = match stored {
            Some(span) => span,
            None => inventory.names_mut().push(&name),
        };
        e.existing = found.unwrap_or(NO);
        e.renamed_from = renamed_from;
        e.reasons = reasons;
        e.decision = decision;
    }
    inventory.names_mut().shrink();
    let inv = &inventory;
    let path_of = |e: &Entry| inv.names().get(e.path);
    let target_of = |e: &Entry| inv.names().get(e.target);
    debug_assert!(entries.windows(2).all(|w| path_of(&w[0]) < path_of(&w[1])));

    // which entry each source path is (the entries are sorted by path)
    let claimed = |path: &str| {
        entries
            .binary_search_by(|e| path_of(e).cmp(path))
            .ok()
            .and_then(|k| entries.get(k))
    };
    // the names items map to, for the unverified secrets no item stands on
    let mut planned: Vec<&str> = Vec::new();
    if owners.iter().any(|o| matches!(o, Verdict::Unverified(_))) {
        planned = entries.iter().map(target_of).collect();
        planned.sort_unstable();
    }
    let mut orphans = Vec::new();
    let mut unverified = Vec::new();
    let mut owned_live = 0;
    let mut foreign = 0;
    for ((s, o), i) in inv.iter().zip(&owners).zip(0u32..) {
        let path = match (o, s.claimed_path()) {
            (Verdict::Owned, Some(path)) => path,
            (Verdict::Foreign, _) => {
                foreign += 1;
                continue;
            }
            (Verdict::Unverified(why), _) => {
                if planned.binary_search(&s.name()).is_err() {
                    unverified.push((i, *why));
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
            Some(e) if target_of(e) == s.name() => continue,
            Some(e) => OrphanWhy::RenamedTo(target_of(e).to_owned()),
            None => OrphanWhy::SourceGone,
        };
        // one already scheduled for deletion needs nothing more
        if s.deleted_date().is_some() {
            continue;
        }
        if let Some(identity) = s.claimed() {
            orphans.push(Orphan {
                secret: i,
                identity,
                why,
            });
        }
    }
    drop(planned);
    entries.shrink_to_fit();
    Ok(Plan {
        entries,
        orphans,
        owned_live,
        foreign,
        unverified,
        inventory,
        key: input.key.cloned(),
    })
}

/// Whose a secret at a planned name is, in words, when it is not this source's (`None`:
/// unmanaged).
fn owner_words(s: &Listed<'_>, key: Option<&TokenDeriver>) -> Option<String> {
    match s.ownership(key) {
        Ownership::Unmanaged => None,
        Ownership::Owned(other) => Some(format!(
            "managed by secretport for another source of this job ({})",
            other.path()
        )),
        Ownership::Unverified { why, .. } => Some(unverified_words(why)),
        Ownership::Foreign(words) => Some(words),
    }
}

/// The range of `owned` (this job's secrets, sorted by claimed path) whose path is `path`.
fn owned_range(inv: &Inventory, owned: &[u32], path: &str) -> std::ops::Range<usize> {
    let p = |i: &u32| inv.at(*i).claimed_path().unwrap_or_default();
    let start = owned.partition_point(|i| p(i) < path);
    let end = start + owned[start..].partition_point(|i| p(i) == path);
    start..end
}

/// Sticky names (`naming::StickyNames`): the first of this job's secrets for a listed path
/// (`owned`, sorted by path) whose name is what the rules give that path, marked in `keep`;
/// read from the inventory, not copied (at 500,000 owned secrets a map of them is tens of
/// MiB).
struct Sticky<'a> {
    inventory: &'a Inventory,
    owned: &'a [u32],
    keep: Vec<bool>,
    count: usize,
}

impl naming::StickyNames for Sticky<'_> {
    fn name_of(&self, source: &str) -> Option<&str> {
        let at = owned_range(self.inventory, self.owned, source);
        match (self.owned.get(at.start), self.keep.get(at.start)) {
            (Some(&s), Some(true)) if !at.is_empty() => Some(self.inventory.at(s).name()),
            _ => None,
        }
    }

    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        Box::new(
            self.owned
                .iter()
                .zip(&self.keep)
                .filter(|(_, keep)| **keep)
                .map(|(&s, _)| {
                    let s = self.inventory.at(s);
                    (s.claimed_path().unwrap_or_default(), s.name())
                }),
        )
    }

    fn count(&self) -> usize {
        self.count
    }

    // an inventory's names are distinct and sorted: a sticky name is found where it is
    fn by_name(&self) -> bool {
        true
    }

    fn source_of(&self, name: &str) -> Option<&str> {
        let inv = self.inventory;
        let s = inv.find(name)?;
        let path = inv.at(s).claimed_path()?;
        let at = owned_range(inv, self.owned, path);
        match (self.owned.get(at.start), self.keep.get(at.start)) {
            (Some(&first), Some(true)) if first == s && !at.is_empty() => Some(path),
            _ => None,
        }
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
            inventory: Inventory::of(inventory.to_vec(), sc, "p"),
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
        let d: Vec<&Decision> = p.items().map(|i| i.decision()).collect();
        assert_eq!(d[0], &Decision::Compare);
        assert!(matches!(d[1], Decision::Conflict { managed: false, .. }));
        assert!(matches!(d[2], Decision::Conflict { managed: true, .. }));
        assert!(p.items().nth(2).unwrap().owner().is_some());
        assert!(matches!(
            d[3],
            Decision::ScheduledForDeletion { ours: true, .. }
        ));
        assert_eq!(d[4], &Decision::Create);
        // p/c's source zzz is not listed: it is an orphan even though its name is taken
        let names: Vec<&str> = p.orphans.iter().map(|o| p.secret(o).name()).collect();
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
            inventory: Inventory::of(inv, &s, "p"),
            on_conflict: OnConflict::Skip,
            filter: &filter,
            key: Some(&key()),
            adopt: false,
        })
        .unwrap();
        // b/* is outside the filter: neither orphan nor in the safety valve's denominator
        let names: Vec<&str> = p.orphans.iter().map(|o| p.secret(o).name()).collect();
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
        let names: Vec<&str> = p.orphans.iter().map(|o| p.secret(o).name()).collect();
        assert_eq!(names, vec!["p/db"]);
        assert_eq!(p.owned_live, 1);
        assert_eq!(p.foreign, 3);
        // a name clash with a foreign secret names its scope
        let p = plan_with(&mine, &["x"], &inv, "", Policy::Aws);
        let item = p.items().next().unwrap();
        assert!(matches!(
            item.decision(),
            Decision::Conflict { managed: true, .. }
        ));
        let w = item.owner().unwrap();
        assert!(w.contains("apps2/x"), "{w}");
    }

    #[test]
    fn sticky_names_survive_a_new_collision() {
        // "a b" was migrated as p/a_b; now "a#b" (same candidate) appears: "a b" keeps it
        let s = scope("");
        let inv = vec![secret("p/a_b", Some((&s, "a b", "p")), false)];
        let p = plan(&["a b", "a#b"], &inv);
        let m: BTreeMap<&str, &str> = p.items().map(|i| (i.path(), i.target_name())).collect();
        assert_eq!(m["a b"], "p/a_b");
        assert_ne!(m["a#b"], "p/a_b");
        assert!(p.orphans.is_empty());
        assert!(p.items().all(|i| i.renamed_from().is_none()));
    }

    #[test]
    fn a_collision_hash_name_stays_sticky_after_the_other_source_leaves() {
        let s = scope("");
        let first = plan(&["a b", "a#b"], &[]);
        let hashed = first.items().find(|i| i.path() == "a#b").unwrap();
        let inv = vec![secret(hashed.target_name(), Some((&s, "a#b", "p")), false)];
        let p = plan(&["a#b"], &inv);
        assert_eq!(
            p.items().next().unwrap().target_name(),
            hashed.target_name()
        );
        assert_eq!(*p.items().next().unwrap().decision(), Decision::Compare);
    }

    #[test]
    fn an_override_added_later_is_a_rename_in_the_open() {
        let s = scope("");
        let inv = vec![secret("p/a", Some((&s, "a", "p")), false)];
        let p = plan_with(&s, &["a"], &inv, "a,p/new\n", Policy::Aws);
        assert_eq!(p.items().next().unwrap().target_name(), "p/new");
        assert_eq!(*p.items().next().unwrap().decision(), Decision::Create);
        assert_eq!(p.items().next().unwrap().renamed_from(), Some("p/a"));
        assert_eq!(p.orphans.len(), 1);
        assert_eq!(p.orphans[0].why, OrphanWhy::RenamedTo("p/new".into()));
    }

    #[test]
    fn a_tightened_policy_is_a_rename_too() {
        let s = scope("");
        let inv = vec![secret("p/a_b", Some((&s, "a_b", "p")), false)];
        let p = plan_with(&s, &["a_b"], &inv, "", Policy::Alphanumeric);
        assert_ne!(p.items().next().unwrap().target_name(), "p/a_b");
        assert_eq!(p.items().next().unwrap().renamed_from(), Some("p/a_b"));
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
#[cfg(test)]
mod sizes {
    /// A run holds one entry and one inventory record per secret, up to a region's 500,000:
    /// each byte more is half a MiB there (the scale bench shows the whole).
    #[test]
    fn a_plan_entry_and_an_inventory_record_stay_small() {
        assert!(std::mem::size_of::<super::Entry>() <= 40);
        assert!(std::mem::size_of::<super::Decision>() <= 2);
        assert!(std::mem::size_of::<crate::target::listed::Record>() <= 80);
    }
}
