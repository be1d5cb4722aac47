//! The executor over an in-memory [`Target`] and [`Source`]: every decision, in a real and in a
//! dry run, checked by what the fake target holds afterwards and which calls reached it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::*;
use crate::config::OnConflict;
use crate::identity::{Scope, MANAGED_TAG, PREFIX_TAG};
use crate::naming::{NamingRules, Overrides, Policy};
use crate::plan::{self, PlanInput};
use crate::source::{Listing, SourceError, SourceRef};
use crate::target::dry::DryRun;
use crate::target::{BatchRead, CallError, Caller, ErrorClass, Outcome, TargetSecret};

#[derive(Clone, Debug)]
struct Secret {
    arn: String,
    versions: Vec<(String, String)>,
    current: String,
    tags: BTreeMap<String, String>,
    description: Option<String>,
    deleted: bool,
}

/// Secrets Manager in a `Mutex`: names to secrets, and every write call made.
#[derive(Default)]
struct Fake {
    secrets: Mutex<BTreeMap<String, Secret>>,
    writes: Mutex<Vec<String>>,
    value_reads: std::sync::atomic::AtomicU64,
}

fn not_found(op: &'static str, id: &str) -> CallError {
    CallError {
        op,
        name: id.into(),
        class: ErrorClass::NotFound,
        message: "not found".into(),
        attempts: 1,
    }
}

impl Fake {
    fn find(&self, id: &str) -> Option<(String, Secret)> {
        self.secrets
            .lock()
            .unwrap()
            .iter()
            .find(|(n, s)| *n == id || s.arn == id)
            .map(|(n, s)| (n.clone(), s.clone()))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Secret)) -> bool {
        let mut m = self.secrets.lock().unwrap();
        match m.iter_mut().find(|(n, s)| *n == id || s.arn == id) {
            Some((_, s)) => {
                f(s);
                true
            }
            None => false,
        }
    }

    fn put(&self, name: &str, value: &str, tags: BTreeMap<String, String>) {
        self.secrets.lock().unwrap().insert(
            name.into(),
            Secret {
                arn: format!("arn:{name}"),
                versions: vec![("v0".into(), value.into())],
                current: "v0".into(),
                tags,
                description: None,
                deleted: false,
            },
        );
    }

    fn value(&self, name: &str) -> Option<String> {
        let (_, s) = self.find(name)?;
        s.versions
            .iter()
            .find(|(v, _)| *v == s.current)
            .map(|(_, x)| x.clone())
    }

    fn log(&self, call: String) {
        self.writes.lock().unwrap().push(call);
    }

    fn listed(&self, name: &str, s: &Secret) -> TargetSecret {
        TargetSecret {
            name: name.into(),
            arn: s.arn.clone(),
            tags: s.tags.clone(),
            description: s.description.clone(),
            deleted_date: s.deleted.then(|| "2026-12-24T00:00:00Z".into()),
            current_version: Some(s.current.clone()),
            previous_version: s
                .versions
                .iter()
                .position(|(v, _)| *v == s.current)
                .and_then(|i| i.checked_sub(1))
                .map(|i| s.versions[i].0.clone()),
        }
    }
}

fn current(s: &Secret) -> Option<CurrentValue> {
    s.versions
        .iter()
        .find(|(v, _)| *v == s.current)
        .map(|(v, x)| CurrentValue {
            value: SecretValue::text(x.clone()),
            version_id: Some(v.clone()),
        })
}

impl Target for Fake {
    fn region(&self) -> &str {
        "test-1"
    }

    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>> {
        Box::pin(async {
            Ok(Caller {
                account: "000000000000".into(),
                arn: "arn:test".into(),
            })
        })
    }

    fn inventory<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<TargetSecret>, CallError>> {
        Box::pin(async move {
            let m = self.secrets.lock().unwrap();
            Ok(m.iter()
                .filter(|(n, _)| prefix.is_empty() || n.starts_with(&format!("{prefix}/")))
                .map(|(n, s)| self.listed(n, s))
                .collect())
        })
    }

    fn batch_get<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>> {
        Box::pin(async move {
            self.value_reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut r = BatchRead::default();
            for id in ids {
                match self.find(id) {
                    Some((_, s)) if !s.deleted => {
                        if let Some(c) = current(&s) {
                            r.values.insert(id.clone(), c);
                        }
                    }
                    _ => {
                        r.errors.insert(id.clone(), "not readable".into());
                    }
                }
            }
            Ok(r)
        })
    }

    fn get_value<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>> {
        Box::pin(async move {
            self.value_reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self.find(id) {
                Some((_, s)) if !s.deleted => Ok((current(&s), 1)),
                _ => Err(not_found("GetSecretValue", id)),
            }
        })
    }

    fn describe<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>> {
        Box::pin(async move {
            match self.find(id) {
                Some((n, s)) => Ok((self.listed(&n, &s), 1)),
                None => Err(not_found("DescribeSecret", id)),
            }
        })
    }

    fn create<'a>(&'a self, s: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>> {
        Box::pin(async move {
            self.log(format!("create {}", s.name));
            if self.find(s.name).is_some() {
                return Err(CallError {
                    op: "CreateSecret",
                    name: s.name.into(),
                    class: ErrorClass::Exists,
                    message: "exists".into(),
                    attempts: 1,
                });
            }
            self.secrets.lock().unwrap().insert(
                s.name.into(),
                Secret {
                    arn: format!("arn:{}", s.name),
                    versions: vec![(s.token.clone(), s.value.expose_str().unwrap_or("").into())],
                    current: s.token.clone(),
                    tags: s.tags.clone(),
                    description: Some(s.description.into()),
                    deleted: false,
                },
            );
            Ok(((format!("arn:{}", s.name), s.token.clone()), 1))
        })
    }

    fn put_value<'a>(
        &'a self,
        id: &'a str,
        value: &'a SecretValue,
        token: String,
    ) -> BoxFuture<'a, Outcome<String>> {
        Box::pin(async move {
            self.log(format!("put {id}"));
            let v = value.expose_str().unwrap_or("").to_owned();
            let t = token.clone();
            self.update(id, move |s| {
                s.versions.push((t.clone(), v));
                s.current = t;
            });
            Ok((token, 1))
        })
    }

    fn tag<'a>(
        &'a self,
        id: &'a str,
        tags: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async move {
            self.log(format!("tag {id}"));
            self.update(id, |s| s.tags.extend(tags.clone()));
            Ok(((), 1))
        })
    }

    fn restore<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async move {
            self.log(format!("restore {id}"));
            self.update(id, |s| s.deleted = false);
            Ok(((), 1))
        })
    }

    fn schedule_deletion<'a>(&'a self, id: &'a str, _days: i64) -> BoxFuture<'a, Outcome<String>> {
        Box::pin(async move {
            self.log(format!("delete {id}"));
            self.update(id, |s| s.deleted = true);
            Ok(("2026-12-24".into(), 1))
        })
    }

    fn move_current<'a>(
        &'a self,
        id: &'a str,
        to: &'a str,
        _from: &'a str,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async move {
            self.log(format!("move {id}"));
            self.update(id, |s| s.current = to.into());
            Ok(((), 1))
        })
    }
}

/// A source of text values; `None` = the current version is deleted (gone).
struct Values(BTreeMap<String, Option<String>>);

impl Source for Values {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn scope(&self) -> Scope {
        scope()
    }

    fn location(&self) -> String {
        "memory".into()
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

fn ours(path: &str) -> BTreeMap<String, String> {
    plan::expected_tags(&team(), &BTreeMap::new(), &scope().identity(path), "p")
}

struct Case {
    on_conflict: OnConflict,
    restore: bool,
    overrides: &'static str,
}

const PLAIN: Case = Case {
    on_conflict: OnConflict::Skip,
    restore: false,
    overrides: "",
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
    let src = Values(
        source
            .iter()
            .map(|(p, v)| (p.to_string(), v.map(str::to_owned)))
            .collect(),
    );
    let listing = src.list().await.unwrap();
    let rules = NamingRules::new(Some("p"), Policy::Aws);
    let overrides = Overrides::parse(case.overrides, &rules).unwrap();
    let inventory = fake.inventory("p").await.unwrap();
    let plan = plan::build(&PlanInput {
        listing: &listing,
        scope: &scope(),
        rules: &rules,
        overrides: &overrides,
        inventory: &inventory,
        on_conflict: case.on_conflict,
    })
    .unwrap();
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
        },
        kms_key_id: None,
        concurrency: 4,
        policy: Policy::Aws,
        tokens: Some(TokenDeriver::keyed(zeroize::Zeroizing::new(
            b"fixed-test-key-0123".to_vec(),
        ))),
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
        let fake = Fake::default();
        fake.put("p/same", "s", ours("same"));
        fake.put("p/changed", "old", ours("changed"));
        fake.put("p/untagged", "u", {
            let mut t = ours("untagged");
            t.remove("team");
            t
        });
        fake.put("p/squat", "theirs", BTreeMap::new());
        fake.put(
            "p/foreign",
            "f",
            plan::expected_tags(
                &BTreeMap::new(),
                &BTreeMap::new(),
                &Scope::new("vault", "http://v/kv", "").identity("foreign"),
                "p",
            ),
        );
        fake.put("p/gone", "g", ours("gone"));
        fake.put("p/deleted-src", "d", ours("deleted-src"));
        let before = fake.secrets.lock().unwrap().clone();
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
            assert!(
                fake.writes.lock().unwrap().is_empty(),
                "{:?}",
                fake.writes.lock().unwrap()
            );
            assert_eq!(
                *fake.secrets.lock().unwrap().keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>()
            );
        } else {
            assert_eq!(fake.value("p/new").as_deref(), Some("n"));
            assert_eq!(fake.value("p/changed").as_deref(), Some("new"));
            assert_eq!(fake.value("p/squat").as_deref(), Some("theirs"));
            assert_eq!(fake.value("p/foreign").as_deref(), Some("f"));
            assert_eq!(fake.find("p/untagged").unwrap().1.tags["team"], "platform");
            assert_eq!(fake.find("p/new").unwrap().1.tags[PREFIX_TAG], "p");
            assert!(fake.find("p/gone").unwrap().1.deleted);
            assert!(fake.find("p/deleted-src").unwrap().1.deleted);
            assert!(!fake.find("p/foreign").unwrap().1.deleted);
            let w = fake.writes.lock().unwrap().clone();
            assert!(
                !w.iter()
                    .any(|c| c.contains("foreign") || c.contains("squat")),
                "{w:?}"
            );
        }
    }
}

#[tokio::test]
async fn adopt_overwrite_restore_and_rename() {
    for dry in [false, true] {
        let done = if dry { "planned" } else { "ok" };
        let skipped = if dry { "planned" } else { "skipped" };
        // adopt: equal values are taken over by tagging, different ones are left
        let fake = Fake::default();
        fake.put("p/eq", "x", BTreeMap::new());
        fake.put("p/ne", "y", BTreeMap::new());
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
            fake.find("p/eq").unwrap().1.tags.contains_key(MANAGED_TAG),
            !dry
        );

        // overwrite: value and tags replaced
        let fake = Fake::default();
        fake.put("p/ne", "y", BTreeMap::new());
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
        let fake = Fake::default();
        fake.put("p/r", "old", ours("r"));
        fake.update("p/r", |s| s.deleted = true);
        let restore = Case {
            restore: true,
            ..PLAIN
        };
        let rows = run(&fake, &[("r", Some("new"))], &restore, dry, false).await;
        assert_eq!(
            actions(&rows),
            [format!("p/r:restore/{done}"), format!("p/r:update/{done}")]
        );
        assert_eq!(fake.find("p/r").unwrap().1.deleted, dry);
        // without --restore-deleted it is only reported
        let rows = run(&fake, &[("r", Some("new"))], &PLAIN, dry, false).await;
        if dry {
            assert_eq!(actions(&rows), [format!("p/r:skip/{skipped}")]);
        }

        // rename: an override added after the migration; the old name becomes an orphan
        let fake = Fake::default();
        fake.put("p/a", "v", ours("a"));
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
    let fake = Fake::default();
    let src = Values([("a".to_string(), Some("1".to_string()))].into());
    let listing = src.list().await.unwrap();
    let rules = NamingRules::new(Some("p"), Policy::Aws);
    let plan = plan::build(&PlanInput {
        listing: &listing,
        scope: &scope(),
        rules: &rules,
        overrides: &Overrides::default(),
        inventory: &[],
        on_conflict: OnConflict::Skip,
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
        },
        kms_key_id: None,
        concurrency: 1,
        policy: Policy::Aws,
        tokens: Some(TokenDeriver::ephemeral()),
    };
    let shutdown = Shutdown::new();
    shutdown.trigger();
    let progress = Progress::new("test", 0);
    let exec = Executor::new(&fake, &src, &settings, &sink, &shutdown, &progress);
    exec.run(&plan.items, &Prefetched::default()).await;
    assert!(fake.writes.lock().unwrap().is_empty());
    assert_eq!(sink.counts()[&(Action::Create, Status::Skipped)], 1);
}

/// A secret whose `AWSCURRENT` VersionId is the token of the source value is unchanged without
/// reading its value; a hand edit (another VersionId) is read and repaired.
#[tokio::test]
async fn unchanged_secrets_are_recognised_by_version_without_a_read() {
    use std::sync::atomic::Ordering::Relaxed;
    let fake = Fake::default();
    let source = [("a", Some("1")), ("b", Some("2"))];
    run(&fake, &source, &PLAIN, false, false).await;
    fake.value_reads.store(0, Relaxed);
    let rows = run(&fake, &source, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:unchanged/ok"]);
    assert_eq!(fake.value_reads.load(Relaxed), 0);
    // an update, then nothing changed: still no read (the version is the put's token)
    let changed = [("a", Some("1-new")), ("b", Some("2"))];
    run(&fake, &changed, &PLAIN, false, false).await;
    fake.value_reads.store(0, Relaxed);
    let rows = run(&fake, &changed, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:unchanged/ok"]);
    assert_eq!(fake.value_reads.load(Relaxed), 0);
    // a hand edit: read once, and repaired
    fake.update("p/b", |s| {
        s.versions.push(("hand".into(), "edited".into()));
        s.current = "hand".into();
    });
    let rows = run(&fake, &changed, &PLAIN, false, false).await;
    assert_eq!(actions(&rows), ["p/a:unchanged/ok", "p/b:update/ok"]);
    assert_eq!(fake.value_reads.load(Relaxed), 1);
    assert_eq!(fake.value("p/b").as_deref(), Some("2"));
}
