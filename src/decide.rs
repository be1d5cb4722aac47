//! What to do with one plan item, once the facts are in: a pure function, table-tested.
//!
//! The planner decided from names and tags alone ([`Decision`]); the executor then fetches what
//! that decision needs ([`needs`]: the source value, the target's current value) and asks
//! [`decide`] for the [`Step`]s to run. Every rule about adopting, overwriting, restoring,
//! retagging, refusing a value or treating a source as gone lives here, so it can be read in one
//! place and tested without any server; the executor only runs steps and writes rows.

use std::collections::BTreeMap;

use crate::config::OnConflict;
use crate::identity::{SourceIdentity, OWNER_TAG};
use crate::plan::{tag_budget, tag_drift, Decision, Item, OrphanWhy, TagsLeftOut};
use crate::report::{Action, Status};
use crate::secret::SecretValue;
use crate::target::limits::MAX_SECRET_BYTES;
use crate::target::{CurrentValue, Replica, ReplicaRegion, ReplicaStatus};

/// The job-wide settings decisions depend on.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Restore our secrets that are scheduled for deletion.
    pub(crate) restore_deleted: bool,
    /// Copy source metadata into tags.
    pub(crate) copy_metadata: bool,
    /// Tags from config.
    pub(crate) config_tags: BTreeMap<String, String>,
    /// The job's prefix (recorded in a tag).
    pub(crate) prefix: String,
    /// Regions every secret of ours is replicated to (`[target] replica_regions`).
    pub(crate) replicas: Vec<ReplicaRegion>,
}

/// What reading the source gave.
#[derive(Debug)]
pub(crate) enum SourceFact<'a> {
    /// Not read (the decision did not need it).
    NotRead,
    /// The value and the metadata that came with it.
    Value {
        /// The plaintext.
        value: &'a SecretValue,
        /// Metadata to copy into tags when configured.
        metadata: &'a BTreeMap<String, String>,
    },
    /// A dry run could not read it (list-only access); the reason.
    Unread(String),
    /// The source holds no current value any more; the reason.
    Gone(String),
    /// Reading failed; the error text.
    Failed(String),
}

/// What the target holds at the name now.
#[derive(Debug)]
pub(crate) enum CurrentFact<'a> {
    /// Not read.
    NotRead,
    /// The current value.
    Value(&'a CurrentValue),
    /// The secret has no current value.
    Empty,
    /// Not read: its `AWSCURRENT` VersionId is the idempotency token of this very value, so it
    /// holds this value (the token is an HMAC of identity and value, see `identity::token`).
    SameVersion,
    /// Reading it failed; the error text.
    Failed(String),
}

/// Everything fetched for one item.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    /// The item's identity (its tags and description).
    pub(crate) identity: &'a SourceIdentity,
    /// The source side.
    pub(crate) source: SourceFact<'a>,
    /// The target side.
    pub(crate) current: CurrentFact<'a>,
    /// The secret was restored from scheduled deletion during this run.
    pub(crate) restored: bool,
    /// The ownership proof of the item's name in this job's scope (`identity::OWNER_TAG`),
    /// written with every create and repaired by a retag; `None` when no token key could be
    /// had (then nothing is written anyway: every write needs a token from the same key).
    pub(crate) proof: Option<&'a str>,
}

/// What the executor must fetch before [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Nothing: the decision is made from names and tags.
    Nothing,
    /// The source value.
    Source,
    /// The source value and the target's current value.
    SourceAndCurrent,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write a report row and stop.
    Row {
        /// The action.
        action: Action,
        /// `Ok`, `Skipped` or `Failed` (a dry run reports `Ok` and `Skipped` as planned).
        status: Status,
        /// Why.
        why: String,
    },
    /// Create the secret with these tags.
    Create {
        /// All tags.
        tags: BTreeMap<String, String>,
    },
    /// Put a new value over the current version.
    Put {
        /// The VersionId being replaced.
        previous: Option<String>,
        /// Why (for an unmanaged secret taken over).
        why: String,
    },
    /// Add or fix tags.
    Tag {
        /// The tags to set.
        tags: BTreeMap<String, String>,
        /// Why.
        why: String,
    },
    /// Restore from scheduled deletion, then decide again with the current value re-read.
    Restore,
    /// The source is gone: report the secret as an orphan (pruned only under `--prune`), for
    /// this reason.
    Orphan(OrphanWhy),
    /// Ours, and replicas are configured: read its replication status (`DescribeSecret`) and
    /// run [`replica_steps`].
    CheckReplicas,
    /// Replicate it to these regions (`ReplicateSecretToRegions`).
    Replicate {
        /// The missing regions.
        regions: Vec<ReplicaRegion>,
    },
    /// Source tags AWS cannot take: named on the next row written for this secret (once), so
    /// nothing is dropped silently. Always first when present.
    TagsLeftOut(TagsLeftOut),
}

fn row(action: Action, status: Status, why: impl Into<String>) -> Vec<Step> {
    vec![Step::Row {
        action,
        status,
        why: why.into(),
    }]
}

/// The secret at the name is one we compare values with (ours, restored, or unmanaged under
/// adopt/overwrite).
fn compares(item: &Item<'_>, restored: bool) -> Option<Compare> {
    match item.decision() {
        Decision::Compare => Some(Compare::Ours),
        Decision::ScheduledForDeletion { ours: true, .. } if restored => Some(Compare::Ours),
        Decision::Adopt => Some(Compare::Reclaim),
        Decision::Conflict {
            managed: false,
            policy: OnConflict::Adopt,
        } => Some(Compare::Adopt),
        Decision::Conflict {
            managed: false,
            policy: OnConflict::Overwrite,
        } => Some(Compare::Overwrite),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Ours,
    /// Its tags claim this source, without a proof that verifies: `reconcile --adopt`.
    Reclaim,
    Adopt,
    Overwrite,
}

/// What must be fetched for `item`.
pub(crate) fn needs(item: &Item<'_>, rules: &Rules, restored: bool) -> Need {
    match item.decision() {
        Decision::Create => Need::Source,
        Decision::ScheduledForDeletion { ours: true, .. } if restored => Need::SourceAndCurrent,
        Decision::ScheduledForDeletion { ours: true, .. } if rules.restore_deleted => {
            Need::Source // a source that is gone is not restored
        }
        _ if compares(item, restored).is_some() => Need::SourceAndCurrent,
        _ => Need::Nothing,
    }
}

/// The steps for `item` given `facts`.
pub(crate) fn decide(item: &Item<'_>, facts: &Facts<'_>, rules: &Rules) -> Vec<Step> {
    // decisions made from names and tags alone
    match item.decision() {
        Decision::Conflict { managed: true, .. } => {
            let o = item
                .owner()
                .unwrap_or_else(|| "managed by secretport elsewhere".into());
            return row(Action::Conflict, Status::Skipped, format!("name is {o}"));
        }
        Decision::Conflict {
            managed: false,
            policy: OnConflict::Skip,
        } => {
            return row(
                Action::Conflict,
                Status::Skipped,
                "exists and is not managed by secretport (on_conflict = skip)",
            );
        }
        Decision::Conflict {
            managed: false,
            policy: OnConflict::Fail,
        } => {
            return row(
                Action::Conflict,
                Status::Failed,
                "exists and is not managed by secretport (on_conflict = fail)",
            );
        }
        Decision::ScheduledForDeletion { ours: false } => {
            let date = item.deleted_date().unwrap_or_default();
            return row(
                Action::Skip,
                Status::Skipped,
                format!("scheduled for deletion on {date} and not this source's secret"),
            );
        }
        Decision::ScheduledForDeletion { ours: true }
            if !rules.restore_deleted && !facts.restored =>
        {
            let date = item.deleted_date().unwrap_or_default();
            return row(
                Action::Skip,
                Status::Skipped,
                format!(
                    "scheduled for deletion on {date}; rerun with --restore-deleted to restore it"
                ),
            );
        }
        _ => {}
    }

    // the source side
    let is_create = *item.decision() == Decision::Create;
    let (value, metadata) = match &facts.source {
        SourceFact::Value { value, metadata } => (*value, *metadata),
        SourceFact::NotRead => {
            return row(
                Action::Skip,
                Status::Failed,
                "internal: source value not fetched",
            );
        }
        SourceFact::Unread(why) => {
            let (action, what) = if is_create {
                (Action::Create, "size not checked")
            } else {
                (Action::Update, "update or unchanged cannot be decided")
            };
            return row(action, Status::Ok, format!("value unread ({why}); {what}"));
        }
        SourceFact::Failed(e) => {
            let action = if is_create {
                Action::Create
            } else {
                Action::Skip
            };
            return row(action, Status::Failed, format!("source read failed: {e}"));
        }
        SourceFact::Gone(reason) => {
            let owned_here = matches!(
                item.decision(),
                Decision::Compare | Decision::ScheduledForDeletion { ours: true, .. }
            );
            if owned_here && !matches!(item.decision(), Decision::ScheduledForDeletion { .. }) {
                return vec![Step::Orphan(OrphanWhy::SourceDeleted(reason.clone()))];
            }
            // nothing left undone: the source holds no current value (`skipped` is kept for
            // what a run leaves behind, which a migrate's exit code counts)
            return row(
                Action::Skip,
                Status::Ok,
                format!("source {reason}; nothing to migrate"),
            );
        }
    };
    if value.len() > MAX_SECRET_BYTES {
        return row(
            Action::Skip,
            Status::Failed,
            format!(
                "value is {} bytes; AWS Secrets Manager allows at most {MAX_SECRET_BYTES}",
                value.len()
            ),
        );
    }
    if value.is_empty() {
        return row(
            Action::Skip,
            Status::Failed,
            "value is empty: AWS Secrets Manager keeps no version of an empty value, so it is refused (nothing written)",
        );
    }
    let metadata = if rules.copy_metadata {
        metadata.clone()
    } else {
        BTreeMap::new()
    };
    let budget = tag_budget(&rules.config_tags, &metadata, facts.identity, &rules.prefix);
    let mut expected = budget.tags;
    // the proof is one of plan::OUR_TAGS: the budget kept room for it
    if let Some(proof) = facts.proof {
        expected.insert(OWNER_TAG.to_owned(), proof.to_owned());
    }
    let note = || (!budget.left_out.is_empty()).then(|| Step::TagsLeftOut(budget.left_out.clone()));

    if is_create {
        return note()
            .into_iter()
            .chain([Step::Create { tags: expected }])
            .collect();
    }
    if matches!(
        item.decision(),
        Decision::ScheduledForDeletion { ours: true, .. }
    ) && !facts.restored
    {
        return vec![Step::Restore];
    }
    let Some(how) = compares(item, facts.restored) else {
        return row(
            Action::Skip,
            Status::Failed,
            "internal: no rule for this item",
        );
    };

    // the target side
    let current = match &facts.current {
        CurrentFact::Value(c) => Some(*c),
        CurrentFact::Empty => None,
        CurrentFact::SameVersion => {
            let mut steps: Vec<Step> = note().into_iter().collect();
            if how == Compare::Ours {
                steps.push(Step::Row {
                    action: Action::Unchanged,
                    status: Status::Ok,
                    why: String::new(),
                });
            }
            steps.extend(tag_step(item, &expected, how));
            steps.extend(check_replicas(how, rules));
            return steps;
        }
        CurrentFact::Failed(e) => {
            return row(
                Action::Update,
                Status::Failed,
                format!("cannot read the current value: {e}"),
            );
        }
        CurrentFact::NotRead => {
            return row(
                Action::Update,
                Status::Failed,
                "internal: current value not fetched",
            );
        }
    };
    let same = current.is_some_and(|c| c.value.same_as(value));
    if how == Compare::Adopt && !same {
        return row(
            Action::Conflict,
            Status::Skipped,
            "exists, not managed by secretport, and its value differs from the source: not adopted (on_conflict = overwrite would replace it)",
        );
    }
    let mut steps: Vec<Step> = note().into_iter().collect();
    if same {
        if how == Compare::Ours {
            steps.push(Step::Row {
                action: Action::Unchanged,
                status: Status::Ok,
                why: String::new(),
            });
        }
    } else {
        steps.push(Step::Put {
            previous: current.and_then(|c| c.version_id.clone()),
            why: match how {
                Compare::Overwrite => {
                    "exists and is not managed by secretport; on_conflict = overwrite".into()
                }
                Compare::Reclaim => "adopted (reconcile --adopt): value updated".into(),
                _ => String::new(),
            },
        });
    }
    steps.extend(tag_step(item, &expected, how));
    steps.extend(check_replicas(how, rules));
    steps
}

/// Replicas are checked on our own secrets only: an unmanaged or foreign secret is never
/// replicated (an adopted or overwritten one is ours from the next run on).
fn check_replicas(how: Compare, rules: &Rules) -> Option<Step> {
    (how == Compare::Ours && !rules.replicas.is_empty()).then_some(Step::CheckReplicas)
}

/// What to do about one of our secrets' replicas, given its `ReplicationStatus`: replicate it
/// to every configured region it lacks (one step), and report every replica AWS says `Failed`
/// (drift left unrepaired: the usual cause, a secret of the same name in that region, is
/// someone else's to resolve, and secretport never overwrites it). `InSync` and `InProgress`
/// replicas are fine; replicas in regions no longer configured are left alone (removing one
/// deletes it, which is not reconcile's to decide).
pub(crate) fn replica_steps(configured: &[ReplicaRegion], actual: &[Replica]) -> Vec<Step> {
    let mut steps = Vec::new();
    for r in actual {
        if r.status == ReplicaStatus::Failed && configured.iter().any(|c| c.region == r.region) {
            steps.push(Step::Row {
                action: Action::Replicate,
                status: Status::Skipped,
                why: format!(
                    "replica {} is {}: {}; not repaired: resolve the cause (often a secret of \
                     that name already in {}), remove the replica (aws secretsmanager \
                     remove-regions-from-replication), and the next reconcile adds it again",
                    r.region,
                    r.status.as_str(),
                    if r.message.is_empty() {
                        "no message"
                    } else {
                        &r.message
                    },
                    r.region
                ),
            });
        }
    }
    let missing: Vec<ReplicaRegion> = configured
        .iter()
        .filter(|c| !actual.iter().any(|r| r.region == c.region))
        .cloned()
        .collect();
    if !missing.is_empty() {
        steps.push(Step::Replicate { regions: missing });
    }
    steps
}

/// The regions as the report names them: `eu-west-1, us-west-2`.
pub(crate) fn region_list(regions: &[ReplicaRegion]) -> String {
    regions
        .iter()
        .map(|r| r.region.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The retag step, when the secret's tags differ from the expected ones.
fn tag_step(item: &Item<'_>, expected: &BTreeMap<String, String>, how: Compare) -> Option<Step> {
    let existing = item.existing().map(|e| e.tags()).unwrap_or_default();
    let drift = tag_drift(expected, &existing);
    if drift.is_empty() {
        return None;
    }
    let keys: Vec<&str> = drift.keys().map(String::as_str).collect();
    let why = match how {
        Compare::Adopt => format!("adopted (value already equal); tags {}", keys.join(", ")),
        Compare::Overwrite => format!(
            "taken over (on_conflict = overwrite); tags {}",
            keys.join(", ")
        ),
        Compare::Ours => format!("tags missing or changed: {}", keys.join(", ")),
        Compare::Reclaim => format!(
            "adopted (reconcile --adopt): ownership proof written; tags {}",
            keys.join(", ")
        ),
    };
    Some(Step::Tag { tags: drift, why })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Scope;
    use crate::plan::Plan;
    use crate::target::TargetSecret;

    fn rules() -> Rules {
        Rules {
            restore_deleted: false,
            copy_metadata: false,
            config_tags: BTreeMap::new(),
            prefix: "p".into(),
            replicas: vec![],
        }
    }

    fn identity() -> crate::identity::SourceIdentity {
        Scope::new("file", "/x", "").identity("a")
    }

    /// The ownership proof the table's facts carry (and tagged items hold).
    const PROOF: &str = "v1:0123456789abcdef0123456789abcdef";

    fn item(decision: Decision, tagged: bool) -> Plan {
        let identity = identity();
        let tags = if tagged {
            let mut t =
                crate::plan::expected_tags(&BTreeMap::new(), &BTreeMap::new(), &identity, "p");
            t.insert(OWNER_TAG.to_owned(), PROOF.to_owned());
            t
        } else {
            BTreeMap::new()
        }
        .into();
        let deleted = matches!(decision, Decision::ScheduledForDeletion { .. });
        let existing = (decision != Decision::Create).then(|| TargetSecret {
            name: "p/a".into(),
            arn: "arn:p/a".into(),
            tags,
            deleted_date: deleted.then(|| "2026-12-01".into()),
            ..TargetSecret::default()
        });
        Plan::one(
            &Scope::new("file", "/x", ""),
            "p",
            ("a", "p/a"),
            decision,
            existing,
        )
    }

    fn conflict(policy: OnConflict) -> Decision {
        Decision::Conflict {
            managed: false,
            policy,
        }
    }

    fn deleted(ours: bool) -> Decision {
        Decision::ScheduledForDeletion { ours }
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Row { action, status, .. } => {
                    format!("{}/{}", action.as_str(), status.as_str())
                }
                Step::Create { .. } => "create".into(),
                Step::Put { .. } => "put".into(),
                Step::Tag { .. } => "tag".into(),
                Step::Restore => "restore".into(),
                Step::Orphan(_) => "orphan".into(),
                Step::CheckReplicas => "check-replicas".into(),
                Step::Replicate { regions } => format!("replicate {}", region_list(regions)),
                Step::TagsLeftOut(_) => "tags-left-out".into(),
            })
            .collect()
    }

    /// Every decision, against every combination of source and current value that matters.
    #[test]
    #[allow(clippy::type_complexity)]
    fn decision_table() {
        let v = SecretValue::text("v".into());
        let other = CurrentValue {
            value: SecretValue::text("old".into()),
            version_id: Some("v1".into()),
        };
        let same = CurrentValue {
            value: SecretValue::text("v".into()),
            version_id: Some("v1".into()),
        };
        let meta = BTreeMap::new();
        let val = || SourceFact::Value {
            value: &v,
            metadata: &meta,
        };
        let mut restore = rules();
        restore.restore_deleted = true;
        let plain = rules();
        let cases: Vec<(&str, Plan, SourceFact, CurrentFact, bool, &Rules, Vec<&str>)> = vec![
            (
                "create",
                item(Decision::Create, false),
                val(),
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["create"],
            ),
            (
                "update",
                item(Decision::Compare, true),
                val(),
                CurrentFact::Value(&other),
                false,
                &plain,
                vec!["put"],
            ),
            (
                "unchanged",
                item(Decision::Compare, true),
                val(),
                CurrentFact::Value(&same),
                false,
                &plain,
                vec!["unchanged/ok"],
            ),
            (
                "retag",
                item(Decision::Compare, false),
                val(),
                CurrentFact::Value(&same),
                false,
                &plain,
                vec!["unchanged/ok", "tag"],
            ),
            (
                "no current version",
                item(Decision::Compare, true),
                val(),
                CurrentFact::Empty,
                false,
                &plain,
                vec!["put"],
            ),
            (
                "adopt equal",
                item(conflict(OnConflict::Adopt), false),
                val(),
                CurrentFact::Value(&same),
                false,
                &plain,
                vec!["tag"],
            ),
            (
                "adopt differs",
                item(conflict(OnConflict::Adopt), false),
                val(),
                CurrentFact::Value(&other),
                false,
                &plain,
                vec!["conflict/skipped"],
            ),
            (
                "reconcile --adopt, value equal: the proof and tags are written",
                item(Decision::Adopt, false),
                val(),
                CurrentFact::Value(&same),
                false,
                &plain,
                vec!["tag"],
            ),
            (
                "reconcile --adopt, value differs: updated, then tagged",
                item(Decision::Adopt, false),
                val(),
                CurrentFact::Value(&other),
                false,
                &plain,
                vec!["put", "tag"],
            ),
            (
                "overwrite",
                item(conflict(OnConflict::Overwrite), false),
                val(),
                CurrentFact::Value(&other),
                false,
                &plain,
                vec!["put", "tag"],
            ),
            (
                "conflict skip",
                item(conflict(OnConflict::Skip), false),
                SourceFact::NotRead,
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["conflict/skipped"],
            ),
            (
                "conflict fail",
                item(conflict(OnConflict::Fail), false),
                SourceFact::NotRead,
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["conflict/failed"],
            ),
            (
                "foreign",
                item(
                    Decision::Conflict {
                        managed: true,
                        policy: OnConflict::Overwrite,
                    },
                    true,
                ),
                SourceFact::NotRead,
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["conflict/skipped"],
            ),
            (
                "deleted, not asked",
                item(deleted(true), true),
                SourceFact::NotRead,
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["skip/skipped"],
            ),
            (
                "deleted, not ours",
                item(deleted(false), false),
                SourceFact::NotRead,
                CurrentFact::NotRead,
                false,
                &restore,
                vec!["skip/skipped"],
            ),
            (
                "restore",
                item(deleted(true), true),
                val(),
                CurrentFact::NotRead,
                false,
                &restore,
                vec!["restore"],
            ),
            (
                "restored, differs",
                item(deleted(true), true),
                val(),
                CurrentFact::Value(&other),
                true,
                &restore,
                vec!["put"],
            ),
            (
                "restored, equal",
                item(deleted(true), true),
                val(),
                CurrentFact::Value(&same),
                true,
                &restore,
                vec!["unchanged/ok"],
            ),
            (
                "source gone: orphan",
                item(Decision::Compare, true),
                SourceFact::Gone("current version 2 is deleted".into()),
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["orphan"],
            ),
            (
                "source gone, nothing there",
                item(Decision::Create, false),
                SourceFact::Gone("current version 2 is deleted".into()),
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["skip/ok"],
            ),
            (
                "source failed",
                item(Decision::Create, false),
                SourceFact::Failed("403".into()),
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["create/failed"],
            ),
            (
                "unread in a dry run",
                item(Decision::Compare, true),
                SourceFact::Unread("403".into()),
                CurrentFact::NotRead,
                false,
                &plain,
                vec!["update/ok"],
            ),
            (
                "current unreadable",
                item(Decision::Compare, true),
                val(),
                CurrentFact::Failed("denied".into()),
                false,
                &plain,
                vec!["update/failed"],
            ),
        ];
        for (name, item, source, current, restored, rules, want) in cases {
            let facts = Facts {
                identity: &identity(),
                source,
                current,
                restored,
                proof: Some(PROOF),
            };
            assert_eq!(kinds(&decide(&item.only(), &facts, rules)), want, "{name}");
        }
    }

    #[test]
    fn source_tags_left_out_are_named_once_and_the_secret_still_lands() {
        use crate::plan::{LeftOutWhy, OUR_TAGS};
        use crate::target::limits::MAX_TAGS;
        let v = SecretValue::text("v".into());
        let other = CurrentValue {
            value: SecretValue::text("old".into()),
            version_id: Some("v1".into()),
        };
        let mut meta: BTreeMap<String, String> =
            (0..60).map(|i| (format!("m{i:02}"), "x".into())).collect();
        meta.insert("aws:x".into(), "x".into());
        let mut r = rules();
        r.copy_metadata = true;
        let id = identity();
        let facts = |current| Facts {
            identity: &id,
            source: SourceFact::Value {
                value: &v,
                metadata: &meta,
            },
            current,
            restored: false,
            proof: Some(PROOF),
        };
        let over = 60 - (MAX_TAGS - OUR_TAGS);
        for (i, c, want) in [
            (
                item(Decision::Create, false),
                CurrentFact::NotRead,
                vec!["tags-left-out", "create"],
            ),
            (
                item(Decision::Compare, true),
                CurrentFact::Value(&other),
                vec!["tags-left-out", "put", "tag"],
            ),
            (
                item(Decision::Compare, true),
                CurrentFact::SameVersion,
                vec!["tags-left-out", "unchanged/ok", "tag"],
            ),
        ] {
            let steps = decide(&i.only(), &facts(c), &r);
            assert_eq!(kinds(&steps), want);
            let Step::TagsLeftOut(l) = &steps[0] else {
                unreachable!()
            };
            assert_eq!(l.keys(LeftOutWhy::OverLimit).len(), over);
            assert_eq!(l.keys(LeftOutWhy::AwsPrefix), ["aws:x".to_string()]);
            for s in &steps {
                if let Step::Create { tags } | Step::Tag { tags, .. } = s {
                    assert!(tags.len() <= MAX_TAGS);
                }
            }
        }
        // without copy_metadata nothing is copied, so nothing is left out
        let steps = decide(
            &item(Decision::Create, false).only(),
            &facts(CurrentFact::NotRead),
            &rules(),
        );
        assert_eq!(kinds(&steps), ["create"]);
    }

    #[test]
    fn replicas_are_checked_on_our_secrets_only() {
        let v = SecretValue::text("v".into());
        let same = CurrentValue {
            value: SecretValue::text("v".into()),
            version_id: Some("v1".into()),
        };
        let meta = BTreeMap::new();
        let mut r = rules();
        r.replicas = vec![ReplicaRegion {
            region: "eu-west-1".into(),
            kms_key_id: None,
        }];
        let id = identity();
        let facts = |current| Facts {
            identity: &id,
            source: SourceFact::Value {
                value: &v,
                metadata: &meta,
            },
            current,
            restored: false,
            proof: Some(PROOF),
        };
        let steps = |i: Plan, c| kinds(&decide(&i.only(), &facts(c), &r));
        assert_eq!(
            steps(item(Decision::Compare, true), CurrentFact::Value(&same)),
            ["unchanged/ok", "check-replicas"]
        );
        assert_eq!(
            steps(item(Decision::Compare, true), CurrentFact::SameVersion),
            ["unchanged/ok", "check-replicas"]
        );
        // a create carries its replicas in CreateSecret: nothing to check
        assert_eq!(
            steps(item(Decision::Create, false), CurrentFact::NotRead),
            ["create"]
        );
        // unmanaged, even when taken over in this run: not ours to replicate (yet)
        assert_eq!(
            steps(
                item(conflict(OnConflict::Adopt), false),
                CurrentFact::Value(&same)
            ),
            ["tag"]
        );
        assert_eq!(
            steps(
                item(conflict(OnConflict::Overwrite), false),
                CurrentFact::Value(&same)
            ),
            ["tag"]
        );
        // without replica_regions nothing is read
        assert_eq!(
            kinds(&decide(
                &item(Decision::Compare, true).only(),
                &facts(CurrentFact::Value(&same)),
                &rules()
            )),
            ["unchanged/ok"]
        );
    }

    #[test]
    fn replica_steps_add_missing_and_report_failed() {
        let region = |r: &str| ReplicaRegion {
            region: r.into(),
            kms_key_id: None,
        };
        let replica = |r: &str, status: ReplicaStatus| Replica {
            region: r.into(),
            status,
            message: "Replication failed: name exists".into(),
        };
        let want = [region("eu-west-1"), region("us-west-2")];
        assert_eq!(
            kinds(&replica_steps(&want, &[])),
            ["replicate eu-west-1, us-west-2"]
        );
        assert_eq!(
            kinds(&replica_steps(
                &want,
                &[
                    replica("eu-west-1", ReplicaStatus::InSync),
                    replica("us-west-2", ReplicaStatus::InProgress)
                ]
            )),
            Vec::<String>::new()
        );
        let steps = replica_steps(
            &want,
            &[
                replica("eu-west-1", ReplicaStatus::Failed),
                replica("ap-south-1", ReplicaStatus::Failed), // not configured: not ours to judge
            ],
        );
        assert_eq!(kinds(&steps), ["replicate/skipped", "replicate us-west-2"]);
        match &steps[0] {
            Step::Row { why, .. } => {
                assert!(
                    why.contains("eu-west-1 is Failed: Replication failed: name exists"),
                    "{why}"
                )
            }
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn refused_values() {
        let meta = BTreeMap::new();
        for (v, want) in [
            (SecretValue::text(String::new()), "empty"),
            (SecretValue::binary(vec![0; MAX_SECRET_BYTES + 1]), "65536"),
        ] {
            let facts = Facts {
                identity: &identity(),
                source: SourceFact::Value {
                    value: &v,
                    metadata: &meta,
                },
                current: CurrentFact::NotRead,
                restored: false,
                proof: Some(PROOF),
            };
            match &decide(&item(Decision::Create, false).only(), &facts, &rules())[..] {
                [Step::Row {
                    status: Status::Failed,
                    why,
                    ..
                }] => assert!(why.contains(want), "{why}"),
                s => panic!("{s:?}"),
            }
        }
    }

    #[test]
    fn needs_follow_the_decision() {
        let r = rules();
        assert_eq!(
            needs(&item(Decision::Create, false).only(), &r, false),
            Need::Source
        );
        assert_eq!(
            needs(&item(Decision::Compare, true).only(), &r, false),
            Need::SourceAndCurrent
        );
        assert_eq!(
            needs(&item(conflict(OnConflict::Skip), false).only(), &r, false),
            Need::Nothing
        );
        assert_eq!(
            needs(&item(conflict(OnConflict::Adopt), false).only(), &r, false),
            Need::SourceAndCurrent
        );
        assert_eq!(
            needs(&item(deleted(true), true).only(), &r, false),
            Need::Nothing
        );
        let mut restore = rules();
        restore.restore_deleted = true;
        assert_eq!(
            needs(&item(deleted(true), true).only(), &restore, false),
            Need::Source
        );
        assert_eq!(
            needs(&item(deleted(true), true).only(), &restore, true),
            Need::SourceAndCurrent
        );
    }
}
