//! Planning a whole set of names: overrides, sticky names, collisions.
//!
//! Algorithm (deterministic; the per-name work runs on rayon):
//! 1. The distinct sources are sorted (parallel sort).
//! 2. *Reserved* names are collected: every sticky target (also of sources not in this set)
//!    and every override target of a source that is not sticky (also of absent sources).
//!    Two sticky sources with one target, or an override target that is another source's
//!    sticky name, are errors.
//! 3. In parallel, each source gets its candidate: its sticky name, else its override, else the
//!    rules' rewrite ([`super::rules`]). A rule candidate must be disambiguated when it is
//!    reserved, or (for a rewritten name) equal to the plain name of a compliant source
//!    (compliant sources keep their clean names).
//! 4. Rewritten candidates are sorted by target: any target wanted by two or more of them is
//!    disambiguated for all of them (no source is preferred over another).
//! 5. Sequentially, in source order, each source to disambiguate gets its candidate plus a
//!    separator and 8 hex digits of SHA-256(source) (`_` under `aws`, `X` under `alphanumeric`),
//!    cut to stay within 512 characters; if that name is taken too, the hash is lengthened by
//!    4 digits at a time (up to 64, then hashes of `source#k`).
//!
//! The result is unique across the whole set, and unique against all reserved names.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use super::rules::{
    candidate, fix_arn_suffix, is_plain, plain_is_valid, push_hex, sha256, table, HASH_LEN,
    MAX_NAME_LEN,
};
use super::{validate_prefix, Mapping, NamingError, NamingRules, Overrides, Policy, Reason, ReasonSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain name is valid: target == plain.
    Compliant,
    /// Rules changed the name.
    Rewritten,
    /// Sticky or override: target fixed, already reserved.
    Fixed,
}

struct Cand {
    target: String,
    reasons: ReasonSet,
    kind: Kind,
    /// Must get a hash suffix.
    clash: bool,
}

struct Ctx<'a> {
    prefix: Option<&'a str>,
    policy: Policy,
    table: &'static [bool; 256],
    overrides: &'a Overrides,
    sticky: &'a BTreeMap<String, String>,
    reserved: &'a HashMap<&'a str, &'a str>,
    uniq: &'a [&'a str],
}

impl Ctx<'_> {
    #[inline]
    fn is_fixed(&self, source: &str) -> bool {
        (!self.sticky.is_empty() && self.sticky.contains_key(source))
            || self.overrides.get(source).is_some()
    }

    /// Whether `name` is the plain name of a compliant, rule-named source of the set (which
    /// then keeps it, unless it is reserved).
    fn is_compliant_plain(&self, name: &str) -> bool {
        let rest = match self.prefix {
            Some(p) => match name.strip_prefix(p).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => return false,
            },
            None => name,
        };
        match self.uniq.binary_search(&rest) {
            Ok(_) => {
                !self.is_fixed(rest)
                    && plain_is_valid(
                        rest.as_bytes(),
                        self.prefix.map(str::as_bytes),
                        self.table,
                    )
            }
            Err(_) => false,
        }
    }

    #[inline]
    fn is_reserved(&self, name: &str) -> bool {
        !self.reserved.is_empty() && self.reserved.contains_key(name)
    }

    fn candidate(&self, source: &str) -> Cand {
        if !self.sticky.is_empty() {
            if let Some(t) = self.sticky.get(source) {
                let (rule, reasons, _) = candidate(source, self.prefix, self.policy);
                let reasons = if rule == *t {
                    reasons
                } else {
                    ReasonSet::only(Reason::Sticky)
                };
                return Cand {
                    target: t.clone(),
                    reasons,
                    kind: Kind::Fixed,
                    clash: false,
                };
            }
        }
        if let Some(t) = self.overrides.get(source) {
            return Cand {
                target: t.to_owned(),
                reasons: ReasonSet::only(Reason::Override),
                kind: Kind::Fixed,
                clash: false,
            };
        }
        let (target, reasons, compliant) = candidate(source, self.prefix, self.policy);
        if compliant {
            let clash = self.is_reserved(&target);
            Cand {
                target,
                reasons,
                kind: Kind::Compliant,
                clash,
            }
        } else {
            let clash = self.is_reserved(&target) || self.is_compliant_plain(&target);
            Cand {
                target,
                reasons,
                kind: Kind::Rewritten,
                clash,
            }
        }
    }
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
///   one is disambiguated (`collision`).
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
    sticky: &BTreeMap<String, String>,
) -> Result<Vec<Mapping>, NamingError> {
    let prefix = rules.prefix();
    if let Some(p) = prefix {
        validate_prefix(p, rules.policy).map_err(|message| NamingError::InvalidPrefix {
            prefix: p.to_owned(),
            message,
        })?;
    }

    // 1. Distinct sources, sorted.
    let mut uniq: Vec<&str> = sources.par_iter().map(String::as_str).collect();
    uniq.par_sort_unstable();
    uniq.dedup();

    // 2. Reserved names.
    let reserved = reserved_names(overrides, sticky)?;

    // 3. Candidates.
    let ctx = Ctx {
        prefix,
        policy: rules.policy,
        table: table(rules.policy),
        overrides,
        sticky,
        reserved: &reserved,
        uniq: &uniq,
    };
    let mut cands: Vec<Cand> = uniq.par_iter().map(|s| ctx.candidate(s)).collect();

    // 4. Rewritten candidates that want one target.
    let mut rewritten: Vec<u32> = cands
        .par_iter()
        .enumerate()
        .filter(|(_, c)| c.kind == Kind::Rewritten)
        .map(|(i, _)| i as u32)
        .collect();
    rewritten.par_sort_unstable_by(|&a, &b| {
        cands[a as usize]
            .target
            .cmp(&cands[b as usize].target)
            .then(a.cmp(&b))
    });
    let mut g = 0;
    while g < rewritten.len() {
        let t = &cands[rewritten[g] as usize].target;
        let mut end = g + 1;
        while end < rewritten.len() && cands[rewritten[end] as usize].target == *t {
            end += 1;
        }
        if end - g > 1 {
            for &i in &rewritten[g..end] {
                cands[i as usize].clash = true;
            }
        }
        g = end;
    }

    // 5. Disambiguation, in source order.
    let body_start = prefix.map_or(0, |p| p.len() + 1);
    let mut assigned: HashSet<String> = HashSet::new();
    let mut renamed: Vec<(usize, String)> = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        if !c.clash {
            continue;
        }
        let taken = |name: &str| {
            ctx.is_reserved(name)
                || ctx.is_compliant_plain(name)
                || rewritten
                    .binary_search_by(|&k| cands[k as usize].target.as_str().cmp(name))
                    .is_ok_and(|pos| !cands[rewritten[pos] as usize].clash)
                || assigned.contains(name)
        };
        let name = disambiguate(uniq[i], &c.target, rules.policy, body_start, taken);
        assigned.insert(name.clone());
        renamed.push((i, name));
    }
    for (i, name) in renamed {
        let c = &mut cands[i];
        c.target = name;
        c.reasons.insert(Reason::Collision);
    }

    // 6. Mappings.
    Ok(uniq
        .par_iter()
        .zip(cands.into_par_iter())
        .map(|(s, c)| Mapping {
            source: (*s).to_owned(),
            changed: !is_plain(&c.target, prefix, s),
            target: c.target,
            reasons: c.reasons.to_vec(),
        })
        .collect())
}

/// Sticky targets and the override targets of non-sticky sources, each with its source.
fn reserved_names<'a>(
    overrides: &'a Overrides,
    sticky: &'a BTreeMap<String, String>,
) -> Result<HashMap<&'a str, &'a str>, NamingError> {
    let mut reserved: HashMap<&str, &str> = HashMap::with_capacity(sticky.len() + overrides.len());
    for (s, t) in sticky {
        if let Some(first) = reserved.insert(t.as_str(), s.as_str()) {
            return Err(NamingError::StickyConflict {
                target: t.clone(),
                first: first.to_owned(),
                second: s.clone(),
            });
        }
    }
    for o in overrides.entries() {
        if sticky.contains_key(&o.source) {
            continue;
        }
        if let Some(holder) = reserved.get(o.target.as_str()) {
            return Err(NamingError::OverrideTargetTaken {
                line: o.line,
                path: o.source.clone(),
                target: o.target.clone(),
                holder: (*holder).to_owned(),
            });
        }
        reserved.insert(o.target.as_str(), o.source.as_str());
    }
    Ok(reserved)
}

/// `base` + separator + a hash of `source`, within 512 characters, not `taken`.
fn disambiguate(
    source: &str,
    base: &str,
    policy: Policy,
    body_start: usize,
    taken: impl Fn(&str) -> bool,
) -> String {
    let sep = policy.hash_separator();
    let digest = sha256(source.as_bytes());
    let mut attempt: u64 = 0;
    loop {
        let (hash, n) = if HASH_LEN + 4 * attempt as usize <= 64 {
            (digest, HASH_LEN + 4 * attempt as usize)
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
            return name;
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
        plan_names(&s(v), rules, &Overrides::default(), &BTreeMap::new()).unwrap()
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
        assert_eq!(clean.reasons, vec![Reason::Prefix]);
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
        let first = disambiguate("src", "devops/a", Policy::Aws, 7, |_| false);
        assert_eq!(first.len(), "devops/a_".len() + 8);
        let second = disambiguate("src", "devops/a", Policy::Aws, 7, |n| n == first);
        assert_eq!(second.len(), "devops/a_".len() + 12);
        assert!(second.starts_with(&first));
        // Even when every hex length of the digest is taken.
        let third = disambiguate("src", "devops/a", Policy::Aws, 7, |n| n.starts_with(&first));
        assert_eq!(third.len(), "devops/a_".len() + 16);
        assert!(!third.starts_with(&first));
        // At the length limit, the base is cut.
        let base = "x".repeat(512);
        let d = disambiguate("src", &base, Policy::Aws, 0, |_| false);
        assert_eq!(d.len(), 512);
        assert!(d.starts_with(&"x".repeat(503)));
    }

    #[test]
    fn overrides_win_and_reserve() {
        let rules = aws();
        let o = Overrides::parse("a b,devops/custom\nghost,devops/a_c\n", &rules).unwrap();
        let m = plan_names(
            &s(&["a b", "a_c", "a c", "custom"]),
            &rules,
            &o,
            &BTreeMap::new(),
        )
        .unwrap();
        let x = target(&m, "a b");
        assert_eq!((x.target.as_str(), x.reasons_str()), ("devops/custom", "override".into()));
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
        let m = plan_names(&s(&["app/db"]), &rules, &o, &BTreeMap::new()).unwrap();
        assert_eq!(m[0].target, "devops/app/db");
        assert!(!m[0].changed);
        assert_eq!(m[0].reasons, vec![Reason::Override]);
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
        assert_eq!((x.target.as_str(), x.reasons_str()), ("legacy/old", "sticky".into()));
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
            plan_names(&s(&["a"]), &rules, &Overrides::default(), &BTreeMap::new()),
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
