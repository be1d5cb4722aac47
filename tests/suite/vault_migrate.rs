//! End to end from a real OpenBao (the Vault API) into moto through the `secretport` binary:
//! KV v2 and KV v1 trees with awkward names, deleted and destroyed versions, AppRole with a
//! partial policy, a list-only token, a wrong token, and reconcile drift from Vault.

use std::collections::BTreeMap;

use crate::cli::Workspace;
use crate::support::{Bao, Moto, TEAM_A_ONLY_POLICY};
use serde_json::{json, Value};

fn vault_config(
    bao: &str,
    moto: &str,
    mount: &str,
    path: &str,
    auth: &str,
    prefix: &str,
) -> String {
    format!(
        r#"[source]
kind = "vault"
address = "{bao}"
mount = "{mount}"
path = "{path}"
auth = {auth}

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{moto}"
"#
    )
}

const TOKEN_AUTH: &str = r#"{ method = "token", token_env = "TEST_VAULT_TOKEN" }"#;
const APPROLE_AUTH: &str =
    r#"{ method = "approle", role_id_env = "ROLE_ID", secret_id_env = "SECRET_ID" }"#;

/// An AppRole `role` with one policy `policy`; its credentials are set as ROLE_ID / SECRET_ID
/// in `ws`. Returns the secret_id.
async fn approle(bao: &Bao, ws: &mut Workspace, role: &str, policy: &str) -> String {
    let (role_id, secret_id) = bao.approle_with_policy(role, policy).await;
    ws.env("ROLE_ID", &role_id);
    ws.env("SECRET_ID", &secret_id);
    secret_id
}

/// The tree both KV versions are seeded with: path under the subtree -> value.
fn tree() -> Vec<(&'static str, Value)> {
    vec![
        (
            "db/primary",
            json!({"user": "app", "password": "p1", "port": 5432, "ratio": 0.75, "nested": {"a": [1, 2, {"b": null}], "ok": true}}),
        ),
        ("db/replica 2", json!({"password": "p2"})),
        ("team a/café/naïve", json!({"k": "v3"})),
        ("svc/stripe:live", json!({"token": "t4"})),
        ("svc/elastic#1", json!({"pw": "e5"})),
        ("svc/elastic_1", json!({"pw": "e6"})),
        ("deep/a/b/c/d/e", json!({"x": "7"})),
    ]
}

async fn target_values(
    sm: &aws_sdk_secretsmanager::Client,
    prefix: &str,
) -> BTreeMap<String, Value> {
    let list = sm.list_secrets().max_results(100).send().await.unwrap();
    let mut out = BTreeMap::new();
    for s in list.secret_list() {
        let name = s.name().unwrap();
        if !name.starts_with(&format!("{prefix}/")) {
            continue;
        }
        let v = sm.get_secret_value().secret_id(name).send().await.unwrap();
        out.insert(
            name.to_string(),
            serde_json::from_str(v.secret_string().unwrap()).unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kv2_and_kv1_trees_migrate_exactly() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    bao.mount_kv("kv2", 2).await;
    bao.mount_kv("kv1", 1).await;
    for (p, v) in tree() {
        bao.put_kv2("kv2", &format!("apps/{p}"), v.clone()).await;
        bao.put_kv1("kv1", &format!("apps/{p}"), v).await;
    }
    // outside the subtree: never migrated
    bao.put_kv2("kv2", "other/x", json!({"no": "1"})).await;
    // a soft-deleted and a destroyed current version
    bao.put_kv2("kv2", "apps/old/soft", json!({"v": "1"})).await;
    bao.put_kv2("kv2", "apps/old/soft", json!({"v": "2"})).await;
    bao.delete_kv2_latest("kv2", "apps/old/soft").await;
    bao.put_kv2("kv2", "apps/old/gone", json!({"v": "1"})).await;
    bao.destroy_kv2_versions("kv2", "apps/old/gone", &[1]).await;
    // a newer version is what gets migrated
    bao.put_kv2("kv2", "apps/db/replica 2", json!({"password": "p2-v2"}))
        .await;

    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    ws.write(
        "v2.toml",
        &vault_config(
            bao.addr(),
            moto.endpoint(),
            "kv2",
            "apps/",
            TOKEN_AUTH,
            "v2",
        ),
    );
    ws.write(
        "v1.toml",
        &vault_config(bao.addr(), moto.endpoint(), "kv1", "apps", TOKEN_AUTH, "v1"),
    );

    let plan = ws.run(&["plan", "-c", "v2.toml"]).await;
    plan.expect_code(0);
    let run = ws.run(&["migrate", "-c", "v2.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 7, "{:#?}", run.rows);
    let soft = run.row("old/soft");
    // a deleted current version has nothing to migrate: skip/ok, not left behind (exit 0)
    assert_eq!(
        (soft["action"].as_str(), soft["status"].as_str()),
        ("skip", "ok")
    );
    assert_eq!(soft["source_version"], "2");
    assert!(soft["error"].contains("deleted"), "{soft:?}");
    let gone = run.row("old/gone");
    assert_eq!(gone["action"], "skip");
    assert!(gone["error"].contains("destroyed"), "{gone:?}");
    assert_eq!(run.row("db/replica 2")["source_version"], "2");
    assert_eq!(run.row("db/primary")["source_version"], "1");

    let sm = moto.sm_client("us-east-1");
    let got = target_values(&sm, "v2").await;
    assert_eq!(got.len(), 7, "{got:#?}");
    let by_source: BTreeMap<String, String> = run
        .rows
        .iter()
        .filter(|r| r["action"] == "create")
        .map(|r| (r["source_path"].clone(), r["target_name"].clone()))
        .collect();
    for (p, v) in tree() {
        let want = if p == "db/replica 2" {
            json!({"password": "p2-v2"})
        } else {
            v
        };
        assert_eq!(got[&by_source[p]], want, "{p}");
    }
    assert_eq!(by_source["team a/café/naïve"], "v2/team_a/cafe/naive");
    assert_eq!(by_source["svc/stripe:live"], "v2/svc/stripe_live");
    // the compliant one keeps the clean name, the other is disambiguated
    assert_eq!(by_source["svc/elastic_1"], "v2/svc/elastic_1");
    assert!(by_source["svc/elastic#1"].starts_with("v2/svc/elastic_1_"));
    // Vault answers with its keys sorted (Go marshals maps that way); the value is stored as
    // Vault served it, number formats included
    let raw = sm
        .get_secret_value()
        .secret_id("v2/db/primary")
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.secret_string().unwrap(),
        r#"{"nested":{"a":[1,2,{"b":null}],"ok":true},"password":"p1","port":5432,"ratio":0.75,"user":"app"}"#
    );
    let d = sm
        .describe_secret()
        .secret_id("v2/db/primary")
        .send()
        .await
        .unwrap();
    let source_tag = d
        .tags()
        .iter()
        .find(|t| t.key() == Some("secretport:source"))
        .unwrap();
    assert_eq!(
        source_tag.value(),
        Some(format!("vault:{}/kv2 apps/db/primary", bao.addr()).as_str())
    );

    // rerun: nothing to do
    let rerun = ws.run(&["migrate", "-c", "v2.toml", "--yes"]).await;
    rerun.expect_code(0);
    assert_eq!(rerun.count("unchanged", "ok"), 7);

    let run = ws.run(&["migrate", "-c", "v1.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 7);
    let got = target_values(&sm, "v1").await;
    for (p, v) in tree() {
        let name = &run.row(p)["target_name"];
        assert_eq!(&got[name], &v, "{p}");
        assert_eq!(run.row(p)["source_version"], "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_with_a_partial_policy_migrates_what_it_may() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    for p in ["team-a/db", "team-a/api", "team-b/db"] {
        bao.put_kv2("secret", &format!("apps/{p}"), json!({"v": p}))
            .await;
    }
    let mut ws = Workspace::new();
    approle(&bao, &mut ws, "team-a", TEAM_A_ONLY_POLICY).await;
    ws.write(
        "cfg.toml",
        &vault_config(
            bao.addr(),
            moto.endpoint(),
            "secret",
            "apps",
            APPROLE_AUTH,
            "ar",
        )
        .replace("auth = ", "kv_version = 2\nauth = "),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1); // the denied folder is a failure
    assert_eq!(run.count("create", "ok"), 2, "{:#?}", run.rows);
    let denied = run.failed();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert!(
        denied[0]["source_path"].contains("team-b"),
        "{:?}",
        denied[0]
    );
    assert!(
        denied[0]["error"].to_lowercase().contains("denied"),
        "{:?}",
        denied[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_only_token_can_plan_but_not_migrate() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    for p in ["a", "b/c"] {
        bao.put_kv2("secret", p, json!({"v": p})).await;
    }
    bao.write_policy(
        "lister",
        r#"path "secret/metadata/*" { capabilities = ["list"] }"#,
    )
    .await;
    let token = bao.create_token(&["lister"]).await;
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", &token);
    ws.write(
        "cfg.toml",
        &vault_config(bao.addr(), moto.endpoint(), "secret", "", TOKEN_AUTH, "lo")
            .replace("auth = ", "kv_version = 2\nauth = "),
    );
    let plan = ws.run(&["plan", "-c", "cfg.toml"]).await;
    plan.expect_code(0);
    assert_eq!(plan.rows.len(), 2, "{:#?}", plan.rows);
    for r in &plan.rows {
        assert_eq!(r["action"], "create");
        assert_eq!(r["status"], "planned");
        assert!(r["error"].contains("unread"), "{r:?}");
    }
    assert_eq!(plan.row("b/c")["target_name"], "lo/b/c");
    assert!(
        plan.stderr.contains("2 value(s) unread"),
        "the summary says what could not be decided: {}",
        plan.stderr
    );

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    assert_eq!(run.failed().len(), 2);
    let sm = moto.sm_client("us-east-1");
    assert!(sm
        .list_secrets()
        .send()
        .await
        .unwrap()
        .secret_list()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_is_one_clear_error_and_nothing_is_written() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    bao.put_kv2("secret", "a", json!({"v": "1"})).await;
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", "not-a-real-token");
    ws.write(
        "cfg.toml",
        &vault_config(bao.addr(), moto.endpoint(), "secret", "", TOKEN_AUTH, "wt"),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].to_lowercase().contains("token") || errors[0].contains("permission denied"),
        "{}",
        errors[0]
    );
    let sm = moto.sm_client("us-east-1");
    assert!(sm
        .list_secrets()
        .send()
        .await
        .unwrap()
        .secret_list()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_follows_vault() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let sm = moto.sm_client("us-east-1");
    for p in ["keep", "change", "remove", "hand", "untagged"] {
        bao.put_kv2("secret", &format!("r/{p}"), json!({"v": p}))
            .await;
    }
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    let cfg = vault_config(bao.addr(), moto.endpoint(), "secret", "r", TOKEN_AUTH, "rv")
        + "tags = { team = \"platform\" }\n";
    ws.write("cfg.toml", &cfg);
    ws.run(&["migrate", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(0);
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);

    // drift in Vault
    bao.put_kv2("secret", "r/change", json!({"v": "changed"}))
        .await;
    bao.put_kv2("secret", "r/added", json!({"v": "new"})).await;
    bao.put_kv2("secret", "r/taken", json!({"v": "ours"})).await;
    bao.call(reqwest::Method::DELETE, "secret/metadata/r/remove", None)
        .await;
    // drift in AWS, by hand
    sm.put_secret_value()
        .secret_id("rv/hand")
        .secret_string("edited by hand")
        .send()
        .await
        .unwrap();
    sm.untag_resource()
        .secret_id("rv/untagged")
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("rv/taken")
        .secret_string("someone else's")
        .send()
        .await
        .unwrap();

    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(2);
    let actions = |p: &str| -> Vec<String> {
        check
            .rows
            .iter()
            .filter(|r| r["source_path"] == p)
            .map(|r| r["action"].clone())
            .collect()
    };
    assert_eq!(actions("change"), ["update"]);
    assert_eq!(check.row("change")["source_version"], "2");
    assert_eq!(actions("added"), ["create"]);
    assert_eq!(actions("hand"), ["update"]);
    assert_eq!(actions("untagged"), ["unchanged", "retag"]);
    assert_eq!(actions("taken"), ["conflict"]);
    assert_eq!(actions("keep"), ["unchanged"]);
    assert!(check
        .rows
        .iter()
        .any(|r| r["target_name"] == "rv/remove" && r["action"] == "orphan"));

    // the owner decides to take the squatted name over
    ws.write("cfg.toml", &format!("{cfg}on_conflict = \"overwrite\"\n"));
    ws.run(&[
        "reconcile",
        "-c",
        "cfg.toml",
        "--prune",
        "--force-prune",
        "--yes",
    ])
    .await
    .expect_code(0);
    ws.run(&["reconcile", "-c", "cfg.toml", "--check"])
        .await
        .expect_code(0);
    for (name, want) in [
        ("rv/hand", r#"{"v":"hand"}"#),
        ("rv/taken", r#"{"v":"ours"}"#),
        ("rv/added", r#"{"v":"new"}"#),
    ] {
        let v = sm.get_secret_value().secret_id(name).send().await.unwrap();
        assert_eq!(v.secret_string(), Some(want), "{name}");
    }
    let removed = sm
        .describe_secret()
        .secret_id("rv/remove")
        .send()
        .await
        .unwrap();
    assert!(
        removed.deleted_date().is_some(),
        "the orphan is scheduled for deletion, not deleted"
    );
    let d = sm
        .describe_secret()
        .secret_id("rv/untagged")
        .send()
        .await
        .unwrap();
    assert!(d
        .tags()
        .iter()
        .any(|t| t.key() == Some("team") && t.value() == Some("platform")));
    let v = sm
        .get_secret_value()
        .secret_id("rv/change")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some(r#"{"v":"changed"}"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_reaches_output_logs_or_report_under_trace() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let planted = ["vault-PLANTED-9e41", "vault-PLANTED-v1-c07a"];
    bao.put_kv2(
        "secret",
        "apps/db",
        json!({"password": planted[0], "user": "app"}),
    )
    .await;
    bao.put_kv2("secret", "apps/other", json!({"k": "v"})).await;
    let mut ws = Workspace::new();
    let secret_id = approle(
        &bao,
        &mut ws,
        "reader",
        r#"
path "secret/metadata/apps/*" { capabilities = ["list"] }
path "secret/metadata/apps/" { capabilities = ["list"] }
path "secret/data/apps/*" { capabilities = ["read"] }
"#,
    )
    .await;
    ws.env("TEST_VAULT_TOKEN", bao.token());
    ws.write(
        "approle.toml",
        &vault_config(
            bao.addr(),
            moto.endpoint(),
            "secret",
            "apps",
            APPROLE_AUTH,
            "lk",
        ),
    );
    ws.write(
        "token.toml",
        &vault_config(
            bao.addr(),
            moto.endpoint(),
            "secret",
            "apps",
            TOKEN_AUTH,
            "lk",
        ),
    );
    let trace = [("RUST_LOG", "trace")];
    let mut runs = vec![
        ws.run_with(&["plan", "-c", "approle.toml"], &trace).await,
        ws.run_with(&["migrate", "-c", "approle.toml", "--yes"], &trace)
            .await,
    ];
    runs[1].expect_code(0);
    assert_eq!(runs[1].count("create", "ok"), 2);
    // a changed value goes through an update, with the token method this time
    bao.put_kv2(
        "secret",
        "apps/db",
        json!({"password": planted[1], "user": "app"}),
    )
    .await;
    runs.push(
        ws.run_with(&["reconcile", "-c", "token.toml", "--yes"], &trace)
            .await,
    );
    runs[2].expect_code(0);
    assert_eq!(runs[2].count("update", "ok"), 1, "{:#?}", runs[2].rows);

    let secrets = [planted[0], planted[1], bao.token(), &secret_id];
    for run in &runs {
        let all = run.all_output();
        // secretport's own trace output (the AWS SDK's is capped at info, see log_filter)
        assert!(all.len() > 300, "trace logging produced output to search");
        for s in secrets {
            assert!(!all.contains(s), "{s} leaked:\n{all}");
        }
    }
}
