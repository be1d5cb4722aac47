//! The `credstash` source end to end: the real `credstash` (PyPI, pinned in
//! `scripts/setup-servers`) creates its table and stores secrets in moto's DynamoDB + KMS (with a
//! context, several versions, every digest it offers), `secretport migrate` moves them into
//! moto's Secrets Manager, and each value read back equals what `credstash get` decrypts itself.
//! A wrong context and a tampered HMAC fail only their own names, and no value reaches stdout,
//! stderr or the report.

use crate::cli::Workspace;
use crate::support::{tool_ok, Moto};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

const MARKERS: [&str; 3] = [
    "cs-PLANTED-v2-9f3a",
    "cs-PLANTED-sha512-41c7",
    "cs-PLANTED-badhmac-77e0",
];

fn config(endpoint: &str) -> String {
    format!(
        r#"[source]
kind = "credstash"
context = {{ env = "test" }}

[target]
region = "us-east-1"
prefix = "cs"
endpoint_url = "{endpoint}"
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn credstash_table_migrates_equal_to_credstash_get_and_bad_items_fail_alone() {
    let moto = Moto::start().await;
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let ws = Workspace::new();
    let dir = ws.path();
    let ep = moto.endpoint();
    let cs = |args: &[&str]| tool_ok("credstash", dir, ep, args);

    cs(&["setup"]);
    let ctx = "env=test";
    let v1 = "cs-old-version-1";
    cs(&["put", "-k", &arn, "app.db", v1, ctx]);
    cs(&["put", "-k", &arn, "-a", "app.db", MARKERS[0], ctx]); // version 2
    cs(&["put", "-k", &arn, "app/api-key", "clé ✓ ünïcode", ctx]);
    cs(&["put", "-k", &arn, "multi.line", "line one\nline two\n", ctx]);
    cs(&[
        "put",
        "-k",
        &arn,
        "-d",
        "SHA512",
        "sha512.item",
        MARKERS[1],
        ctx,
    ]);
    cs(&[
        "put",
        "-k",
        &arn,
        "-d",
        "SHA",
        "sha1.item",
        "{\"json\": [1, 2.50]}",
        ctx,
    ]);
    cs(&[
        "put",
        "-k",
        &arn,
        "-d",
        "MD5",
        "md5.item",
        "  spaces  ",
        ctx,
    ]);
    cs(&[
        "put",
        "-k",
        &arn,
        "wrong.ctx",
        "under another context",
        "env=other",
    ]);
    cs(&["put", "-k", &arn, "bad.hmac", MARKERS[2], ctx]);
    let good = [
        "app.db",
        "app/api-key",
        "multi.line",
        "sha512.item",
        "sha1.item",
        "md5.item",
    ];
    let expected: Vec<String> = good
        .iter()
        .map(|n| String::from_utf8(cs(&["get", "-n", n, ctx])).expect("utf-8"))
        .collect();
    assert_eq!(
        expected[0], MARKERS[0],
        "credstash get returns the latest version"
    );

    // tamper with bad.hmac's HMAC (credstash stores its hex text as binary)
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk_config("us-east-1"));
    ddb.update_item()
        .table_name("credential-store")
        .key("name", AttributeValue::S("bad.hmac".into()))
        .key("version", AttributeValue::S(format!("{:019}", 1)))
        .update_expression("SET hmac = :h")
        .expression_attribute_values(":h", AttributeValue::B(Blob::new(vec![b'0'; 64])))
        .send()
        .await
        .expect("UpdateItem");

    ws.write("cfg.toml", &config(ep));
    let run = ws
        .run_with(
            &["migrate", "-c", "cfg.toml", "--yes"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    run.expect_code(1);
    assert_eq!(run.count("create", "ok"), good.len(), "{:#?}", run.rows);
    assert_eq!(run.row("app.db")["source_version"], "2");
    assert_eq!(run.row("sha1.item")["source_version"], "1");
    let failed = run.failed();
    assert_eq!(failed.len(), 2, "{failed:#?}");
    let ctx_row = run.row("wrong.ctx");
    assert_eq!(ctx_row["status"], "failed");
    assert!(
        ctx_row["error"].contains("InvalidCiphertextException")
            && ctx_row["error"].contains("context"),
        "{ctx_row:?}"
    );
    let hmac_row = run.row("bad.hmac");
    assert_eq!(hmac_row["status"], "failed");
    assert!(
        hmac_row["error"].contains("HMAC (SHA256)")
            && hmac_row["error"].contains("nothing was decrypted"),
        "{hmac_row:?}"
    );

    let sm = moto.sm_client("us-east-1");
    for (name, want) in good.iter().zip(&expected) {
        let got = sm
            .get_secret_value()
            .secret_id(format!("cs/{name}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetSecretValue cs/{name}: {e:?}"));
        assert_eq!(got.secret_string(), Some(want.as_str()), "{name}");
        let tags = sm
            .describe_secret()
            .secret_id(format!("cs/{name}"))
            .send()
            .await
            .expect("DescribeSecret");
        let source = tags
            .tags()
            .iter()
            .find(|t| t.key() == Some("secretport:source"))
            .and_then(|t| t.value())
            .unwrap_or_default()
            .to_owned();
        assert!(
            source == format!("credstash:us-east-1/credential-store {name}")
                || source.starts_with("sha256:"),
            "{source}"
        );
    }
    for name in ["wrong.ctx", "bad.hmac"] {
        let e = sm
            .describe_secret()
            .secret_id(format!("cs/{name}"))
            .send()
            .await;
        assert!(e.is_err(), "{name} must not be migrated");
    }

    let all = run.all_output();
    for m in MARKERS.iter().chain([v1].iter()) {
        assert!(!all.contains(m), "{m} leaked:\n{all}");
    }

    // a rerun writes nothing
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    rerun.expect_code(1);
    assert_eq!(
        rerun.count("unchanged", "ok"),
        good.len(),
        "{:#?}",
        rerun.rows
    );
    assert_eq!(rerun.failed().len(), 2);
    // reconcile --check: the six are in sync, the two unreadable items fail again, no orphan
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    assert_ne!(check.code, 0, "{:#?}", check.rows);
    assert_eq!(
        check.count("unchanged", "planned"),
        good.len(),
        "{:#?}",
        check.rows
    );
    assert_eq!(
        check.count("orphan", "planned") + check.count("orphan", "skipped"),
        0
    );
}
