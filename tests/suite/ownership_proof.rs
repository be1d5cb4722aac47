//! Ownership a run can prove, through the binary against real OpenBao and moto, tried the way
//! an attacker and a platform team with many configs would: nested base paths of two configs
//! into one prefix, tags forged by hand, copied to another name or given a garbage proof,
//! adoption of what is really ours, and rollback of edited, mismatched and foreign reports.
//! Every check reads the secrets back from moto (by `AWSCURRENT`, and `DeletedDate`).

use std::collections::BTreeMap;

use crate::cli::{file_config, string_export as export, Workspace};
use crate::support::moto::state;
use crate::support::{Bao, Moto};
use serde_json::json;

type Sm = aws_sdk_secretsmanager::Client;

async fn tags_of(sm: &Sm, name: &str) -> BTreeMap<String, String> {
    let d = sm.describe_secret().secret_id(name).send().await.unwrap();
    d.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Creates `name` by hand (as another team would) with `value` and `tags`; returns its ARN.
async fn by_hand(sm: &Sm, name: &str, value: &str, tags: &BTreeMap<String, String>) -> String {
    let mut req = sm.create_secret().name(name).secret_string(value);
    for (k, v) in tags {
        req = req.tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(k)
                .value(v)
                .build(),
        );
    }
    req.send().await.unwrap().arn().unwrap().to_owned()
}

async fn arn_and_current(sm: &Sm, name: &str) -> (String, String) {
    let d = sm.describe_secret().secret_id(name).send().await.unwrap();
    let current = d
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(v, _)| v.clone())
        .unwrap();
    (d.arn().unwrap().to_owned(), current)
}

/// A Vault config of mount `kv` (ownership.rs's) whose prune may take every orphan.
fn vault_config(bao: &Bao, moto: &str, path: &str, prefix: &str) -> String {
    crate::ownership::vault_config(bao, moto, "kv", path, prefix, "")
        + "\n[reconcile]\nmax_prune_fraction = 1.0\n"
}

/// Two configs (two CronJobs) on one Vault mount into one prefix, `svc/` and `svc/tiny/`: the
/// outer one's scope contains the inner one's secrets, yet neither ever prunes, updates or
/// counts the other's; each `--check` is in sync.
#[tokio::test(flavor = "multi_thread")]
async fn nested_configs_into_one_prefix_never_prune_each_other() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    bao.mount_kv("kv", 2).await;
    for p in ["svc/a", "svc/b", "svc/tiny/t0", "svc/tiny/t1"] {
        bao.put_kv2("kv", p, json!({ "v": p })).await;
    }
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    ws.write(
        "outer.toml",
        &vault_config(&bao, moto.endpoint(), "svc/", "ov3"),
    );
    ws.write(
        "inner.toml",
        &vault_config(&bao, moto.endpoint(), "svc/tiny/", "ov3"),
    );
    for cfg in ["outer.toml", "inner.toml"] {
        ws.run(&["migrate", "-c", cfg, "--yes"])
            .await
            .expect_code(0);
    }
    let before = state(&sm).await;
    let names: Vec<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "ov3/a",
            "ov3/b",
            "ov3/t0",
            "ov3/t1",
            "ov3/tiny/t0",
            "ov3/tiny/t1"
        ]
    );

    // each prune sees the other's secrets as foreign: nothing is scheduled
    // (the outer job sees the inner job's 2; the inner one also sees ov3/a and ov3/b, which
    // lie outside its base path)
    for (cfg, owned, foreign) in [("outer.toml", 4, 2), ("inner.toml", 2, 4)] {
        let run = ws
            .run(&["reconcile", "-c", cfg, "--prune", "--force-prune", "--yes"])
            .await;
        run.expect_code(0);
        assert_eq!(run.count("delete", "ok"), 0, "{cfg}: {:#?}", run.rows);
        assert!(
            run.stderr.contains(&format!(
                "{owned} owned by this job, {foreign} managed for other scopes"
            )),
            "{cfg}: {}",
            run.stderr
        );
        assert_eq!(state(&sm).await, before, "{cfg} touched something");
        ws.run(&["reconcile", "-c", cfg, "--check"])
            .await
            .expect_code(0);
    }

    // a secret gone from the outer subtree is the outer job's orphan alone; a value changed
    // under svc/tiny is updated by both jobs, each in its own secret
    bao.call(reqwest::Method::DELETE, "kv/metadata/svc/b", None)
        .await;
    bao.put_kv2("kv", "svc/tiny/t0", json!({ "v": "new" }))
        .await;
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "outer.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 1, "{:#?}", run.rows);
    assert_eq!(run.count("update", "ok"), 1, "{:#?}", run.rows);
    let after = state(&sm).await;
    assert!(after["ov3/b"].1, "the outer job's orphan is scheduled");
    assert!(after["ov3/tiny/t0"].0.contains("new"));
    assert_eq!(
        after["ov3/t0"], before["ov3/t0"],
        "the inner job's secret was touched"
    );
    ws.run(&["reconcile", "-c", "inner.toml", "--check"])
        .await
        .expect_code(2);
    ws.run(&["reconcile", "-c", "inner.toml", "--prune", "--yes"])
        .await
        .expect_code(0);
    for cfg in ["outer.toml", "inner.toml"] {
        ws.run(&["reconcile", "-c", cfg, "--check"])
            .await
            .expect_code(0);
    }
    let last = state(&sm).await;
    assert!(!last["ov3/t0"].1 && !last["ov3/t1"].1 && !last["ov3/tiny/t1"].1);
}

/// Tags anyone with `TagResource` can write prove nothing: a foreign secret given our tags by
/// hand, our tags (proof included) copied to another name, our tags with a garbage proof. None
/// is pruned, updated or adopted by accident; each is a conflict row "ownership cannot be
/// verified". `--adopt` takes over exactly the secrets at their sources' names, deletes nothing,
/// and the next prune behaves normally.
#[tokio::test(flavor = "multi_thread")]
async fn forged_copied_and_garbage_tags_are_never_pruned_and_adopt_is_explicit() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    let tail = "[reconcile]\nmax_prune_fraction = 1.0\n";
    ws.write("export.jsonl", &export(&[("a", "A"), ("b", "B")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "fg", "", tail));
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    let ours = tags_of(&sm, "fg/a").await;
    assert!(
        ours.get("secretport:owner")
            .is_some_and(|p| p.starts_with("v1:") && p.len() == 35),
        "{ours:?}"
    );
    let source_a = ours["secretport:source"].clone();
    let claim = |path: &str, proof: Option<&str>| {
        let mut t = ours.clone();
        let source = format!("{} {path}", source_a.rsplit_once(' ').unwrap().0);
        t.insert("secretport:source".into(), source);
        match proof {
            Some(p) => t.insert("secretport:owner".into(), p.into()),
            None => t.remove("secretport:owner"),
        };
        t
    };
    // forged: another team's secret given our tags for source "c", no proof
    by_hand(&sm, "fg/c", "theirs-c", &claim("c", None)).await;
    // copied: a backup script copies every tag of fg/a, the proof included, to a new name
    by_hand(&sm, "fg/a-copy", "copy-of-a", &ours).await;
    // garbage proof for source "d"
    let garbage = "v1:00000000000000000000000000000000";
    by_hand(&sm, "fg/d", "theirs-d", &claim("d", Some(garbage))).await;
    // a real proof, lifted from fg/a, on a secret that claims source "e"
    let lifted = ours["secretport:owner"].clone();
    by_hand(&sm, "fg/e", "theirs-e", &claim("e", Some(&lifted))).await;
    let before = state(&sm).await;

    // the sources of c, d and e are gone (never existed): prune must delete none of them
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "cfg.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(2);
    assert_eq!(run.count("delete", "ok"), 0, "{:#?}", run.rows);
    for name in ["fg/c", "fg/a-copy", "fg/d", "fg/e"] {
        let row = run
            .rows
            .iter()
            .find(|r| r["target_name"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {:#?}", run.rows));
        assert_eq!(
            (row["action"].as_str(), row["status"].as_str()),
            ("conflict", "skipped"),
            "{row:?}"
        );
        assert!(
            row["error"].contains("ownership cannot be verified"),
            "{row:?}"
        );
    }
    assert_eq!(state(&sm).await, before);

    // now c, d and e are in the source: their names are conflicts, never overwritten
    ws.write(
        "export.jsonl",
        &export(&[("a", "A"), ("b", "B"), ("c", "C"), ("d", "D"), ("e", "E")]),
    );
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(2);
    for p in ["c", "d", "e"] {
        assert_eq!(run.row(p)["action"], "conflict", "{:#?}", run.rows);
        assert!(run.row(p)["error"].contains("ownership cannot be verified"));
    }
    let migrate = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    migrate.expect_code(2);
    assert_eq!(state(&sm).await, before);

    // --adopt (with --prune): the three secrets at their sources' names are taken over and
    // updated; the copy at another name is not; nothing is deleted
    let check = ws
        .run(&["reconcile", "-c", "cfg.toml", "--check", "--adopt"])
        .await;
    check.expect_code(2);
    assert_eq!(state(&sm).await, before, "--check --adopt wrote");
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "cfg.toml",
            "--adopt",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(2);
    assert_eq!(run.count("delete", "ok"), 0, "{:#?}", run.rows);
    assert_eq!(run.count("update", "ok"), 3, "{:#?}", run.rows);
    assert_eq!(run.count("retag", "ok"), 3, "{:#?}", run.rows);
    let copy = run
        .rows
        .iter()
        .find(|r| r["target_name"] == "fg/a-copy")
        .unwrap();
    assert!(
        copy["error"].contains("ownership cannot be verified"),
        "{copy:?}"
    );
    let orphan = run.rows.iter().find(|r| r["action"] == "orphan");
    assert!(orphan.is_none(), "{orphan:?}");
    let s = state(&sm).await;
    assert_eq!(
        (
            s["fg/c"].0.as_str(),
            s["fg/d"].0.as_str(),
            s["fg/e"].0.as_str()
        ),
        ("C", "D", "E")
    );
    assert_eq!(s["fg/a-copy"], before["fg/a-copy"]);

    // from now on they are ours: d leaves the source and is pruned; the copy never is
    ws.write(
        "export.jsonl",
        &export(&[("a", "A"), ("b", "B"), ("c", "C"), ("e", "E")]),
    );
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "cfg.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(2); // the copy is still a conflict left unrepaired
    assert_eq!(run.count("delete", "ok"), 1, "{:#?}", run.rows);
    let s = state(&sm).await;
    assert!(
        s["fg/d"].1,
        "the adopted d is pruned like any secret of ours"
    );
    assert!(!s["fg/a-copy"].1 && !s["fg/c"].1 && !s["fg/e"].1);
}

/// Writes `report` with `extra` rows appended, each a copy of the first `create ok` row aimed
/// at another secret: (name, arn, version_id, source_path).
fn edited_report(
    report: &std::path::Path,
    out: &std::path::Path,
    extra: &[(&str, &str, &str, &str)],
) {
    let mut r = csv::Reader::from_path(report).unwrap();
    let headers = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let template = rows
        .iter()
        .find(|row| &row[col("action")] == "create" && &row[col("status")] == "ok")
        .unwrap()
        .clone();
    let mut w = csv::Writer::from_path(out).unwrap();
    w.write_record(&headers).unwrap();
    for row in &rows {
        w.write_record(row).unwrap();
    }
    for (name, arn, version, path) in extra {
        let row: Vec<&str> = template
            .iter()
            .enumerate()
            .map(|(i, cell)| match headers.get(i).unwrap() {
                "target_name" => *name,
                "target_arn" => *arn,
                "version_id" => *version,
                "source_path" => *path,
                _ => cell,
            })
            .collect();
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();
}

/// Rollback trusts no report: an edited one naming an unmanaged secret outside the prefix, an
/// unmanaged one inside it and another config's secret (each with its current version, so only
/// ownership can stop it); another config's report with this config; a report of another
/// region; no --config at all. Nothing foreign is scheduled, and every row says why.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_touches_only_what_the_configs_job_owns() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("r")).unwrap();
    std::fs::create_dir(ws.path().join("o")).unwrap();
    ws.write("r/export.jsonl", &export(&[("x", "1"), ("y", "2")]));
    ws.write("r/cfg.toml", &file_config(moto.endpoint(), "rb", "", ""));
    ws.write("o/export.jsonl", &export(&[("z", "3")]));
    ws.write("o/cfg.toml", &file_config(moto.endpoint(), "other", "", ""));
    let r = ws.run(&["migrate", "-c", "r/cfg.toml", "--yes"]).await;
    r.expect_code(0);
    let o = ws.run(&["migrate", "-c", "o/cfg.toml", "--yes"]).await;
    o.expect_code(0);
    let (r_report, o_report) = (r.report.clone().unwrap(), o.report.clone().unwrap());
    let outside = by_hand(&sm, "outside/hand", "h1", &BTreeMap::new()).await;
    let inside = by_hand(&sm, "rb/hand", "h2", &BTreeMap::new()).await;
    let mut targets = vec![("outside/hand", outside), ("rb/hand", inside)];
    targets.push(("other/z", arn_and_current(&sm, "other/z").await.0));
    let mut extra = Vec::new();
    for (name, arn) in &targets {
        extra.push((
            *name,
            arn.clone(),
            arn_and_current(&sm, name).await.1,
            "x".to_owned(),
        ));
    }
    let extra: Vec<(&str, &str, &str, &str)> = extra
        .iter()
        .map(|(n, a, v, p)| (*n, a.as_str(), v.as_str(), p.as_str()))
        .collect();
    edited_report(&r_report, &ws.path().join("edited.csv"), &extra);
    let before = state(&sm).await;

    // no --config: refused before anything is read
    let run = ws
        .run(&["rollback", "--report", "edited.csv", "--yes"])
        .await;
    run.expect_code(64);
    assert!(run.stderr.contains("needs --config"), "{}", run.stderr);

    // another config's report with this config: O's secret is not R's job's
    let run = ws
        .run(&[
            "rollback",
            "--report",
            o_report.to_str().unwrap(),
            "-c",
            "r/cfg.toml",
            "--yes",
            "--rollback-report",
            "rb-o.csv",
        ])
        .await;
    run.expect_code(0);
    let rows = crate::cli::read_report(&ws.path().join("rb-o.csv"));
    let z = rows.iter().find(|r| r["target_name"] == "other/z").unwrap();
    assert_eq!(z["status"], "skipped", "{z:?}");
    assert!(z["error"].contains("not this job's"), "{z:?}");
    assert_eq!(state(&sm).await, before);

    // a report of another region: refused as a whole
    let text = std::fs::read_to_string(&r_report).unwrap();
    ws.write("region.csv", &text.replace(":us-east-1:", ":eu-west-1:"));
    let run = ws
        .run(&[
            "rollback",
            "--report",
            "region.csv",
            "-c",
            "r/cfg.toml",
            "--yes",
        ])
        .await;
    run.expect_code(64);
    assert!(run.stderr.contains("region eu-west-1"), "{}", run.stderr);
    assert_eq!(state(&sm).await, before);

    // the edited report: only R's own two creates are undone
    let run = ws
        .run(&[
            "rollback",
            "--report",
            "edited.csv",
            "-c",
            "r/cfg.toml",
            "--yes",
            "--rollback-report",
            "rb-edited.csv",
        ])
        .await;
    run.expect_code(0);
    let rows = crate::cli::read_report(&ws.path().join("rb-edited.csv"));
    let why = |name: &str| {
        let r = rows.iter().find(|r| r["target_name"] == name).unwrap();
        assert_eq!(r["status"], "skipped", "{r:?}");
        r["error"].clone()
    };
    assert!(why("outside/hand").contains("not managed by secretport"));
    assert!(why("rb/hand").contains("not managed by secretport"));
    assert!(why("other/z").contains("not this job's"));
    let s = state(&sm).await;
    assert!(s["rb/x"].1 && s["rb/y"].1, "R's own creates are undone");
    for name in ["outside/hand", "rb/hand", "other/z"] {
        assert_eq!(s[name], before[name], "{name} was touched");
    }
}

/// Secrets an earlier version wrote for an export file recorded the file's absolute path: the
/// same export (now identified relative to the config folder) finds them as conflicts, never
/// overwritten, until `reconcile --adopt` takes them over; then the job is in sync.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_of_the_absolute_path_identity_are_taken_over_only_by_adoption() {
    use secretport::identity::Scope;
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "lg", "", ""));
    let old = Scope::new("file", "/srv/old-checkout/export.jsonl", "");
    for (p, v) in [("a", "1"), ("b", "old-2")] {
        let tags = BTreeMap::from([
            ("secretport:managed".to_owned(), "true".to_owned()),
            ("secretport:source".to_owned(), old.identity(p).tag_value()),
            ("secretport:prefix".to_owned(), "lg".to_owned()),
        ]);
        by_hand(&sm, &format!("lg/{p}"), v, &tags).await;
    }
    let before = state(&sm).await;
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(2);
    for p in ["a", "b"] {
        assert_eq!(run.row(p)["action"], "conflict", "{:#?}", run.rows);
        assert!(
            run.row(p)["error"].contains("absolute path"),
            "{:?}",
            run.row(p)
        );
    }
    assert_eq!(state(&sm).await, before);
    let run = ws
        .run(&["reconcile", "-c", "cfg.toml", "--adopt", "--yes"])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("retag", "ok"), 2, "{:#?}", run.rows);
    assert_eq!(run.count("update", "ok"), 1, "{:#?}", run.rows);
    let s = state(&sm).await;
    assert_eq!((s["lg/a"].0.as_str(), s["lg/b"].0.as_str()), ("1", "2"));
    assert_eq!(s.len(), 2, "nothing created beside them: {s:#?}");
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
}
