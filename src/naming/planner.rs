//! Planning a whole set of names: overrides, sticky names, collisions.
//!
//! Algorithm (deterministic; the per-name work runs on rayon):
//! 1. The distinct sources are sorted (parallel sort, on a 16-byte inline key first so that
//!    most comparisons need not touch the strings).
//! 2. *Reserved* names are collected: every sticky target (also of sources not in this set)
//!    and every override target of a source that is not sticky (also of absent sources).
//!    Two sticky sources with one target, or an override target that is another source's
//!    sticky name, are errors.
//! 3. In parallel, each source gets its mapping: its sticky name, else its override, else the
//!    rules' rewrite ([`super::rules`]). A rule-made name must be disambiguated when it is
//!    reserved.
//! 4. A rewritten name (not compliant) must also be disambiguated when it equals the plain
//!    name of a compliant source (compliant sources keep their clean names), or when two or
//!    more rewritten names are equal (then all of them are: no source is preferred). Found by
//!    binary search over the sorted mappings and by sorting the rewritten names (parallel).
//! 5. Each source to disambiguate gets its name plus a separator and 8 hex digits of
//!    SHA-256(source) (`_` under `aws`, `X` under `alphanumeric`), cut to stay within 512
//!    characters; if that name is taken too, the hash is lengthened by 4 digits at a time (up to
//!    64, then 16 digits of SHA-256(`source#k`)). "Taken" means: reserved, kept by another
//!    source, or given to an earlier source (in source order) of this step. The first free name
//!    against the kept names is searched in parallel; a sequential pass in source order then
//!    only lengthens the (rare) names that clash within this step, which gives exactly the
//!    result of a fully sequential pass.
//!
//! The result is unique across the whole set, and unique against all reserved names.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use super::rules::{candidate, fix_arn_suffix, is_plain, push_hex, sha256, HASH_LEN, MAX_NAME_LEN};
use super::{
    validate_prefix, Mapping, NamingError, NamingRules, Overrides, Planned, Policy, Reason,
    ReasonSet,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain name is valid: target == plain.
    Compliant,
    /// Rules changed the name.
    Rewritten,
    /// Sticky or override: target fixed, already reserved.
    Fixed,
}

/// Per-mapping planning state.
#[derive(Debug, Clone, Copy)]
struct Meta {
    kind: Kind,
    /// Must get a hash suffix.
    clash: bool,
}

/// Sticky names: source path → the name of the secret secretport created for it. Owned
/// strings or borrowed ones (the engine's planner borrows them from the listing and the
/// inventory: at 500,000 owned secrets a copy of each is tens of MiB).
pub trait StickyNames: Sync {
    /// The sticky name of `source`.
    fn name_of(&self, source: &str) -> Option<&str>;
    /// Every (source, name), in source order.
    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_>;
    /// How many.
    fn count(&self) -> usize;
    /// Whether [`source_of`](Self::source_of) answers: the names are distinct and looked up
    /// by name where they are (an inventory's, sorted by name), so the planner reserves them
    /// without a sorted copy of [`pairs`](Self::pairs) (32 bytes a name).
    fn by_name(&self) -> bool {
        false
    }
    /// The source whose sticky name is `name` (asked only when [`by_name`](Self::by_name)).
    fn source_of(&self, _name: &str) -> Option<&str> {
        None
    }
}

impl<K, V> StickyNames for BTreeMap<K, V>
where
    K: std::borrow::Borrow<str> + Ord + Sync,
    V: AsRef<str> + Sync,
{
    fn name_of(&self, source: &str) -> Option<&str> {
        self.get(source).map(AsRef::as_ref)
    }

    fn pairs(&self) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
        Box::new(self.iter().map(|(k, v)| (k.borrow(), v.as_ref())))
    }

    fn count(&self) -> usize {
        self.len()
    }
}

/// No sticky names (a preview, a first run).
pub static NO_STICKY: BTreeMap<&str, &str> = BTreeMap::new();

struct Ctx<'a> {
    prefix: Option<&'a str>,
    policy: Policy,
    overrides: &'a Overrides,
    sticky: &'a dyn StickyNames,
    reserved: &'a Reserved<'a>,
}

impl Ctx<'_> {
    #[inline]
    fn is_reserved(&self, name: &str) -> bool {
        !self.reserved.is_empty() && self.reserved.contains_key(name)
    }

    fn planned<T: Named>(&self, source: &str, target: String, reasons: ReasonSet) -> T {
        let changed = !is_plain(&target, self.prefix, source);
        T::named(source, target, changed, reasons)
    }

    fn entry<T: Named>(&self, source: &str) -> (T, Meta) {
        let fixed = Meta {
            kind: Kind::Fixed,
            clash: false,
        };
        if self.sticky.count() > 0 {
            if let Some(t) = self.sticky.name_of(source) {
                let (rule, reasons, _) = candidate(source, self.prefix, self.policy);
                let reasons = if rule == *t {
                    reasons
                } else {
                    ReasonSet::only(Reason::Sticky)
                };
                let changed = !is_plain(t, self.prefix, source);
                return (T::sticky(source, t, changed, reasons), fixed);
            }
        }
        if let Some(t) = self.overrides.get(source) {
            let reasons = ReasonSet::only(Reason::Override);
            return (self.planned(source, t.to_owned(), reasons), fixed);
        }
        let (target, reasons, compliant) = candidate(source, self.prefix, self.policy);
        let meta = Meta {
            kind: if compliant {
                Kind::Compliant
            } else {
                Kind::Rewritten
            },
            clash: self.is_reserved(&target),
        };
        let m = if compliant {
            T::plain(source, target, reasons)
        } else {
            self.planned(source, target, reasons)
        };
        (m, meta)
    }

    /// Whether `name` is the plain name of a compliant, rule-named source of the set (which
    /// keeps it, unless it is reserved).
    fn is_compliant_plain(&self, uniq: &[&str], meta: &[Meta], name: &str) -> bool {
        let rest = match self.prefix {
            Some(p) => match name.strip_prefix(p).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => return false,
            },
            None => name,
        };
        uniq.binary_search_by(|s| (*s).cmp(rest))
            .is_ok_and(|j| meta[j].kind == Kind::Compliant)
    }
}

/// The first 16 bytes, big-endian, zero-padded: ordered like the strings' bytes (ties broken by
/// comparing the strings).
#[inline]
fn sort_key(s: &str) -> u128 {
    let b = s.as_bytes();
    let mut k = [0u8; 16];
    let n = b.len().min(16);
    k[..n].copy_from_slice(&b[..n]);
    u128::from_be_bytes(k)
}

/// Plans target names for `sources` (duplicates allowed, any order).
///
/// Returns one [`Mapping`] per distinct source, sorted by source. The result is the same for
/// any order of `sources` and any size of the rayon pool the call runs in.
///
/// * `overrides` win over the rules; their targets are full names (no prefix added).
/// * `sticky` maps sources to the names of secrets secretport already created for them (from
///   their `secretport:source` tags). A sticky source keeps that name verbatim (reason
///   `sticky` when it differs from what the rules give now, otherwise the rules' reasons); every
///   sticky target is reserved, also for sources not in `sources`, so a new source that wants
///   one is disambiguated (`collision`). A sticky source's override is ignored.
/// * A compliant source keeps its plain name `prefix/source` unless that name is reserved by an
///   override or a sticky name of another source.
/// * [`Mapping::changed`] is `target != prefix/source`; reason `prefix` is given whenever the
///   prefix was put in front by the rules.
///
/// Errors: an invalid prefix, two sticky sources with one target, an override whose target is
/// another source's sticky name.
pub fn plan_names(
    sources: &[String],
    rules: &NamingRules,
    overrides: &Overrides,
    sticky: &dyn StickyNames,
) -> Result<Vec<Mapping>, NamingError> {
    plan::<_, Mapping>(sources, rules, overrides, sticky, false, None).map(|(_, maps, _)| maps)
}

/// [`plan_names`] without a copy of each source path: for each distinct source (sorted), what
/// was planned for it and the index in `sources` of its first occurrence (so a caller can
/// restore input order without hashing the names again). The engine's planner uses this: at a
/// region's 500,000 secrets, a copy of every path is tens of MiB.
pub fn plan_names_with_first<S: AsRef<str> + Sync>(
    sources: &[S],
    rules: &NamingRules,
    overrides: &Overrides,
    sticky: &dyn StickyNames,
) -> Result<(Vec<Planned>, Vec<usize>), NamingError> {
    plan::<_, Planned>(sources, rules, overrides, sticky, true, None).map(|(_, planned, first)| {
        let first = first.unwrap_or_else(|| (0..planned.len()).collect());
        (planned, first)
    })
}

/// [`plan_names_with_first`] for the engine's planner (`plan::build`), leaner still: a plain
/// name (`prefix/source`, most of them) is not kept ([`Lean::target`] is `None`), and when the
/// sources are already sorted and distinct (a listing is) they are not sorted again and the
/// first occurrences are not returned (`None`: each source is its own). Same names as
/// [`plan_names`].
pub(crate) fn plan_names_lean(
    sources: &[&str],
    rules: &NamingRules,
    overrides: &Overrides,
    sticky: &dyn StickyNames,
) -> Result<(Vec<Lean>, Option<Vec<usize>>), NamingError> {
    plan::<_, Lean>(sources, rules, overrides, sticky, true, Some(sources))
        .map(|(_, planned, first)| (planned, first))
}

/// What [`plan_names_lean`] plans for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lean {
    /// The target name; `None`: the plain name `prefix/source`, or the sticky name.
    pub target: Option<Box<str>>,
    /// The name is the source's sticky name ([`StickyNames::name_of`]), not the plain one:
    /// the caller has its text already (at 500,000 sticky names a copy of each is tens of MiB).
    pub sticky: bool,
    /// Why.
    pub reasons: ReasonSet,
}

/// Sorts `make(i, source)` for all sources (parallel) and keeps the first of each run of
/// elements that `same` says are equal.
fn sort_dedup<'a, S, T, M>(sources: &'a [S], make: M, same: fn(&T, &T) -> bool) -> Vec<T>
where
    S: AsRef<str> + Sync,
    T: Ord + Send + Sync,
    M: Fn(usize, &'a str) -> T + Sync + Send,
{
    let mut keyed: Vec<T> = sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| make(i, s.as_ref()))
        .collect();
    keyed.par_sort_unstable();
    // Compare neighbours in parallel (the strings only on equal keys), then compact.
    let dup: Vec<bool> = (0..keyed.len())
        .into_par_iter()
        .map(|i| i > 0 && same(&keyed[i], &keyed[i - 1]))
        .collect();
    let mut dup = dup.into_iter();
    keyed.retain(|_| !dup.next().unwrap_or(false));
    keyed
}

/// What [`plan`] gives: the distinct sources (sorted), what was planned for each, and (when
/// asked, and the sources were not sorted and distinct already) the index of each one's first
/// occurrence.
type Planning<'s, T> = (Cow<'s, [&'s str]>, Vec<T>, Option<Vec<usize>>);

/// What the planner makes per source: a [`Planned`] name, or a whole [`Mapping`] whose copy
/// of the source is made in the same parallel pass as its name (a pass of its own for the
/// copies costs 10-20% of a million-name plan).
trait Named: Send + Sync + Sized {
    fn named(source: &str, target: String, changed: bool, reasons: ReasonSet) -> Self;
    /// A compliant source's own plain name (`target` is `prefix/source`).
    fn plain(source: &str, target: String, reasons: ReasonSet) -> Self {
        Self::named(source, target, false, reasons)
    }
    /// The sticky name `target` of `source` (the [`StickyNames`]' own text).
    fn sticky(source: &str, target: &str, changed: bool, reasons: ReasonSet) -> Self {
        Self::named(source, target.to_owned(), changed, reasons)
    }
    /// The target (only asked of rewritten names, which are always kept).
    fn target(&self) -> &str;
    /// The target of `source`, also when it is its plain name.
    fn target_of<'a>(&'a self, _source: &str, _prefix: Option<&str>) -> Cow<'a, str> {
        Cow::Borrowed(self.target())
    }
    /// Takes the disambiguated `target` (reason `collision`).
    fn collided(&mut self, target: String, changed: bool);
}

/// `target` and `collided` for a type with `target`, `changed` and `reasons` fields (both
/// [`Planned`] and [`Mapping`] have them).
macro_rules! name_fields {
    () => {
        fn target(&self) -> &str {
            &self.target
        }
        fn collided(&mut self, target: String, changed: bool) {
            self.target = target;
            self.changed = changed;
            self.reasons.insert(Reason::Collision);
        }
    };
}

impl Named for Planned {
    fn named(_: &str, target: String, changed: bool, reasons: ReasonSet) -> Self {
        Planned {
            target,
            changed,
            reasons,
        }
    }
    name_fields!();
}

impl Named for Lean {
    fn named(_: &str, target: String, changed: bool, reasons: ReasonSet) -> Self {
        // a sticky or override name that is the plain one is not kept either
        Lean {
            target: changed.then(|| target.into_boxed_str()),
            sticky: false,
            reasons,
        }
    }
    fn plain(_: &str, _: String, reasons: ReasonSet) -> Self {
        Lean {
            target: None,
            sticky: false,
            reasons,
        }
    }
    fn sticky(_: &str, _: &str, changed: bool, reasons: ReasonSet) -> Self {
        Lean {
            target: None,
            sticky: changed,
            reasons,
        }
    }
    fn target(&self) -> &str {
        self.target.as_deref().unwrap_or_default()
    }
    fn target_of<'a>(&'a self, source: &str, prefix: Option<&str>) -> Cow<'a, str> {
        match (&self.target, prefix) {
            (Some(t), _) => Cow::Borrowed(t),
            (None, Some(p)) => Cow::Owned(format!("{p}/{source}")),
            (None, None) => Cow::Owned(source.to_owned()),
        }
    }
    fn collided(&mut self, target: String, _: bool) {
        self.target = Some(target.into_boxed_str());
        self.reasons.insert(Reason::Collision);
    }
}

impl Named for Mapping {
    fn named(source: &str, target: String, changed: bool, reasons: ReasonSet) -> Self {
        Mapping {
            source: source.to_owned(),
            target,
            changed,
            reasons,
        }
    }
    name_fields!();
}

fn plan<'s, S: AsRef<str> + Sync, T: Named>(
    sources: &'s [S],
    rules: &NamingRules,
    overrides: &Overrides,
    sticky: &dyn StickyNames,
    with_first: bool,
    strs: Option<&'s [&'s str]>,
) -> Result<Planning<'s, T>, NamingError> {
    let prefix = rules.prefix();
    if let Some(p) = prefix {
        validate_prefix(p, rules.policy).map_err(|message| NamingError::InvalidPrefix {
            prefix: p.to_owned(),
            message,
        })?;
    }

    // 1. Distinct sources, sorted (by a 16-byte inline key first). With `with_first`, the
    // input position is the last sort key, so the first of equal strings is the first
    // occurrence (a wider element, so only when asked for).
    // Sources already sorted and distinct (a listing is) are taken as they are: each is its
    // own first occurrence (`None`).
    let sorted = (1..sources.len())
        .into_par_iter()
        .all(|i| sources[i - 1].as_ref() < sources[i].as_ref());
    let (uniq, first_seen): (Cow<'s, [&'s str]>, Option<Vec<usize>>) = if sorted {
        // already a slice of `&str` (the engine's planner): borrowed, not copied
        let uniq = match strs {
            Some(strs) => Cow::Borrowed(strs),
            None => Cow::Owned(sources.par_iter().map(AsRef::as_ref).collect()),
        };
        (uniq, None)
    } else if with_first {
        assert!(
            u32::try_from(sources.len()).is_ok(),
            "plan_names: more than 2^32 names"
        );
        let keyed = sort_dedup(
            sources,
            |i, s| (sort_key(s), s, i as u32),
            |a, b| a.0 == b.0 && a.1 == b.1,
        );
        (
            Cow::Owned(keyed.par_iter().map(|k| k.1).collect()),
            Some(keyed.par_iter().map(|k| k.2 as usize).collect()),
        )
    } else {
        let keyed = sort_dedup(sources, |_, s| (sort_key(s), s), |a, b| a == b);
        (Cow::Owned(keyed.par_iter().map(|k| k.1).collect()), None)
    };

    // 2. Reserved names.
    let reserved = reserved_names(overrides, sticky)?;

    // 3. Mappings.
    let ctx = Ctx {
        prefix,
        policy: rules.policy,
        overrides,
        sticky,
        reserved: &reserved,
    };
    let (mut maps, mut meta): (Vec<T>, Vec<Meta>) = uniq.par_iter().map(|s| ctx.entry(s)).unzip();

    // 4. Rewritten names that equal a compliant name, or each other.
    let mut rewritten: Vec<u32> = meta
        .par_iter()
        .enumerate()
        .filter(|(_, m)| m.kind == Kind::Rewritten)
        .map(|(i, _)| i as u32)
        .collect();
    let shadowed: Vec<u32> = rewritten
        .par_iter()
        .copied()
        .filter(|&i| {
            let i = i as usize;
            !meta[i].clash && ctx.is_compliant_plain(&uniq, &meta, maps[i].target())
        })
        .collect();
    for i in shadowed {
        meta[i as usize].clash = true;
    }
    rewritten.par_sort_unstable_by(|&a, &b| {
        maps[a as usize]
            .target()
            .cmp(maps[b as usize].target())
            .then(a.cmp(&b))
    });
    let target_of = |p: usize| maps[rewritten[p] as usize].target();
    let shared: Vec<u32> = (0..rewritten.len())
        .into_par_iter()
        .filter(|&p| {
            (p > 0 && target_of(p) == target_of(p - 1))
                || (p + 1 < rewritten.len() && target_of(p) == target_of(p + 1))
        })
        .map(|p| rewritten[p])
        .collect();
    for i in shared {
        meta[i as usize].clash = true;
    }

    // 5. Disambiguation. The names not taken by the fixed set (reserved, compliant and kept
    // rewritten names) are found in parallel; then, in source order, a name already given to
    // an earlier source of this pass is lengthened further. Same result as a purely
    // sequential pass, since the fixed set does not change.
    let body_start = prefix.map_or(0, |p| p.len() + 1);
    let fixed_taken = |name: &str| {
        ctx.is_reserved(name)
            || ctx.is_compliant_plain(&uniq, &meta, name)
            || rewritten
                .binary_search_by(|&k| maps[k as usize].target().cmp(name))
                .is_ok_and(|pos| !meta[rewritten[pos] as usize].clash)
    };
    let first: Vec<(usize, String, u64)> = meta
        .par_iter()
        .enumerate()
        .filter(|(_, m)| m.clash)
        .map(|(i, _)| {
            let (name, attempt) = disambiguate(
                uniq[i],
                &maps[i].target_of(uniq[i], prefix),
                rules.policy,
                body_start,
                0,
                fixed_taken,
            );
            (i, name, attempt)
        })
        .collect();
    let mut assigned: HashSet<String> = HashSet::with_capacity(first.len());
    let mut renamed: Vec<(usize, String)> = Vec::with_capacity(first.len());
    for (i, mut name, attempt) in first {
        if assigned.contains(&name) {
            name = disambiguate(
                uniq[i],
                &maps[i].target_of(uniq[i], prefix),
                rules.policy,
                body_start,
                attempt + 1,
                |n| fixed_taken(n) || assigned.contains(n),
            )
            .0;
        }
        assigned.insert(name.clone());
        renamed.push((i, name));
    }
    for (i, name) in renamed {
        let changed = !is_plain(&name, prefix, uniq[i]);
        maps[i].collided(name, changed);
    }
    Ok((uniq, maps, first_seen))
}

/// Whether `name` is what the rules give `source` (its candidate), or one of the collision-hash
/// variants of that candidate. Existing names pass as sticky only then: sticky names keep
/// collision choices stable, while a changed rule or override shows as a rename.
pub fn is_rule_name(source: &str, name: &str, rules: &NamingRules) -> bool {
    let prefix = rules.prefix();
    let (rule, _, _) = candidate(source, prefix, rules.policy);
    if name == rule {
        return true;
    }
    let body_start = prefix.map_or(0, |p| p.len() + 1);
    // attempts 0..=12 cover hashes of 8..=56 hex digits and the first re-hashed ones: far more
    // collisions on one name than a real tree holds
    (0..=12).any(|attempt| {
        disambiguate(source, &rule, rules.policy, body_start, attempt, |_| false).0 == name
    })
}

/// The reserved names, each with its source: the sticky targets sorted by name (a region's
/// 500,000 sticky names take 32 bytes each so, about half of a hash map of them), and the
/// override targets of non-sticky sources (a few) in a map.
struct Reserved<'a> {
    sticky: Vec<(&'a str, &'a str)>,
    /// The sticky names themselves, when they are looked up by name where they are
    /// ([`StickyNames::by_name`]; `sticky` is then empty).
    by_name: Option<&'a dyn StickyNames>,
    overrides: HashMap<&'a str, &'a str>,
}

impl<'a> Reserved<'a> {
    fn is_empty(&self) -> bool {
        self.sticky.is_empty()
            && self.by_name.is_none_or(|s| s.count() == 0)
            && self.overrides.is_empty()
    }

    /// The source that reserves `name`.
    fn get(&self, name: &str) -> Option<&'a str> {
        let sticky = match self.by_name {
            Some(s) => s.source_of(name),
            None => self
                .sticky
                .binary_search_by(|(t, _)| (*t).cmp(name))
                .ok()
                .map(|k| self.sticky[k].1),
        };
        sticky.or_else(|| self.overrides.get(name).copied())
    }

    fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Sticky targets and the override targets of non-sticky sources, each with its source.
fn reserved_names<'a>(
    overrides: &'a Overrides,
    sticky: &'a dyn StickyNames,
) -> Result<Reserved<'a>, NamingError> {
    let indexed = sticky.by_name();
    let mut by_name: Vec<(&str, &str)> = Vec::new();
    if !indexed {
        by_name = sticky.pairs().map(|(s, t)| (t, s)).collect();
        // stable: sources of one target stay in source order
        by_name.par_sort_by(|a, b| a.0.cmp(b.0));
    }
    if by_name.windows(2).any(|w| w[0].0 == w[1].0) {
        // two sticky sources with one target: the first one met in source order is named
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(sticky.count());
        for (s, t) in sticky.pairs() {
            if let Some(first) = seen.insert(t, s) {
                return Err(NamingError::StickyConflict {
                    target: t.to_owned(),
                    first: first.to_owned(),
                    second: s.to_owned(),
                });
            }
        }
    }
    let mut reserved = Reserved {
        sticky: by_name,
        by_name: indexed.then_some(sticky),
        overrides: HashMap::with_capacity(overrides.len()),
    };
    for o in overrides.entries() {
        if sticky.name_of(&o.source).is_some() {
            continue;
        }
        if let Some(holder) = reserved.get(o.target.as_str()) {
            return Err(NamingError::OverrideTargetTaken {
                line: o.line,
                path: o.source.clone(),
                target: o.target.clone(),
                holder: holder.to_owned(),
            });
        }
        reserved
            .overrides
            .insert(o.target.as_str(), o.source.as_str());
    }
    Ok(reserved)
}

/// `base` + separator + a hash of `source`, within 512 characters, not `taken`; tries from
/// attempt number `from` on, and returns the name and its attempt number. Attempt `k` uses
/// `8 + 4k` hex digits of SHA-256(source) while they last (up to 64), then 16 hex digits of
/// SHA-256(`source#k`).
fn disambiguate(
    source: &str,
    base: &str,
    policy: Policy,
    body_start: usize,
    from: u64,
    taken: impl Fn(&str) -> bool,
) -> (String, u64) {
    let sep = policy.hash_separator();
    let digest = sha256(source.as_bytes());
    let mut attempt = from;
    loop {
        let digits = HASH_LEN as u64 + 4 * attempt;
        let (hash, n) = if digits <= 64 {
            (digest, digits as usize)
        } else {
            let mut data = source.as_bytes().to_vec();
            data.push(b'#');
            data.extend_from_slice(attempt.to_string().as_bytes());
            (sha256(&data), 16)
        };
        let suffix = sep.len() + n;
        let keep = base.len().min(MAX_NAME_LEN - suffix).max(body_start + 1);
        let mut name = String::with_capacity(keep + suffix);
        name.push_str(&base[..keep]);
        name.push_str(sep);
        push_hex(&mut name, &hash, n);
        fix_arn_suffix(&mut name, body_start);
        debug_assert!(super::is_valid_target(&name, policy), "{name}");
        if !taken(&name) {
            return (name, attempt);
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::is_valid_target;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn plan(v: &[&str], rules: &NamingRules) -> Vec<Mapping> {
        plan_names(&s(v), rules, &Overrides::default(), &NO_STICKY).unwrap()
    }

    fn target<'a>(m: &'a [Mapping], source: &str) -> &'a Mapping {
        m.iter().find(|m| m.source == source).unwrap()
    }

    fn aws() -> NamingRules {
        NamingRules::new(Some("devops"), Policy::Aws)
    }

    #[test]
    fn sorted_distinct_and_order_independent() {
        let a = plan(&["b", "a b", "a", "b", "a_b"], &aws());
        let srcs: Vec<_> = a.iter().map(|m| m.source.as_str()).collect();
        assert_eq!(srcs, ["a", "a b", "a_b", "b"]);
        let b = plan(&["a_b", "b", "a", "a b"], &aws());
        assert_eq!(a, b);
    }

    #[test]
    fn compliant_source_keeps_clean_name_on_collision() {
        let m = plan(&["a b", "a_b", "a:b"], &aws());
        let clean = target(&m, "a_b");
        assert_eq!(clean.target, "devops/a_b");
        assert!(!clean.changed);
        assert_eq!(clean.reasons.to_vec(), vec![Reason::Prefix]);
        for src in ["a b", "a:b"] {
            let t = target(&m, src);
            assert_eq!(t.reasons_str(), "prefix;charset;collision");
            let h = &t.target["devops/a_b_".len()..];
            assert!(t.target.starts_with("devops/a_b_"), "{}", t.target);
            assert_eq!(h.len(), 8);
            let mut expect = String::new();
            push_hex(&mut expect, &sha256(src.as_bytes()), 8);
            assert_eq!(h, expect);
        }
        assert_ne!(target(&m, "a b").target, target(&m, "a:b").target);
    }

    #[test]
    fn rewritten_collisions_all_get_hashes() {
        let m = plan(&["a b", "a#b"], &aws());
        for x in &m {
            assert!(x.has(Reason::Collision), "{x:?}");
            assert!(x.target.starts_with("devops/a_b_"));
        }
        // Without a collision, no hash.
        let m = plan(&["a b"], &aws());
        assert_eq!(m[0].target, "devops/a_b");
    }

    #[test]
    fn alphanumeric_collision_suffix() {
        let rules = NamingRules::new(None, Policy::Alphanumeric);
        let m = plan(&["ab", "a-b", "a_b"], &rules);
        assert_eq!(target(&m, "ab").target, "ab");
        for src in ["a-b", "a_b"] {
            let t = &target(&m, src).target;
            assert!(t.starts_with("abX") && t.len() == 11, "{t}");
            assert!(is_valid_target(t, Policy::Alphanumeric));
        }
    }

    #[test]
    fn collision_with_truncated_names_stays_within_512() {
        // Two 600-char names differing only at the end truncate to different names.
        let a = format!("{}x", "a".repeat(599));
        let b = format!("{}y", "a".repeat(599));
        let m = plan(&[&a, &b], &aws());
        assert_ne!(m[0].target, m[1].target);
        for x in &m {
            assert_eq!(x.target.len(), 512);
            assert_eq!(x.reasons_str(), "prefix;truncated");
        }
        // A 512-char compliant name and a rewritten twin: the twin's suffix fits in 512.
        let clean = format!("{}_", "c".repeat(504));
        let twin = format!("{} ", "c".repeat(504));
        let twin2 = format!("{}#", "c".repeat(504));
        let m = plan(&[&clean, &twin, &twin2], &aws());
        assert_eq!(target(&m, &clean).target.len(), 512);
        for t in [&twin, &twin2] {
            let x = target(&m, t);
            assert_eq!(x.target.len(), 512, "{}", x.target);
            assert!(x.has(Reason::Collision));
            assert!(is_valid_target(&x.target, Policy::Aws));
        }
    }

    #[test]
    fn disambiguate_lengthens_hash_when_taken() {
        let d = |from: u64, taken: &dyn Fn(&str) -> bool| {
            disambiguate("src", "devops/a", Policy::Aws, 7, from, taken).0
        };
        let first = d(0, &|_| false);
        assert_eq!(first.len(), "devops/a_".len() + 8);
        let second = d(0, &|n| n == first);
        assert_eq!(d(1, &|_| false), second);
        assert_eq!(second.len(), "devops/a_".len() + 12);
        assert!(second.starts_with(&first));
        // Even when every hex length of the digest is taken.
        let third = d(0, &|n| n.starts_with(&first));
        assert_eq!(third.len(), "devops/a_".len() + 16);
        assert!(!third.starts_with(&first));
        // At the length limit, the base is cut.
        let base = "x".repeat(512);
        let d = disambiguate("src", &base, Policy::Aws, 0, 0, |_| false).0;
        assert_eq!(d.len(), 512);
        assert!(d.starts_with(&"x".repeat(503)));
    }

    #[test]
    fn overrides_win_and_reserve() {
        let rules = aws();
        let o = Overrides::parse("a b,devops/custom\nghost,devops/a_c\n", &rules).unwrap();
        let m = plan_names(&s(&["a b", "a_c", "a c", "custom"]), &rules, &o, &NO_STICKY).unwrap();
        let x = target(&m, "a b");
        assert_eq!(
            (x.target.as_str(), x.reasons_str()),
            ("devops/custom", "override".into())
        );
        assert!(x.changed);
        // "custom" is compliant, but its plain name is an override target: disambiguated.
        let x = target(&m, "custom");
        assert!(x.target.starts_with("devops/custom_"), "{}", x.target);
        assert_eq!(x.reasons_str(), "prefix;collision");
        // "ghost" is absent but still reserves devops/a_c, so even the compliant a_c yields.
        let x = target(&m, "a_c");
        assert!(x.target.starts_with("devops/a_c_"), "{}", x.target);
        let x = target(&m, "a c");
        assert!(x.target.starts_with("devops/a_c_"), "{}", x.target);
        assert_ne!(target(&m, "a c").target, target(&m, "a_c").target);
    }

    #[test]
    fn override_equal_to_plain_name_is_not_a_change() {
        let rules = aws();
        let o = Overrides::parse("app/db,devops/app/db\n", &rules).unwrap();
        let m = plan_names(&s(&["app/db"]), &rules, &o, &NO_STICKY).unwrap();
        assert_eq!(m[0].target, "devops/app/db");
        assert!(!m[0].changed);
        assert_eq!(m[0].reasons.to_vec(), vec![Reason::Override]);
    }

    #[test]
    fn sticky_names_win() {
        let rules = aws();
        let mut sticky = BTreeMap::new();
        // An earlier run named "a b" devops/a_b; now a compliant "a_b" appears.
        sticky.insert("a b".to_owned(), "devops/a_b".to_owned());
        // A secret created under an old rule set, and one for a source not in this run.
        sticky.insert("old".to_owned(), "legacy/old".to_owned());
        sticky.insert("gone".to_owned(), "devops/x_y".to_owned());
        let m = plan_names(
            &s(&["a b", "a_b", "old", "x y"]),
            &rules,
            &Overrides::default(),
            &sticky,
        )
        .unwrap();
        let x = target(&m, "a b");
        assert_eq!(x.target, "devops/a_b");
        assert_eq!(x.reasons_str(), "prefix;charset");
        let x = target(&m, "a_b");
        assert!(x.target.starts_with("devops/a_b_"), "{}", x.target);
        assert_eq!(x.reasons_str(), "prefix;collision");
        let x = target(&m, "old");
        assert_eq!(
            (x.target.as_str(), x.reasons_str()),
            ("legacy/old", "sticky".into())
        );
        assert!(x.changed);
        let x = target(&m, "x y");
        assert!(x.target.starts_with("devops/x_y_"), "{}", x.target);
        // Sticky beats an override of the same source.
        let o = Overrides::parse("old,devops/new-old\n", &rules).unwrap();
        let m = plan_names(&s(&["old"]), &rules, &o, &sticky).unwrap();
        assert_eq!(m[0].target, "legacy/old");
    }

    #[test]
    fn sticky_conflicts_are_errors() {
        let rules = aws();
        let mut sticky = BTreeMap::new();
        sticky.insert("a".to_owned(), "devops/t".to_owned());
        sticky.insert("b".to_owned(), "devops/t".to_owned());
        let e = plan_names(&s(&["a"]), &rules, &Overrides::default(), &sticky).unwrap_err();
        assert_eq!(
            e,
            NamingError::StickyConflict {
                target: "devops/t".into(),
                first: "a".into(),
                second: "b".into()
            }
        );
        sticky.remove("b");
        let o = Overrides::parse("source,target\nc,devops/t\n", &rules).unwrap();
        let e = plan_names(&s(&["c"]), &rules, &o, &sticky).unwrap_err();
        assert!(
            matches!(&e, NamingError::OverrideTargetTaken { line: 2, holder, .. } if holder == "a"),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_prefix_is_an_error() {
        let rules = NamingRules {
            prefix: Some("dev ops".into()),
            policy: Policy::Aws,
        };
        assert!(matches!(
            plan_names(&s(&["a"]), &rules, &Overrides::default(), &NO_STICKY),
            Err(NamingError::InvalidPrefix { .. })
        ));
    }

    #[test]
    fn hashed_name_avoids_existing_compliant_name() {
        // "a b" and "a#b" both rewrite to devops/a_b and need a hash; pre-empt the
        // 8-digit name of "a b" with a compliant source: it must take a 12-digit hash.
        let mut h = String::new();
        push_hex(&mut h, &sha256(b"a b"), 8);
        let squatter = format!("a_b_{h}");
        let m = plan(&["a b", "a#b", &squatter], &aws());
        assert_eq!(target(&m, &squatter).target, format!("devops/{squatter}"));
        let x = target(&m, "a b");
        assert_eq!(x.target.len(), "devops/a_b_".len() + 12, "{}", x.target);
        let mut set = HashSet::new();
        assert!(m.iter().all(|x| set.insert(x.target.clone())));
    }
}
