//! The `kms` source end to end, through the real binary: `secretport kms-export` encrypts a
//! plaintext export through moto's KMS (direct and envelope), `secretport migrate` with
//! `kind = "kms"` moves it into moto's Secrets Manager, and the values read back through the AWS
//! SDK equal the plaintext. Broken records fail with their line numbers while the good ones
//! migrate, and nothing secret (values or data keys) reaches stdout, stderr or the report.

use crate::cli::{line, Workspace};
use crate::support::Moto;
use aws_sdk_kms::primitives::Blob;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

const PLANTED: [&str; 3] = [
    "kms-PLANTED-obj-5a1c",
    "kms-PLANTED-str-e02b",
    "kms-PLANTED-bin-77d4",
];

fn plaintext() -> (String, Vec<u8>) {
    let mut binary = vec![0x30, 0x82, 0xff, 0x00];
    binary.extend_from_slice(PLANTED[2].as_bytes());
    let lines = [
        line(
            "app/db",
            json!({"user": "app", "password": PLANTED[0], "port": 5432}),
        ),
        line("app/api key", json!(PLANTED[1])),
        format!(
            r#"{{"path":"app/tls.der","value_base64":"{}"}}"#,
            B64.encode(&binary)
        ),
        line("app/café", json!("unicode ✓")),
    ];
    (lines.join("\n") + "\n", binary)
}

fn kms_config(endpoint: &str, prefix: &str, file: &str) -> String {
    format!(
        r#"[source]
kind = "kms"
file = "{file}"

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{endpoint}"
"#
    )
}

/// Creates a key with alias `alias/<alias>` in moto.
async fn create_key(kms: &aws_sdk_kms::Client, alias: &str) {
    let key = kms.create_key().send().await.expect("CreateKey");
    let id = key.key_metadata().expect("metadata").key_id().to_owned();
    kms.create_alias()
        .alias_name(format!("alias/{alias}"))
        .target_key_id(id)
        .send()
        .await
        .expect("CreateAlias");
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("export line is JSON"))
        .collect()
}

async fn assert_migrated(moto: &Moto, prefix: &str, binary: &[u8]) {
    let sm = moto.sm_client("us-east-1");
    let get = |name: String| {
        let sm = sm.clone();
        async move {
            sm.get_secret_value()
                .secret_id(&name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetSecretValue {name}: {e:?}"))
        }
    };
    let db = get(format!("{prefix}/app/db")).await;
    let db: Value = serde_json::from_str(db.secret_string().expect("string")).expect("json");
    assert_eq!(
        db,
        json!({"user": "app", "password": PLANTED[0], "port": 5432})
    );
    let key = get(format!("{prefix}/app/api_key")).await;
    assert_eq!(key.secret_string(), Some(PLANTED[1]));
    let der = get(format!("{prefix}/app/tls.der")).await;
    assert_eq!(der.secret_string(), None, "non-UTF-8 bytes stay binary");
    assert_eq!(der.secret_binary().map(|b| b.as_ref()), Some(binary));
    let cafe = get(format!("{prefix}/app/cafe")).await;
    assert_eq!(cafe.secret_string(), Some("unicode ✓"));
}

/// A moto with a key `alias/<alias>`, and a workspace holding the plaintext as `plain.jsonl`.
async fn setup(alias: &str) -> (Moto, aws_sdk_kms::Client, Workspace, Vec<u8>) {
    let moto = Moto::start().await;
    let kms = moto.kms_client("us-east-1");
    create_key(&kms, alias).await;
    let ws = Workspace::new();
    let (plain, binary) = plaintext();
    ws.write("plain.jsonl", &plain);
    (moto, kms, ws, binary)
}

/// `secretport kms-export` of `plain.jsonl` with context app=payments.
async fn kms_export(
    ws: &Workspace,
    moto: &Moto,
    alias: &str,
    mode: &str,
    out: &str,
) -> crate::cli::Run {
    let key = format!("alias/{alias}");
    ws.run(&[
        "kms-export",
        "--input",
        "plain.jsonl",
        "--output",
        out,
        "--key-id",
        &key,
        "--mode",
        mode,
        "--context",
        "app=payments",
        "--endpoint-url",
        moto.endpoint(),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn both_formats_export_migrate_and_read_back_equal() {
    let (moto, _kms, ws, binary) = setup("export").await;

    for mode in ["direct", "envelope"] {
        let out = format!("{mode}.jsonl");
        let export = kms_export(&ws, &moto, "export", mode, &out).await;
        export.expect_code(0);
        assert!(
            export.stderr.contains("4 record(s) encrypted"),
            "{}",
            export.stderr
        );
        let text = std::fs::read_to_string(ws.path().join(&out)).expect("export written");
        assert!(!text.contains(PLANTED[1]), "the export holds no plaintext");
        for r in records(&text) {
            assert_eq!(r["encryption_context"], json!({"app": "payments"}));
            assert_eq!(
                r.get("encrypted_data_key").is_some(),
                mode == "envelope",
                "{r}"
            );
        }

        ws.write("cfg.toml", &kms_config(moto.endpoint(), mode, &out));
        let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
        run.expect_code(0);
        assert_eq!(run.count("create", "ok"), 4, "{:#?}", run.rows);
        assert_eq!(
            run.row("app/db")["target_name"],
            format!("{mode}/app/db"),
            "names follow the naming rules"
        );
        assert_migrated(&moto, mode, &binary).await;

        let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
        rerun.expect_code(0);
        assert_eq!(rerun.count("unchanged", "ok"), 4);
    }

    // a bad mode or a missing key: usage errors
    let bad = ws
        .run(&[
            "kms-export",
            "--input",
            "plain.jsonl",
            "--output",
            "x.jsonl",
            "--key-id",
            "alias/export",
            "--mode",
            "sideways",
        ])
        .await;
    bad.expect_code(64);
    assert!(bad.stderr.contains("--mode"), "{}", bad.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_records_fail_with_line_numbers_and_nothing_secret_is_printed() {
    let (moto, kms, ws, binary) = setup("broken").await;
    let export = kms_export(&ws, &moto, "broken", "envelope", "env.jsonl").await;
    export.expect_code(0);
    let good = records(&std::fs::read_to_string(ws.path().join("env.jsonl")).unwrap());
    assert_eq!(good.len(), 4);

    // the plaintext data key, to prove it never leaks
    let edk = B64
        .decode(good[0]["encrypted_data_key"].as_str().unwrap())
        .unwrap();
    let data_key = kms
        .decrypt()
        .ciphertext_blob(Blob::new(edk))
        .encryption_context("app", "payments")
        .send()
        .await
        .expect("Decrypt")
        .plaintext()
        .expect("plaintext")
        .as_ref()
        .to_vec();

    let broken = |path: &str, f: &dyn Fn(&mut Value)| {
        let mut r = good[1].clone();
        r["path"] = json!(path);
        f(&mut r);
        r.to_string()
    };
    let flip_last_byte = |r: &mut Value| {
        let mut c = B64.decode(r["ciphertext"].as_str().unwrap()).unwrap();
        let n = c.len();
        c[n - 1] ^= 1;
        r["ciphertext"] = json!(B64.encode(c));
    };
    let mut lines: Vec<String> = good.iter().map(Value::to_string).collect();
    lines.push(broken("bad/context", &|r| {
        r["encryption_context"] = json!({"app": "other"})
    })); // line 5
    lines.push(broken("bad/tampered", &flip_last_byte)); // line 6
    lines.push(broken("bad/truncated", &|r| {
        let c = B64.decode(r["ciphertext"].as_str().unwrap()).unwrap();
        r["ciphertext"] = json!(B64.encode(&c[..8]));
    })); // line 7
    lines.push(broken("bad/base64", &|r| r["iv"] = json!("%%%not base64"))); // line 8
    lines.push(broken("bad/iv", &|r| r["iv"] = json!(B64.encode([0u8; 8])))); // line 9
    ws.write("env.jsonl", &(lines.join("\n") + "\n"));
    ws.write("cfg.toml", &kms_config(moto.endpoint(), "bk", "env.jsonl"));

    let run = ws
        .run_with(
            &["migrate", "-c", "cfg.toml", "--yes"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    run.expect_code(1);
    assert_eq!(run.count("create", "ok"), 4, "{:#?}", run.rows);
    assert_migrated(&moto, "bk", &binary).await;
    let failed = run.failed();
    assert_eq!(failed.len(), 5, "{failed:#?}");
    for (path, line) in [
        ("bad/context", 5),
        ("bad/tampered", 6),
        ("bad/truncated", 7),
        ("bad/base64", 8),
        ("bad/iv", 9),
    ] {
        let row = failed
            .iter()
            .find(|r| r["source_path"] == path || r["error"].contains(path))
            .unwrap_or_else(|| panic!("no failed row for {path}: {failed:#?}"));
        assert!(
            row["error"].contains(&format!("line {line}")),
            "{path}: {row:?}"
        );
    }

    let all = run.all_output();
    assert!(all.len() > 2000, "trace logging produced output to search");
    let mut needles: Vec<String> = PLANTED.iter().map(|s| s.to_string()).collect();
    needles.push(B64.encode(&data_key));
    needles.push(hex::encode(&data_key));
    needles.push(B64.encode(&binary));
    needles.push(format!("{:?}", &data_key[..8]));
    for n in &needles {
        assert!(!all.contains(n.as_str()), "{n} leaked");
    }
}
