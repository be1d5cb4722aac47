//! Both cron lines docs/operations.md shows (the page README links for scheduled runs) run as
//! written, with only the paths pointed at a scratch directory, against OpenBao and moto: the
//! nightly line repairs and exits 0, the hourly check exits 0 in sync and reports drift (exit 2)
//! through its `||` branch. (The Kubernetes CronJob's arguments are run by `deploy.rs`.)

use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{aws_env, Bao, Moto, TEST_REGION};

/// The page that documents the cron lines.
const CRON_DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md");

fn cron_doc() -> String {
    std::fs::read_to_string(CRON_DOC).unwrap_or_else(|e| panic!("{CRON_DOC}: {e}"))
}

/// The command part of each line of docs/operations.md's ```cron block.
fn cron_lines() -> Vec<String> {
    let text = cron_doc();
    let block = text
        .split("```cron\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/operations.md has a ```cron block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
        .collect()
}

fn sh(cmd: &str, dir: &std::path::Path) -> (i32, String) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env_remove("VAULT_TOKEN")
        .env_remove("AWS_PROFILE");
    for (k, v) in aws_env(TEST_REGION) {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_cron_lines_run_as_written() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    bao.put_kv2("secret", "apps/db", json!({"password": "p1"}))
        .await;
    bao.put_kv2("secret", "apps/api", json!({"key": "k1"}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("token"), bao.token()).unwrap();
    std::fs::write(
        d.join("vault.toml"),
        format!(
            r#"[source]
kind = "vault"
address = "{}"
mount = "secret"
path = "apps"
auth = {{ method = "token", token_env = "VAULT_TOKEN" }}

[target]
region = "us-east-1"
prefix = "cron"
endpoint_url = "{}"

[report]
dir = "reports"
"#,
            bao.addr(),
            moto.endpoint()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_secretport");
    let local = |cmd: &str| {
        cmd.replace("/usr/local/bin/secretport", bin)
            .replace("/etc/secretport/", &format!("{}/", d.display()))
            .replace(
                "/var/log/secretport.log",
                &d.join("log").display().to_string(),
            )
            .replace("logger -t secretport", "echo ALERT")
    };
    let lines = cron_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (nightly, hourly) = (local(&lines[0]), local(&lines[1]));

    let (code, out) = sh(&nightly, d);
    let log = std::fs::read_to_string(d.join("log")).unwrap_or_default();
    assert_eq!(code, 0, "{nightly}\n{out}\n{log}");
    assert!(log.contains("create 2"), "{log}");
    let (code, out) = sh(&hourly, d);
    assert_eq!(code, 0, "{hourly}\n{out}");
    assert!(out.contains("in sync") && !out.contains("ALERT"), "{out}");

    // drift: the hourly line alerts with the exit code, the nightly one repairs it
    bao.put_kv2("secret", "apps/db", json!({"password": "p2"}))
        .await;
    let (code, out) = sh(&hourly, d);
    assert_eq!(code, 0, "the || branch ran: {out}");
    assert!(out.contains("ALERT drift or error: exit 2"), "{out}");
    assert_eq!(sh(&nightly, d).0, 0);
}
