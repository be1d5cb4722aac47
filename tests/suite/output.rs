//! Machine-readable output: `--json` (JSON Lines on stdout, human text on stderr) for a CI gate
//! on `plan --json --detailed-exitcode`, and `--report -` (the CSV on stdout).

use serde_json::{json, Value};

use crate::cli::{file_config, line, Workspace};
use crate::support::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_and_csv_on_stdout() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &[line("a", json!("1")), line("b c", json!("2"))].join("\n"),
    );
    ws.write("cfg.toml", &file_config(moto.endpoint(), "js", "", ""));

    let out = ws
        .command(
            &["plan", "-c", "cfg.toml", "--json", "--detailed-exitcode"],
            &[],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "changes pending");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objs: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 3, "{stdout}");
    assert_eq!(objs[0]["action"], "create");
    assert_eq!(objs[0]["status"], "planned");
    assert!(
        objs.iter()
            .any(|o| o["target_name"] == "js/b_c" && o["reasons"] == "prefix;charset"),
        "{stdout}"
    );
    let summary = &objs[2]["summary"];
    assert_eq!(summary["counts"]["create"]["planned"], 2, "{summary}");
    assert_eq!(summary["exit_code"], 2);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("would create 2"), "{stderr}");

    // after the migration nothing would change: exit 0
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    let out = ws
        .command(
            &["plan", "-c", "cfg.toml", "--json", "--detailed-exitcode"],
            &[],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --report -: the CSV itself on stdout, no table, no file named "-"
    let out = ws
        .command(
            &["reconcile", "-c", "cfg.toml", "--check", "--report", "-"],
            &[],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("timestamp,run_id,command,"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(!ws.path().join("-").exists());

    let both = ws
        .command(&["plan", "-c", "cfg.toml", "--json", "--report", "-"], &[])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(64));
}

/// `rename --config` previews the real tree's names from the source itself, with list
/// permission only and no AWS credentials at all.
#[tokio::test(flavor = "multi_thread")]
async fn rename_config_lists_the_source_without_aws() {
    let bao = crate::support::Bao::start().await;
    bao.put_kv2("secret", "apps/db", json!({"p": "1"})).await;
    bao.put_kv2("secret", "apps/team a/café", json!({"p": "2"}))
        .await;
    bao.write_policy(
        "list-only",
        r#"path "secret/metadata/*" { capabilities = ["list"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }"#,
    )
    .await;
    let token = bao.create_token(&["list-only"]).await;
    let ws = Workspace::new();
    ws.write(
        "cfg.toml",
        &format!(
            "[source]\nkind = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\npath = \"apps\"\nauth = {{ method = \"token\", token_env = \"LIST_TOKEN\" }}\n[target]\nregion = \"us-east-1\"\nprefix = \"devops\"\nendpoint_url = \"http://127.0.0.1:9\"\n",
            bao.addr()
        ),
    );
    let mut cmd = ws.command(
        &["rename", "--config", "cfg.toml"],
        &[("LIST_TOKEN", &token)],
    );
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(k);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "source,target,changed,reasons,job\n\
         db,devops/db,false,prefix,default\n\
         team a/café,devops/team_a/cafe,true,prefix;transliterated;charset,default\n",
        "{stderr}"
    );
}
