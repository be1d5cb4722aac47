//! A moved checkout is the same source: `file`, `kms` and `sops` configs (with their files,
//! made by the real tools: `secretport kms-export` through moto's KMS, the `sops` binary)
//! migrated from one folder, then copied to another absolute folder (a CI workspace, a
//! container mount) and run from there: every secret `unchanged`, nothing written,
//! `reconcile --check` exit 0. An explicit `[source] instance` survives renaming the files'
//! folder, where the path-derived instance (rightly) makes the secrets another source's.

use std::path::Path;

use crate::cli::{line, Workspace};
use crate::support::{tool_ok, Moto};
use serde_json::json;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn target(endpoint: &str, prefix: &str) -> String {
    format!(
        "[target]\nregion = \"us-east-1\"\nprefix = \"{prefix}\"\nendpoint_url = \"{endpoint}\"\n"
    )
}

/// Non-token-key-secret names in moto's us-east-1.
async fn count_secrets(moto: &Moto) -> usize {
    let page = moto
        .sm_client("us-east-1")
        .list_secrets()
        .max_results(100)
        .send()
        .await
        .unwrap();
    page.secret_list()
        .iter()
        .filter(|s| s.name() != Some("secretport/token-key"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn copied_configs_keep_their_secrets_unchanged_and_in_sync() {
    let moto = Moto::start().await;
    let ep = moto.endpoint().to_owned();
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();

    // the original checkout: repo/ with three configs and their files
    let first = Workspace::new();
    std::fs::create_dir_all(first.path().join("repo/exports")).unwrap();
    std::fs::create_dir_all(first.path().join("repo/secrets")).unwrap();
    first.write(
        "repo/exports/plain.jsonl",
        &[line("app/db", json!("d")), line("app/api", json!({"k": 1}))].join("\n"),
    );
    let out = first
        .run(&[
            "kms-export",
            "--input",
            "repo/exports/plain.jsonl",
            "--output",
            "repo/exports/kms.jsonl",
            "--key-id",
            &arn,
            "--endpoint-url",
            &ep,
        ])
        .await;
    out.expect_code(0);
    first.write("repo/plain.yaml", "user: app\npassword: sops-value\n");
    let enc = tool_ok(
        "sops",
        first.path(),
        &ep,
        &["--encrypt", "--kms", &arn, "repo/plain.yaml"],
    );
    first.write("repo/secrets/app.yaml", std::str::from_utf8(&enc).unwrap());
    std::fs::remove_file(first.path().join("repo/plain.yaml")).unwrap();
    first.write(
        "repo/file.toml",
        &format!(
            "[source]\nkind = \"file\"\nfile = \"exports/plain.jsonl\"\n\n{}",
            target(&ep, "mv-file")
        ),
    );
    first.write(
        "repo/kms.toml",
        &format!(
            "[source]\nkind = \"kms\"\nfile = \"./exports/kms.jsonl\"\n\n{}",
            target(&ep, "mv-kms")
        ),
    );
    first.write(
        "repo/sops.toml",
        &format!(
            "[source]\nkind = \"sops\"\nfiles = [\"secrets/*.yaml\"]\n\n{}",
            target(&ep, "mv-sops")
        ),
    );
    for cfg in ["repo/file.toml", "repo/kms.toml", "repo/sops.toml"] {
        let run = first.run(&["migrate", "-c", cfg, "--yes"]).await;
        run.expect_code(0);
        assert!(
            run.rows
                .iter()
                .all(|r| r["action"] == "create" && r["status"] == "ok"),
            "{cfg}: {:#?}",
            run.rows
        );
    }
    assert_eq!(count_secrets(&moto).await, 5);

    // the same files in another absolute folder (another checkout, a CI workspace, a mount)
    let second = Workspace::new();
    copy_tree(
        &first.path().join("repo"),
        &second.path().join("ci/job-7/checkout"),
    );
    drop(first);
    for cfg in ["file.toml", "kms.toml", "sops.toml"] {
        let cfg = format!("ci/job-7/checkout/{cfg}");
        let run = second.run(&["migrate", "-c", &cfg, "--yes"]).await;
        run.expect_code(0);
        assert!(
            !run.rows.is_empty()
                && run
                    .rows
                    .iter()
                    .all(|r| r["action"] == "unchanged" && r["status"] == "ok"),
            "{cfg}: {:#?}",
            run.rows
        );
        second
            .run(&["reconcile", "-c", &cfg, "--check"])
            .await
            .expect_code(0);
    }
    assert_eq!(count_secrets(&moto).await, 5, "nothing new was written");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explicit_instance_survives_renaming_the_files_folder() {
    let moto = Moto::start().await;
    let ep = moto.endpoint().to_owned();
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("exports")).unwrap();
    ws.write("exports/e.jsonl", &line("db", json!("v")));
    let cfg = |folder: &str, instance: &str| {
        format!(
            "[source]\nkind = \"file\"\nfile = \"{folder}/e.jsonl\"\n{instance}\n{}",
            target(&ep, "inst")
        )
    };
    ws.write(
        "named.toml",
        &cfg("exports", "instance = \"payments-export\""),
    );
    ws.write("derived.toml", &cfg("exports", ""));
    ws.run(&["migrate", "-c", "named.toml", "--yes"])
        .await
        .expect_code(0);

    std::fs::rename(ws.path().join("exports"), ws.path().join("data")).unwrap();
    ws.write("named.toml", &cfg("data", "instance = \"payments-export\""));
    ws.write("derived.toml", &cfg("data", ""));
    let run = ws.run(&["migrate", "-c", "named.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.row("db")["action"], "unchanged", "{:#?}", run.rows);
    ws.run(&["reconcile", "-c", "named.toml", "--check"])
        .await
        .expect_code(0);
    // without the name, the renamed file is another source: the secret is left alone as a
    // conflict naming the instance that owns it, and migrate says so with exit 2
    let other = ws.run(&["migrate", "-c", "derived.toml", "--yes"]).await;
    other.expect_code(2);
    let row = other.row("db");
    assert_eq!(row["action"], "conflict", "{row:?}");
    assert!(row["error"].contains("payments-export"), "{row:?}");
}
