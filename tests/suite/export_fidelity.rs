//! Values arrive byte-exact, and export records fail one by one, through the binary against a
//! real moto:
//! - a property test: random JSON documents (big integers, exponents, `-0`, duplicate keys,
//!   unicode escapes, inner whitespace, nesting) written as `file` export values, migrated in
//!   one run; what moto returns is exactly each document's bytes, or the record was refused
//!   with a reason;
//! - a `file` export and a `kms` export with a UTF-8 byte order mark, a line that is not valid
//!   UTF-8 and an oversize value: those lines fail with their line numbers, the rest migrate.

use std::collections::BTreeMap;

use crate::cli::{file_config, Workspace};
use crate::support::Moto;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};

/// A JSON number literal of the awkward kinds.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[1-9][0-9]{18,40}",                        // beyond u64 / f64 precision
        "-?(0|[1-9][0-9]{0,5})\\.[0-9]{1,6}0",        // trailing zero: 1.50
        "-?[1-9](\\.[0-9]{1,3})?[eE][+-]?[0-9]{1,3}", // exponents: 1e2, 1E-7
        Just("-0".to_owned()),
        Just("-0.0".to_owned()),
        Just("9007199254740993".to_owned()),
        Just("0".to_owned()),
    ]
}

/// A JSON string literal with escapes of every kind (its text, quotes included).
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 _.:-]{0,6}",
        Just("\\u00e9".to_owned()),
        Just("\\u00E9".to_owned()),
        Just("\\ud83d\\ude00".to_owned()),
        Just("é😀".to_owned()),
        Just("\\\"".to_owned()),
        Just("\\\\".to_owned()),
        Just("\\/".to_owned()),
        Just("\\n\\t\\r\\b\\f".to_owned()),
        Just("\\u0000".to_owned()),
        Just("\\u003c/script\\u003e".to_owned()),
    ];
    prop::collection::vec(piece, 0..4).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Whitespace JSON allows inside a line.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        1 => Just(" ".to_owned()),
        1 => Just("\t ".to_owned()),
    ]
}

/// A JSON value's text.
fn value() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        number(),
        string(),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![array(inner.clone().boxed()), object(inner.boxed()),]
    })
    .boxed()
}

/// An array's text.
fn array(inner: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    (prop::collection::vec((inner, ws()), 0..4), ws()).prop_map(|(items, w)| {
        let body: Vec<String> = items
            .into_iter()
            .map(|(v, w)| format!("{w}{v}{w}"))
            .collect();
        format!("[{w}{}]", body.join(","))
    })
}

/// An object's text, with a duplicated key now and then.
fn object(inner: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    (
        prop::collection::vec((string(), inner, ws()), 0..4),
        any::<bool>(),
        ws(),
    )
        .prop_map(|(members, dup, w)| {
            let mut m: Vec<String> = members
                .iter()
                .map(|(k, v, w)| format!("{w}{k}{w}:{w}{v}{w}"))
                .collect();
            if dup {
                if let Some(first) = m.first().cloned() {
                    m.push(first);
                }
            }
            format!("{{{w}{}}}", m.join(","))
        })
}

/// A document to migrate: an object or an array at the top.
fn document() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => object(value()),
        1 => array(value()),
    ]
}

const CASES: usize = 40;

#[tokio::test(flavor = "multi_thread")]
async fn random_json_documents_arrive_byte_exact_or_are_refused() {
    // deterministic: a failure names the case, and reruns give the same documents
    let mut runner = TestRunner::new_with_rng(
        PtConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = document();
    let mut docs: Vec<String> = (0..CASES)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    // the cases the issue names, always included
    docs.extend(
        [
            r#"{"n": 123456789012345678901}"#,
            r#"{"a":1.50,"b":1e2,"c":-0}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"s":"caf\u00e9 \ud83d\ude00"}"#,
            "{ \"x\" :\t[ 1 , 2 ] }",
        ]
        .map(String::from),
    );
    for d in &docs {
        // every generated document is JSON (else the generator is wrong, not secretport)
        serde_json::from_str::<serde::de::IgnoredAny>(d).unwrap_or_else(|e| panic!("{d}: {e}"));
    }

    let moto = Moto::start().await;
    let ws = Workspace::new();
    let export: String = docs
        .iter()
        .enumerate()
        .map(|(i, d)| format!("{{\"path\":\"doc/{i}\",\"value\":{d}}}\n"))
        .collect();
    ws.write("export.jsonl", &export);
    ws.write("cfg.toml", &file_config(moto.endpoint(), "fid", "", ""));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;

    let sm = moto.sm_client("us-east-1");
    let mut refused = 0;
    for (i, d) in docs.iter().enumerate() {
        let path = format!("doc/{i}");
        let row = run.row(&path);
        if row["status"] == "ok" {
            let got = sm
                .get_secret_value()
                .secret_id(format!("fid/{path}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path}: {e:?}"));
            assert_eq!(
                got.secret_string(),
                Some(d.as_str()),
                "case {i}: moto holds other bytes than the export"
            );
        } else {
            assert!(
                row["status"] == "failed" && !row["error"].is_empty(),
                "case {i} ({d}): neither stored nor refused with a reason: {row:?}"
            );
            refused += 1;
        }
    }
    eprintln!(
        "{} documents, {refused} refused; e.g.:\n{}",
        docs.len(),
        docs[..6].join("\n")
    );
    assert_eq!(
        refused,
        0,
        "nothing here needs refusing:\n{:#?}",
        run.failed()
    );
    run.expect_code(0);
}

/// A plaintext export with a BOM, an invalid UTF-8 line and an oversize value.
fn damaged_plain() -> Vec<u8> {
    let mut text = b"\xEF\xBB\xBF{\"path\":\"first\",\"value\":{\"n\":1.50}}\n".to_vec();
    text.extend_from_slice(b"{\"path\":\"latin1\",\"value\":\"caf\xe9\"}\n");
    text.extend_from_slice(b"{\"path\":\"third\",\"value\":\"ok\"}\n");
    text.extend_from_slice(
        format!(
            "{{\"path\":\"big\",\"value\":\"{}\"}}\n",
            "x".repeat(70_000)
        )
        .as_bytes(),
    );
    text
}

fn rows_by_path(run: &crate::cli::Run) -> BTreeMap<String, BTreeMap<String, String>> {
    run.rows
        .iter()
        .map(|r| (r["source_path"].clone(), r.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn file_export_bad_lines_fail_alone() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    std::fs::write(ws.path().join("export.jsonl"), damaged_plain()).unwrap();
    ws.write("cfg.toml", &file_config(moto.endpoint(), "bad", "", ""));
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    let rows = rows_by_path(&run);
    assert_eq!(rows["first"]["status"], "ok", "{rows:#?}");
    assert_eq!(rows["third"]["status"], "ok", "{rows:#?}");
    assert_eq!(rows["line 2"]["status"], "failed");
    assert!(
        rows["line 2"]["error"].contains("not valid UTF-8"),
        "{rows:#?}"
    );
    assert!(
        rows["big"]["error"].contains("line 4") && rows["big"]["error"].contains("70000 bytes"),
        "{rows:#?}"
    );
    let sm = moto.sm_client("us-east-1");
    let first = sm
        .get_secret_value()
        .secret_id("bad/first")
        .send()
        .await
        .unwrap();
    assert_eq!(first.secret_string(), Some("{\"n\":1.50}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_export_bad_lines_fail_alone() {
    let moto = Moto::start().await;
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let ws = Workspace::new();
    // encrypt the good records with secretport itself, then damage the output
    ws.write(
        "plain.jsonl",
        "{\"path\":\"first\",\"value\":{\"n\":1.50}}\n{\"path\":\"third\",\"value\":\"ok\"}\n",
    );
    let enc = ws
        .run_with(
            &[
                "kms-export",
                "--input",
                "plain.jsonl",
                "--output",
                "enc.jsonl",
                "--key-id",
                &key_id,
                "--mode",
                "envelope",
            ],
            &[("AWS_ENDPOINT_URL", moto.endpoint())],
        )
        .await;
    enc.expect_code(0);
    let enc = std::fs::read(ws.path().join("enc.jsonl")).unwrap();
    let mut lines = enc.split(|b| *b == b'\n');
    let mut damaged = b"\xEF\xBB\xBF".to_vec();
    damaged.extend_from_slice(lines.next().unwrap());
    damaged.extend_from_slice(b"\n{\"path\":\"latin1\",\"ciphertext\":\"\xe9\"}\n");
    damaged.extend_from_slice(lines.next().unwrap());
    damaged.push(b'\n');
    std::fs::write(ws.path().join("kms.jsonl"), damaged).unwrap();
    ws.write(
        "cfg.toml",
        &format!(
            "[source]\nkind = \"kms\"\nfile = \"kms.jsonl\"\n[target]\nregion = \"us-east-1\"\n\
             prefix = \"k\"\nendpoint_url = \"{}\"\n",
            moto.endpoint()
        ),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    let rows = rows_by_path(&run);
    assert_eq!(rows["first"]["status"], "ok", "{rows:#?}");
    assert_eq!(rows["third"]["status"], "ok", "{rows:#?}");
    assert!(
        rows["line 2"]["error"].contains("not valid UTF-8"),
        "{rows:#?}"
    );
    let sm = moto.sm_client("us-east-1");
    let first = sm
        .get_secret_value()
        .secret_id("k/first")
        .send()
        .await
        .unwrap();
    assert_eq!(first.secret_string(), Some("{\"n\":1.50}"));
}
