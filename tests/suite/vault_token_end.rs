//! A Vault token that cannot outlive the run (renewable, but capped by its `explicit_max_ttl`):
//! once renewing no longer extends it, the run starts no new secret just before it expires,
//! reports the rest as not started (failed, naming the token and what to use instead) and
//! exits 1; a rerun with a good token completes them, and every secret has exactly one version.
//! The same for an AppRole whose new login is refused (a secret id good for one login).

use reqwest::Method;
use serde_json::json;

use crate::cli::{Run, Workspace};
use crate::support::{Bao, Moto};

const SECRETS: usize = 40;

/// 40 secrets at 5 writes/s, two at a time: about 8 s, longer than the tokens' 5 s.
fn config(bao: &Bao, moto: &Moto, auth: &str) -> String {
    format!(
        "[source]\nkind = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\npath = \"apps\"\n\
         auth = {auth}\n\n\
         [target]\nregion = \"us-east-1\"\nprefix = \"te\"\nendpoint_url = \"{}\"\n\n\
         [limits]\nwrite_per_second = 5\nconcurrency = 2\n",
        bao.addr(),
        moto.endpoint()
    )
}

async fn seed(bao: &Bao) {
    for i in 0..SECRETS {
        bao.put_kv2(
            "secret",
            &format!("apps/s{i:02}"),
            json!({ "v": format!("te-{i}") }),
        )
        .await;
    }
}

/// Exit 1; every secret created or not started (with `start` and `rest` in its error); returns
/// (created, not started).
fn stopped(run: &Run, start: &str, rest: &str) -> (usize, usize) {
    run.expect_code(1);
    let created = run.count("create", "ok");
    let not_started = run.count("create", "failed");
    assert_eq!(created + not_started, SECRETS, "{:#?}", run.rows);
    assert!(
        created >= 3 && not_started >= 10,
        "created {created}, not started {not_started}"
    );
    for r in run.failed() {
        let e = &r["error"];
        assert!(
            e.starts_with(start) && e.contains(" and cannot be renewed; ") && e.contains(rest),
            "{r:#?}"
        );
    }
    (created, not_started)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_capped_by_its_max_ttl_stops_dispatching_and_a_rerun_completes() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    seed(&bao).await;
    // 5 s of life, renewable but never beyond that
    let answer = bao
        .call(
            Method::POST,
            "auth/token/create",
            Some(&json!({ "policies": ["root"], "ttl": "5s", "explicit_max_ttl": "5s" })),
        )
        .await;
    let short = answer["auth"]["client_token"].as_str().unwrap().to_owned();
    let mut ws = Workspace::new();
    ws.env("TE_TOKEN", &short);
    ws.write(
        "c.toml",
        &config(
            &bao,
            &moto,
            r#"{ method = "token", token_env = "TE_TOKEN" }"#,
        ),
    );
    let run = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
    let (created, not_started) = stopped(
        &run,
        "not started: the Vault token in $TE_TOKEN expires at 20",
        "Z and cannot be renewed; use a login method (approle, kubernetes, jwt, aws), or a token \
         whose max_ttl covers the run",
    );
    assert!(!run.all_output().contains(&short), "the token leaked");

    // a good token: the rest are created, the first run's secrets are unchanged
    ws.env("TE_TOKEN", bao.token());
    let rerun = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
    rerun.expect_code(0);
    assert_eq!(
        rerun.count("create", "ok"),
        not_started,
        "{:#?}",
        rerun.rows
    );
    assert_eq!(rerun.count("unchanged", "ok"), created, "{:#?}", rerun.rows);
    let sm = moto.sm_client("us-east-1");
    for i in 0..SECRETS {
        let name = format!("te/s{i:02}");
        let versions = sm
            .list_secret_version_ids()
            .secret_id(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(versions.versions().len(), 1, "{name}: {versions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approle_whose_new_login_is_refused_stops_dispatching_too() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    seed(&bao).await;
    bao.write_policy(
        "te-read",
        r#"
path "secret/metadata/apps"   { capabilities = ["list"] }
path "secret/metadata/apps/*" { capabilities = ["list"] }
path "secret/data/apps/*"     { capabilities = ["read"] }
"#,
    )
    .await;
    bao.enable_approle().await;
    let (role_id, _) = bao.create_approle("te", &["te-read"]).await;
    // tokens of 5 s at most, and a secret id good for one login only
    bao.call(
        Method::POST,
        "auth/approle/role/te",
        Some(&json!({
            "token_policies": ["te-read"], "token_ttl": "5s", "token_max_ttl": "5s",
            "secret_id_num_uses": 1,
        })),
    )
    .await;
    let answer = bao
        .call(
            Method::POST,
            "auth/approle/role/te/secret-id",
            Some(&json!({})),
        )
        .await;
    let secret_id = answer["data"]["secret_id"].as_str().unwrap().to_owned();
    let mut ws = Workspace::new();
    ws.env("TE_ROLE", &role_id);
    ws.env("TE_SECRET", &secret_id);
    ws.write(
        "c.toml",
        &config(
            &bao,
            &moto,
            r#"{ method = "approle", role_id_env = "TE_ROLE", secret_id_env = "TE_SECRET" }"#,
        ),
    );
    let run = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
    stopped(
        &run,
        "not started: the Vault AppRole token (auth/approle) expires at 20",
        "the AppRole login to replace it was refused: ",
    );
    assert!(
        !run.all_output().contains(&secret_id),
        "the secret id leaked"
    );
}
