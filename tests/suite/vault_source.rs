//! The Vault / OpenBao source against a real OpenBao dev server (one per test): listing and
//! reading KV v2 and KV v1 trees with awkward names, deleted and destroyed versions, exact value
//! text, AppRole with a partial policy, a list-only token, a wrong token, KV version detection
//! and override, a parallel walk, token renewal and AppRole re-login, TLS and namespaces.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{start_tls_bao, Bao, BaoApi, TEAM_A_ONLY_POLICY};
use secrecy::SecretString;
use secretport::config::{VaultAuth, VaultConfig};
use secretport::source::vault::VaultSource;
use secretport::source::{Fetched, Listing, Source, SourceError, SourceErrorKind, SourceRef};

/// The name a variable would have had: credentials are resolved by the config, which the
/// source receives with the values (the name only shows in messages).
fn env(name: &str, _value: &str) -> String {
    format!("SECRETPORT_VS_{name}")
}

fn token_auth(name: &str, token: &str) -> VaultAuth {
    VaultAuth::Token {
        token: SecretString::from(token.to_owned()),
        origin: format!("${}", env(name, token)),
    }
}

fn approle_auth(role_env: &str, role_id: &str, secret_env: &str, secret_id: &str) -> VaultAuth {
    VaultAuth::AppRole {
        mount: "approle".into(),
        role_id: SecretString::from(role_id.to_owned()),
        secret_id: SecretString::from(secret_id.to_owned()),
        role_id_env: env(role_env, role_id),
        secret_id_env: env(secret_env, secret_id),
    }
}

fn config(addr: &str, mount: &str, path: &str, auth: VaultAuth) -> VaultConfig {
    VaultConfig::with_defaults(addr, mount, path, auth)
}

fn root_config(bao: &Bao, name: &str, mount: &str, path: &str) -> VaultConfig {
    config(bao.addr(), mount, path, token_auth(name, bao.token()))
}

/// Connects with the default limits, 4 attempts and a 30 s timeout.
async fn connect_with(cfg: &VaultConfig) -> Result<VaultSource, SourceError> {
    let limits = std::sync::Arc::new(secretport::limits::Limits::new(
        &secretport::config::LimitsConfig::default(),
    ));
    let policy = secretport::retry::RetryPolicy::new(4);
    VaultSource::connect(cfg, limits, policy, std::time::Duration::from_secs(30)).await
}

async fn connect(cfg: &VaultConfig) -> VaultSource {
    connect_with(cfg)
        .await
        .unwrap_or_else(|e| panic!("connect: {e} ({:?})", e.kind))
}

async fn connect_err(cfg: &VaultConfig) -> SourceError {
    match connect_with(cfg).await {
        Ok(s) => panic!("connect should fail, got {s:?}"),
        Err(e) => e,
    }
}

fn paths(l: &Listing) -> Vec<&str> {
    l.refs.iter().map(|r| r.path.as_str()).collect()
}

/// Percent-encodes an API path per byte (the support helpers format URLs, which breaks on `#`
/// and `?`).
fn enc(path: &str) -> String {
    let mut out = String::new();
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `POST /v1/<path>` with a raw JSON body (so number literals such as `1.50` reach Vault as
/// written); panics unless 2xx.
async fn post_raw(api: &BaoApi, path: &str, body: &str) -> Value {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/{}", api.addr(), enc(path)))
        .header("X-Vault-Token", api.token())
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn put2(api: &BaoApi, mount: &str, path: &str, data: &str) -> u64 {
    let v = post_raw(
        api,
        &format!("{mount}/data/{path}"),
        &format!(r#"{{"data":{data}}}"#),
    )
    .await;
    v["data"]["version"].as_u64().unwrap()
}

async fn put1(api: &BaoApi, mount: &str, path: &str, data: &str) {
    post_raw(api, &format!("{mount}/{path}"), data).await;
}

/// Fetches every ref at concurrency 32, as the executor does.
async fn fetch_all(
    source: &VaultSource,
    refs: &[SourceRef],
) -> BTreeMap<String, Result<Fetched, SourceError>> {
    stream::iter(refs)
        .map(|r| async move { (r.path.clone(), source.fetch(r).await) })
        .buffer_unordered(32)
        .collect()
        .await
}

fn text(f: &Result<Fetched, SourceError>) -> (&str, Option<&str>) {
    match f {
        Ok(Fetched::Value { value, version, .. }) => {
            (value.expose_str().expect("text value"), version.as_deref())
        }
        other => panic!("expected a value, got {other:?}"),
    }
}

/// The awkward value, as written (raw JSON text).
const RICH: &str = r#"{"user":"app","password":"p1","port":5432,"ratio":1.50,"big":123456789012345678901234567890,"nested":{"z":1,"a":[1,2.50,{"b":null}]},"html":"<a&b>","u":"café 😀","esc":"tab\there \"q\" \\ \u0001"}"#;

/// The tree under the subtree, besides RICH at `db/primary`: path -> value text.
fn tree() -> Vec<(&'static str, &'static str)> {
    vec![
        ("db/replica 2", r#"{"password":"p2"}"#),
        ("team a/café/naïve", r#"{"k":"v3"}"#),
        ("svc/stripe:live", r#"{"token":"t4"}"#),
        ("svc/elastic#1", r#"{"pw":"e5"}"#),
        ("svc/elastic_1", r#"{"pw":"e6"}"#),
        ("svc/what?x=1&y=%41", r#"{"pw":"e7"}"#),
        ("deep/a/b/c/d/e", r#"{"x":"7"}"#),
        ("empty", r#"{}"#),
    ]
}

/// KV v1 refuses to store an empty object ("missing data fields").
fn kv1_tree() -> Vec<(&'static str, &'static str)> {
    tree().into_iter().filter(|(p, _)| *p != "empty").collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kv2_tree_lists_and_reads_exactly() {
    let bao = Bao::start().await;
    bao.mount_kv("kv2", 2).await;
    put2(&bao, "kv2", "apps/db/primary", RICH).await;
    for (p, v) in tree() {
        put2(&bao, "kv2", &format!("apps/{p}"), v).await;
    }
    // outside the subtree, including a sibling sharing its prefix
    put2(&bao, "kv2", "other/x", r#"{"no":"1"}"#).await;
    put2(&bao, "kv2", "apps-sibling/x", r#"{"no":"2"}"#).await;
    put2(&bao, "kv2", "apps", r#"{"no":"3"}"#).await;
    // a newer version is what is read
    assert_eq!(
        put2(&bao, "kv2", "apps/db/replica 2", r#"{"password":"p2-v2"}"#).await,
        2
    );
    // soft-deleted and destroyed current versions
    put2(&bao, "kv2", "apps/old/soft", r#"{"v":"1"}"#).await;
    put2(&bao, "kv2", "apps/old/soft", r#"{"v":"2"}"#).await;
    bao.delete_kv2_latest("kv2", "apps/old/soft").await;
    put2(&bao, "kv2", "apps/old/gone", r#"{"v":"1"}"#).await;
    bao.destroy_kv2_versions("kv2", "apps/old/gone", &[1]).await;
    // an older version deleted, the current one live
    put2(&bao, "kv2", "apps/old/revived", r#"{"v":"1"}"#).await;
    bao.delete_kv2_latest("kv2", "apps/old/revived").await;
    put2(&bao, "kv2", "apps/old/revived", r#"{"v":"2"}"#).await;
    // custom metadata
    post_raw(
        &bao,
        "kv2/metadata/apps/db/primary",
        r#"{"custom_metadata":{"owner":"team-a","cost center":"42"}}"#,
    )
    .await;

    let source = connect(&root_config(&bao, "KV2_TREE", "kv2", "apps/")).await;
    assert_eq!(source.kv_version(), 2);
    let listing = source.list().await.unwrap();
    assert!(listing.is_complete(), "{:?}", listing.problems);
    let mut want: Vec<&str> = tree().into_iter().map(|(p, _)| p).collect();
    want.extend(["db/primary", "old/soft", "old/gone", "old/revived"]);
    want.sort();
    assert_eq!(paths(&listing), want);
    assert!(listing.refs.iter().all(|r| r.version.is_none()));

    let got = fetch_all(&source, &listing.refs).await;
    // Vault sorts keys and KV v2 stores numbers as float64: this is what it returns, compacted,
    // with Go's \u003c-style escapes written as plain characters
    assert_eq!(
        text(&got["db/primary"]),
        (
            r#"{"big":1.2345678901234568e+29,"esc":"tab\there \"q\" \\ \u0001","html":"<a&b>","nested":{"a":[1,2.5,{"b":null}],"z":1},"password":"p1","port":5432,"ratio":1.5,"u":"café 😀","user":"app"}"#,
            Some("1")
        )
    );
    // the same JSON as Vault's own answer
    let (_, raw) = bao
        .request(Method::GET, "kv2/data/apps/db/primary", None)
        .await;
    let ours: Value = serde_json::from_str(text(&got["db/primary"]).0).unwrap();
    assert_eq!(ours, raw["data"]["data"]);
    match &got["db/primary"] {
        Ok(Fetched::Value { metadata, .. }) => assert_eq!(
            metadata,
            &BTreeMap::from([
                ("cost center".to_string(), "42".to_string()),
                ("owner".to_string(), "team-a".to_string())
            ])
        ),
        other => panic!("{other:?}"),
    }
    for (p, v) in tree() {
        let want = if p == "db/replica 2" {
            r#"{"password":"p2-v2"}"#
        } else {
            v
        };
        let want_version = if p == "db/replica 2" { "2" } else { "1" };
        assert_eq!(text(&got[p]), (want, Some(want_version)), "{p}");
    }
    assert_eq!(text(&got["old/revived"]), (r#"{"v":"2"}"#, Some("2")));
    match &got["old/soft"] {
        Ok(Fetched::Gone { reason, version }) => {
            assert_eq!(reason, "current version 2 is deleted");
            assert_eq!(version.as_deref(), Some("2"));
        }
        other => panic!("{other:?}"),
    }
    match &got["old/gone"] {
        Ok(Fetched::Gone { reason, version }) => {
            assert_eq!(reason, "current version 1 is destroyed");
            assert_eq!(version.as_deref(), Some("1"));
        }
        other => panic!("{other:?}"),
    }
    // a value never shows in Debug
    let dbg = format!("{:?}", got["db/primary"]);
    assert!(!dbg.contains("p1") && dbg.contains("REDACTED"), "{dbg}");

    assert_eq!(
        source.scope().identity(&listing.refs[0].path).text(),
        format!("vault:{}/kv2 apps/db/primary", bao.addr())
    );
    // gone since listing
    let e = source.fetch(&SourceRef::new("db/nope")).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::NotFound, "{e}");
    assert_eq!(e.path, "db/nope");

    // the whole mount, no subtree: refs are relative to the mount
    let whole = connect(&root_config(&bao, "KV2_WHOLE", "kv2", "")).await;
    let all = whole.list().await.unwrap();
    assert_eq!(all.refs.len(), want.len() + 3, "{:?}", paths(&all));
    assert!(paths(&all).contains(&"apps-sibling/x") && paths(&all).contains(&"apps"));
    assert_eq!(
        whole.scope().identity("apps/db/primary"),
        source.scope().identity("db/primary")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kv1_tree_lists_and_reads_exactly() {
    let bao = Bao::start().await;
    bao.mount_kv("kv1", 1).await;
    put1(&bao, "kv1", "apps/db/primary", RICH).await;
    for (p, v) in kv1_tree() {
        put1(&bao, "kv1", &format!("apps/{p}"), v).await;
    }
    put1(&bao, "kv1", "other/x", r#"{"no":"1"}"#).await;
    put1(&bao, "kv1", "apps-sibling/x", r#"{"no":"2"}"#).await;

    let source = connect(&root_config(&bao, "KV1_TREE", "kv1", "apps")).await;
    assert_eq!(source.kv_version(), 1);
    let listing = source.list().await.unwrap();
    assert!(listing.is_complete(), "{:?}", listing.problems);
    let mut want: Vec<&str> = kv1_tree().into_iter().map(|(p, _)| p).collect();
    want.push("db/primary");
    want.sort();
    assert_eq!(paths(&listing), want);

    let got = fetch_all(&source, &listing.refs).await;
    // KV v1 keeps number literals as written (1.50, 2.50, the 30-digit integer); keys sorted
    assert_eq!(
        text(&got["db/primary"]),
        (
            r#"{"big":123456789012345678901234567890,"esc":"tab\there \"q\" \\ \u0001","html":"<a&b>","nested":{"a":[1,2.50,{"b":null}],"z":1},"password":"p1","port":5432,"ratio":1.50,"u":"café 😀","user":"app"}"#,
            None
        )
    );
    for (p, v) in kv1_tree() {
        assert_eq!(text(&got[p]), (v, None), "{p}");
        match &got[p] {
            Ok(Fetched::Value { metadata, .. }) => assert!(metadata.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        source.scope().identity("svc/elastic#1").text(),
        format!("vault:{}/kv1 apps/svc/elastic=231", bao.addr())
    );
    let e = source.fetch(&SourceRef::new("nope")).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::NotFound, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_with_a_partial_policy_lists_and_reads_what_it_may() {
    let bao = Bao::start().await;
    for p in [
        "team-a/db",
        "team-a/api",
        "team-a/sub/x",
        "team-b/db",
        "team-b/api",
        "top",
    ] {
        bao.put_kv2("secret", &format!("apps/{p}"), json!({ "v": p }))
            .await;
    }
    let (role_id, secret_id) = bao.approle_with_policy("team-a", TEAM_A_ONLY_POLICY).await;
    let auth = approle_auth("APPROLE_ROLE", &role_id, "APPROLE_SECRET", &secret_id);
    let source = connect(&config(bao.addr(), "secret", "apps", auth)).await;
    assert_eq!(source.kv_version(), 2);
    let listing = source.list().await.unwrap();
    assert_eq!(
        paths(&listing),
        ["team-a/api", "team-a/db", "team-a/sub/x", "top"]
    );
    assert_eq!(listing.problems.len(), 1, "{:?}", listing.problems);
    let p = &listing.problems[0];
    assert_eq!(p.path, "team-b/");
    assert!(p.error.contains("permission denied"), "{}", p.error);
    assert!(
        p.error.contains("secret/metadata/apps/team-b/"),
        "{}",
        p.error
    );
    assert!(!listing.is_complete());

    let got = fetch_all(&source, &listing.refs).await;
    assert_eq!(text(&got["team-a/db"]).0, r#"{"v":"team-a/db"}"#);
    assert_eq!(text(&got["team-a/sub/x"]).0, r#"{"v":"team-a/sub/x"}"#);
    let e = got["top"].as_ref().unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Denied);
    assert_eq!(e.path, "top");
    assert!(e.message.contains("secret/data/apps/top"), "{e}");
    let e = source
        .fetch(&SourceRef::new("team-b/db"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Denied, "{e}");

    // a wrong secret id is one Auth error
    let auth = approle_auth(
        "APPROLE_ROLE2",
        &role_id,
        "APPROLE_BAD_SECRET",
        "00000000-0000-0000-0000-000000000000",
    );
    let e = connect_err(&config(bao.addr(), "secret", "apps", auth)).await;
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
    assert!(
        e.message.contains("SECRETPORT_VS_APPROLE_BAD_SECRET"),
        "{e}"
    );
    assert!(!e.message.contains("00000000-0000"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn list_only_token_lists_but_cannot_read() {
    let bao = Bao::start().await;
    for p in ["a", "b/c", "b/d/e"] {
        bao.put_kv2("secret", p, json!({ "v": p })).await;
    }
    bao.write_policy(
        "lister",
        r#"path "secret/metadata/*" { capabilities = ["list"] }"#,
    )
    .await;
    // no default policy: it may not even look itself up
    let token = bao.create_token(&["lister"]).await;
    for (name, forced) in [("LISTER_DETECT", None), ("LISTER_FORCED", Some(2))] {
        let mut cfg = config(bao.addr(), "secret", "", token_auth(name, &token));
        cfg.kv_version = forced;
        let source = connect(&cfg).await;
        assert_eq!(source.kv_version(), 2);
        let listing = source.list().await.unwrap();
        assert!(listing.is_complete(), "{:?}", listing.problems);
        assert_eq!(paths(&listing), ["a", "b/c", "b/d/e"]);
        let got = fetch_all(&source, &listing.refs).await;
        for (p, r) in &got {
            let e = r.as_ref().unwrap_err();
            assert_eq!(e.kind, SourceErrorKind::Denied, "{p}: {e}");
            assert_eq!(&e.path, p);
            assert!(e.message.contains("permission denied"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_is_one_auth_error() {
    let bao = Bao::start().await;
    bao.put_kv2("secret", "a", json!({"v": "1"})).await;
    for (name, forced) in [
        ("WRONG_DETECT", None),
        ("WRONG_FORCED", Some(2)),
        ("WRONG_V1", Some(1)),
    ] {
        let mut cfg = config(
            bao.addr(),
            "secret",
            "",
            token_auth(name, "not-a-real-token"),
        );
        cfg.kv_version = forced;
        let e = connect_err(&cfg).await;
        assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
        let var = format!("SECRETPORT_VS_{name}");
        assert!(e.message.contains(&var), "{e}");
        assert!(e.message.contains("token"), "{e}");
        assert!(!e.message.contains("not-a-real-token"), "{e}");
    }
    // a revoked token, too
    let token = bao.create_token(&["default"]).await;
    bao.call(
        Method::POST,
        "auth/token/revoke",
        Some(&json!({ "token": token })),
    )
    .await;
    let e = connect_err(&config(
        bao.addr(),
        "secret",
        "",
        token_auth("REVOKED", &token),
    ))
    .await;
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_version_is_detected_or_taken_from_the_config() {
    let bao = Bao::start().await;
    bao.mount_kv("kv1", 1).await;
    bao.mount_kv("kv2", 2).await;
    bao.call(
        Method::POST,
        "sys/mounts/kvplain",
        Some(&json!({ "type": "kv" })),
    )
    .await;
    put1(&bao, "kv1", "s/one", r#"{"v":"1"}"#).await;
    put2(&bao, "kv2", "s/two", r#"{"v":"2"}"#).await;
    put1(&bao, "kvplain", "s/three", r#"{"v":"3"}"#).await;
    for (mount, want, name) in [
        ("kv1", 1, "KVD_1"),
        ("kv2", 2, "KVD_2"),
        ("kvplain", 1, "KVD_P"),
    ] {
        let source = connect(&root_config(&bao, name, mount, "s")).await;
        assert_eq!(source.kv_version(), want, "{mount}");
        let l = source.list().await.unwrap();
        assert_eq!(l.refs.len(), 1, "{mount}: {:?}", paths(&l));
        text(&source.fetch(&l.refs[0]).await);
    }

    // a token with no capability on the mount: OpenBao answers the detection endpoint from a
    // preflight check (any capability anywhere on the mount), so this is the case that fails
    bao.write_policy("elsewhere", r#"path "kv2/*" { capabilities = ["list"] }"#)
        .await;
    // with the default policy (so it may look itself up)
    let answer = bao
        .call(
            Method::POST,
            "auth/token/create",
            Some(&json!({ "policies": ["elsewhere"], "ttl": "1h" })),
        )
        .await;
    let token = answer["auth"]["client_token"].as_str().unwrap().to_string();
    let mut cfg = config(bao.addr(), "kv1", "s", token_auth("KVD_DENIED", &token));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind, SourceErrorKind::Denied, "{e}");
    assert!(e.message.contains("kv_version"), "{e}");
    assert!(e.message.contains("sys/internal/ui/mounts/kv1"), "{e}");
    // with the version configured, nothing is asked: the token is valid (lookup-self), and the
    // listing then says what it may not do
    cfg.kv_version = Some(1);
    let source = connect(&cfg).await;
    assert_eq!(source.kv_version(), 1);
    let e = source.list().await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Denied, "{e}");
    assert!(
        e.message.contains("permission denied listing kv1/s/"),
        "{e}"
    );

    // the override wins over detection
    let mut cfg = root_config(&bao, "KVD_OVERRIDE", "kvplain", "s");
    cfg.kv_version = Some(1);
    assert_eq!(connect(&cfg).await.kv_version(), 1);
    // and a wrong override on a KV v2 mount is named, not an empty listing
    let mut cfg = root_config(&bao, "KVD_WRONG", "kv2", "s");
    cfg.kv_version = Some(1);
    let e = connect(&cfg).await.list().await.unwrap_err();
    assert!(e.message.contains("kv_version"), "{e}");

    // mounts that are not what the config says
    let e = connect_err(&root_config(&bao, "KVD_NOMOUNT", "nope", "")).await;
    assert!(e.message.contains("does not exist"), "{e}");
    let mut cfg = root_config(&bao, "KVD_NOMOUNT2", "nope", "");
    cfg.kv_version = Some(2);
    let e = connect(&cfg).await.list().await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::NotFound, "{e}");
    assert!(e.message.contains("no KV mount"), "{e}");
    let e = connect_err(&root_config(&bao, "KVD_INSIDE", "kv2/s", "")).await;
    assert!(e.message.contains("mount = \"kv2\""), "{e}");
    let e = connect_err(&root_config(&bao, "KVD_CUBBY", "cubbyhole", "")).await;
    assert!(e.message.contains("not KV"), "{e}");
    // a subtree that does not exist is an empty, complete listing
    let l = connect(&root_config(&bao, "KVD_EMPTY", "kv2", "nothing/here"))
        .await
        .list()
        .await
        .unwrap();
    assert!(l.refs.is_empty() && l.is_complete());
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_walk_finds_every_secret_exactly_once() {
    let bao = Bao::start().await;
    let all: Vec<String> = (0..300)
        .map(|i| match i % 4 {
            0 => format!("s{i}"),
            1 => format!("f{}/s{i}", i % 5),
            2 => format!("f{}/g{}/s{i}", i % 5, i % 7),
            _ => format!("f{}/g{}/h{}/s{i}", i % 5, i % 7, i % 3),
        })
        .collect();
    stream::iter(&all)
        .map(|p| {
            let bao = &bao;
            async move {
                bao.put_kv2("secret", &format!("bulk/{p}"), json!({ "p": p }))
                    .await;
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let want: BTreeSet<&str> = all.iter().map(String::as_str).collect();
    for parallelism in [16, 1, 64] {
        let mut cfg = root_config(&bao, &format!("BULK_{parallelism}"), "secret", "bulk");
        cfg.parallelism = parallelism;
        let source = connect(&cfg).await;
        let started = Instant::now();
        let listing = source.list().await.unwrap();
        eprintln!(
            "parallelism {parallelism}: listed 300 in {:?}",
            started.elapsed()
        );
        assert!(listing.is_complete());
        assert_eq!(listing.refs.len(), 300);
        let got: BTreeSet<&str> = paths(&listing).into_iter().collect();
        assert_eq!(got, want);
        let mut sorted = paths(&listing);
        sorted.sort();
        assert_eq!(sorted, paths(&listing), "sorted by path");
        if parallelism == 16 {
            let values = fetch_all(&source, &listing.refs).await;
            assert_eq!(values.len(), 300);
            for (p, v) in &values {
                assert_eq!(text(v).0, json!({ "p": p }).to_string());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn renewable_token_is_renewed_during_a_long_run() {
    let bao = Bao::start().await;
    bao.put_kv2("secret", "a", json!({"v": "1"})).await;
    let answer = bao
        .call(
            Method::POST,
            "auth/token/create",
            Some(&json!({ "policies": ["root"], "ttl": "3s", "explicit_max_ttl": "60s", "renewable": true })),
        )
        .await;
    let token = answer["auth"]["client_token"].as_str().unwrap().to_string();
    let source = connect(&config(
        bao.addr(),
        "secret",
        "",
        token_auth("RENEW", &token),
    ))
    .await;
    let r = SourceRef::new("a");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        text(&source.fetch(&r).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(source.list().await.unwrap().refs.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_logs_in_again_when_the_token_reaches_its_max_ttl() {
    let bao = Bao::start().await;
    bao.put_kv2("secret", "a", json!({"v": "1"})).await;
    bao.write_policy(
        "reader",
        r#"path "secret/*" { capabilities = ["read", "list"] }"#,
    )
    .await;
    bao.enable_approle().await;
    bao.call(
        Method::POST,
        "auth/approle/role/short",
        Some(&json!({ "token_policies": ["reader"], "token_ttl": "2s", "token_max_ttl": "3s" })),
    )
    .await;
    let role_id = bao
        .call(Method::GET, "auth/approle/role/short/role-id", None)
        .await["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao
        .call(
            Method::POST,
            "auth/approle/role/short/secret-id",
            Some(&json!({})),
        )
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = approle_auth("SHORT_ROLE", &role_id, "SHORT_SECRET", &secret_id);
    let mut cfg = config(bao.addr(), "secret", "", auth);
    cfg.kv_version = Some(2);
    let source = connect(&cfg).await;
    let r = SourceRef::new("a");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        text(&source.fetch(&r).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_an_auth_error_not_a_denial_per_secret() {
    let bao = Bao::start().await;
    bao.put_kv2("secret", "a", json!({"v": "1"})).await;
    let answer = bao
        .call(
            Method::POST,
            "auth/token/create",
            Some(&json!({ "policies": ["root"], "ttl": "2s", "renewable": false })),
        )
        .await;
    let token = answer["auth"]["client_token"].as_str().unwrap().to_string();
    let source = connect(&config(
        bao.addr(),
        "secret",
        "",
        token_auth("EXPIRING", &token),
    ))
    .await;
    text(&source.fetch(&SourceRef::new("a")).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = source.fetch(&SourceRef::new("a")).await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
    assert!(e.message.contains("expired"), "{e}");
    let e = source.list().await.unwrap_err();
    assert_eq!(e.kind, SourceErrorKind::Auth, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_are_honoured() {
    let bao = Bao::start().await;
    bao.create_namespace("team-a").await;
    let ns = bao.in_namespace("team-a");
    ns.mount_kv("kv", 2).await;
    ns.put_kv2("kv", "apps/x", json!({"v": "in-ns"})).await;
    let mut cfg = root_config(&bao, "NS", "kv", "apps");
    cfg.namespace = Some("team-a".into());
    let source = connect(&cfg).await;
    let l = source.list().await.unwrap();
    assert_eq!(paths(&l), ["x"]);
    assert_eq!(text(&source.fetch(&l.refs[0]).await).0, r#"{"v":"in-ns"}"#);
    assert_eq!(
        source.scope().identity(&l.refs[0].path).text(),
        format!("vault:{}/team-a/kv apps/x", bao.addr())
    );
    // outside the namespace there is no such mount
    connect_err(&root_config(&bao, "NS_OUT", "kv", "apps")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verifies_against_ca_cert_and_skips_only_when_asked() {
    let bao = start_tls_bao().await;
    assert!(bao.ca.is_file(), "{}", bao.ca.display());
    // unknown CA: refused, clearly
    let cfg = config(&bao.addr, "secret", "", token_auth("TLS_NOCA", "root"));
    let e = connect_err(&cfg).await;
    assert_eq!(e.kind, SourceErrorKind::Unavailable, "{e}");
    assert!(e.message.to_lowercase().contains("certificate"), "{e}");
    // with the CA
    let mut cfg = config(&bao.addr, "secret", "", token_auth("TLS_CA", "root"));
    cfg.ca_cert = Some(bao.ca.clone());
    let source = connect(&cfg).await;
    assert_eq!(source.kv_version(), 2);
    assert!(source.list().await.unwrap().is_complete());
    // verification off, explicitly
    let mut cfg = config(&bao.addr, "secret", "", token_auth("TLS_SKIP", "root"));
    cfg.tls_skip_verify = true;
    connect(&cfg).await;
    // a CA file that is not PEM
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "not a certificate").unwrap();
    let mut cfg = config(&bao.addr, "secret", "", token_auth("TLS_BADCA", "root"));
    cfg.ca_cert = Some(bad.path().to_path_buf());
    let e = connect_err(&cfg).await;
    assert!(e.message.contains("CA certificate"), "{e}");
}
