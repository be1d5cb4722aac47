//! Ownership and safety through the binary, against real OpenBao and moto, tried the way a
//! tired operator or an attacker would: two configs sharing a prefix, nested prefixes, `apps`
//! next to `apps2`, an explicit empty prefix, a soft-deleted source, an empty or mistyped
//! source, a mapping changed after a migration, writes without a terminal, refused prunes and
//! the exit codes cron sees, and `rollback` of a create run and of an update run.

use std::collections::BTreeMap;

use crate::cli::{file_config, string_export as export, Workspace};
use crate::support::moto::state;
use crate::support::{Bao, Moto};
use serde_json::json;

fn live(state: &BTreeMap<String, (String, bool)>, prefix: &str) -> Vec<String> {
    state
        .iter()
        .filter(|(n, (_, d))| n.starts_with(prefix) && !d)
        .map(|(n, _)| n.clone())
        .collect()
}

pub(crate) fn vault_config(
    bao: &Bao,
    moto: &str,
    mount: &str,
    path: &str,
    prefix: &str,
    extra_source: &str,
) -> String {
    format!(
        r#"[source]
kind = "vault"
address = "{}"
mount = "{mount}"
path = "{path}"
auth = {{ method = "token", token_env = "TEST_VAULT_TOKEN" }}
{extra_source}

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{moto}"
"#,
        bao.addr()
    )
}

/// Two Vault mounts and two subtrees (`apps`, `apps2`) of one mount, all into one prefix:
/// pruning one job never touches another's secrets, and its safety valve counts only its own.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_sharing_a_prefix_never_prune_each_other() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    bao.mount_kv("kva", 2).await;
    bao.mount_kv("kvb", 2).await;
    for p in ["apps/db", "apps/api", "apps/cache"] {
        bao.put_kv2("kva", p, json!({"v": p})).await;
    }
    for p in ["apps2/db2", "apps2/x"] {
        bao.put_kv2("kva", p, json!({"v": p})).await;
    }
    for p in ["apps/db", "apps/other"] {
        bao.put_kv2("kvb", p, json!({"v": format!("b-{p}")})).await;
    }
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    ws.write(
        "apps.toml",
        &vault_config(&bao, moto.endpoint(), "kva", "apps", "shared", ""),
    );
    ws.write(
        "apps2.toml",
        &vault_config(&bao, moto.endpoint(), "kva", "apps2", "shared", ""),
    );
    // the other mount: its own prefix nested under the shared one
    ws.write(
        "kvb.toml",
        &vault_config(&bao, moto.endpoint(), "kvb", "apps", "shared/b", ""),
    );
    for cfg in ["apps.toml", "apps2.toml", "kvb.toml"] {
        ws.run(&["migrate", "-c", cfg, "--yes"])
            .await
            .expect_code(0);
    }
    let before = state(&sm).await;
    assert_eq!(live(&before, "shared/").len(), 7, "{before:#?}");

    // the apps subtree loses every secret: a full prune of it must stay inside it
    for p in ["apps/db", "apps/api", "apps/cache"] {
        bao.call(reqwest::Method::DELETE, &format!("kva/metadata/{p}"), None)
            .await;
    }
    bao.put_kv2("kva", "apps/new", json!({"v": "n"})).await;
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "apps.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 3, "{:#?}", run.rows);
    assert!(
        run.stderr.contains("other scopes left alone"),
        "{}",
        run.stderr
    );
    let after = state(&sm).await;
    for name in ["shared/db2", "shared/x", "shared/b/db", "shared/b/other"] {
        assert_eq!(after[name], before[name], "{name} was touched");
    }
    assert!(after["shared/db"].1, "own orphan scheduled for deletion");

    // apps2's safety valve counts only apps2's secrets: 1 orphan of 2 owned = 50% is refused,
    // exit 2 (drift left), and nothing of anyone else is counted or touched
    bao.call(reqwest::Method::DELETE, "kva/metadata/apps2/x", None)
        .await;
    let run = ws
        .run(&["reconcile", "-c", "apps2.toml", "--prune", "--yes"])
        .await;
    run.expect_code(2);
    let orphan = run.rows.iter().find(|r| r["action"] == "orphan").unwrap();
    assert!(
        orphan["error"].contains("1 orphans of 2 secrets this job owns"),
        "{orphan:?}"
    );
    assert!(!state(&sm).await["shared/x"].1);

    // a name clash with another job's secret is a conflict naming that job's scope
    bao.put_kv2("kva", "apps/b/db", json!({"v": "clash"})).await;
    let run = ws.run(&["reconcile", "-c", "apps.toml", "--yes"]).await;
    run.expect_code(2);
    let clash = run.row("b/db");
    assert_eq!(clash["action"], "conflict", "{clash:?}");
    assert!(
        clash["error"].contains("kvb") && clash["error"].contains("prefix shared/b"),
        "{clash:?}"
    );
    assert_eq!(state(&sm).await["shared/b/db"], before["shared/b/db"]);
}

/// File exports with nested prefixes and an explicit empty prefix (the whole account).
#[tokio::test(flavor = "multi_thread")]
async fn nested_and_empty_prefixes_stay_in_their_scope() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("outer")).unwrap();
    std::fs::create_dir(ws.path().join("inner")).unwrap();
    std::fs::create_dir(ws.path().join("all")).unwrap();
    ws.write("outer/export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    ws.write("inner/export.jsonl", &export(&[("c", "3"), ("d", "4")]));
    ws.write("all/export.jsonl", &export(&[("top", "5")]));
    ws.write(
        "outer/cfg.toml",
        &file_config(moto.endpoint(), "devops", "", ""),
    );
    ws.write(
        "inner/cfg.toml",
        &file_config(moto.endpoint(), "devops/harness", "", ""),
    );
    ws.write("all/cfg.toml", &file_config(moto.endpoint(), "", "", ""));
    for cfg in ["outer/cfg.toml", "inner/cfg.toml", "all/cfg.toml"] {
        ws.run(&["migrate", "-c", cfg, "--yes"])
            .await
            .expect_code(0);
    }
    let before = state(&sm).await;
    assert_eq!(before.len(), 5, "{before:#?}");

    // every source emptied (allow_empty, so the run goes on): each job prunes only its own
    for (dir, prefix) in [("outer", "devops"), ("all", "")] {
        ws.write(&format!("{dir}/export.jsonl"), "");
        let tail = "[reconcile]\nmax_prune_fraction = 1.0\n";
        ws.write(
            &format!("{dir}/cfg.toml"),
            &file_config(moto.endpoint(), prefix, "", tail)
                .replace("kind = \"file\"", "kind = \"file\"\nallow_empty = true"),
        );
    }
    // outer: 0 listed while it owns 2: nothing is pruned (an empty listing never prunes)
    let run = ws
        .run(&["reconcile", "-c", "outer/cfg.toml", "--prune", "--yes"])
        .await;
    run.expect_code(2);
    assert!(
        run.rows
            .iter()
            .any(|r| r["error"].contains("listed 0 secrets")),
        "{:#?}",
        run.rows
    );
    assert_eq!(state(&sm).await, before);
    // the empty prefix sees the whole account but owns only "top"; with one source left it
    // may prune, and prunes nothing of devops/ or devops/harness/
    ws.write("all/export.jsonl", &export(&[("other", "6")]));
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "all/cfg.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 1, "{:#?}", run.rows);
    let after = state(&sm).await;
    assert!(after["top"].1);
    for name in [
        "devops/a",
        "devops/b",
        "devops/harness/c",
        "devops/harness/d",
    ] {
        assert_eq!(after[name], before[name], "{name} was touched");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_scopes_are_errors_that_say_what_to_write() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    bao.mount_kv("kv", 2).await;
    bao.put_kv2("kv", "apps/x", json!({"v": "1"})).await;

    // a subtree with nothing in it: exit 1, naming mount and path
    ws.write(
        "empty.toml",
        &vault_config(&bao, moto.endpoint(), "kv", "nothing", "p", ""),
    );
    let run = ws.run(&["plan", "-c", "empty.toml"]).await;
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("0 secrets found at mount kv, path \"nothing/\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("allow_empty"), "{}", run.stderr);
    ws.write(
        "empty.toml",
        &vault_config(
            &bao,
            moto.endpoint(),
            "kv",
            "nothing",
            "p",
            "allow_empty = true",
        ),
    );
    ws.run(&["plan", "-c", "empty.toml"]).await.expect_code(0);

    // KV v2 API paths written by hand
    for (mount, path, want) in [
        ("kv", "data/apps", "write path = \"apps\""),
        ("kv", "metadata/apps", "write path = \"apps\""),
        ("kv/data", "apps", "write mount = \"kv\""),
    ] {
        ws.write(
            "api.toml",
            &vault_config(&bao, moto.endpoint(), mount, path, "p", ""),
        );
        let run = ws.run(&["plan", "-c", "api.toml"]).await;
        run.expect_code(64);
        assert!(run.stderr.contains(want), "{mount} {path}: {}", run.stderr);
    }

    // prefixes: "/" is no prefix; a missing prefix must be written explicitly
    ws.write("export.jsonl", &export(&[("a", "1")]));
    ws.write("slash.toml", &file_config(moto.endpoint(), "/", "", ""));
    let run = ws.run(&["plan", "-c", "slash.toml"]).await;
    run.expect_code(64);
    assert!(
        run.stderr.contains("target.prefix") && run.stderr.contains("prefix = \"\""),
        "{}",
        run.stderr
    );
    ws.write(
        "none.toml",
        &file_config(moto.endpoint(), "x", "", "").replace("prefix = \"x\"\n", ""),
    );
    let run = ws.run(&["plan", "-c", "none.toml"]).await;
    run.expect_code(64);
    assert!(run.stderr.contains("target.prefix"), "{}", run.stderr);
}

/// A KV v2 secret whose current version is soft-deleted is gone from the source.
#[tokio::test(flavor = "multi_thread")]
async fn soft_deleted_source_is_an_orphan_pruned_only_when_asked() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    bao.mount_kv("kv", 2).await;
    for i in 0..10 {
        bao.put_kv2("kv", &format!("apps/s{i}"), json!({"v": i}))
            .await;
    }
    ws.write(
        "cfg.toml",
        &vault_config(&bao, moto.endpoint(), "kv", "apps", "sd", ""),
    );
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);

    bao.delete_kv2_latest("kv", "apps/s3").await;
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    run.expect_code(2);
    let o = run
        .rows
        .iter()
        .find(|r| r["target_name"] == "sd/s3")
        .unwrap();
    assert_eq!(
        (o["action"].as_str(), o["status"].as_str()),
        ("orphan", "planned"),
        "{o:?}"
    );
    assert!(o["error"].contains("deleted"), "{o:?}");
    assert!(run.stderr.contains("DRIFT"), "{}", run.stderr);
    // reconcile without --prune reports it and leaves it: drift left, exit 2
    ws.run(&["reconcile", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(2);
    assert!(!state(&sm).await["sd/s3"].1);
    let run = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 1, "{:#?}", run.rows);
    let s = state(&sm).await;
    assert!(s["sd/s3"].1, "scheduled for deletion");
    assert_eq!(s.values().filter(|(_, d)| *d).count(), 1);
}

/// An override added after the migration is a rename in the open: new name created, old one an
/// orphan; a tightened naming policy likewise.
#[tokio::test(flavor = "multi_thread")]
async fn changed_mappings_are_planned_renames() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &export(&[("app/db", "d"), ("app/api_key", "k"), ("app/x", "x")]),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "rn", "", ""));
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);

    ws.write("renames.csv", "source,target\napp/db,rn/database\n");
    ws.write(
        "cfg.toml",
        &file_config(
            moto.endpoint(),
            "rn",
            "",
            "[naming]\noverrides = \"renames.csv\"\npolicy = \"alphanumeric\"\n",
        ),
    );
    let plan = ws
        .run(&["plan", "-c", "cfg.toml", "--detailed-exitcode"])
        .await;
    plan.expect_code(2);
    let r = plan.row("app/db");
    assert_eq!(
        (r["action"].as_str(), r["target_name"].as_str()),
        ("rename", "rn/database"),
        "{r:?}"
    );
    assert!(r["error"].contains("renamed from rn/app/db"), "{r:?}");
    assert_eq!(plan.row("app/api_key")["action"], "rename");
    assert_eq!(plan.count("orphan", "planned"), 2, "{:#?}", plan.rows);

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("rename", "ok"), 2, "{:#?}", run.rows);
    let s = state(&sm).await;
    assert_eq!(s["rn/database"].0, "d");
    assert!(s.keys().any(|k| k.starts_with("rn/app/apikey")), "{s:#?}");
    assert!(!s["rn/app/db"].1, "the old name stays until pruned");
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
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok"), 2, "{:#?}", run.rows);
    assert!(state(&sm).await["rn/app/db"].1);
    // and then it is stable
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
}

/// Nothing is written without a terminal unless --yes is given; refusals are exit 64 and the
/// account is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn no_terminal_no_yes_no_writes() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "nt", "", ""));
    let run = ws.run(&["migrate", "-c", "cfg.toml"]).await;
    run.expect_code(64);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(state(&sm).await.is_empty());
    // piped through tee, as in a cron line: stdout not a terminal either
    let run = ws.run(&["reconcile", "-c", "cfg.toml"]).await;
    run.expect_code(64);
    assert!(state(&sm).await.is_empty());
    // read-only commands need no --yes
    ws.run(&["plan", "-c", "cfg.toml"]).await.expect_code(0);
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(2);
    assert!(state(&sm).await.is_empty());

    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    ws.write("export.jsonl", &export(&[("a", "1")]));
    let run = ws.run(&["reconcile", "-c", "cfg.toml", "--prune"]).await;
    run.expect_code(64);
    assert!(!state(&sm).await["nt/b"].1, "prune without --yes deleted");
    // a reconcile that compares values may write: asked, and refused without a terminal
    ws.write("export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    let run = ws.run(&["reconcile", "-c", "cfg.toml"]).await;
    assert_eq!(run.code, 64, "{}", run.stderr);
}

/// `rollback` of a create run and of an update run puts back the pre-run state; a secret
/// changed by hand since is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_restores_the_pre_run_state() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &export(&[("a", "1"), ("b", "2"), ("c", "3")]),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "rb", "", ""));
    let first = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    first.expect_code(0);
    let created = first.report.clone().unwrap();
    let v1 = state(&sm).await;

    ws.write(
        "export.jsonl",
        &export(&[("a", "1-new"), ("b", "2-new"), ("c", "3")]),
    );
    let second = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    second.expect_code(0);
    assert_eq!(second.count("update", "ok"), 2);
    let updated = second.report.clone().unwrap();
    for r in second.rows.iter().filter(|r| r["action"] == "update") {
        assert!(
            !r["version_id"].is_empty() && !r["previous_version_id"].is_empty(),
            "{r:?}"
        );
    }
    // a hand edit of b after the run
    sm.put_secret_value()
        .secret_id("rb/b")
        .secret_string("by hand")
        .send()
        .await
        .unwrap();

    // without a terminal and without --yes: refused
    let no = ws
        .run(&[
            "rollback",
            "--report",
            updated.to_str().unwrap(),
            "-c",
            "cfg.toml",
        ])
        .await;
    no.expect_code(64);
    assert_eq!(state(&sm).await["rb/a"].0, "1-new");

    let rb = ws
        .run(&[
            "rollback",
            "--report",
            updated.to_str().unwrap(),
            "-c",
            "cfg.toml",
            "--yes",
            "--rollback-report",
            "rb1.csv",
        ])
        .await;
    rb.expect_code(0);
    let rows = crate::cli::read_report(&ws.path().join("rb1.csv"));
    let a = rows.iter().find(|r| r["target_name"] == "rb/a").unwrap();
    assert_eq!(
        (a["action"].as_str(), a["status"].as_str()),
        ("rollback", "ok"),
        "{a:?}"
    );
    let b = rows.iter().find(|r| r["target_name"] == "rb/b").unwrap();
    assert_eq!(b["status"], "skipped", "{b:?}");
    assert!(b["error"].contains("changed since"), "{b:?}");
    let s = state(&sm).await;
    assert_eq!(s["rb/a"].0, v1["rb/a"].0, "AWSCURRENT moved back");
    assert_eq!(s["rb/b"].0, "by hand", "hand edit left alone");
    assert_eq!(s["rb/c"].0, "3");

    // rollback of the create run: what it created and nobody changed is scheduled for deletion
    let rb = ws
        .run(&[
            "rollback",
            "--report",
            created.to_str().unwrap(),
            "-c",
            "cfg.toml",
            "--yes",
            "--rollback-report",
            "rb2.csv",
        ])
        .await;
    rb.expect_code(0);
    let s = state(&sm).await;
    assert!(s["rb/c"].1, "created, unchanged: scheduled for deletion");
    assert!(!s["rb/b"].1, "changed since: left alone");
    // rb/a was moved back to the create run's version, so it too is as that run left it
    assert!(s["rb/a"].1);
    let rows = crate::cli::read_report(&ws.path().join("rb2.csv"));
    assert!(rows.iter().all(|r| r["action"] == "rollback"), "{rows:#?}");
}

/// `secretport args` on a pseudo-terminal (util-linux `script`), answering `answer` to a prompt.
fn on_tty(ws: &Workspace, args: &str, answer: &'static str) -> std::process::Command {
    let template = ws.command(&[], &[]);
    let mut c = std::process::Command::new("script");
    c.args([
        "-qec",
        &format!("{} {args}", env!("CARGO_BIN_EXE_secretport")),
        "/dev/null",
    ])
    .current_dir(ws.path())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    // the answer arrives once the question is on screen
    c.stdin(std::process::Stdio::piped());
    c.env("SECRETPORT_TEST_ANSWER", answer);
    c
}

fn run_on_tty(mut c: std::process::Command) -> (Option<i32>, String) {
    use std::io::Write;
    let answer = c
        .get_envs()
        .find(|(k, _)| *k == "SECRETPORT_TEST_ANSWER")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut child = c.spawn().expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(answer.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// On a terminal the question shows account, region, prefix and counts; "n" writes nothing,
/// "y" goes ahead.
#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_prompt_names_account_region_prefix_and_counts() {
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("a", "1"), ("b", "2")]));
    ws.write("cfg.toml", &file_config(moto.endpoint(), "tty", "", ""));

    let cmd = on_tty(&ws, "migrate -c cfg.toml", "n\n");
    let (code, text) = tokio::task::spawn_blocking(move || run_on_tty(cmd))
        .await
        .unwrap();
    assert!(
        text.contains("migrate into AWS account 123456789012, region us-east-1, prefix tty/: create 2; adds $0.80/month (2 new secrets at $0.40 each). Proceed? [y/N]"),
        "{text}"
    );
    assert!(text.contains("declined"), "{text}");
    assert_eq!(code, Some(1), "{text}");
    assert!(state(&sm).await.is_empty());

    let cmd = on_tty(&ws, "migrate -c cfg.toml", "y\n");
    let (code, text) = tokio::task::spawn_blocking(move || run_on_tty(cmd))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(live(&state(&sm).await, "tty/").len(), 2);
}
