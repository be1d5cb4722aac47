//! `[source] split = "keys"` through the binary, from a real OpenBao, a `file` export and a
//! `kms` export (direct and envelope, encrypted by moto's KMS) into moto: one secret per top-level key, values exact (a string's content, any other JSON as its
//! text), a removed key an orphan that `reconcile --prune` deletes, an added key created, and a
//! value that is not a JSON object refused by name.

use std::collections::BTreeMap;

use crate::cli::{line, Workspace};
use crate::support::{Bao, Moto};
use serde_json::json;

fn vault_config(bao: &str, moto: &str) -> String {
    format!(
        r#"[source]
kind = "vault"
address = "{bao}"
mount = "secret"
path = "apps/"
split = "keys"
auth = {{ method = "token", token_env = "TEST_VAULT_TOKEN" }}

[target]
region = "us-east-1"
prefix = "k"
endpoint_url = "{moto}"

[reconcile]
max_prune_fraction = 0.5
"#
    )
}

/// Every secret under `prefix/`: name -> SecretString.
async fn values(sm: &aws_sdk_secretsmanager::Client, prefix: &str) -> BTreeMap<String, String> {
    let list = sm.list_secrets().max_results(100).send().await.unwrap();
    let mut out = BTreeMap::new();
    for s in list.secret_list() {
        let name = s.name().unwrap();
        if !name.starts_with(&format!("{prefix}/")) || s.deleted_date().is_some() {
            continue;
        }
        let v = sm.get_secret_value().secret_id(name).send().await.unwrap();
        out.insert(name.to_owned(), v.secret_string().unwrap().to_owned());
    }
    out
}

/// Writes a KV v2 secret from its JSON text.
async fn put_raw(bao: &Bao, path: &str, body: &str) {
    let resp = crate::support::helper_http_client()
        .post(format!("{}/v1/secret/data/{path}", bao.addr()))
        .header("X-Vault-Token", bao.token())
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

const NESTED: &str = r#"{"b":[true,null,"x"],"z":{"deep":1e3}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn vault_secret_splits_into_one_secret_per_key() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let nested: serde_json::Value = serde_json::from_str(NESTED).unwrap();
    // sent as text, number literals as written: OpenBao parses them into float64 and answers
    // 1.50 as 1.5 and 1e3 as 1000; the key-secret holds what Vault answers, as the whole
    // secret would (the `file` test below shows literals kept)
    put_raw(
        &bao,
        "apps/db",
        &format!(r#"{{"data":{{"password":"pa ss\nwörd ✓\n","ratio":1.50,"conf":{NESTED}}}}}"#),
    )
    .await;
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    ws.write("cfg.toml", &vault_config(bao.addr(), moto.endpoint()));

    let plan = ws.run(&["plan", "-c", "cfg.toml"]).await;
    plan.expect_code(0);
    assert_eq!(plan.count("create", "planned"), 3, "{:#?}", plan.rows);
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);
    assert_eq!(run.row("db/password")["target_name"], "k/db/password");

    let sm = moto.sm_client("us-east-1");
    let got = values(&sm, "k").await;
    let want: BTreeMap<String, String> = [
        ("k/db/password", "pa ss\nwörd ✓\n"),
        ("k/db/ratio", "1.5"),
        ("k/db/conf", r#"{"b":[true,null,"x"],"z":{"deep":1000}}"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(got, want);
    // the key-secret's identity is its parent's path and the key
    let d = sm
        .describe_secret()
        .secret_id("k/db/ratio")
        .send()
        .await
        .unwrap();
    let source = d
        .tags()
        .iter()
        .find(|t| t.key() == Some("secretport:source"))
        .and_then(|t| t.value())
        .unwrap();
    assert_eq!(source, format!("vault:{}/secret apps/db/ratio", bao.addr()));

    // refs maps each `path#key` to its key-secret
    let report = run.report.as_ref().unwrap().to_str().unwrap().to_owned();
    let refs = ws
        .run(&[
            "refs", "--report", &report, "--config", "cfg.toml", "--format", "json",
        ])
        .await;
    refs.expect_code(0);
    let mapped: BTreeMap<String, String> = refs
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            assert_eq!(v["json_key"], "", "{v}");
            (
                v["reference"].as_str().unwrap().to_owned(),
                v["target_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = ["password", "ratio", "conf"]
        .map(|k| (format!("secret/apps/db#{k}"), format!("k/db/{k}")))
        .into_iter()
        .collect();
    assert_eq!(mapped, want);

    // `refs scan`: a script still reading the whole secret is found (exit 2), naming the
    // key-secrets that replace it
    std::fs::create_dir_all(ws.path().join("repo")).unwrap();
    ws.write(
        "repo/deploy.sh",
        "#!/bin/sh\nDB_PW=$(vault kv get -field=password secret/apps/db)\n",
    );
    let scan = ws
        .run(&[
            "refs", "scan", "--report", &report, "--config", "cfg.toml", "--json", "repo",
        ])
        .await;
    scan.expect_code(2);
    let hit: serde_json::Value = serde_json::from_str(scan.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(hit["line"], 2, "{hit}");
    assert_eq!(hit["reference"], "secret/apps/db", "{hit}");
    let names = hit["target_name"].as_str().unwrap();
    for k in ["password", "ratio", "conf"] {
        assert!(names.contains(&format!("k/db/{k}")), "{hit}");
    }

    // a key removed and one added
    bao.call(
        reqwest::Method::POST,
        "secret/data/apps/db",
        Some(&json!({ "data": {"password": "pa ss\nwörd ✓\n", "conf": nested, "user": "app"} })),
    )
    .await;
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(2);
    let orphan = check
        .rows
        .iter()
        .find(|r| r["target_name"] == "k/db/ratio")
        .unwrap();
    assert_eq!(orphan["action"], "orphan", "{orphan:?}");
    assert_eq!(check.row("db/user")["action"], "create");
    let fix = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    fix.expect_code(0);
    assert_eq!(fix.count("create", "ok"), 1, "{:#?}", fix.rows);
    assert_eq!(fix.count("delete", "ok"), 1, "{:#?}", fix.rows);
    let got = values(&sm, "k").await;
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["k/db/conf", "k/db/password", "k/db/user"]
    );
    assert_eq!(got["k/db/user"], "app");
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn file_export_splits_and_refuses_what_is_not_an_object() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    let export = |extra: &str| {
        [
            line("app/db", json!({"user": "u", "port": 5432})).replace("5432", "1.50"),
            r#"{"path":"app/api","value":{"token":"t\u00e9\n","n":-0,"list":[ 1, 2 ],"obj":{"z":1e3,"a":{}}}}"#.into(),
            extra.to_owned(),
        ]
        .join("\n")
    };
    // a key given twice: refused by name, its values never shown
    let dup = r#"{"path":"app/dup","value":{"a":"LEAKCANARY-1","b":"x","a":"LEAKCANARY-2"}}"#;
    ws.write(
        "export.jsonl",
        &export(&format!(
            "{}\n{dup}",
            line("app/plain", json!("a string, not an object"))
        )),
    );
    ws.write(
        "cfg.toml",
        &format!(
            r#"[source]
kind = "file"
file = "export.jsonl"
split = "keys"

[target]
region = "us-east-1"
prefix = "f"
endpoint_url = "{}"

[reconcile]
max_prune_fraction = 0.5
"#,
            moto.endpoint()
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    // the string value is one failed row naming it; the rest lands
    run.expect_code(1);
    let refused = run.row("app/plain");
    assert_eq!(refused["status"], "failed", "{refused:?}");
    assert!(
        refused["error"].contains("needs a JSON object value; this value is plain text"),
        "{refused:?}"
    );
    let dup_row = run.row("app/dup");
    assert_eq!(dup_row["status"], "failed", "{dup_row:?}");
    assert!(
        dup_row["error"].contains("key \"a\" is not migrated: the key appears more than once"),
        "{dup_row:?}"
    );
    assert!(!run.all_output().contains("LEAKCANARY"));
    assert_eq!(run.count("create", "ok"), 7, "{:#?}", run.rows);
    let sm = moto.sm_client("us-east-1");
    let got = values(&sm, "f").await;
    let want: BTreeMap<String, String> = [
        ("f/app/db/user", "u"),
        ("f/app/db/port", "1.50"),
        ("f/app/api/token", "té\n"),
        ("f/app/api/n", "-0"),
        ("f/app/api/list", "[ 1, 2 ]"),
        ("f/app/api/obj", r#"{"z":1e3,"a":{}}"#),
        ("f/app/dup/b", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(got, want);

    // a filter on key-secret paths: secrets none of whose keys it can take are not read (the
    // refused ones make no row), a key excluded on its own is not written
    ws.write(
        "only.toml",
        &format!(
            "[source]\nkind = \"file\"\nfile = \"export.jsonl\"\nsplit = \"keys\"\ninclude = [\"app/db/*\"]\nexclude = [\"app/db/port\"]\n\n[target]\nregion = \"us-east-1\"\nprefix = \"g\"\nendpoint_url = \"{}\"\n",
            moto.endpoint()
        ),
    );
    let only = ws.run(&["migrate", "-c", "only.toml", "--yes"]).await;
    only.expect_code(0);
    assert_eq!(only.rows.len(), 1, "{:#?}", only.rows);
    assert_eq!(only.row("app/db/user")["target_name"], "g/app/db/user");

    // the refused records fixed or gone, a key removed: the orphans are pruned, the new key
    // created
    ws.write(
        "export.jsonl",
        &export(&line("app/plain", json!({"k": "v"}))).replace(r#","n":-0"#, ""),
    );
    let fix = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    fix.expect_code(0);
    assert_eq!(fix.count("delete", "ok"), 2, "{:#?}", fix.rows);
    assert_eq!(fix.count("create", "ok"), 1, "{:#?}", fix.rows);
    let got = values(&sm, "f").await;
    assert!(!got.contains_key("f/app/api/n"), "{got:?}");
    assert!(!got.contains_key("f/app/dup/b"), "{got:?}");
    assert_eq!(got["f/app/plain/k"], "v");
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_export_splits_into_one_secret_per_key() {
    let moto = Moto::start().await;
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let id = key.key_metadata().unwrap().key_id().to_owned();
    let ws = Workspace::new();
    ws.write(
        "plain.jsonl",
        r#"{"path":"app/db","value":{"user":"app","port":1.50,"tls":{"on":true}}}"#,
    );
    for mode in ["direct", "envelope"] {
        let out = format!("{mode}.jsonl");
        ws.run(&[
            "kms-export",
            "--input",
            "plain.jsonl",
            "--output",
            &out,
            "--key-id",
            &id,
            "--mode",
            mode,
            "--endpoint-url",
            moto.endpoint(),
        ])
        .await
        .expect_code(0);
        ws.write(
            "cfg.toml",
            &format!(
                "[source]\nkind = \"kms\"\nfile = \"{out}\"\nsplit = \"keys\"\n\n[target]\nregion = \"us-east-1\"\nprefix = \"{mode}\"\nendpoint_url = \"{}\"\n",
                moto.endpoint()
            ),
        );
        let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
        run.expect_code(0);
        assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);
        let got = values(&moto.sm_client("us-east-1"), mode).await;
        let want: BTreeMap<String, String> =
            [("user", "app"), ("port", "1.50"), ("tls", r#"{"on":true}"#)]
                .into_iter()
                .map(|(k, v)| (format!("{mode}/app/db/{k}"), v.to_owned()))
                .collect();
        assert_eq!(got, want, "{mode}");
        ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
            .await
            .expect_code(0);
    }
}
