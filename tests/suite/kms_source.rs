//! The `kms` source and `kms-export` against a real moto: both formats round-trip, data keys are
//! decrypted once however many records share them (single flight, counted at the throttling
//! proxy), broken records fail with their line numbers while the good ones still decrypt, and
//! nothing secret leaks into errors, listings or `Debug` prints.
//!
//! moto's ciphertext format is moto's own, so every fixture is encrypted through moto during the
//! test; nothing pre-encrypted is stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_kms::primitives::Blob;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{aws_sdk_config_with_retry, Moto, ThrottleProxy, TEST_REGION};
use secretport::config::LimitsConfig;
use secretport::kms_export::{kms_export, ExportMode, KmsExportOptions};
use secretport::limits::Limits;
use secretport::retry::RetryPolicy;
use secretport::secret::SecretValue;
use secretport::source::file::FileSource;
use secretport::source::kms::KmsSource;
use secretport::source::{Fetched, Source, SourceErrorKind, SourceRef};

const PLANTED: &str = "pl4nted-S3cret-kms-9c1e";

/// KMS client for `endpoint` with the SDK's retries off (the retry policy owns retrying).
fn kms(endpoint: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&aws_sdk_config_with_retry(
        endpoint,
        TEST_REGION,
        RetryConfig::disabled(),
    ))
}

fn limits() -> Arc<Limits> {
    Arc::new(Limits::new(&LimitsConfig::default()))
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(10),
        ..RetryPolicy::new(3)
    }
}

/// A fresh symmetric key with alias `alias/<alias>`; returns the key ARN.
async fn create_key(client: &aws_sdk_kms::Client, alias: &str) -> String {
    let key = client.create_key().send().await.expect("CreateKey");
    let meta = key.key_metadata().expect("key metadata");
    client
        .create_alias()
        .alias_name(format!("alias/{alias}"))
        .target_key_id(meta.key_id())
        .send()
        .await
        .expect("CreateAlias");
    meta.arn().expect("key arn").to_owned()
}

fn context() -> BTreeMap<String, String> {
    [("purpose", "kms-source-test"), ("team", "platform")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The plaintext fixture: an object, strings (unicode, planted), non-UTF-8 binary, and with
/// `big` a value larger than direct mode allows.
fn plaintext_jsonl(big: bool) -> String {
    let mut lines = vec![
        format!(
            r#"{{"path":"app/db","value":{{"user":"admin","password":"{PLANTED}","port":5432,"opts":{{"ssl":true}}}}}}"#
        ),
        format!(r#"{{"path":"app/token","value":"{PLANTED}-token"}}"#),
        r#"{"path":"app/unicode","value":"grüße ✓ 秘密 \"quoted\" \\ slash"}"#.to_owned(),
        format!(
            r#"{{"path":"app/cert","value_base64":"{}"}}"#,
            B64.encode([0u8, 0xff, 0xfe, 0x80, 0x01, 0x7f, 0xc3])
        ),
    ];
    if big {
        lines.push(format!(
            r#"{{"path":"app/big","value":"{}{PLANTED}"}}"#,
            "x".repeat(20_000)
        ));
    }
    lines.join("\n") + "\n"
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

async fn export(
    client: &aws_sdk_kms::Client,
    input: &Path,
    output: &Path,
    key: &str,
    mode: ExportMode,
    context: BTreeMap<String, String>,
    records_per_data_key: usize,
) -> secretport::kms_export::ExportSummary {
    let mut opts = KmsExportOptions::new(key, mode);
    opts.context = context;
    opts.records_per_data_key = records_per_data_key;
    kms_export(input, output, client.clone(), &opts, limits(), policy())
        .await
        .unwrap_or_else(|e| panic!("kms_export: {e}"))
}

fn open(file: &Path, client: aws_sdk_kms::Client) -> KmsSource {
    KmsSource::open(file, "kms.jsonl", client, limits(), policy())
        .unwrap_or_else(|e| panic!("open: {e}"))
}

async fn value_of(source: &dyn Source, path: &str) -> SecretValue {
    value_at(source, &SourceRef::new(path)).await
}

/// The value behind `r`, a reference from `source`'s listing (a `file` source finds records
/// by the line its listing gave).
async fn value_at(source: &dyn Source, r: &SourceRef) -> SecretValue {
    match source.fetch(r).await {
        Ok(Fetched::Value { value, .. }) => value,
        Ok(Fetched::Gone { reason, .. }) => panic!("{}: gone: {reason}", r.path),
        Err(e) => panic!("{}: {e}", r.path),
    }
}

/// Every record of `kms_file` decrypts to the same value (and kind) as in the plaintext export.
async fn assert_round_trip(plain: &FileSource, kms_file: &KmsSource) {
    let want = plain.list().await.unwrap();
    let got = kms_file.list().await.unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    assert_eq!(
        got.refs.iter().map(|r| &r.path).collect::<Vec<_>>(),
        want.refs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    for r in &want.refs {
        let a = value_at(plain, r).await;
        let b = value_of(kms_file, &r.path).await;
        assert!(
            a.same_as(&b),
            "{}: value differs after the round trip",
            r.path
        );
    }
}

fn records(text: &str) -> Vec<Map<String, Value>> {
    text.lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        })
        .collect()
}

fn field(rec: &Map<String, Value>, key: &str) -> Vec<u8> {
    B64.decode(rec[key].as_str().unwrap()).unwrap()
}

fn set(rec: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    rec.insert(key.into(), Value::String(B64.encode(bytes)));
}

fn to_jsonl(recs: &[Map<String, Value>]) -> String {
    recs.iter()
        .map(|m| Value::Object(m.clone()).to_string() + "\n")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_formats_round_trip() {
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    let arn = create_key(&client, "round-trip").await;
    let dir = tempfile::tempdir().unwrap();

    // direct, with an encryption context, key given by alias
    let plain_small = write(dir.path(), "plain-small.jsonl", &plaintext_jsonl(false));
    let direct = dir.path().join("direct.jsonl");
    let s = export(
        &client,
        &plain_small,
        &direct,
        "alias/round-trip",
        ExportMode::Direct,
        context(),
        1000,
    )
    .await;
    assert_eq!(s.records, 4);
    assert_eq!(s.kms_calls, 4);
    assert_eq!(s.key_arn.as_deref(), Some(arn.as_str()));
    assert!(s.binary_as_text.is_empty());
    let text = std::fs::read_to_string(&direct).unwrap();
    assert!(!text.contains(PLANTED));
    for rec in records(&text) {
        assert_eq!(rec["key_id"], Value::String(arn.clone()));
        assert_eq!(rec["encryption_context"]["purpose"], "kms-source-test");
        assert!(!rec.contains_key("iv"));
    }
    let plain = FileSource::open(&plain_small, "plain.jsonl").unwrap();
    let source = open(&direct, client.clone());
    assert_round_trip(&plain, &source).await;
    assert_eq!(source.kms_calls(), 4);

    // envelope, 2 records per data key, no context; includes a 20 KB value
    let plain_all = write(dir.path(), "plain.jsonl", &plaintext_jsonl(true));
    let env = dir.path().join("envelope.jsonl");
    let s = export(
        &client,
        &plain_all,
        &env,
        &arn,
        ExportMode::Envelope,
        BTreeMap::new(),
        2,
    )
    .await;
    assert_eq!((s.records, s.data_keys, s.kms_calls), (5, 3, 3));
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(!text.contains(PLANTED));
    let recs = records(&text);
    assert!(recs.iter().all(|r| !r.contains_key("encryption_context")));
    assert!(recs.iter().all(|r| field(r, "iv").len() == 12));
    let plain = FileSource::open(&plain_all, "plain.jsonl").unwrap();
    let source = open(&env, client.clone());
    assert_eq!(source.data_keys(), 3);
    assert_round_trip(&plain, &source).await;
    assert_eq!(source.kms_calls(), 3, "one Decrypt per data key");
    assert_eq!(source.data_keys_decrypted(), 3);
    // a second pass is served from the cache
    assert_round_trip(&plain, &source).await;
    assert_eq!(source.kms_calls(), 3);

    // envelope with a context: the context is bound both by KMS and as GCM associated data
    let env_ctx = dir.path().join("envelope-ctx.jsonl");
    export(
        &client,
        &plain_all,
        &env_ctx,
        "alias/round-trip",
        ExportMode::Envelope,
        context(),
        1000,
    )
    .await;
    let source = open(&env_ctx, client.clone());
    assert_round_trip(&plain, &source).await;
    assert_eq!(source.kms_calls(), 1);

    // direct mode refuses the 20 KB value, naming its line; nothing is written
    let refused = dir.path().join("refused.jsonl");
    let err = kms_export(
        &plain_all,
        &refused,
        client.clone(),
        &KmsExportOptions::new(arn.clone(), ExportMode::Direct),
        limits(),
        policy(),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("line 5: app/big: value is 20023 bytes"),
        "{msg}"
    );
    assert!(!msg.contains(PLANTED));
    assert!(!refused.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn records_sharing_data_keys_cost_one_decrypt_each() {
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    let arn = create_key(&client, "shared").await;
    let dir = tempfile::tempdir().unwrap();
    let plain_text: String = (0..200)
        .map(|i| {
            format!("{{\"path\":\"svc/{i:03}\",\"value\":{{\"n\":\"{i}\",\"s\":\"{PLANTED}\"}}}}\n")
        })
        .collect();
    let plain_file = write(dir.path(), "plain.jsonl", &plain_text);
    let out = dir.path().join("kms.jsonl");
    let s = export(
        &client,
        &plain_file,
        &out,
        &arn,
        ExportMode::Envelope,
        context(),
        100,
    )
    .await;
    assert_eq!(s.data_keys, 2);

    // counting proxy (no quota), and a delay so the first Decrypt is still in flight while the
    // other 31 fetches of the first wave arrive
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    proxy.set_delay(Duration::from_millis(150));
    let source = Arc::new(open(&out, kms(proxy.endpoint())));
    let listing = source.list().await.unwrap();
    assert_eq!(listing.refs.len(), 200);
    assert_eq!(source.data_keys(), 2);

    let plain = Arc::new(FileSource::open(&plain_file, "plain.jsonl").unwrap());
    let mut plain_refs: std::collections::HashMap<String, SourceRef> = plain
        .list()
        .await
        .unwrap()
        .refs
        .into_iter()
        .map(|r| (r.path.clone(), r))
        .collect();
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = JoinSet::new();
    for r in listing.refs {
        let (source, plain, gate) = (source.clone(), plain.clone(), gate.clone());
        let plain_ref = plain_refs.remove(&r.path).unwrap();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let got = value_of(source.as_ref(), &r.path).await;
            let want = value_at(plain.as_ref(), &plain_ref).await;
            assert!(got.same_as(&want), "{}", r.path);
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    assert_eq!(proxy.forwarded("Decrypt"), 2, "{:?}", proxy.snapshot());
    assert_eq!(source.kms_calls(), 2);
    assert_eq!(source.data_keys_decrypted(), 2);
}

/// One file with good and broken records of both shapes. Returns (text, expected list problem
/// lines, expected fetch failures as (path, line, kind), good paths).
struct Broken {
    text: String,
    problem_lines: Vec<usize>,
    fetch_failures: Vec<(String, usize, SourceErrorKind)>,
    good: Vec<String>,
    /// The plaintext data keys of the envelope records (for the leak check).
    data_keys: Vec<Vec<u8>>,
    /// A second key, for pinning the wrong one.
    other_arn: String,
}

async fn broken_file(client: &aws_sdk_kms::Client, dir: &Path) -> Broken {
    let arn = create_key(client, "broken").await;
    let other_arn = create_key(client, "other").await;
    let plain: String = (0..6)
        .map(|i| format!("{{\"path\":\"p{i}\",\"value\":\"{PLANTED}-{i}\"}}\n"))
        .collect();
    let plain_file = write(dir, "plain.jsonl", &plain);
    let env_file = dir.join("env.jsonl");
    let direct_file = dir.join("direct.jsonl");
    export(
        client,
        &plain_file,
        &env_file,
        &arn,
        ExportMode::Envelope,
        context(),
        1000,
    )
    .await;
    export(
        client,
        &plain_file,
        &direct_file,
        &arn,
        ExportMode::Direct,
        context(),
        1000,
    )
    .await;
    let env = records(&std::fs::read_to_string(&env_file).unwrap());
    let direct = records(&std::fs::read_to_string(&direct_file).unwrap());

    let data_key = client
        .decrypt()
        .ciphertext_blob(Blob::new(field(&env[0], "encrypted_data_key")))
        .set_encryption_context(Some(context().into_iter().collect()))
        .send()
        .await
        .expect("Decrypt of the data key")
        .plaintext
        .unwrap()
        .into_inner();
    assert_eq!(data_key.len(), 32);

    let renamed = |src: &Map<String, Value>, path: &str| {
        let mut m = src.clone();
        m.insert("path".into(), Value::String(path.into()));
        m
    };
    let mut lines: Vec<Map<String, Value>> = Vec::new();
    // 1: good envelope
    lines.push(renamed(&env[0], "env/good"));
    // 2: envelope, wrong encryption context
    let mut r = renamed(&env[1], "env/wrong-context");
    r["encryption_context"]["team"] = Value::String("someone-else".into());
    lines.push(r);
    // 3: envelope, tampered ciphertext
    let mut r = renamed(&env[2], "env/tampered");
    let mut ct = field(&r, "ciphertext");
    ct[0] ^= 0x01;
    set(&mut r, "ciphertext", &ct);
    lines.push(r);
    // 4: envelope, truncated tag (still >= 16 bytes: caught by GCM at fetch)
    let mut r = renamed(&env[3], "env/truncated-tag");
    let ct = field(&r, "ciphertext");
    set(&mut r, "ciphertext", &ct[..ct.len() - 1]);
    lines.push(r);
    // 5: envelope, ciphertext shorter than a tag (caught at open)
    let mut r = renamed(&env[3], "env/no-tag");
    set(&mut r, "ciphertext", &ct[..10]);
    lines.push(r);
    // 6: bad base64
    let mut r = renamed(&env[4], "env/bad-base64");
    r.insert("iv".into(), Value::String("not*base64!".into()));
    lines.push(r);
    // 7: wrong IV length
    let mut r = renamed(&env[4], "env/short-iv");
    set(&mut r, "iv", &[1, 2, 3, 4, 5, 6, 7, 8]);
    lines.push(r);
    // 8: right length, wrong IV
    let mut r = renamed(&env[5], "env/wrong-iv");
    let mut iv = field(&r, "iv");
    iv[11] ^= 0x80;
    set(&mut r, "iv", &iv);
    lines.push(r);
    // 9: good direct
    lines.push(renamed(&direct[0], "direct/good"));
    // 10: direct, wrong encryption context
    let mut r = renamed(&direct[1], "direct/wrong-context");
    r["encryption_context"]
        .as_object_mut()
        .unwrap()
        .insert("extra".into(), Value::String("x".into()));
    lines.push(r);
    // 11: direct, tampered blob (last byte: inside moto's ciphertext body)
    let mut r = renamed(&direct[2], "direct/tampered");
    let mut blob = field(&r, "ciphertext");
    *blob.last_mut().unwrap() ^= 0x01;
    set(&mut r, "ciphertext", &blob);
    lines.push(r);
    // 12: direct, pinned to another key
    let mut r = renamed(&direct[3], "direct/other-key");
    r.insert("key_id".into(), Value::String(other_arn.clone()));
    lines.push(r);
    // 13: direct, bad base64
    let mut r = renamed(&direct[4], "direct/bad-base64");
    r.insert("ciphertext".into(), Value::String("@@@@".into()));
    lines.push(r);
    // 14: good envelope sharing line 1's data key
    lines.push(renamed(&env[5], "env/good-2"));
    // 15: envelope missing its iv
    let mut r = renamed(&env[5], "env/missing-iv");
    r.remove("iv");
    lines.push(r);

    let text = to_jsonl(&lines);
    assert!(!text.contains(PLANTED));
    use SourceErrorKind::*;
    Broken {
        text,
        problem_lines: vec![5, 6, 7, 13, 15],
        fetch_failures: vec![
            ("env/wrong-context".into(), 2, BadRecord),
            ("env/tampered".into(), 3, BadRecord),
            ("env/truncated-tag".into(), 4, BadRecord),
            ("env/wrong-iv".into(), 8, BadRecord),
            ("direct/wrong-context".into(), 10, BadRecord),
            ("direct/tampered".into(), 11, BadRecord),
            ("direct/other-key".into(), 12, Denied),
        ],
        good: vec!["env/good".into(), "direct/good".into(), "env/good-2".into()],
        data_keys: vec![data_key],
        other_arn,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_records_fail_with_their_lines_and_good_ones_decrypt() {
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let b = broken_file(&client, dir.path()).await;
    assert!(b.other_arn.starts_with("arn:aws:kms:"));
    let file = write(dir.path(), "broken.jsonl", &b.text);
    let source = open(&file, client.clone());
    let listing = source.list().await.unwrap();
    assert!(!listing.is_complete());
    assert_eq!(
        listing
            .problems
            .iter()
            .map(|p| p.line.unwrap())
            .collect::<Vec<_>>(),
        b.problem_lines
    );
    let by_line = |l: usize| {
        &listing
            .problems
            .iter()
            .find(|p| p.line == Some(l))
            .unwrap()
            .error
    };
    for (line, needle) in [
        (5, "shorter than the 16-byte"),
        (6, "\"iv\" is not valid base64"),
        (7, "\"iv\" must be 12 bytes"),
        (13, "\"ciphertext\" is not valid base64"),
        (15, "missing \"iv\""),
    ] {
        assert!(
            by_line(line).contains(needle),
            "line {line}: {}",
            by_line(line)
        );
    }
    assert_eq!(listing.refs.len(), 15 - b.problem_lines.len());

    for (path, line, kind) in &b.fetch_failures {
        let e = source
            .fetch(&SourceRef::new(path.clone()))
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.line), (*kind, Some(*line)), "{path}: {e}");
        assert_eq!(&e.path, path);
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("line {line}: {path}: ")), "{msg}");
        match path.as_str() {
            "env/wrong-context" | "direct/wrong-context" | "direct/tampered" => {
                assert!(msg.contains("InvalidCiphertextException"), "{msg}")
            }
            "direct/other-key" => assert!(msg.contains("AccessDeniedException"), "{msg}"),
            _ => assert!(msg.contains("AES-256-GCM authentication failed"), "{msg}"),
        }
    }
    // a record rejected at open explains itself on fetch too
    let e = source
        .fetch(&SourceRef::new("env/short-iv"))
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.line), (SourceErrorKind::BadRecord, Some(7)));

    for (i, path) in b.good.iter().enumerate() {
        let v = value_of(&source, path).await;
        assert!(!v.is_binary());
        let want = match path.as_str() {
            "env/good" => format!("{PLANTED}-0"),
            "direct/good" => format!("{PLANTED}-0"),
            _ => format!("{PLANTED}-5"),
        };
        assert_eq!(v.expose_str(), Some(want.as_str()), "good record {i}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_and_not_cached_definitive_ones_are() {
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    let arn = create_key(&client, "flaky").await;
    let dir = tempfile::tempdir().unwrap();
    let plain: String = (0..10)
        .map(|i| format!("{{\"path\":\"k{i}\",\"value\":\"v{i}\"}}\n"))
        .collect();
    let plain_file = write(dir.path(), "plain.jsonl", &plain);
    let out = dir.path().join("kms.jsonl");
    export(
        &client,
        &plain_file,
        &out,
        &arn,
        ExportMode::Envelope,
        context(),
        5,
    )
    .await;

    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let source = KmsSource::open(
        &out,
        "kms.jsonl",
        kms(proxy.endpoint()),
        limits(),
        RetryPolicy {
            base: Duration::from_millis(5),
            ..RetryPolicy::new(2)
        },
    )
    .unwrap();
    // three 500s: the first fetch spends its two attempts and fails as Unavailable...
    proxy.fail_next("Decrypt", 3, 500, "KMSInternalException");
    let e = source.fetch(&SourceRef::new("k0")).await.unwrap_err();
    assert_eq!(
        (e.kind, e.line),
        (SourceErrorKind::Unavailable, Some(1)),
        "{e}"
    );
    // ...which is not cached: the next record of that key tries again and gets through
    assert_eq!(value_of(&source, "k1").await.expose_str(), Some("v1"));
    assert_eq!(value_of(&source, "k0").await.expose_str(), Some("v0"));
    assert_eq!(proxy.forwarded("Decrypt"), 1);

    // a definitive failure (wrong context) is cached: 5 records of that key, 1 Decrypt
    let mut recs = records(&std::fs::read_to_string(&out).unwrap());
    for r in &mut recs[5..] {
        r["encryption_context"]["team"] = Value::String("nope".into());
    }
    let bad = write(dir.path(), "bad-ctx.jsonl", &to_jsonl(&recs));
    let source = open(&bad, kms(proxy.endpoint()));
    proxy.reset_counters();
    for i in 5..10 {
        let e = source
            .fetch(&SourceRef::new(format!("k{i}")))
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.line), (SourceErrorKind::BadRecord, Some(i + 1)));
    }
    assert_eq!(proxy.forwarded("Decrypt"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_secret_in_errors_listings_or_debug() {
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let b = broken_file(&client, dir.path()).await;
    let file = write(dir.path(), "broken.jsonl", &b.text);
    let source = open(&file, client.clone());

    let mut printed = vec![format!("{source:?}"), format!("{source:#?}")];
    let listing = source.list().await.unwrap();
    printed.push(format!("{listing:?}"));
    for p in &listing.problems {
        printed.push(format!("{p:?}"));
        printed.push(p.error.clone());
    }
    let mut paths: Vec<String> = listing.refs.iter().map(|r| r.path.clone()).collect();
    paths.extend(listing.problems.iter().map(|p| p.path.clone()));
    paths.push("no/such/path".into());
    for path in &paths {
        match source.fetch(&SourceRef::new(path.clone())).await {
            Ok(f) => printed.push(format!("{f:?}")),
            Err(e) => {
                printed.push(format!("{e}"));
                printed.push(format!("{e:?}"));
                printed.push(format!("{e:#?}"));
            }
        }
    }
    printed.push(format!("{source:?}")); // with the data keys cached now

    // export errors too: a plaintext file with a bad line and a value too big for direct mode
    let bad_plain = write(
        dir.path(),
        "bad-plain.jsonl",
        &format!(
            "{{\"path\":\"a\",\"value\":\"{PLANTED}\" oops}}\n{{\"path\":\"b\",\"value\":\"{}{PLANTED}\"}}\n",
            "y".repeat(5000)
        ),
    );
    let e = kms_export(
        &bad_plain,
        &dir.path().join("never.jsonl"),
        client.clone(),
        &KmsExportOptions::new("alias/broken", ExportMode::Direct),
        limits(),
        policy(),
    )
    .await
    .unwrap_err();
    printed.push(format!("{e}"));
    printed.push(format!("{e:?}"));

    let mut forbidden = vec![
        PLANTED.to_owned(),
        B64.encode(PLANTED),
        hex::encode(PLANTED),
    ];
    for k in &b.data_keys {
        forbidden.push(hex::encode(k));
        forbidden.push(hex::encode_upper(k));
        forbidden.push(B64.encode(k));
        forbidden.push(format!("{k:?}"));
    }
    let all = printed.join("\n");
    assert!(all.contains("line 2: env/wrong-context"), "{all}");
    for f in &forbidden {
        assert!(!all.contains(f.as_str()), "leaked {f:?} in:\n{all}");
    }
}

/// The envelope construction documented in `source::kms` (AAD = the context as sorted compact
/// JSON), implemented independently in Python (boto3 + `cryptography`, from the test virtualenv)
/// exactly as the module docs tell users to: secretport decrypts it. The context holds a quote,
/// non-ASCII, U+2028 and a control character, so escaping and key order are pinned too.
#[tokio::test(flavor = "multi_thread")]
async fn envelope_records_made_by_the_documented_recipe_decrypt() {
    const SCRIPT: &str = r#"
import base64, json, os, sys
import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
endpoint, key_id, out = sys.argv[1:4]
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
b64 = lambda b: base64.b64encode(b).decode()
ctx = {"tenant": "ächt \"quoted\" \\ x", "app": "db/π", "z": "\u2028sep", "Ω": "\x01ctl"}
with open(out, "w") as f:
    for context, values in [
        (ctx, [("py/text", "héllo wörld".encode()), ("py/json", b'{"b":1,"a":[2]}'),
               ("py/bin", bytes([0, 255, 128, 7]))]),
        ({}, [("py/no-context", b"plain")]),
    ]:
        if context:
            dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
            aad = json.dumps(context, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode()
        else:
            dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
            aad = b""
        for path, value in values:
            iv = os.urandom(12)
            rec = {"path": path, "encrypted_data_key": b64(dk["CiphertextBlob"]), "iv": b64(iv),
                   "ciphertext": b64(AESGCM(dk["Plaintext"]).encrypt(iv, value, aad))}
            if context:
                rec["encryption_context"] = context
            f.write(json.dumps(rec) + "\n")
"#;
    let moto = Moto::start().await;
    let client = kms(moto.endpoint());
    create_key(&client, "python").await;
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "make_export.py", SCRIPT);
    let out = dir.path().join("py.jsonl");
    let status = std::process::Command::new(crate::support::bin_path("python"))
        .arg(&script)
        .arg(moto.endpoint())
        .arg("alias/python")
        .arg(&out)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .status()
        .expect("run the test virtualenv's python");
    assert!(status.success(), "the Python exporter failed");

    let source = open(&out, client);
    let listing = source.list().await.unwrap();
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    let text = value_of(&source, "py/text").await;
    assert_eq!(text.expose_str(), Some("héllo wörld"));
    let json = value_of(&source, "py/json").await;
    assert_eq!(json.expose_str(), Some(r#"{"b":1,"a":[2]}"#));
    let bin = value_of(&source, "py/bin").await;
    assert!(bin.is_binary());
    assert_eq!(bin.expose_bytes(), &[0, 255, 128, 7]);
    let none = value_of(&source, "py/no-context").await;
    assert_eq!(none.expose_str(), Some("plain"));
    assert_eq!(source.kms_calls(), 2, "one Decrypt per data key");
}
