//! The action planner: pure, deterministic, no I/O.
//!
//! Input: the source listing (with each reference's identity), the naming rules and overrides,
//! and the target's inventory. Output: one [`Item`] per source secret with its target name and a
//! [`Decision`] that needs no secret value, plus the orphans (secrets we manage whose source is
//! gone). Values are compared later, by the executor, only where the decision is
//! [`Decision::Compare`]. `plan`, `migrate` and `reconcile` all interpret this one plan.
//!
//! Sticky names: a managed secret's `secretport:source` tag maps it back to its source, and that
//! mapping is fed to the rename planner first, so a source keeps the name it was migrated under
//! even when a new colliding source appears later (the newcomer is the one disambiguated).

use std::collections::{BTreeMap, HashMap};

use crate::aws::secrets::{TargetSecret, MANAGED_TAG, SOURCE_TAG};
use crate::config::OnConflict;
use crate::naming::{self, Mapping, NamingError, NamingRules, Overrides};
use crate::source::{source_tag_value, Listing, SourceRef};

/// What to do with one source secret, decided from names and tags alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The name is free: create.
    Create,
    /// Ours: compare values (update or unchanged), repair tags.
    Compare,
    /// The name is held by a secret that is not ours (`owner` says whose), handled per
    /// `on_conflict`.
    Conflict {
        /// `None` = unmanaged; `Some(tag)` = managed for another source.
        owner: Option<String>,
        /// The configured policy.
        policy: OnConflict,
    },
    /// The name is scheduled for deletion.
    ScheduledForDeletion {
        /// When AWS deletes it.
        date: String,
        /// Whether it is ours (only ours may be restored).
        ours: bool,
    },
}

/// One source secret in the plan.
#[derive(Debug, Clone)]
pub struct Item {
    /// The source reference.
    pub source: SourceRef,
    /// Its identity (for tokens and the description).
    pub identity: String,
    /// The `secretport:source` tag value for it.
    pub tag_value: String,
    /// Its name mapping.
    pub mapping: Mapping,
    /// The secret at that name, if any.
    pub existing: Option<TargetSecret>,
    /// What to do.
    pub decision: Decision,
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One item per source secret, sorted by source path.
    pub items: Vec<Item>,
    /// Managed secrets under the prefix whose source is not in the listing, sorted by name.
    pub orphans: Vec<TargetSecret>,
    /// Managed secrets already scheduled for deletion whose source is gone (not drift).
    pub deleted_orphans: Vec<TargetSecret>,
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
    /// The source listing.
    pub listing: &'a Listing,
    /// `identities[i]` is the identity of `listing.refs[i]`.
    pub identities: &'a [String],
    /// Naming rules.
    pub rules: &'a NamingRules,
    /// Explicit renames.
    pub overrides: &'a Overrides,
    /// The target's secrets under the prefix.
    pub inventory: &'a [TargetSecret],
    /// Conflict policy.
    pub on_conflict: OnConflict,
}

/// Builds the plan.
pub fn build(input: &PlanInput<'_>) -> Result<Plan, NamingError> {
    let refs = &input.listing.refs;
    let tag_values: Vec<String> = input
        .identities
        .iter()
        .map(|i| source_tag_value(i))
        .collect();

    // sticky names: source tag -> the (smallest) name of a managed secret carrying it
    let mut by_tag: HashMap<&str, &TargetSecret> = HashMap::new();
    for s in input.inventory {
        if let Some(t) = s.source_tag() {
            by_tag
                .entry(t)
                .and_modify(|cur| {
                    // prefer a live secret, then the smallest name: deterministic
                    let better = (s.deleted_date.is_none(), std::cmp::Reverse(&s.name))
                        > (cur.deleted_date.is_none(), std::cmp::Reverse(&cur.name));
                    if better {
                        *cur = s;
                    }
                })
                .or_insert(s);
        }
    }
    let mut sticky = BTreeMap::new();
    for (r, t) in refs.iter().zip(&tag_values) {
        if let Some(s) = by_tag.get(t.as_str()) {
            sticky.insert(r.path.clone(), s.name.clone());
        }
    }

    let paths: Vec<String> = refs.iter().map(|r| r.path.clone()).collect();
    let mappings = naming::plan_names(&paths, input.rules, input.overrides, &sticky)?;
    let by_source: HashMap<&str, &Mapping> =
        mappings.iter().map(|m| (m.source.as_str(), m)).collect();
    let by_name: HashMap<&str, &TargetSecret> = input
        .inventory
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();

    let mut items = Vec::with_capacity(refs.len());
    for ((r, identity), tag_value) in refs.iter().zip(input.identities).zip(&tag_values) {
        let Some(mapping) = by_source.get(r.path.as_str()) else {
            continue;
        };
        let existing = by_name.get(mapping.target.as_str()).map(|s| (*s).clone());
        let decision = match &existing {
            None => Decision::Create,
            Some(s) => {
                let ours = s.source_tag() == Some(tag_value.as_str());
                if let Some(date) = &s.deleted_date {
                    Decision::ScheduledForDeletion {
                        date: date.clone(),
                        ours,
                    }
                } else if ours {
                    Decision::Compare
                } else {
                    Decision::Conflict {
                        owner: s.source_tag().map(str::to_owned),
                        policy: input.on_conflict,
                    }
                }
            }
        };
        items.push(Item {
            source: r.clone(),
            identity: identity.clone(),
            tag_value: tag_value.clone(),
            mapping: (*mapping).clone(),
            existing,
            decision,
        });
    }
    items.sort_by(|a, b| a.source.path.cmp(&b.source.path));

    let live: std::collections::HashSet<&str> = tag_values.iter().map(String::as_str).collect();
    let claimed: std::collections::HashSet<&str> =
        items.iter().map(|i| i.mapping.target.as_str()).collect();
    let (mut orphans, mut deleted_orphans) = (Vec::new(), Vec::new());
    for s in input.inventory {
        let Some(t) = s.source_tag() else { continue };
        // a live source's secret under a name the plan no longer uses is an orphan too
        if live.contains(t) && claimed.contains(s.name.as_str()) {
            continue;
        }
        if s.deleted_date.is_some() {
            deleted_orphans.push(s.clone());
        } else {
            orphans.push(s.clone());
        }
    }
    Ok(Plan {
        items,
        orphans,
        deleted_orphans,
    })
}

/// The tags a managed secret must carry: configured tags, copied metadata (when enabled and
/// valid as AWS tags), then ours, which win.
pub fn expected_tags(
    config_tags: &BTreeMap<String, String>,
    metadata: &BTreeMap<String, String>,
    tag_value: &str,
) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    for (k, v) in metadata {
        if crate::config::check_tag(k, v).is_ok() && t.len() < 48 - config_tags.len().min(48) {
            t.insert(k.clone(), v.clone());
        }
    }
    t.extend(config_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    t.insert(SOURCE_TAG.to_owned(), tag_value.to_owned());
    t.insert(MANAGED_TAG.to_owned(), "true".to_owned());
    t
}

/// Tags in `expected` that are missing from `actual` or differ there (extra tags are left
/// alone: they may be someone else's).
pub fn tag_drift(
    expected: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    expected
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::Policy;

    fn secret(name: &str, tag: Option<&str>, deleted: bool) -> TargetSecret {
        let mut tags = BTreeMap::new();
        if let Some(t) = tag {
            tags.insert(MANAGED_TAG.into(), "true".into());
            tags.insert(SOURCE_TAG.into(), t.into());
        }
        TargetSecret {
            name: name.into(),
            arn: format!("arn:{name}"),
            tags,
            deleted_date: deleted.then(|| "2026-12-01T00:00:00Z".into()),
        }
    }

    fn plan(paths: &[&str], inventory: &[TargetSecret]) -> Plan {
        let listing = Listing {
            refs: paths.iter().map(|p| SourceRef::new(*p)).collect(),
            problems: vec![],
        };
        let ids: Vec<String> = paths.iter().map(|p| format!("file:{p}")).collect();
        build(&PlanInput {
            listing: &listing,
            identities: &ids,
            rules: &NamingRules {
                prefix: Some("p".into()),
                policy: Policy::Aws,
            },
            overrides: &Overrides::default(),
            inventory,
            on_conflict: OnConflict::Skip,
        })
        .unwrap()
    }

    #[test]
    fn decisions_and_orphans() {
        let inv = vec![
            secret("p/a", Some("file:a"), false),
            secret("p/b", None, false),
            secret("p/c", Some("file:zzz"), false),
            secret("p/d", Some("file:d"), true),
            secret("p/gone", Some("file:gone"), false),
            secret("p/gone2", Some("file:gone2"), true),
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
        // p/c's source file:zzz is not listed: it is an orphan even though its name is taken
        let names: Vec<&str> = p.orphans.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, vec!["p/c", "p/gone"]);
        assert_eq!(p.deleted_orphans.len(), 1);
    }

    #[test]
    fn sticky_names_survive_a_new_collision() {
        // "a b" was migrated as p/a_b; now "a#b" (same candidate) appears: "a b" keeps it
        let inv = vec![secret("p/a_b", Some("file:a b"), false)];
        let p = plan(&["a b", "a#b"], &inv);
        let m: BTreeMap<&str, &str> = p
            .items
            .iter()
            .map(|i| (i.source.path.as_str(), i.mapping.target.as_str()))
            .collect();
        assert_eq!(m["a b"], "p/a_b");
        assert_ne!(m["a#b"], "p/a_b");
        assert!(p.orphans.is_empty());
    }

    #[test]
    fn tags() {
        let cfg = BTreeMap::from([("team".to_string(), "x".to_string())]);
        let meta = BTreeMap::from([
            ("owner".to_string(), "o".to_string()),
            ("bad#".to_string(), "v".to_string()),
        ]);
        let e = expected_tags(&cfg, &meta, "file:a");
        assert_eq!(e.len(), 4);
        let actual = BTreeMap::from([("team".to_string(), "y".to_string())]);
        let d = tag_drift(&e, &actual);
        assert_eq!(d.len(), 4);
        assert!(tag_drift(&e, &e).is_empty());
    }
}
