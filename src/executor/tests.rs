//! The executor over an in-memory [`Target`] and [`Source`]: every decision, in a real and in a
//! dry run, checked by what the fake target holds afterwards and which calls reached it.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::*;
use crate::config::OnConflict;
use crate::identity::{Scope, MANAGED_TAG, PREFIX_TAG};
use crate::naming::{NamingRules, Overrides, Policy};
use crate::plan::{self, PlanInput};
use crate::source::{Listing, SourceError, SourceRef};
use crate::target::dry::DryRun;
use crate::target::memory::MemoryTarget as Fake;

/// A source of text values; `None` = the current version is deleted (gone).
struct Values(BTreeMap<String, Option<String>>);

impl Source for Values {
    fn kind(&self) -> crate::source::SourceKind {
        crate::source::SourceKind::File
    }

    fn scope(&self) -> Scope {
        scope()
    }

    fn location(&self) -> String {
        "memory".into()
    }

    fn empty_advice(&self) -> String {
        "nothing in memory".into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move {
            Ok(Listing {
                refs: self.0.keys().map(SourceRef::new).collect(),
                problems: vec![],
            })
        })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            Ok(match self.0.get(&r.path).cloned().flatten() {
                Some(v) => Fetched::Value {
                    value: SecretValue::text(v),
                    version: None,
                    metadata: BTreeMap::new(),
                },
                None => Fetched::Gone {
                    reason: "current version 2 is deleted".into(),
                    version: Some("2".into()),
                },
            })
        })
    }
}

fn scope() -> Scope {
    Scope::new("file", "/mem", "")
}

fn team() -> BTreeMap<String, String> {
    BTreeMap::from([("team".to_string(), "platform".to_string())])
}

fn key() -> TokenDeriver {
    TokenDeriver::keyed(zeroize::Zeroizing::new(b"fixed-test-key-0123".to_vec()))
}

/// The tags (with the ownership proof) secretport writes on `p/<path>` for the source `path`.
fn ours(path: &str) -> BTreeMap<String, String> {
    let mut t = plan::expected_tags(&team(), &BTreeMap::new(), &scope().identity(path), "p");
    t.insert(
        crate::identity::OWNER_TAG.to_owned(),
        key().ownership_proof(&format!("p/{path}"), &scope(), "p"),
    );
    t
}

struct Case {
    on_conflict: OnConflict,
    restore: bool,
    overrides: &'static str,
    replicas: &'static [&'static str],
}

const PLAIN: Case = Case {
    on_conflict: OnConflict::Skip,
    restore: false,
    overrides: "",
    replicas: &[],
};

/// Runs plan + executor (+ orphans, pruning them when `prune`) over `fake`; returns the
/// report rows as (source, target, action, status, why).
async fn run(
    fake: &Fake,
    source: &[(&str, Option<&str>)],
    case: &Case,
    dry: bool,
    prune: bool,
) -> Vec<[String; 5]> {
    run_racing(fake, source, case, dry, prune, None).await
}

/// The plan of `listing` over what `fake` holds under the prefix `p`, as `commands::run`
/// makes it (the inventory read page by page into compact records).
async fn plan_over(
    fake: &Fake,
    listing: Listing,
    overrides: &Overrides,
    on_conflict: OnConflict,
) -> plan::Plan {
    let rules = NamingRules::new(Some("p"), Policy::Aws);
    let inventory = crate::target::listed::Inventory::read(fake, &scope(), "p")
        .await
        .unwrap();
    plan::build(PlanInput {
        listing,
        scope: &scope(),
        rules: &rules,
        overrides,
        inventory: inventory.secrets(),
        on_conflict,
        filter: &crate::filter::PathFilter::default(),
        key: Some(&key()),
        adopt: false,
    })
    .unwrap()
}

/// What happens between a run's planning and its execution.
enum Race<'a> {
    /// Another (real) run of this source, same case, completes: a cron overlap, seen from the
    /// slower run.
    Run(&'a [(&'a str, Option<&'a str>)]),
    /// A person changes the target.
    Edit(&'a (dyn Fn(&Fake) + Sync)),
}

/// [`run`], with `racing` happening between planning and execution.
async fn run_racing(
    fake: &Fake,
    source: &[(&str, Option<&str>)],
    case: &Case,
    dry: bool,
    prune: bool,
    racing: Option<Race<'_>>,
) -> Vec<[String; 5]> {
    let src = Values(
        source
            .iter()
            .map(|(p, v)| (p.to_string(), v.map(str::to_owned)))
            .collect(),
    );
    let listing = src.list().await.unwrap();
    let rules = NamingRules::new(Some("p"), Policy::Aws);
    let overrides = Overrides::parse(case.overrides, &rules).unwrap();
    let plan = plan_over(fake, listing, &overrides, case.on_conflict).await;
    match racing {
        Some(Race::Run(other)) => {
            Box::pin(run(fake, other, case, false, prune)).await;
        }
        Some(Race::Edit(f)) => f(fake),
        None => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let report = Report::create(dir.path(), "test", None).unwrap();
    let path = report.path().to_owned();
    let sink = Sink::new(report, dry, "t");
    let settings = Settings {
        rules: decide::Rules {
            restore_deleted: case.restore,
            copy_metadata: false,
            config_tags: team(),
            prefix: "p".into(),
            replicas: case
                .replicas
                .iter()
                .map(|r| crate::target::ReplicaRegion {
                    region: r.to_string(),
                    kms_key_id: None,
                })
                .collect(),
        },
        kms_key_id: None,
        concurrency: 4,
        policy: Policy::Aws,
        tokens: Some(key()),
    };
    let gate = DryRun::new(fake);
    let target: &dyn Target = if dry { &gate } else { fake };
    let shutdown = Shutdown::new();
    let progress = Progress::new("test", 0);
    let exec = Executor::new(target, &src, &settings, &sink, &shutdown, &progress);
    let pre = exec.prefetch(&plan.items).await;
    exec.run(&plan.items, &pre).await;
    let mut orphans = plan.orphans.clone();
    orphans.extend(exec.take_gone());
    exec.orphans(
        &orphans,
        if prune {
            Ok(7)
        } else {
            Err("not asked".into())
        },
    )
    .await;
    drop(sink);
    let mut r = csv::Reader::from_path(&path).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            [3, 5, 7, 8, 10].map(|i| rec[i].to_owned())
        })
        .collect()
}

fn actions(rows: &[[String; 5]]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}/{}", r[1], r[2], r[3]))
        .collect();
    v.sort();
    v
}

/// Every decision in a real run (the target changes) and in a dry run (nothing reaches it,
/// the rows say `planned`).
#[tokio::test]
async fn every_decision_real_and_dry() {
    for dry in [false, true] {
        let done = if dry { "planned" } else { "ok" };
        let skipped = if dry { "planned" } else { "skipped" };
        let fake = Fake::new(true);
        fake.insert("p/same", "s", ours("same"));
        fake.insert("p/changed", "old", ours("changed"));
        fake.insert("p/untagged", "u", {
            let mut t = ours("untagged");
            t.remove("team");
            t
        });
        fake.insert("p/squat", "theirs", BTreeMap::new());
        fake.insert(
            "p/foreign",
            "f",
            plan::expected_tags(
                &BTreeMap::new(),
                &BTreeMap::new(),
                &Scope::new("vault", "http://v/kv", "").identity("foreign"),
                "p",
            ),
        );
        fake.insert("p/gone", "g", ours("gone"));
        fake.insert("p/deleted-src", "d", ours("deleted-src"));
        let names = [
            "p/same",
            "p/changed",
            "p/untagged",
            "p/squat",
            "p/foreign",
            "p/gone",
            "p/deleted-src",
        ];
        let snapshot = |f: &Fake| names.map(|n| format!("{:?}", f.get(n)));
        let before = snapshot(&fake);
        fake.reset_calls();
        let rows = run(
            &fake,
            &[
                ("new", Some("n")),
                ("same", Some("s")),
                ("changed", Some("new")),
                ("untagged", Some("u")),
                ("squat", Some("mine")),
                ("foreign", Some("mine")),
                ("deleted-src", None),
            ],
            &PLAIN,
            dry,
            true,
        )
        .await;
        assert_eq!(
            actions(&rows),
            [
                format!("p/changed:update/{done}"),
                format!("p/deleted-src:delete/{done}"),
                format!("p/foreign:conflict/{skipped}"),
                format!("p/gone:delete/{done}"),
                format!("p/new:create/{done}"),
                format!("p/same:unchanged/{done}"),
                format!("p/squat:conflict/{skipped}"),
                format!("p/untagged:retag/{done}"),
                format!("p/untagged:unchanged/{done}"),
            ],
            "dry {dry}"
        );
        let foreign = rows.iter().find(|r| r[1] == "p/foreign").unwrap();
        assert!(foreign[4].contains("vault http://v/kv"), "{foreign:?}");
        if dry {
            assert_eq!(fake.writes(), 0, "{:?}", fake.calls());
            assert_eq!(snapshot(&fake), before);
            assert!(fake.get("p/new").is_none());
        } else {
            assert_eq!(fake.value("p/new").as_deref(), Some("n"));
            assert_eq!(fake.value("p/changed").as_deref(), Some("new"));
            assert_eq!(fake.value("p/squat").as_deref(), Some("theirs"));
            assert_eq!(fake.value("p/foreign").as_deref(), Some("f"));
            assert_eq!(&fake.get("p/untagged").unwrap().tags["team"], "platform");
            assert_eq!(&fake.get("p/new").unwrap().tags[PREFIX_TAG], "p");
            assert!(fake.get("p/gone").unwrap().deleted);
            assert!(fake.get("p/deleted-src").unwrap().deleted);
            assert!(!fake.get("p/foreign").unwrap().deleted);
            // the unmanaged and the foreign secret: not one byte changed
            let after = snapshot(&fake);
            assert_eq!(after[3], before[3]);
            assert_eq!(after[4], before[4]);
        }
    }
}

#[tokio::test]
async fn adopt_overwrite_restore_and_rename() {
    for dry in [false, true] {
        let done = if dry { "planned" } else { "ok" };
        let skipped = if dry { "planned" } else { "skipped" };
        // adopt: equal values are taken over by tagging, different ones are left
        let fake = Fake::new(true);
        fake.insert("p/eq", "x", BTreeMap::new());
        fake.insert("p/ne", "y", BTreeMap::new());
        let adopt = Case {
            on_conflict: OnConflict::Adopt,
            ..PLAIN
        };
        let rows = run(
            &fake,
            &[("eq", Some("x")), ("ne", Some("mine"))],
            &adopt,
            dry,
            false,
        )
        .await;
        assert_eq!(
            actions(&rows),
            [
                format!("p/eq:retag/{done}"),
                format!("p/ne:conflict/{skipped}")
            ]
        );
        assert_eq!(
            fake.get("p/eq").unwrap().tags.contains_key(MANAGED_TAG),
            !dry
        );

        // overwrite: value and tags replaced
        let fake = Fake::new(true);
        fake.insert("p/ne", "y", BTreeMap::new());
        let overwrite = Case {
            on_conflict: OnConflict::Overwrite,
            ..PLAIN
        };
        let rows = run(&fake, &[("ne", Some("mine"))], &overwrite, dry, false).await;
        assert_eq!(
            actions(&rows),
            [format!("p/ne:retag/{done}"), format!("p/ne:update/{done}")]
        );
        assert_eq!(
            fake.value("p/ne").as_deref(),
            Some(if dry { "y" } else { "mine" })
        );

        // restore: ours, scheduled for deletion, --restore-deleted
        let fake = Fake::new(true);
        fake.insert("p/r", "old", ours("r"));
        fake.edit("p/r", |s| s.deleted = true);
        let restore = Case {
            restore: true,
            ..PLAIN
        };
        let rows = run(&fake, &[("r", Some("new"))], &restore, dry, false).await;
        assert_eq!(
            actions(&rows),
            [format!("p/r:restore/{done}"), format!("p/r:update/{done}")]
        );
        assert_eq!(fake.get("p/r").unwrap().deleted, dry);
        // without --restore-deleted it is only reported
        let rows = run(&fake, &[("r", Some("new"))], &PLAIN, dry, false).await;
        if dry {
            assert_eq!(actions(&rows), [format!("p/r:skip/{skipped}")]);
        }

        // rename: an override added after the migration; the old name becomes an orphan
        let fake = Fake::new(true);
        fake.insert("p/a", "v", ours("a"));
        let rename = Case {
            overrides: "a,p/b\n",
            ..PLAIN
        };
        let rows = run(&fake, &[("a", Some("v"))], &rename, dry, true).await;
        assert_eq!(
            actions(&rows),
            [format!("p/a:delete/{done}"), format!("p/b:rename/{done}")]
        );
        let b = rows.iter().find(|r| r[1] == "p/b").unwrap();
        assert!(b[4].contains("renamed from p/a"), "{b:?}");
        assert_eq!(fake.value("p/b").is_some(), !dry);
    }
}

/// A shutdown before the run starts nothing, and says so for every item.
#[tokio::test]
async fn shutdown_starts_nothing() {
    let fake = Fake::new(true);
    let src = Values([("a".to_string(), Some("1".to_string()))].into());
    let listing = src.list().await.unwrap();
    let rules = NamingRules::new(Some("p"), Policy::Aws);
    let plan = plan::build(PlanInput {
        listing,
        scope: &scope(),
        rules: &rules,
        overrides: &Overrides::default(),
        inventory: &[],
        on_conflict: OnConflict::Skip,
        filter: &crate::filter::PathFilter::default(),
        key: None,
        adopt: false,
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = Report::create(dir.path(), "test", None).unwrap();
    let sink = Sink::new(report, false, "t");
    let settings = Settings {
        rules: decide::Rules {
            restore_deleted: false,
            copy_metadata: false,
            config_tags: BTreeMap::new(),
            prefix: "p".into(),
            replicas: vec![],
        },
        kms_key_id: None,
        concurrency: 1,
        policy: Policy::Aws,
        tokens: Some(TokenDeriver::ephemeral().unwrap()),
    };
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let progress = Progress::new("test", 0);
    let exec = Executor::new(&fake, &src, &settings, &sink, &shutdown, &progress);
    exec.run(&plan.items, &Prefetched::default()).await;
    assert_eq!(fake.writes(), 0);
    assert_eq!(sink.counts()[&(Action::Create, Status::Skipped)], 1);
}

/// A secret whose `AWSCURRENT` VersionId is the token of the source value is unchanged without
/// reading its value; a hand edit (another VersionId) is read and repaired.
#[tokio::test]
async fn unchanged_secrets_are_recognised_by_version_without_a_read() {
    let fake = Fake::new(true);
    let reads = |f: &Fake| {
        let c = f.calls();
        c.get("GetSecretValue").copied().unwrap_or(0)
            + c.get("BatchGetSecretValue").copied().unwrap_or(0)
    };
    let source = [("a", Some("1")), ("b", Some("2"))];
    run(&fake, &source, &PLAIN, false, false).await;
    fake.reset_calls();
    let rows = run(&fake, &source, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:unchanged/ok"]);
    assert_eq!(reads(&fake), 0);
    // an update, then nothing changed: still no read (the version is the put's token)
    let changed = [("a", Some("1-new")), ("b", Some("2"))];
    run(&fake, &changed, &PLAIN, false, false).await;
    fake.reset_calls();
    let rows = run(&fake, &changed, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:unchanged/ok"]);
    assert_eq!(reads(&fake), 0);
    // a hand edit: read once, and repaired
    fake.hand_edit("p/b", "edited");
    fake.reset_calls();
    let rows = run(&fake, &changed, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:update/ok"]);
    assert_eq!(reads(&fake), 1);
    assert_eq!(fake.value("p/b").as_deref(), Some("2"));
}

fn regions(fake: &Fake, name: &str) -> Vec<String> {
    fake.get(name)
        .map(|s| s.replicas.iter().map(|r| r.region.clone()).collect())
        .unwrap_or_default()
}

/// `replica_regions`: a new secret is created with its replicas, one of ours without them gets
/// the missing ones, a failed replica is reported and left; an unmanaged or foreign secret is
/// never replicated, whatever `on_conflict` says; a dry run replicates nothing.
#[tokio::test]
async fn replicas_only_for_our_secrets_and_never_in_a_dry_run() {
    use crate::target::{Replica, ReplicaStatus};
    for dry in [false, true] {
        for on_conflict in [OnConflict::Skip, OnConflict::Adopt, OnConflict::Overwrite] {
            let done = if dry { "planned" } else { "ok" };
            let fake = Fake::new(true);
            fake.insert("p/ours", "o", ours("ours")); // created before replicas were configured
            fake.insert("p/half", "h", ours("half"));
            fake.edit("p/half", |s| {
                s.replicas = vec![Replica {
                    region: "eu-west-1".into(),
                    status: ReplicaStatus::InSync,
                    message: String::new(),
                }]
            });
            fake.insert("p/broken", "b", ours("broken"));
            fake.edit("p/broken", |s| {
                s.replicas = vec![
                    Replica {
                        region: "eu-west-1".into(),
                        status: ReplicaStatus::Failed,
                        message: "Replication failed: Secret name already exists".into(),
                    },
                    Replica {
                        region: "us-west-2".into(),
                        status: ReplicaStatus::InSync,
                        message: String::new(),
                    },
                ]
            });
            fake.insert("p/squat", "o", BTreeMap::new()); // same value: adopt would take it
            fake.insert(
                "p/foreign",
                "f",
                plan::expected_tags(
                    &BTreeMap::new(),
                    &BTreeMap::new(),
                    &Scope::new("vault", "http://v/kv", "").identity("foreign"),
                    "p",
                ),
            );
            fake.reset_calls();
            let case = Case {
                on_conflict,
                replicas: &["eu-west-1", "us-west-2"],
                ..PLAIN
            };
            let rows = run(
                &fake,
                &[
                    ("new", Some("n")),
                    ("ours", Some("o")),
                    ("half", Some("h")),
                    ("broken", Some("b")),
                    ("squat", Some("o")),
                    ("foreign", Some("f")),
                ],
                &case,
                dry,
                false,
            )
            .await;
            let what = format!("dry {dry}, {on_conflict:?}");
            let acts = actions(&rows);
            for want in [
                format!("p/new:create/{done}"),
                format!("p/ours:replicate/{done}"),
                format!("p/half:replicate/{done}"),
                format!(
                    "p/broken:replicate/{}",
                    if dry { "planned" } else { "skipped" }
                ),
            ] {
                assert!(acts.contains(&want), "{what}: {want} missing from {acts:?}");
            }
            let why = |n: &str, a: &str| {
                rows.iter()
                    .find(|r| r[1] == n && r[2] == a)
                    .map(|r| r[4].clone())
                    .unwrap_or_default()
            };
            assert!(
                why("p/new", "create").contains("replicas: eu-west-1, us-west-2"),
                "{what}: {rows:?}"
            );
            assert!(
                why("p/ours", "replicate").contains("eu-west-1, us-west-2"),
                "{what}: {rows:?}"
            );
            assert!(why("p/half", "replicate").contains("us-west-2"), "{what}");
            assert!(!why("p/half", "replicate").contains("eu-west-1"), "{what}");
            assert!(
                why("p/broken", "replicate").contains("Secret name already exists"),
                "{what}: {rows:?}"
            );
            // never a replicate row, nor a replication, for what is not ours
            for n in ["p/squat", "p/foreign"] {
                assert!(
                    !acts
                        .iter()
                        .any(|a| a.starts_with(&format!("{n}:replicate"))),
                    "{what}: {acts:?}"
                );
                assert!(regions(&fake, n).is_empty(), "{what}: {n} was replicated");
            }
            if dry {
                assert_eq!(fake.writes(), 0, "{what}: {:?}", fake.calls());
                assert!(regions(&fake, "p/ours").is_empty());
                assert_eq!(regions(&fake, "p/half"), ["eu-west-1"]);
            } else {
                assert_eq!(
                    regions(&fake, "p/new"),
                    ["eu-west-1", "us-west-2"],
                    "{what}"
                );
                assert_eq!(
                    regions(&fake, "p/ours"),
                    ["eu-west-1", "us-west-2"],
                    "{what}"
                );
                assert_eq!(
                    regions(&fake, "p/half"),
                    ["eu-west-1", "us-west-2"],
                    "{what}"
                );
                // the failed replica is left as it is (never overwritten, never re-sent)
                assert_eq!(
                    fake.get("p/broken").unwrap().replicas[0].status,
                    ReplicaStatus::Failed
                );
                assert_eq!(fake.calls()["ReplicateSecretToRegions"], 2, "{what}");
            }
        }
    }
}

/// A source whose values carry `metadata`, and whose credential ends (its [`Expiry`] set, as
/// the Vault session does when its token cannot be renewed) once `ends_after` values were read.
struct Expiring {
    values: Values,
    metadata: BTreeMap<String, String>,
    expiry: Expiry,
    ends_after: usize,
    fetched: std::sync::atomic::AtomicUsize,
}

impl Expiring {
    fn new(paths: &[&str], metadata: BTreeMap<String, String>, ends_after: usize) -> Expiring {
        Expiring {
            values: Values(
                paths
                    .iter()
                    .map(|p| (p.to_string(), Some(format!("value of {p}"))))
                    .collect(),
            ),
            metadata,
            expiry: Expiry::new(),
            ends_after,
            fetched: Default::default(),
        }
    }
}

impl Source for Expiring {
    fn kind(&self) -> crate::source::SourceKind {
        crate::source::SourceKind::File
    }

    fn scope(&self) -> Scope {
        scope()
    }

    fn location(&self) -> String {
        "memory".into()
    }

    fn empty_advice(&self) -> String {
        "nothing in memory".into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        self.values.list()
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            if self.fetched.fetch_add(1, Ordering::SeqCst) + 1 == self.ends_after {
                self.expiry.set(crate::source::expiry::CredentialEnd::after(
                    std::time::Duration::ZERO,
                    Instant::now(),
                    "the test token".into(),
                    "use a longer one".into(),
                ));
            }
            Ok(match self.values.fetch(r).await? {
                Fetched::Value { value, version, .. } => Fetched::Value {
                    value,
                    version,
                    metadata: self.metadata.clone(),
                },
                gone => gone,
            })
        })
    }

    fn expiry(&self) -> Option<Expiry> {
        Some(self.expiry.clone())
    }
}

/// Plans and runs every item of `src` over `fake` with metadata copied (one at a time);
/// returns the rows as (source, action, status, error, reasons).
async fn run_copying(fake: &Fake, src: &Expiring) -> Vec<[String; 5]> {
    let listing = src.list().await.unwrap();
    let plan = plan_over(fake, listing, &Overrides::default(), OnConflict::Skip).await;
    let dir = tempfile::tempdir().unwrap();
    let report = Report::create(dir.path(), "test", None).unwrap();
    let path = report.path().to_owned();
    let sink = Sink::new(report, false, "t");
    let settings = Settings {
        rules: decide::Rules {
            restore_deleted: false,
            copy_metadata: true,
            config_tags: team(),
            prefix: "p".into(),
            replicas: vec![],
        },
        kms_key_id: None,
        concurrency: 1,
        policy: Policy::Aws,
        tokens: Some(TokenDeriver::keyed(zeroize::Zeroizing::new(
            b"fixed-test-key-0123".to_vec(),
        ))),
    };
    let shutdown = Shutdown::new();
    let progress = Progress::new("test", 0);
    let exec = Executor::new(fake, src, &settings, &sink, &shutdown, &progress);
    exec.run_all(&plan.items).await;
    drop(exec);
    drop(sink);
    let mut r = csv::Reader::from_path(&path).unwrap();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            [3, 7, 8, 10, 15].map(|i| rec[i].to_owned())
        })
        .collect()
}

/// Once the source's credential is due to end, no item that reads the source starts: the rest
/// are failed rows that say so, their values never read; a conflict (decided from names and
/// tags) is still reported as such.
#[tokio::test]
async fn no_item_starts_once_the_source_credential_ends() {
    let fake = Fake::new(true);
    // "d" is held by someone else's secret: a conflict row, decided without reading the source
    fake.insert("p/d", "theirs", BTreeMap::new());
    let src = Expiring::new(&["a", "b", "c", "d", "e"], BTreeMap::new(), 2);
    let rows = run_copying(&fake, &src).await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| format!("{}:{}/{}", r[0], r[1], r[2]))
        .collect();
    assert_eq!(
        got,
        [
            "a:create/ok",
            "b:create/ok",
            "c:create/failed",
            "d:conflict/skipped",
            "e:create/failed"
        ]
    );
    for r in [&rows[2], &rows[4]] {
        assert!(
            r[3].starts_with("not started: the test token expires at ")
                && r[3].ends_with(" and cannot be renewed; use a longer one"),
            "{r:?}"
        );
    }
    assert_eq!(src.fetched.load(Ordering::SeqCst), 2, "c, d, e never read");
    assert!(fake.get("p/d").is_some());
    assert_eq!(fake.writes(), 2);
}

/// Source tags beyond what AWS takes: the secret is created with 50 tags (the fake refuses
/// more, as AWS does), the create row names the rest once; the next run's unchanged row names
/// them again, with no retag and no failure.
#[tokio::test]
async fn source_tags_left_out_are_named_on_the_row_and_the_secret_lands() {
    use crate::target::limits::MAX_TAGS;
    let fake = Fake::new(true);
    let mut meta: BTreeMap<String, String> =
        (0..60).map(|i| (format!("m{i:02}"), "v".into())).collect();
    meta.insert("team".into(), "theirs".into());
    let src = Expiring::new(&["a"], meta, usize::MAX);
    for want in ["create", "unchanged"] {
        let rows = run_copying(&fake, &src).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let [_, action, status, error, reasons] = &rows[0];
        assert_eq!((action.as_str(), status.as_str()), (want, "ok"), "{rows:?}");
        let room = MAX_TAGS - plan::OUR_TAGS - team().len();
        assert!(
            error.starts_with(&format!(
                "tags left out: {} over AWS's 50 per secret: m{room:02}, ",
                60 - room
            )) && error.ends_with("; 1 [target] tags sets the same key: team"),
            "{error}"
        );
        assert_eq!(reasons, &format!("prefix;{TAGS_LEFT_OUT}"));
        let tags = &fake.get("p/a").unwrap().tags;
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(&tags["team"], "platform");
    }
}

fn calls(fake: &Fake, op: &str) -> u64 {
    fake.calls().get(op).copied().unwrap_or(0)
}

/// The fake ignores a put whose token names an existing version, as AWS does. After a
/// rollback (AWSCURRENT moved back by hand here) the reconcile that puts the source value back
/// derives exactly such a token: the executor moves AWSCURRENT to that version instead, the row
/// says so, the target then holds the value, and the next run finds it unchanged. A dry run
/// moves nothing.
#[tokio::test]
async fn an_ignored_write_after_a_rollback_moves_awscurrent_instead() {
    for dry in [false, true] {
        let done = if dry { "planned" } else { "ok" };
        let fake = Fake::new(true);
        run(&fake, &[("a", Some("ORIG"))], &PLAIN, false, false).await;
        run(&fake, &[("a", Some("NEW"))], &PLAIN, false, false).await;
        let s = fake.get("p/a").unwrap();
        let [v1, v2] = <[String; 2]>::try_from(s.version_ids()).unwrap();
        assert_eq!(s.current(), Some(v2.as_str()));
        fake.edit("p/a", |s| s.move_current_to(&v1)); // what rollback does
        assert_eq!(fake.value("p/a").as_deref(), Some("ORIG"));
        fake.reset_calls();
        let rows = run(&fake, &[("a", Some("NEW"))], &PLAIN, dry, false).await;
        assert_eq!(actions(&rows), [format!("p/a:update/{done}")]);
        assert!(
            rows[0][4].contains(&format!("AWSCURRENT to existing version {v2}"))
                || rows[0][4].contains(&format!("AWSCURRENT moved to existing version {v2}")),
            "{rows:?}"
        );
        // no put AWS would ignore: the version is known from the listing (AWSPREVIOUS)
        assert_eq!(calls(&fake, "PutSecretValue"), 0);
        if dry {
            assert_eq!(fake.writes(), 0, "{:?}", fake.calls());
            assert_eq!(fake.value("p/a").as_deref(), Some("ORIG"));
            continue;
        }
        assert_eq!(calls(&fake, "UpdateSecretVersionStage"), 1);
        assert_eq!(fake.value("p/a").as_deref(), Some("NEW"));
        let s = fake.get("p/a").unwrap();
        assert_eq!(s.version_ids().len(), 2, "no extra version");
        assert_eq!((s.current(), s.previous()), (Some(&*v2), Some(&*v1)));
        fake.reset_calls();
        let rows = run(&fake, &[("a", Some("NEW"))], &PLAIN, false, false).await;
        assert_eq!(actions(&rows), ["p/a:unchanged/ok"]);
        assert_eq!(fake.writes(), 0);
    }
}

/// AWSCURRENT moved by hand to an old version while the version the token names is unlabelled
/// (A → B → A, then back to the first A): the put is answered "success" with that version's
/// stages (not AWSCURRENT), and the executor moves AWSCURRENT there. A → B → A → B in plain
/// runs adds one version a run, each row true.
#[tokio::test]
async fn a_put_answered_without_awscurrent_is_repaired_and_histories_converge() {
    let fake = Fake::new(true);
    for (i, v) in ["A", "B", "A"].into_iter().enumerate() {
        let rows = run(&fake, &[("x", Some(v))], &PLAIN, false, false).await;
        let want = if i == 0 { "create" } else { "update" };
        assert_eq!(actions(&rows), [format!("p/x:{want}/ok")]);
        assert_eq!(fake.value("p/x").as_deref(), Some(v));
    }
    let ids = fake.get("p/x").unwrap().version_ids();
    assert_eq!(ids.len(), 3);
    // a person moves AWSCURRENT back to the first version: AWSPREVIOUS is now the third, the
    // second (B over the first) is unlabelled
    fake.edit("p/x", |s| s.move_current_to(&ids[0]));
    fake.reset_calls();
    let rows = run(&fake, &[("x", Some("B"))], &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/x:update/ok"]);
    assert!(
        rows[0][4].contains(&format!("AWSCURRENT moved to existing version {}", ids[1])),
        "{rows:?}"
    );
    assert_eq!(calls(&fake, "PutSecretValue"), 1);
    assert_eq!(calls(&fake, "UpdateSecretVersionStage"), 1);
    assert_eq!(fake.value("p/x").as_deref(), Some("B"));
    assert_eq!(fake.get("p/x").unwrap().version_ids().len(), 3);
    // converged: a check finds nothing, another run writes nothing
    let rows = run(&fake, &[("x", Some("B"))], &PLAIN, true, false).await;
    assert_eq!(actions(&rows), ["p/x:unchanged/planned"]);
    fake.reset_calls();
    run(&fake, &[("x", Some("B"))], &PLAIN, false, false).await;
    assert_eq!(fake.writes(), 0);

    // A → B → A → B in plain runs: one new version a run, each row true
    let fake = Fake::new(true);
    for (i, v) in ["A", "B", "A", "B"].into_iter().enumerate() {
        let rows = run(&fake, &[("y", Some(v))], &PLAIN, false, false).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][3], "ok");
        assert_eq!(fake.value("p/y").as_deref(), Some(v));
        assert_eq!(fake.get("p/y").unwrap().version_ids().len(), i + 1);
    }
}

/// AWSCURRENT changing between planning and execution: what the row reports is what the
/// target holds afterwards.
#[tokio::test]
async fn awscurrent_changed_after_planning_is_read_live() {
    let fake = Fake::new(true);
    run(&fake, &[("a", Some("ORIG"))], &PLAIN, false, false).await;
    run(&fake, &[("a", Some("NEW"))], &PLAIN, false, false).await;
    let ids = fake.get("p/a").unwrap().version_ids();
    fake.edit("p/a", |s| s.move_current_to(&ids[0]));
    // a concurrent run repairs it first (stale plan here): ours reads the value AWSCURRENT
    // holds now and writes nothing
    let rows = run_racing(
        &fake,
        &[("a", Some("NEW"))],
        &PLAIN,
        false,
        false,
        Some(Race::Run(&[("a", Some("NEW"))])),
    )
    .await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok"], "{rows:?}");
    assert_eq!(fake.value("p/a").as_deref(), Some("NEW"));
    assert_eq!(fake.get("p/a").unwrap().version_ids().len(), 2);

    // after the plan, a person writes another value: it is read (AWSCURRENT, live) and
    // replaced by a fresh version, never "repaired" into a stale one
    fake.edit("p/a", |s| s.move_current_to(&ids[0]));
    let hand = |f: &Fake| f.hand_edit("p/a", "HAND");
    let rows = run_racing(
        &fake,
        &[("a", Some("NEW"))],
        &PLAIN,
        false,
        false,
        Some(Race::Edit(&hand)),
    )
    .await;
    assert_eq!(actions(&rows), ["p/a:update/ok"], "{rows:?}");
    assert_eq!(fake.value("p/a").as_deref(), Some("NEW"));
    assert_eq!(fake.get("p/a").unwrap().version_ids().len(), 4);
}

/// Two runs of one config at once, seen from the slower one (its plan predates the other's
/// writes): deletions and moves the other run made are found done and reported `ok` under
/// another action, so the two reports claim each deletion once and neither fails.
#[tokio::test]
async fn overlapping_runs_claim_each_deletion_once() {
    let fake = Fake::new(true);
    for i in 0..5 {
        fake.insert(&format!("p/o{i}"), "x", ours(&format!("o{i}")));
    }
    fake.insert("p/keep", "k", ours("keep"));
    let source = [("keep", Some("k"))];
    let rows = run_racing(
        &fake,
        &source,
        &PLAIN,
        false,
        true,
        Some(Race::Run(&source)),
    )
    .await;
    let claimed: Vec<_> = rows.iter().filter(|r| r[2] == "delete").collect();
    assert!(claimed.is_empty(), "{rows:?}");
    let done: Vec<_> = rows
        .iter()
        .filter(|r| r[2] == "orphan" && r[3] == "ok")
        .collect();
    assert_eq!(done.len(), 5, "{rows:?}");
    assert!(
        done[0][4].contains("already scheduled for deletion"),
        "{rows:?}"
    );
    assert_eq!(calls(&fake, "DeleteSecret"), 10); // 5 each; the second five refused by AWS
    for i in 0..5 {
        assert!(fake.get(&format!("p/o{i}")).unwrap().deleted);
    }
}
