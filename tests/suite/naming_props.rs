//! Property tests of the rename planner: arbitrary UTF-8 paths (unicode, spaces, `#`, `:`,
//! `//`, names over 600 characters, names ending in `-abcdef`), both policies, with and without
//! a prefix, overrides and sticky names.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use proptest::prelude::*;
use secretport::naming::{
    is_valid_target, plan_names, plan_names_with_first, rewrite, target_problem, Mapping,
    NamingRules, Overrides, Policy, Reason, MAX_NAME_LEN,
};

fn one_thread_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("1-thread pool")
    })
}

fn four_thread_pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("4-thread pool")
    })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.@+=-]{1,10}",
        3 => "[a-c #:/é北😀\\-_]{0,8}",
        1 => "[a-z]{1,4}-[a-zA-Z0-9]{6}",
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect()),
    ]
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => prop::collection::vec(segment(), 1..4).prop_map(|v| v.join("/")),
        1 => "[a-b/ é-]{600,700}",
        1 => "[a-z]{590,620}",
        1 => "[/ #:]{0,3}",
        1 => "[a-z]{1,6}/[a-z]{1,6}-abcdef",
    ]
}

/// Sources with some deliberate near-twins (rewrite to the same name), and duplicates.
fn sources() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(source(), 0..30).prop_map(|mut v| {
        let twins: Vec<String> = v
            .iter()
            .take(6)
            .flat_map(|s| {
                [
                    s.replace('_', " "),
                    s.replace('-', ":"),
                    s.replace(' ', "#"),
                ]
            })
            .collect();
        v.extend(twins);
        if let Some(first) = v.first().cloned() {
            v.push(first);
        }
        v
    })
}

fn rules() -> impl Strategy<Value = NamingRules> {
    let prefix = prop_oneof![
        Just(None),
        Just(Some("devops".to_owned())),
        Just(Some("p-abcd".to_owned())),
        "[a-z]{1,6}(/[a-zA-Z0-9]{1,6}){0,2}/?".prop_map(Some),
    ];
    (
        prefix,
        prop_oneof![Just(Policy::Aws), Just(Policy::Alphanumeric)],
    )
        .prop_map(|(p, pol)| {
            let p = p.filter(|p| pol == Policy::Aws || !p.contains('-'));
            NamingRules::new(p.as_deref(), pol)
        })
}

fn shuffled(v: &[String], seed: u64) -> Vec<String> {
    let mut v = v.to_vec();
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

fn plain(rules: &NamingRules, source: &str) -> String {
    rules.plain_name(source)
}

/// The invariants every plan must satisfy.
fn check_plan(
    input: &[String],
    rules: &NamingRules,
    overrides: &Overrides,
    sticky: &BTreeMap<String, String>,
    plan: &[Mapping],
) -> Result<(), TestCaseError> {
    let distinct: std::collections::BTreeSet<&str> = input.iter().map(String::as_str).collect();
    let sources: Vec<&str> = plan.iter().map(|m| m.source.as_str()).collect();
    prop_assert_eq!(
        sources,
        distinct.into_iter().collect::<Vec<_>>(),
        "sorted, distinct"
    );

    let mut targets = HashSet::new();
    let reserved: HashSet<&str> = sticky
        .iter()
        .filter(|(s, _)| !plan.iter().any(|m| &m.source == *s))
        .map(|(_, t)| t.as_str())
        .chain(
            overrides
                .entries()
                .iter()
                .filter(|o| !plan.iter().any(|m| m.source == o.source))
                .map(|o| o.target.as_str()),
        )
        .collect();
    for m in plan {
        let t = &m.target;
        prop_assert!(targets.insert(t.clone()), "duplicate target {:?}", t);
        prop_assert!(
            !reserved.contains(t.as_str()),
            "{:?} took a reserved name",
            m
        );
        let fixed = sticky.get(&m.source).map(String::as_str) == Some(t.as_str())
            || (!sticky.contains_key(&m.source) && overrides.get(&m.source) == Some(t.as_str()));
        let plain = plain(rules, &m.source);
        prop_assert_eq!(m.changed, *t != plain, "changed of {:?}", m);
        let mut sorted = m.reasons.to_vec();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(&sorted, &m.reasons.to_vec(), "reasons sorted and distinct");
        if fixed {
            continue;
        }
        // Rule-named: valid, within limits, under the prefix, and derived from the rewrite.
        prop_assert!(is_valid_target(t, rules.policy), "invalid {:?}", m);
        prop_assert!(target_problem(t, rules.policy).is_none(), "{:?}", m);
        prop_assert!(!t.is_empty() && t.len() <= MAX_NAME_LEN);
        let b = t.as_bytes();
        prop_assert!(
            b.len() < 7 || b[b.len() - 7] != b'-',
            "ARN-like ending {:?}",
            t
        );
        prop_assert!(!t.contains("//") && !t.starts_with('/') && !t.ends_with('/'));
        if let Some(p) = rules.prefix() {
            prop_assert!(t.starts_with(&format!("{p}/")), "{:?} lacks the prefix", m);
            prop_assert!(m.has(Reason::Prefix));
        } else {
            prop_assert!(!m.has(Reason::Prefix));
        }
        let alone = rewrite(&m.source, rules);
        if m.has(Reason::Collision) {
            let keep = alone.target.len().min(MAX_NAME_LEN - 65);
            prop_assert!(
                t.starts_with(&alone.target[..keep]),
                "{:?} does not extend {:?}",
                t,
                alone.target
            );
        } else {
            prop_assert_eq!(t, &alone.target);
            prop_assert_eq!(&m.reasons, &alone.reasons);
        }
        // A compliant source is not changed, unless an override/sticky name took its name.
        if is_valid_target(&plain, rules.policy) && !m.has(Reason::Collision) {
            prop_assert_eq!(t, &plain);
            prop_assert!(!m.changed);
        }
        if is_valid_target(&plain, rules.policy) && m.has(Reason::Collision) {
            prop_assert!(
                sticky.values().any(|v| *v == plain)
                    || overrides.entries().iter().any(|o| o.target == plain),
                "compliant {:?} disambiguated without an override/sticky holder",
                m
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_are_valid_unique_and_deterministic(
        input in sources(),
        rules in rules(),
        seed in any::<u64>(),
    ) {
        let none = Overrides::default();
        let sticky = BTreeMap::new();
        let plan = plan_names(&input, &rules, &none, &sticky).unwrap();
        check_plan(&input, &rules, &none, &sticky, &plan)?;

        let (with_first, first) = plan_names_with_first(&input, &rules, &none, &sticky).unwrap();
        let with_first: Vec<_> = with_first
            .into_iter()
            .zip(&first)
            .map(|(p, &f)| p.for_source(input[f].clone()))
            .collect();
        prop_assert_eq!(&with_first, &plan);
        for (m, &f) in plan.iter().zip(&first) {
            prop_assert_eq!(&input[f], &m.source);
            prop_assert!(!input[..f].contains(&m.source), "not the first occurrence");
        }

        let again = plan_names(&shuffled(&input, seed), &rules, &none, &sticky).unwrap();
        prop_assert_eq!(&plan, &again, "shuffled input");
        let one = one_thread_pool()
            .install(|| plan_names(&input, &rules, &none, &sticky))
            .unwrap();
        prop_assert_eq!(&plan, &one, "1-thread pool");
        let four = four_thread_pool()
            .install(|| plan_names(&shuffled(&input, !seed), &rules, &none, &sticky))
            .unwrap();
        prop_assert_eq!(&plan, &four, "4-thread pool, shuffled");
    }

    #[test]
    fn overrides_and_sticky_names_are_honoured(
        input in sources(),
        rules in rules(),
        picks in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4), 0..8),
        seed in any::<u64>(),
    ) {
        prop_assume!(!input.is_empty());
        // Some sources get an override, some a sticky name (a made-up one or one that is
        // another source's plain name, to force collisions); plus absent sources.
        let mut pairs = Vec::new();
        let mut sticky = BTreeMap::new();
        let mut used = HashSet::new();
        for (k, (idx, what)) in picks.iter().enumerate() {
            let s = idx.get(&input).clone();
            let other = plain(&rules, idx.get(&input[1..]).as_str());
            let t = match what {
                0 => format!("ovr/o{k}"),
                1 => format!("stk/s{k}"),
                2 => other.clone(),
                _ => format!("stk/absent{k}"),
            };
            if !used.insert(t.clone()) || !is_valid_target(&t, rules.policy) {
                continue;
            }
            match what {
                0 => pairs.push((s, t)),
                1 | 2 => {
                    if sticky.contains_key(&s) {
                        continue;
                    }
                    sticky.insert(s, t);
                }
                _ => {
                    sticky.insert(format!("absent/{k}"), t);
                }
            }
        }
        pairs.retain(|(s, _)| !s.is_empty());
        let mut seen = HashSet::new();
        pairs.retain(|(s, _)| seen.insert(s.clone()));
        pairs.push(("absent/ovr".into(), "ovr/absent".into()));
        let overrides = Overrides::from_pairs(pairs.iter().map(|(a, b)| (a, b)), &rules).unwrap();

        let plan = plan_names(&input, &rules, &overrides, &sticky).unwrap();
        check_plan(&input, &rules, &overrides, &sticky, &plan)?;
        for m in &plan {
            if let Some(t) = sticky.get(&m.source) {
                prop_assert_eq!(&m.target, t, "sticky name kept");
            } else if let Some(t) = overrides.get(&m.source) {
                prop_assert_eq!(m.target.as_str(), t, "override applied");
                prop_assert_eq!(m.reasons.to_vec(), vec![Reason::Override]);
            }
        }
        let one = one_thread_pool()
            .install(|| plan_names(&shuffled(&input, seed), &rules, &overrides, &sticky))
            .unwrap();
        prop_assert_eq!(&plan, &one);
    }

    #[test]
    fn rewrite_of_a_rewrite_is_stable(source in source(), rules in rules()) {
        // A rule-made target, planned again as a source without prefix, is compliant.
        let m = rewrite(&source, &rules);
        let bare = NamingRules::new(None, rules.policy);
        let again = rewrite(&m.target, &bare);
        prop_assert_eq!(&again.target, &m.target);
        prop_assert!(!again.changed);
    }
}

#[test]
fn many_sources_wanting_one_name_all_get_distinct_names() {
    let mut input: Vec<String> = Vec::new();
    for c in " #:!$%^&*()[]{}<>?|~`'\";,\\".chars() {
        input.push(format!("app/db{c}pass"));
        input.push(format!("app/db{c}{c}pass"));
    }
    for c in ['é', 'ß', '北', '😀'] {
        input.push(format!("app/db {c} pass"));
    }
    input.push("app/db_pass".into());
    for policy in [Policy::Aws, Policy::Alphanumeric] {
        let rules = NamingRules::new(Some("devops"), policy);
        let plan = checked_plan(&input, &rules);
        let collided = plan.iter().filter(|m| m.has(Reason::Collision)).count();
        assert!(collided >= input.len() - 8, "{policy}: {collided}");
        if policy == Policy::Aws {
            let clean = plan.iter().find(|m| m.source == "app/db_pass").unwrap();
            assert_eq!(clean.target, "devops/app/db_pass");
        }
    }
}

/// The plan of `input` with no overrides and no sticky names, checked by [`check_plan`].
fn checked_plan(input: &[String], rules: &NamingRules) -> Vec<Mapping> {
    let none = Overrides::default();
    let plan = plan_names(input, rules, &none, &secretport::naming::NO_STICKY).unwrap();
    check_plan(input, rules, &none, &BTreeMap::new(), &plan).unwrap();
    plan
}

#[test]
fn long_colliding_names_stay_within_512() {
    let base = "x".repeat(700);
    let input: Vec<String> = ["", " ", "#", ":", "é"]
        .iter()
        .map(|s| format!("{base}{s}"))
        .collect();
    for policy in [Policy::Aws, Policy::Alphanumeric] {
        let rules = NamingRules::new(Some("devops"), policy);
        let plan = checked_plan(&input, &rules);
        for m in &plan {
            assert_eq!(m.target.len(), MAX_NAME_LEN, "{m:?}");
        }
    }
}
