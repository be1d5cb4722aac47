//! Smoke tests of the test infrastructure itself: the real OpenBao and moto servers start on
//! their own ports, answer the clients secretport uses, and stop again.

use crate::support::{Bao, Moto, TEST_REGION};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;
use vaultrs::{auth::approle, kv1, kv2};

#[tokio::test(flavor = "multi_thread")]
async fn bao_kv2_roundtrip_through_vaultrs() {
    let started = Instant::now();
    let bao = Bao::start().await;
    eprintln!("Bao::start took {:?}", started.elapsed());
    assert_eq!(bao.token(), "root");
    assert_eq!(bao.addr(), format!("http://127.0.0.1:{}", bao.port()));

    let client = bao.client();
    let data = HashMap::from([("user", "app"), ("password", "s3cr3t")]);
    kv2::set(&client, "secret", "apps/db", &data).await.unwrap();
    let read: HashMap<String, String> = kv2::read(&client, "secret", "apps/db").await.unwrap();
    assert_eq!(read["user"], "app");
    assert_eq!(read["password"], "s3cr3t");

    // The HTTP helpers and vaultrs see the same store.
    assert_eq!(
        bao.read_kv2("secret", "apps/db").await,
        Some(json!({"user": "app", "password": "s3cr3t"}))
    );
    let version = bao
        .put_kv2(
            "secret",
            "apps/db",
            json!({"user": "app", "password": "rotated"}),
        )
        .await;
    assert_eq!(version, 2);
    let read: HashMap<String, String> = kv2::read(&client, "secret", "apps/db").await.unwrap();
    assert_eq!(read["password"], "rotated");
}

#[tokio::test(flavor = "multi_thread")]
async fn bao_helpers_mounts_deletes_policies_and_auth() {
    let bao = Bao::start().await;
    bao.mount_kv("kv1", 1).await;
    bao.mount_kv("kv2", 2).await;

    bao.put_kv1("kv1", "team/app", json!({"k": "v1"})).await;
    let v1: HashMap<String, String> = kv1::get(&bao.client(), "kv1", "team/app").await.unwrap();
    assert_eq!(v1["k"], "v1");

    assert_eq!(bao.put_kv2("kv2", "a/b", json!({"n": "1"})).await, 1);
    assert_eq!(bao.put_kv2("kv2", "a/b", json!({"n": "2"})).await, 2);
    assert_eq!(bao.put_kv2("kv2", "a/b", json!({"n": "3"})).await, 3);
    bao.destroy_kv2_versions("kv2", "a/b", &[1]).await;
    bao.delete_kv2_latest("kv2", "a/b").await;
    // Latest (3) is soft-deleted: the read answers 404 (with metadata in the body), which
    // vaultrs surfaces as an error (see docs/architecture.md and README).
    assert_eq!(bao.read_kv2("kv2", "a/b").await, None);
    assert!(
        kv2::read::<HashMap<String, String>>(&bao.client(), "kv2", "a/b")
            .await
            .is_err()
    );
    let meta = kv2::read_metadata(&bao.client(), "kv2", "a/b")
        .await
        .unwrap();
    assert_eq!(meta.current_version, 3);
    assert!(meta.versions["1"].destroyed);
    assert!(!meta.versions["3"].deletion_time.is_empty());
    let v2: HashMap<String, String> = kv2::read_version(&bao.client(), "kv2", "a/b", 2)
        .await
        .unwrap();
    assert_eq!(v2["n"], "2");

    // A token limited to reading kv2 can read there and nowhere else.
    bao.write_policy(
        "read-kv2",
        r#"path "kv2/data/*" { capabilities = ["read"] }
path "kv2/metadata/*" { capabilities = ["read", "list"] }"#,
    )
    .await;
    let token = bao.create_token(&["read-kv2"]).await;
    let reader = bao.with_token(&token);
    let (status, _) = reader
        .request(reqwest::Method::GET, "kv2/data/a/b?version=2", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = reader
        .request(reqwest::Method::GET, "kv1/team/app", None)
        .await;
    assert_eq!(status, 403);

    // AppRole login yields a token carrying the role's policies.
    bao.enable_approle().await;
    bao.enable_approle().await; // idempotent
    let (role_id, secret_id) = bao.create_approle("migrator", &["read-kv2"]).await;
    let auth = approle::login(&bao.client(), "approle", &role_id, &secret_id)
        .await
        .unwrap();
    assert!(auth.policies.iter().any(|p| p == "read-kv2"));
    let v: HashMap<String, String> = kv2::read_version(
        &bao.with_token(&auth.client_token).client(),
        "kv2",
        "a/b",
        2,
    )
    .await
    .unwrap();
    assert_eq!(v["n"], "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn bao_namespaces() {
    let bao = Bao::start().await;
    bao.create_namespace("team-a").await;
    let ns = bao.in_namespace("team-a");
    ns.mount_kv("kv", 2).await;
    ns.put_kv2("kv", "app/db", json!({"p": "in-namespace"}))
        .await;
    let read: HashMap<String, String> = kv2::read(&ns.client(), "kv", "app/db").await.unwrap();
    assert_eq!(read["p"], "in-namespace");
    // Not visible from the root namespace.
    let (status, _) = bao
        .request(reqwest::Method::GET, "kv/data/app/db", None)
        .await;
    assert_ne!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_baos_are_independent() {
    let (a, b) = tokio::join!(Bao::start(), Bao::start());
    assert_ne!(a.port(), b.port());
    a.put_kv2("secret", "only-in-a", json!({"x": "1"})).await;
    assert!(a.read_kv2("secret", "only-in-a").await.is_some());
    assert!(b.read_kv2("secret", "only-in-a").await.is_none());
    let addr = a.addr().to_string();
    drop(a);
    // The dropped server is gone: its port refuses connections.
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{addr}/v1/sys/health"))
        .send()
        .await;
    assert!(refused.is_err(), "server still answering after drop");
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_secret_roundtrip_through_the_sdk() {
    let started = Instant::now();
    let moto = Moto::start().await;
    eprintln!("Moto::start took {:?}", started.elapsed());
    let sm = moto.sm_client(TEST_REGION);

    let created = sm
        .create_secret()
        .name("devops/app/db")
        .secret_string(r#"{"user":"app","password":"s3cr3t"}"#)
        .send()
        .await
        .unwrap();
    assert!(created.arn().unwrap().contains(":secret:devops/app/db-"));
    let got = sm
        .get_secret_value()
        .secret_id("devops/app/db")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.secret_string(),
        Some(r#"{"user":"app","password":"s3cr3t"}"#)
    );

    // Regions are separate stores; reset wipes everything.
    let other = moto.sm_client("eu-west-1");
    let err = other
        .describe_secret()
        .secret_id("devops/app/db")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    moto.reset().await;
    let listed = sm.list_secrets().send().await.unwrap();
    assert!(listed.secret_list().is_empty());
}
