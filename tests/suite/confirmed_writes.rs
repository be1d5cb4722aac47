//! A write is done only when AWS says so, and overlapping runs report the truth: through the
//! binary against moto, read back with `VersionStage = AWSCURRENT` (moto without a stage
//! answers the last version written).
//!
//! AWS and moto answer success to a `PutSecretValue` whose token names an existing version
//! and change nothing. After a rollback, a hand-moved `AWSCURRENT` or a repeated history, the
//! reconcile that puts the source value back derives exactly such a token; these tests check
//! that it converges in one run, the rows say what AWS then holds, the next `--check` exits 0,
//! and no version is added beyond what is needed.

use std::collections::BTreeMap;

use crate::cli::{file_config, string_export as export, Run, Workspace};
use crate::support::Moto;

type Sm = aws_sdk_secretsmanager::Client;

/// The `AWSCURRENT` value of `name`.
async fn current(sm: &Sm, name: &str) -> String {
    sm.get_secret_value()
        .secret_id(name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap_or_default()
        .to_string()
}

/// VersionId -> stages of `name`.
async fn versions(sm: &Sm, name: &str) -> BTreeMap<String, Vec<String>> {
    let out = sm
        .list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap().to_string(),
                v.version_stages().to_vec(),
            )
        })
        .collect()
}

fn version_with(v: &BTreeMap<String, Vec<String>>, stage: &str) -> Option<String> {
    v.iter()
        .find(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(id, _)| id.clone())
}

async fn migrate(ws: &Workspace, values: &[(&str, &str)]) -> Run {
    ws.write("export.jsonl", &export(values));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    run
}

/// A reconcile and then a `reconcile --check` that must find nothing.
async fn reconcile_converges(ws: &Workspace, moved: usize) -> Run {
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    let rows: Vec<_> = run
        .rows
        .iter()
        .filter(|r| r["action"] == "update")
        .collect();
    assert_eq!(rows.len(), moved, "{:#?}", run.rows);
    for r in &rows {
        assert_eq!(r["status"], "ok", "{r:?}");
        assert!(
            r["error"].contains("AWSCURRENT moved to existing version"),
            "{r:?}"
        );
        assert!(r["error"].contains(&r["version_id"]), "{r:?}");
    }
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(0);
    run
}

/// migrate A, migrate B, rollback of the B run, reconcile: AWSCURRENT holds B again, through
/// the version that already held it (no third version), the rows say so, `--check` exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_then_reconcile_converges_in_one_run() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("cfg.toml", &file_config(moto.endpoint(), "cw", "", ""));
    migrate(&ws, &[("a", "E-ORIG"), ("b", "B-ORIG")]).await;
    let update = migrate(&ws, &[("a", "E-NEW"), ("b", "B-NEW")]).await;
    assert_eq!(update.count("update", "ok"), 2);
    let rb = ws
        .run(&[
            "rollback",
            "--report",
            update.report.as_ref().unwrap().to_str().unwrap(),
            "-c",
            "cfg.toml",
            "--yes",
        ])
        .await;
    rb.expect_code(0);
    assert_eq!(current(&sm, "cw/a").await, "E-ORIG");

    // the source still holds the new values: one reconcile repairs them for good
    let run = reconcile_converges(&ws, 2).await;
    assert_eq!(current(&sm, "cw/a").await, "E-NEW");
    assert_eq!(current(&sm, "cw/b").await, "B-NEW");
    for name in ["cw/a", "cw/b"] {
        let v = versions(&sm, name).await;
        assert_eq!(v.len(), 2, "no extra version: {v:?}");
        let r = run.rows.iter().find(|r| r["target_name"] == name).unwrap();
        assert_eq!(
            version_with(&v, "AWSCURRENT").as_deref(),
            Some(&*r["version_id"])
        );
        assert_eq!(
            version_with(&v, "AWSPREVIOUS").as_deref(),
            Some(&*r["previous_version_id"])
        );
    }
    // and the next writing run writes nothing
    let again = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    again.expect_code(0);
    assert_eq!(again.count("unchanged", "ok"), 2, "{:#?}", again.rows);
}

/// AWSCURRENT moved by hand to the first version after A → B → A: the version "B over the
/// first" exists unlabelled; the put is answered without AWSCURRENT and the run moves it
/// there. A → B → A → B in plain runs adds one version a run and every row is true.
#[tokio::test(flavor = "multi_thread")]
async fn hand_moved_stages_and_repeated_histories_converge() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("cfg.toml", &file_config(moto.endpoint(), "hm", "", ""));
    let first = migrate(&ws, &[("x", "A")]).await;
    let v1 = first.row("x")["version_id"].clone();
    migrate(&ws, &[("x", "B")]).await;
    migrate(&ws, &[("x", "A")]).await;
    let v = versions(&sm, "hm/x").await;
    assert_eq!(v.len(), 3);
    let v3 = version_with(&v, "AWSCURRENT").unwrap();
    sm.update_secret_version_stage()
        .secret_id("hm/x")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v1)
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap();
    assert_eq!(current(&sm, "hm/x").await, "A");
    ws.write("export.jsonl", &export(&[("x", "B")]));
    reconcile_converges(&ws, 1).await;
    assert_eq!(current(&sm, "hm/x").await, "B");
    assert_eq!(versions(&sm, "hm/x").await.len(), 3, "no extra version");

    // A → B → A → B, one migrate each: every row true, one version a run
    let ws = Workspace::new();
    ws.write("cfg.toml", &file_config(moto.endpoint(), "ab", "", ""));
    for (i, value) in ["A", "B", "A", "B"].into_iter().enumerate() {
        let run = migrate(&ws, &[("y", value)]).await;
        assert_eq!(run.rows.len(), 1, "{:#?}", run.rows);
        assert_eq!(run.rows[0]["status"], "ok");
        assert_eq!(current(&sm, "ab/y").await, value);
        assert_eq!(versions(&sm, "ab/y").await.len(), i + 1);
    }
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
}

fn both(a: &Run, b: &Run, action: &str, status: &str) -> usize {
    a.count(action, status) + b.count(action, status)
}

/// Two `migrate --yes` of one config started together (a cron overlap), then two
/// `reconcile --prune --yes`: both exit 0, every secret has one version, and the two reports
/// together claim each create and each deletion exactly once. The migrates meet the same-host
/// lock (the second waits, then finds everything written); the prunes run from two copies of
/// the config that differ by a comment, so no lock is shared and they truly overlap: a deletion
/// the other run made first is found done (`orphan ok`), never a failure.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_claim_each_write_once() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("cfg.toml", &file_config(moto.endpoint(), "ov", "", ""));
    let n = 300;
    ws.write("export.jsonl", &crate::cli::bulk_export(n, "v"));
    let args = ["migrate", "-c", "cfg.toml", "--yes"];
    let (a, b) = tokio::join!(ws.run(&args), ws.run(&args));
    a.expect_code(0);
    b.expect_code(0);
    let said = format!("{}\n{}", a.stderr, b.stderr);
    assert!(
        said.contains("another run of this config is in progress"),
        "{said}"
    );
    assert_eq!(both(&a, &b, "create", "ok"), n, "{said}");
    assert_eq!(both(&a, &b, "unchanged", "ok"), n, "{said}");
    assert_eq!(both(&a, &b, "update", "ok"), 0);
    for i in (0..n).step_by(37) {
        let name = format!("ov/app-{}/secret-{i}", i / 50);
        assert_eq!(versions(&sm, &name).await.len(), 1, "{name}");
    }

    // 20 secrets leave the source: two pruning reconciles together schedule each once
    let kept: String = crate::cli::bulk_export(n, "v")
        .lines()
        .skip(20)
        .collect::<Vec<_>>()
        .join("\n");
    ws.write("export.jsonl", &kept);
    let copy = format!("# a copy\n{}", file_config(moto.endpoint(), "ov", "", ""));
    ws.write("cfg2.toml", &copy);
    let (a, b) = tokio::join!(
        ws.run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"]),
        ws.run(&["reconcile", "-c", "cfg2.toml", "--prune", "--yes"])
    );
    a.expect_code(0);
    b.expect_code(0);
    let said = format!("{}\n{}", a.stderr, b.stderr);
    assert!(!said.contains("another run of this config"), "{said}");
    assert_eq!(both(&a, &b, "delete", "ok"), 20, "{said}");
    assert!(a.failed().is_empty() && b.failed().is_empty(), "{said}");
    assert_eq!(
        both(&a, &b, "create", "ok") + both(&a, &b, "update", "ok"),
        0
    );
    for r in a
        .rows
        .iter()
        .chain(&b.rows)
        .filter(|r| r["action"] == "orphan")
    {
        assert_eq!(r["status"], "ok", "{r:?}");
        assert!(
            r["error"].contains("already scheduled for deletion"),
            "{r:?}"
        );
    }
    // each orphan was seen by both runs: deleted by one, found done by the other (or, if one
    // run listed after the other's deletions, not an orphan for it at all)
    assert!(both(&a, &b, "orphan", "ok") <= 20);
}
