//! Source tags AWS cannot take are named in the secret's row, never dropped silently, and the
//! secret still lands: Vault KV v2 `custom_metadata` (60 keys, an `aws:` key, a 300-character
//! value) and SSM parameter tags (48 and 50), each beside a configured tag. The number kept is
//! computed from what landed (AWS's 50, minus secretport's own `secretport:` tags, minus the
//! configured ones), so adding a tag of ours does not change these tests.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ParameterType, Tag};
use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{Run, Workspace};
use crate::support::{Bao, Moto};

const MAX_TAGS: usize = 50;

async fn tags_of(moto: &Moto, name: &str) -> BTreeMap<String, String> {
    let d = moto
        .sm_client("us-east-1")
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeSecret {name}: {e:?}"));
    d.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The copied source tags that landed on a secret, and the room they had: AWS's 50 minus ours
/// minus the configured ones.
fn copied_and_room(tags: &BTreeMap<String, String>, config: &[&str]) -> (usize, usize) {
    let ours = tags.keys().filter(|k| k.starts_with("secretport:")).count();
    assert!(ours >= 3, "{tags:?}");
    for k in config {
        assert!(
            tags.contains_key(*k),
            "configured tag {k} missing: {tags:?}"
        );
    }
    let copied = tags.len() - ours - config.len();
    (copied, MAX_TAGS - ours - config.len())
}

/// The row of `path` names the left-out tags once among all of that secret's rows.
fn left_out_words<'r>(run: &'r Run, path: &str) -> &'r str {
    let rows: Vec<_> = run
        .rows
        .iter()
        .filter(|r| r["source_path"] == path && r["error"].contains("tags left out"))
        .collect();
    assert_eq!(rows.len(), 1, "named once for {path}: {:#?}", run.rows);
    assert!(
        rows[0]["reasons"].split(';').any(|c| c == "tags-left-out"),
        "{:#?}",
        rows[0]
    );
    assert_eq!(rows[0]["error"].matches("tags left out").count(), 1);
    &rows[0]["error"]
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_custom_metadata_beyond_what_aws_takes_is_named_and_the_secret_lands() {
    let (bao, moto) = tokio::join!(Bao::start(), Moto::start());
    bao.put_kv2("secret", "apps/db", json!({"password": "tl-p1"}))
        .await;
    let mut meta: serde_json::Map<String, Value> =
        (0..60).map(|i| (format!("m{i:02}"), json!("v"))).collect();
    meta.insert("aws:x".into(), json!("v"));
    meta.insert("long".into(), json!("l".repeat(300)));
    bao.call(
        Method::POST,
        "secret/metadata/apps/db",
        Some(&json!({ "custom_metadata": meta })),
    )
    .await;
    let mut ws = Workspace::new();
    ws.env("TL_TOKEN", bao.token());
    ws.write(
        "c.toml",
        &format!(
            "[source]\nkind = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\npath = \"apps\"\n\
             copy_metadata = true\nauth = {{ method = \"token\", token_env = \"TL_TOKEN\" }}\n\n\
             [target]\nregion = \"us-east-1\"\nprefix = \"tl\"\nendpoint_url = \"{}\"\n\
             tags = {{ team = \"platform\" }}\n",
            bao.addr(),
            moto.endpoint()
        ),
    );
    let run = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 1, "{:#?}", run.rows);
    let tags = tags_of(&moto, "tl/db").await;
    assert_eq!(tags.len(), MAX_TAGS);
    let (copied, room) = copied_and_room(&tags, &["team"]);
    assert_eq!(copied, room, "{tags:?}");
    let over = 60 - room;
    let words = left_out_words(&run, "db");
    let first_left = format!("m{room:02}");
    assert!(!tags.contains_key(&first_left) && tags.contains_key(&format!("m{:02}", room - 1)));
    for want in [
        format!("tags left out: {over} over AWS's 50 per secret: {first_left}, "),
        ", m59".into(),
        "1 aws: prefix (reserved by AWS): aws:x".into(),
        "1 value over 256 characters: long".into(),
    ] {
        assert!(words.contains(&want), "{want:?} in {words}");
    }
    assert!(!words.contains("lll"), "a value is never named: {words}");

    // nothing flaps: the next run names them again on its one row, and finds no drift
    let again = ws.run(&["reconcile", "-c", "c.toml", "--yes"]).await;
    again.expect_code(0);
    assert_eq!(again.count("unchanged", "ok"), 1, "{:#?}", again.rows);
    assert!(left_out_words(&again, "db").contains(&format!("{over} over AWS's 50")));
    ws.run(&["reconcile", "-c", "c.toml", "--check"])
        .await
        .expect_code(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssm_parameters_with_48_and_50_tags_land_with_the_rest_named() {
    let moto = Moto::start().await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    for n in [48usize, 50] {
        let tags: Vec<Tag> = (0..n)
            .map(|i| {
                Tag::builder()
                    .key(format!("t{i:02}"))
                    .value("v")
                    .build()
                    .unwrap()
            })
            .collect();
        ssm.put_parameter()
            .name(format!("/prod/app/p{n}"))
            .value(format!("value-{n}"))
            .r#type(ParameterType::SecureString)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutParameter p{n}: {e:?}"));
    }
    let ws = Workspace::new();
    ws.write(
        "c.toml",
        &format!(
            "[source]\nkind = \"ssm\"\npath = \"/prod/app/\"\ncopy_tags = true\n\n\
             [target]\nregion = \"us-east-1\"\nprefix = \"tls\"\nendpoint_url = \"{}\"\n\
             tags = {{ team = \"platform\" }}\n",
            moto.endpoint()
        ),
    );
    let run = ws.run(&["migrate", "-c", "c.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 2, "{:#?}", run.rows);
    for n in [48usize, 50] {
        let tags = tags_of(&moto, &format!("tls/p{n}")).await;
        assert_eq!(tags.len(), MAX_TAGS, "p{n}");
        let (copied, room) = copied_and_room(&tags, &["team"]);
        assert_eq!(copied, room, "p{n}: {tags:?}");
        let over = n - room;
        let words = left_out_words(&run, &format!("p{n}"));
        let named: Vec<String> = (room..n).map(|i| format!("t{i:02}")).collect();
        assert!(
            words.ends_with(&format!(
                "tags left out: {over} over AWS's 50 per secret: {}",
                named.join(", ")
            )),
            "p{n}: {words}"
        );
    }
}
