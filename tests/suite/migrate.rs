//! `plan` and `migrate` against a real moto server, through the throttling proxy where rates
//! matter. Each test starts its own moto (and proxy), so tests run in parallel safely.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cli::{bulk_export, file_config, line, Workspace};
use crate::support::{Moto, Quota, ThrottleProxy, WRITE_OPS};
use aws_sdk_secretsmanager::primitives::Blob;
use serde_json::json;

async fn values_by_name(
    sm: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut next = None;
    loop {
        let page = sm
            .list_secrets()
            .filters(
                aws_sdk_secretsmanager::types::Filter::builder()
                    .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                    .values(format!("{prefix}/"))
                    .build(),
            )
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        for s in page.secret_list() {
            let name = s.name().unwrap().to_string();
            let v = sm.get_secret_value().secret_id(&name).send().await.unwrap();
            out.insert(name, v.secret_string().unwrap_or_default().to_string());
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    out
}

async fn version_count(sm: &aws_sdk_secretsmanager::Client, name: &str) -> usize {
    sm.list_secret_version_ids()
        .secret_id(name)
        .include_deprecated(true)
        .send()
        .await
        .unwrap()
        .versions()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrates_300_within_the_write_quota_and_reruns_with_no_writes() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![Quota::new(WRITE_OPS, 50.0, 50)]).await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &bulk_export(300, "pw"));
    let cfg = file_config(
        proxy.endpoint(),
        "q",
        "",
        "[limits]\nwrite_per_second = 50\n",
    );
    ws.write("cfg.toml", &cfg);

    // plan writes nothing
    let plan = ws.run(&["plan", "-c", "cfg.toml"]).await;
    plan.expect_code(0);
    assert_eq!(plan.count("create", "planned"), 300);
    assert_eq!(proxy.writes_forwarded(), 0, "plan must not write");

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 300, "{:?}", run.failed());
    assert!(run.failed().is_empty());
    assert_eq!(proxy.total_throttled(), 0, "{:?}", proxy.snapshot());
    let peak = proxy.peak_rate(WRITE_OPS, Duration::from_secs(1));
    assert!(peak <= 50 + 50, "peak {peak}/s");

    let sm = moto.sm_client("us-east-1");
    let got = values_by_name(&sm, "q").await;
    assert_eq!(got.len(), 300);
    for i in 0..300 {
        let name = format!("q/app-{}/secret-{i}", i / 50);
        let want = json!({"user": format!("u{i}"), "password": format!("pw-{i}")}).to_string();
        assert_eq!(got.get(&name), Some(&want), "{name}");
    }

    proxy.reset_counters();
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    rerun.expect_code(0);
    assert_eq!(proxy.writes_forwarded(), 0, "{:?}", proxy.snapshot());
    assert_eq!(rerun.count("unchanged", "ok"), 300);
    assert_eq!(rerun.rows.len(), 300);
    // nothing changed: no value of a migrated secret is read at all; each AWSCURRENT VersionId
    // is the token of its source value (one read: the token key)
    assert_eq!(proxy.forwarded("BatchGetSecretValue"), 0);
    assert_eq!(proxy.forwarded("GetSecretValue"), 1);
    assert_eq!(proxy.forwarded("DescribeSecret"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn adapts_to_throttling_below_the_configured_rate() {
    // the account's real quota is 20/s (someone else uses the rest); we are configured for 50
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![Quota::new(WRITE_OPS, 20.0, 5)]).await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &bulk_export(120, "t"));
    ws.write(
        "cfg.toml",
        &file_config(
            proxy.endpoint(),
            "t",
            "",
            "[limits]\nwrite_per_second = 50\n",
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 120);
    let throttled = proxy.throttled("CreateSecret");
    assert!(throttled > 0, "the proxy should have throttled");
    // AIMD: far fewer throttled calls than a fixed-rate client (which would draw ~60% of calls)
    eprintln!("throttled {throttled} of 120 writes");
    assert!(throttled < 60, "throttled {throttled} of 120 writes");
    assert!(run
        .rows
        .iter()
        .any(|r| r["attempts"].parse::<u32>().unwrap() > 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_values_binary_oversize_tags_and_kms_key() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    let big = "x".repeat(70_000);
    let export = [
        line("db", json!({"password": "one"})),
        r#"{"path":"cert","value_base64":"AAECA/8="}"#.to_string(),
        line("big", json!(big)),
        line("plain", json!("text value")),
    ]
    .join("\n");
    ws.write("export.jsonl", &export);
    ws.write(
        "cfg.toml",
        &file_config(
            moto.endpoint(),
            "c",
            "kms_key_id = \"alias/migrated\"\ntags = { team = \"platform\", env = \"prod\" }",
            "",
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1); // the oversize value is a failure
    assert_eq!(run.count("create", "ok"), 3);
    let big_row = run.row("big");
    assert_eq!(big_row["action"], "skip");
    assert_eq!(big_row["status"], "failed");
    assert!(big_row["error"].contains("70000 bytes"), "{big_row:?}");
    assert!(sm
        .describe_secret()
        .secret_id("c/big")
        .send()
        .await
        .is_err());

    let bin = sm
        .get_secret_value()
        .secret_id("c/cert")
        .send()
        .await
        .unwrap();
    assert_eq!(bin.secret_binary().unwrap().as_ref(), &[0, 1, 2, 3, 255]);
    assert!(bin.secret_string().is_none());
    let d = sm.describe_secret().secret_id("c/db").send().await.unwrap();
    assert_eq!(d.kms_key_id(), Some("alias/migrated"));
    let tags: BTreeMap<&str, &str> = d
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["team"], "platform");
    assert_eq!(tags["env"], "prod");
    assert_eq!(tags["secretport:managed"], "true");
    let source = tags["secretport:source"];
    // the export as the config names it, relative to the config's folder: a moved checkout
    // is the same source
    assert_eq!(source, "file:export.jsonl db");
    assert_eq!(tags["secretport:prefix"], "c");
    assert!(d.description().unwrap().ends_with(source));

    // change one value: exactly one new version, the others untouched
    ws.write(
        "export.jsonl",
        &export.replace("\"one\"", "\"two\"").replace(&big, "small"),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("db")["action"], "update");
    assert_eq!(run.row("db")["status"], "ok");
    assert_eq!(run.row("cert")["action"], "unchanged");
    assert_eq!(run.row("big")["action"], "create");
    assert_eq!(version_count(&sm, "c/db").await, 2);
    assert_eq!(version_count(&sm, "c/cert").await, 1);
    let v = sm
        .get_secret_value()
        .secret_id("c/db")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"password":"two"}"#));

    // A -> B -> A: the return to an old value is a real new version, not ignored as a replay
    ws.write("export.jsonl", &export.replace(&big, "small"));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("db")["action"], "update");
    let v = sm
        .get_secret_value()
        .secret_id("c/db")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"password":"one"}"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_under_each_on_conflict_mode() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[
            line("same", json!("v-same")),
            line("differs", json!("v-new")),
            line("fresh", json!("f")),
        ]
        .join("\n"),
    );
    for mode in ["skip", "adopt", "overwrite", "fail"] {
        for (name, value) in [("same", "v-same"), ("differs", "v-old")] {
            sm.create_secret()
                .name(format!("{mode}/{name}"))
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    }
    let run_mode = |mode: &'static str| {
        let ws = &ws;
        let endpoint = moto.endpoint().to_string();
        async move {
            ws.write(
                &format!("{mode}.toml"),
                &file_config(&endpoint, mode, &format!("on_conflict = \"{mode}\""), ""),
            );
            ws.run(&["migrate", "-c", &format!("{mode}.toml"), "--yes"])
                .await
        }
    };
    let get = |n: &'static str| {
        let sm = sm.clone();
        async move {
            sm.get_secret_value()
                .secret_id(n)
                .send()
                .await
                .unwrap()
                .secret_string()
                .unwrap()
                .to_string()
        }
    };
    let managed = |n: &'static str| {
        let sm = sm.clone();
        async move {
            sm.describe_secret()
                .secret_id(n)
                .send()
                .await
                .unwrap()
                .tags()
                .iter()
                .any(|t| t.key() == Some("secretport:managed"))
        }
    };

    // a migrate that left secrets unmigrated (conflicts skipped) never exits 0
    let skip = run_mode("skip").await;
    skip.expect_code(2);
    assert_eq!(skip.row("same")["action"], "conflict");
    assert_eq!(skip.row("same")["status"], "skipped");
    assert_eq!(skip.row("differs")["action"], "conflict");
    assert_eq!(skip.row("fresh")["action"], "create");
    assert_eq!(get("skip/differs").await, "v-old");
    assert!(!managed("skip/same").await);

    // "differs" is not adopted (its value differs): left unmigrated, exit 2
    let adopt = run_mode("adopt").await;
    adopt.expect_code(2);
    assert_eq!(adopt.row("same")["action"], "retag");
    assert_eq!(adopt.row("same")["status"], "ok");
    assert!(managed("adopt/same").await);
    assert_eq!(adopt.row("differs")["action"], "conflict");
    assert!(!managed("adopt/differs").await);
    assert_eq!(get("adopt/differs").await, "v-old");
    // adopted secrets are ours from now on
    let again = run_mode("adopt").await;
    assert_eq!(again.row("same")["action"], "unchanged");

    let over = run_mode("overwrite").await;
    over.expect_code(0);
    assert_eq!(get("overwrite/differs").await, "v-new");
    assert!(managed("overwrite/differs").await);
    assert!(over
        .rows
        .iter()
        .any(|r| r["source_path"] == "differs" && r["action"] == "update" && r["status"] == "ok"));

    let fail = run_mode("fail").await;
    fail.expect_code(1);
    assert_eq!(fail.count("conflict", "failed"), 2);
    // stopped before any write: even the free name was not created
    assert_eq!(fail.row("fresh")["status"], "skipped");
    assert!(sm
        .describe_secret()
        .secret_id("fail/fresh")
        .send()
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_for_deletion_is_reported_and_restorable() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[line("a", json!("1")), line("b", json!("2"))].join("\n"),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "d", "", ""));
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    sm.delete_secret()
        .secret_id("d/a")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    // an unmanaged secret scheduled for deletion at a planned name, created out of band
    ws.write(
        "export.jsonl",
        &[
            line("a", json!("1-new")),
            line("b", json!("2")),
            line("c", json!("3")),
        ]
        .join("\n"),
    );
    sm.create_secret()
        .name("d/c")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id("d/c")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    // secrets skipped for safety are left unmigrated: exit 2, never 0
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(2);
    let a = run.row("a");
    assert_eq!(
        (a["action"].as_str(), a["status"].as_str()),
        ("skip", "skipped")
    );
    assert!(a["error"].contains("scheduled for deletion on"), "{a:?}");
    assert!(a["error"].contains("--restore-deleted"));
    let c = run.row("c");
    assert_eq!(c["action"], "skip");
    assert!(c["error"].contains("not this source's secret"), "{c:?}");

    let run = ws
        .run(&["migrate", "-c", "cfg.toml", "--yes", "--restore-deleted"])
        .await;
    // ours restored; the unmanaged one (not ours to restore) is still left: exit 2
    run.expect_code(2);
    assert_eq!(run.count("restore", "ok"), 1);
    assert!(run
        .rows
        .iter()
        .any(|r| r["source_path"] == "a" && r["action"] == "update" && r["status"] == "ok"));
    let d = sm.describe_secret().secret_id("d/a").send().await.unwrap();
    assert!(d.deleted_date().is_none());
    let v = sm.get_secret_value().secret_id("d/a").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("1-new"));
    // the unmanaged one stays untouched
    assert_eq!(run.row("c")["action"], "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_mid_migration_then_rerun_leaves_each_secret_once_with_one_version() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &bulk_export(400, "k"));
    ws.write(
        "cfg.toml",
        &file_config(
            moto.endpoint(),
            "k",
            "",
            "[limits]\nwrite_per_second = 100\n",
        ),
    );
    let mut child = ws
        .command(&["migrate", "-c", "cfg.toml", "--yes"], &[])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    let _ = child.wait();
    let sm = moto.sm_client("us-east-1");
    let before = values_by_name(&sm, "k").await.len();
    assert!(
        before > 0 && before < 400,
        "killed too early or too late: {before}"
    );

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(
        run.count("create", "ok") + run.count("unchanged", "ok"),
        400
    );
    let got = values_by_name(&sm, "k").await;
    assert_eq!(got.len(), 400);
    for name in got.keys() {
        assert_eq!(version_count(&sm, name).await, 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn access_keys_from_env_and_assume_role_with_external_id() {
    let moto = Moto::start().await;
    let mut ws = Workspace::new();
    ws.env("MIGRATOR_AK", "AKIAMIGRATOR");
    ws.env("MIGRATOR_SK", "migrator-secret");
    ws.write("export.jsonl", &line("k", json!("v")));
    ws.write(
        "keys.toml",
        &file_config(
            moto.endpoint(),
            "keys",
            "credentials = { type = \"access-keys\", access_key_id_env = \"MIGRATOR_AK\", secret_access_key_env = \"MIGRATOR_SK\" }",
            "",
        ),
    );
    let run = ws
        .run_with(
            &["migrate", "-c", "keys.toml", "--yes"],
            &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y")],
        )
        .await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 1);

    // a missing env var is a config error naming the key, before any call
    let run = ws
        .run_with(
            &["migrate", "-c", "keys.toml", "--yes"],
            &[("MIGRATOR_SK", "")],
        )
        .await;
    run.expect_code(64);
    assert!(
        run.stderr
            .contains("target.credentials.secret_access_key_env"),
        "{}",
        run.stderr
    );

    ws.write(
        "role.toml",
        &file_config(
            moto.endpoint(),
            "role",
            "credentials = { type = \"assume-role\", role_arn = \"arn:aws:iam::111111111111:role/migrator\", external_id = \"ext-42\", duration_seconds = 900 }",
            "",
        ),
    );
    let run = ws.run(&["migrate", "-c", "role.toml", "--yes"]).await;
    run.expect_code(0);
    let arn = &run.row("k")["target_arn"];
    // moto's STS hands out credentials that act in the role's account
    assert!(arn.contains(":111111111111:secret:role/k"), "{arn}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_export_lines_are_reported_and_the_rest_migrate() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[
            line("ok/1", json!("a")),
            "{not json".to_string(),
            r#"{"value":"no path"}"#.to_string(),
            r#"{"path":"both","value":"x","value_base64":"AA=="}"#.to_string(),
            line("dup", json!("1")),
            line("dup", json!("2")),
            line("ok/2", json!("b")),
        ]
        .join("\n"),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "b", "", ""));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    assert_eq!(run.count("create", "ok"), 2);
    let errors: Vec<&str> = run.failed().iter().map(|r| r["error"].as_str()).collect();
    for l in ["line 2:", "line 3:", "line 4:", "line 5:", "line 6:"] {
        assert!(
            errors.iter().any(|e| e.starts_with(l)),
            "{l} missing in {errors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_values_never_reach_output_logs_or_report() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![Quota::new(WRITE_OPS, 5.0, 1)]).await;
    let ws = Workspace::new();
    let planted = [
        "PLANTED-alpha-91f2",
        "PLANTED-beta-77c1",
        "PLANTED-gamma-1d0e",
    ];
    ws.write(
        "export.jsonl",
        &[
            line("leak/obj", json!({"password": planted[0]})),
            line("leak/str", json!(planted[1])),
            format!(
                r#"{{"path":"leak/bin","value_base64":"{}"}}"#,
                base64_encode(planted[2].as_bytes())
            ),
            // a bad line holding a planted value: the error names the line, not the content
            format!(r#"{{"path":"leak/bad","value":"{}" oops}}"#, planted[0]),
        ]
        .join("\n"),
    );
    ws.write("cfg.toml", &file_config(proxy.endpoint(), "leak", "", ""));
    let env = [("RUST_LOG", "trace")];
    let plan = ws.run_with(&["plan", "-c", "cfg.toml"], &env).await;
    let first = ws
        .run_with(&["migrate", "-c", "cfg.toml", "--yes"], &env)
        .await;
    // change values so the update path (PutSecretValue, BatchGetSecretValue) is logged too
    let changed = std::fs::read_to_string(ws.path().join("export.jsonl"))
        .unwrap()
        .replace("PLANTED-alpha-91f2", "PLANTED-delta-5b3a");
    ws.write("export.jsonl", &changed);
    let second = ws
        .run_with(&["migrate", "-c", "cfg.toml", "--yes"], &env)
        .await;
    assert_eq!(second.count("update", "ok"), 1, "{:?}", second.rows);
    // secretport's own trace lines (the AWS SDK's logging is capped at info, see log_filter)
    assert!(second.stderr.len() > 300, "trace logging should be on");
    for run in [&plan, &first, &second] {
        let all = run.all_output();
        for p in planted.iter().chain(["PLANTED-delta-5b3a"].iter()) {
            assert!(!all.contains(p), "{p} leaked");
            assert!(
                !all.contains(&base64_encode(p.as_bytes())),
                "{p} leaked as base64"
            );
        }
    }
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_summary_table_and_naming_in_report() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[
            line("team a/db #1", json!("x")),
            line("café", json!("y")),
            line("ok", json!("z")),
        ]
        .join("\n"),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "p", "", ""));
    sm.create_secret()
        .name("p/ok")
        .secret_binary(Blob::new(vec![1]))
        .send()
        .await
        .unwrap();
    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("action"), "{}", run.stdout);
    assert!(run.stdout.contains("create"), "{}", run.stdout);
    assert_eq!(run.row("team a/db #1")["target_name"], "p/team_a/db_1");
    assert_eq!(run.row("café")["target_name"], "p/cafe");
    assert_eq!(run.row("ok")["action"], "conflict");
    assert!(run.rows.iter().all(|r| r["status"] == "planned"));
    assert!(run
        .stderr
        .lines()
        .last()
        .unwrap()
        .starts_with("plan: 3 secrets"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_dispatching_flushes_the_report_and_exits_1() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &bulk_export(300, "i"));
    ws.write(
        "cfg.toml",
        &file_config(
            moto.endpoint(),
            "i",
            "",
            "[limits]\nwrite_per_second = 40\n",
        ),
    );
    let report = ws.path().join("interrupted.csv");
    let mut cmd = ws.command(&["migrate", "-c", "cfg.toml", "--yes"], &[]);
    cmd.arg("--report").arg(&report);
    let child = cmd.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    crate::support::signal(child.id(), "INT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    let rows = crate::cli::read_report(&report);
    assert_eq!(rows.len(), 300, "every secret has a row");
    let done = rows.iter().filter(|r| r["status"] == "ok").count();
    let not_started = rows
        .iter()
        .filter(|r| r["status"] == "skipped" && r["error"].contains("interrupted"))
        .count();
    assert!(
        done > 0 && not_started > 0,
        "done {done}, not started {not_started}"
    );
    // after the interrupt retries stop, so a call that met a transient error (moto under load)
    // is a failed row rather than retried: it is counted, never lost
    let failed = rows.iter().filter(|r| r["status"] == "failed").count();
    assert_eq!(done + not_started + failed, 300, "{rows:#?}");
    // the summary counts what happened, not what was planned (a zero count is not shown)
    let failed_shown = if failed > 0 {
        stderr.contains(&format!("failed {failed},"))
    } else {
        !stderr.contains("failed")
    };
    assert!(
        stderr.contains(&format!("create {done}"))
            && stderr.contains(&format!("skipped {not_started}"))
            && failed_shown,
        "summary vs report (done {done}, not started {not_started}, failed {failed}): {stderr}"
    );
    // what the report says was created exists (a failed write may or may not have landed)
    let sm = moto.sm_client("us-east-1");
    let exist = values_by_name(&sm, "i").await.len();
    assert!(
        (done..=done + failed).contains(&exist),
        "{exist} exist, {done} created, {failed} failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_key_makes_version_ids_keyed_hmacs() {
    use secretport::identity::token::TokenDeriver;
    use secretport::identity::Scope;
    use secretport::secret::SecretValue;
    let moto = Moto::start().await;
    // counts the calls that reach moto (no quota)
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let mut ws = Workspace::new();
    let key = "k3y-for-tokens-0123456789";
    ws.env("SP_TOKEN_KEY", key);
    ws.write("export.jsonl", &line("app/db", json!("v1")));
    ws.write(
        "cfg.toml",
        &file_config(
            proxy.endpoint(),
            "tk",
            r#"token_key_env = "SP_TOKEN_KEY""#,
            "",
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    let sm = moto.sm_client("us-east-1");
    let d = sm
        .describe_secret()
        .secret_id("tk/app/db")
        .send()
        .await
        .unwrap();
    let versions: Vec<&String> = d.version_ids_to_stages().unwrap().keys().collect();
    let value = SecretValue::text("v1".into());
    // the instance is the export as the config names it, relative to the config's folder
    let id = Scope::new("file", "export.jsonl", "").identity("app/db");
    let keyed = TokenDeriver::keyed(zeroize::Zeroizing::new(key.as_bytes().to_vec()))
        .token(&id, &value, None);
    assert_eq!(versions, vec![&keyed], "the VersionId is the keyed token");
    // with token_key_env set, no key secret is made in the account
    let key_secret = sm
        .describe_secret()
        .secret_id("secretport/token-key")
        .send()
        .await;
    assert!(key_secret.is_err(), "{key_secret:?}");

    // rerun: nothing written
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    rerun.expect_code(0);
    assert_eq!(rerun.count("unchanged", "ok"), 1);
    assert_eq!(version_count(&sm, "tk/app/db").await, 1);

    // reconcile with nothing changed reads no value at all: every VersionId is computable from
    // the source and the configured key, so not even a key secret is read (IAM needs no
    // secretsmanager:GetSecretValue for it)
    proxy.reset_counters();
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(0);
    assert_eq!(check.count("unchanged", "planned"), 1);
    assert_eq!(
        proxy.forwarded("GetSecretValue"),
        0,
        "{:?}",
        proxy.snapshot()
    );
    assert_eq!(proxy.forwarded("BatchGetSecretValue"), 0);
    assert_eq!(proxy.writes_forwarded(), 0);

    // a key too short is a config error naming the key, and nothing is contacted
    ws.env("SP_TOKEN_KEY", "short");
    let bad = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    bad.expect_code(64);
    assert!(
        bad.stderr.contains("target.token_key_env") && bad.stderr.contains("at least 16"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("short"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_target_is_one_clear_error_and_a_report_row() {
    let port = crate::support::free_port(); // nothing listens there
    let ws = Workspace::new();
    ws.write("export.jsonl", &line("app/db", json!("v")));
    ws.write(
        "cfg.toml",
        &file_config(
            &format!("http://127.0.0.1:{port}"),
            "down",
            "",
            "[limits]\nmax_attempts = 2",
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    let error_lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(error_lines.len(), 1, "{}", run.stderr);
    let line = error_lines[0];
    assert!(line.contains("ListSecrets down/"), "{line}");
    assert_eq!(line.matches("Connection refused").count(), 1, "{line}");
    assert!(!line.contains("DispatchFailure"), "no Debug dump: {line}");
    assert_eq!(run.rows.len(), 1, "{:#?}", run.rows);
    assert!(
        run.rows[0]["error"].starts_with("target inventory failed: ListSecrets"),
        "{:?}",
        run.rows[0]
    );
}

/// An empty value is refused with one clear reason (AWS keeps no version of it), every run the
/// same way, and a managed secret without a current version does not fail its batch neighbours:
/// the batch falls back to one read per secret.
#[tokio::test(flavor = "multi_thread")]
async fn empty_values_are_refused_and_a_versionless_secret_fails_no_neighbour() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    let mut lines: Vec<String> = (0..25)
        .map(|i| line(&format!("s{i:02}"), json!(format!("v{i}"))))
        .collect();
    lines.push(line("empty", json!("")));
    ws.write("export.jsonl", &lines.join("\n"));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "ev", "", ""));
    for _ in 0..2 {
        let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
        run.expect_code(1);
        let e = run.row("empty");
        assert_eq!(
            (e["action"].as_str(), e["status"].as_str()),
            ("skip", "failed"),
            "{e:?}"
        );
        assert!(e["error"].contains("value is empty"), "{e:?}");
        assert_eq!(run.failed().len(), 1, "{:#?}", run.failed());
    }
    assert!(
        sm.describe_secret()
            .secret_id("ev/empty")
            .send()
            .await
            .is_err(),
        "nothing written"
    );

    // a secret of ours that lost its version (created again by hand with the tags it had,
    // ownership proof included, and no value), in the middle of a BatchGetSecretValue batch
    let tags = sm
        .describe_secret()
        .secret_id("ev/s05")
        .send()
        .await
        .unwrap()
        .tags()
        .to_vec();
    assert!(
        tags.iter().any(|t| t.key() == Some("secretport:owner")),
        "{tags:?}"
    );
    sm.delete_secret()
        .secret_id("ev/s05")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("ev/s05")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    ws.write("export.jsonl", &lines[..25].join("\n"));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("s05")["action"], "update", "{:?}", run.row("s05"));
    assert_eq!(run.count("unchanged", "ok"), 24, "{:#?}", run.rows);
}

/// A write whose every response is lost (it landed; the answers never came back) is reported as
/// what it was: `ok`, once, with no duplicate version, because the token names the version AWS
/// holds.
#[tokio::test(flavor = "multi_thread")]
async fn writes_whose_responses_were_lost_are_reported_as_landed() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[line("a", json!("1")), line("b", json!("2"))].join("\n"),
    );
    ws.write(
        "cfg.toml",
        &file_config(proxy.endpoint(), "lost", "", "[limits]\nmax_attempts = 2\n"),
    );
    proxy.lose_responses("CreateSecret", 100);
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    for p in ["a", "b"] {
        let r = run.row(p);
        assert_eq!(
            (r["action"].as_str(), r["status"].as_str()),
            ("create", "ok"),
            "{r:?}"
        );
        assert!(r["error"].contains("response was lost"), "{r:?}");
        assert!(!r["version_id"].is_empty(), "{r:?}");
    }
    assert_eq!(version_count(&sm, "lost/a").await, 1);

    ws.write(
        "export.jsonl",
        &[line("a", json!("1-new")), line("b", json!("2"))].join("\n"),
    );
    proxy.lose_responses("PutSecretValue", 100);
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    let r = run.row("a");
    assert_eq!(
        (r["action"].as_str(), r["status"].as_str()),
        ("update", "ok"),
        "{r:?}"
    );
    assert_eq!(
        version_count(&sm, "lost/a").await,
        2,
        "no duplicate version"
    );
    let v = sm
        .get_secret_value()
        .secret_id("lost/a")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("1-new"));
}
