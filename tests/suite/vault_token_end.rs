//! A Vault token that cannot outlive the run (renewable, but capped by its `explicit_max_ttl`):
//! once renewing no longer extends it, the run starts no new secret just before it expires,
//! reports the rest as not started (failed, naming the token and what to use instead) and
//! exits 1; a rerun with a good token completes them, and every secret has exactly one version.

use reqwest::Method;
use serde_json::json;

use crate::cli::Workspace;
use crate::support::{Bao, Moto};

const SECRETS: usize = 40;

#[tokio::test(flavor = "multi_thread")]
async fn a_token_capped_by_its_max_ttl_stops_dispatching_and_a_rerun_completes() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    for i in 0..SECRETS {
        bao.put_kv2(
            "secret",
            &format!("apps/s{i:02}"),
            json!({ "v": format!("te-{i}") }),
        )
        .await;
    }
    // 5 s of life, renewable but never beyond that; 40 secrets at 5 writes/s take 8 s
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
        &format!(
            "[source]\nkind = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\npath = \"apps\"\n\
             auth = {{ method = \"token\", token_env = \"TE_TOKEN\" }}\n\n\
             [target]\nregion = \"us-east-1\"\nprefix = \"te\"\nendpoint_url = \"{}\"\n\n\
             [limits]\nwrite_per_second = 5\nconcurrency = 2\n",
            bao.addr(),
            moto.endpoint()
        ),
    );
    let run = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
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
            e.starts_with("not started: the Vault token in $TE_TOKEN expires at 20")
                && e.contains("Z and cannot be renewed; use a login method (approle, kubernetes, jwt, aws), or a token whose max_ttl covers the run"),
            "{r:#?}"
        );
    }
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
