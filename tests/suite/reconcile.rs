//! `reconcile` against real moto: drift classes, `--check` exit codes, `--prune` with the
//! recovery window and the safety valve, an incomplete listing that prunes nothing, and sticky
//! names.

use std::collections::BTreeMap;

use crate::cli::{file_config, line, string_export as export, Workspace};
use crate::support::{Moto, ThrottleProxy};
use serde_json::json;

async fn tags(sm: &aws_sdk_secretsmanager::Client, name: &str) -> BTreeMap<String, String> {
    sm.describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_each_drift_class_then_reconcile_fixes_them() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &export(&[
            ("keep", "k"),
            ("change", "c1"),
            ("gone", "g"),
            ("hand", "h"),
            ("untagged", "u"),
        ]),
    );
    ws.write(
        "cfg.toml",
        &file_config(
            proxy.endpoint(),
            "r",
            "on_conflict = \"overwrite\"\ntags = { team = \"platform\" }",
            "",
        ),
    );
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);

    let in_sync = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    in_sync.expect_code(0);
    assert!(in_sync.stderr.contains("in sync"), "{}", in_sync.stderr);

    // drift: value changed in the source, a source deleted, a source added, a target value
    // changed by hand, a tag removed by hand, an unmanaged secret at a planned name
    ws.write(
        "export.jsonl",
        &export(&[
            ("keep", "k"),
            ("change", "c2"),
            ("new", "n"),
            ("hand", "h"),
            ("untagged", "u"),
            ("squat", "s"),
        ]),
    );
    sm.put_secret_value()
        .secret_id("r/hand")
        .secret_string("edited by hand")
        .send()
        .await
        .unwrap();
    sm.untag_resource()
        .secret_id("r/untagged")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("r/squat")
        .secret_string("someone else")
        .send()
        .await
        .unwrap();

    proxy.reset_counters();
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(2);
    assert_eq!(
        proxy.writes_forwarded(),
        0,
        "--check writes nothing: {:?}",
        proxy.snapshot()
    );
    let actions = |run: &crate::cli::Run, p: &str| -> Vec<String> {
        run.rows
            .iter()
            .filter(|r| r["source_path"] == p)
            .map(|r| r["action"].clone())
            .collect()
    };
    assert_eq!(actions(&check, "change"), ["update"]);
    assert_eq!(actions(&check, "new"), ["create"]);
    assert_eq!(actions(&check, "hand"), ["update"]);
    // tag drift is reported apart from value drift
    assert_eq!(actions(&check, "untagged"), ["unchanged", "retag"]);
    assert_eq!(actions(&check, "keep"), ["unchanged"]);
    // an unmanaged secret at a planned name, taken over under on_conflict = overwrite
    assert_eq!(actions(&check, "squat"), ["update", "retag"]);
    let orphan = check
        .rows
        .iter()
        .find(|r| r["target_name"] == "r/gone")
        .unwrap();
    assert_eq!(orphan["action"], "orphan");
    assert!(
        check.rows.iter().all(|r| r["status"] == "planned"),
        "{:#?}",
        check.rows
    );

    // without --prune the orphan is only reported, and the exit code says drift is left
    let fix = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    fix.expect_code(2);
    assert_eq!(
        fix.rows
            .iter()
            .find(|r| r["target_name"] == "r/gone")
            .unwrap()["status"],
        "skipped"
    );
    let v = sm
        .get_secret_value()
        .secret_id("r/hand")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("h"));
    assert_eq!(tags(&sm, "r/untagged").await["team"], "platform");
    assert_eq!(tags(&sm, "r/squat").await["secretport:managed"], "true");
    let still = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    still.expect_code(2); // the orphan is still there

    let prune = ws
        .run(&[
            "reconcile",
            "-c",
            "cfg.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    prune.expect_code(0);
    let del = prune
        .rows
        .iter()
        .find(|r| r["target_name"] == "r/gone")
        .unwrap();
    assert_eq!(
        (del["action"].as_str(), del["status"].as_str()),
        ("delete", "ok")
    );
    assert!(del["error"].contains("30-day recovery window"), "{del:?}");
    let d = sm
        .describe_secret()
        .secret_id("r/gone")
        .send()
        .await
        .unwrap();
    let deleted = d
        .deleted_date()
        .expect("scheduled for deletion, not deleted");
    // recovery window of 30 days, never forced: the secret is still there and restorable
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (deleted.secs() - now) as f64 / 86400.0;
    assert!(days > 29.0 && days <= 30.01, "{days}");

    proxy.reset_counters();
    let synced = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    synced.expect_code(0);
    assert_eq!(proxy.writes_forwarded(), 0);
    // in sync: no value read but the token key's (every VersionId is the token of its value)
    assert_eq!(proxy.forwarded("GetSecretValue"), 1);
    assert_eq!(proxy.forwarded("BatchGetSecretValue"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_safety_valve_and_recovery_window() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    let all: Vec<(String, String)> = (0..20)
        .map(|i| (format!("s{i:02}"), format!("v{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = all.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    ws.write("export.jsonl", &export(&refs));
    ws.write(
        "cfg.toml",
        &file_config(
            moto.endpoint(),
            "v",
            "",
            "[reconcile]\nrecovery_window_days = 7\n",
        ),
    );
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);

    // a source outage that lost 5 of 20 (25% > the default 10%): refused without --force-prune,
    // and the refusal is drift left for cron to see (exit 2)
    ws.write("export.jsonl", &export(&refs[..15]));
    let run = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    run.expect_code(2);
    let orphans: Vec<_> = run
        .rows
        .iter()
        .filter(|r| r["action"] == "orphan")
        .collect();
    assert_eq!(orphans.len(), 5);
    assert!(
        orphans[0]["error"].contains("--force-prune"),
        "{:?}",
        orphans[0]
    );
    assert!(sm
        .describe_secret()
        .secret_id("v/s19")
        .send()
        .await
        .unwrap()
        .deleted_date()
        .is_none());

    // within the share (1 of 20 = 5%): pruned with the configured window
    ws.write("export.jsonl", &export(&refs[..19]));
    let run = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 1);
    assert!(run.row("s19")["error"].contains("7-day recovery window"));
    assert!(sm
        .describe_secret()
        .secret_id("v/s19")
        .send()
        .await
        .unwrap()
        .deleted_date()
        .is_some());
    // already scheduled: not drift any more, not deleted twice
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    run.expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_listing_prunes_nothing() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "i", "", ""));
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    // "b" is unreadable in this listing (a bad line): it must not be taken for an orphan
    ws.write(
        "export.jsonl",
        &[
            line("a", json!("1")),
            "{\"path\": \"b\", broken".to_string(),
        ]
        .join("\n"),
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
    run.expect_code(1); // the bad line is a failure
    let o = run.rows.iter().find(|r| r["target_name"] == "i/b").unwrap();
    assert_eq!(o["action"], "orphan");
    assert!(o["error"].contains("incomplete"), "{o:?}");
    assert!(sm
        .describe_secret()
        .secret_id("i/b")
        .send()
        .await
        .unwrap()
        .deleted_date()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn sticky_names_keep_existing_mappings() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    // "db#1" is migrated alone: it gets the clean rewrite "db_1"
    ws.write("export.jsonl", &export(&[("db#1", "old")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "s", "", ""));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("db#1")["target_name"], "s/db_1");
    // later a compliant "db_1" appears: on a fresh target it would win the clean name, but the
    // existing mapping is sticky, so the newcomer is the one disambiguated
    ws.write("export.jsonl", &export(&[("db#1", "old"), ("db_1", "new")]));
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("db#1")["target_name"], "s/db_1");
    assert_eq!(run.row("db#1")["action"], "unchanged");
    let newcomer = run.row("db_1");
    assert_ne!(newcomer["target_name"], "s/db_1");
    assert!(
        newcomer["target_name"].starts_with("s/db_1"),
        "{newcomer:?}"
    );
    assert_eq!(newcomer["action"], "create");
    // the rename preview of the same two names on an empty target gives the clean name to the
    // compliant one: stickiness comes from the target's tags
    ws.write("names.txt", "db#1\ndb_1\n");
    let preview = ws
        .run(&["rename", "--prefix", "s", "--input", "names.txt"])
        .await;
    preview.expect_code(0);
    assert!(
        preview.stdout.contains("db_1,s/db_1,false,prefix"),
        "{}",
        preview.stdout
    );
}
