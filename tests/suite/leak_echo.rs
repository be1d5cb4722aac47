//! Nothing leaks even when the server echoes the request: a proxy in front of a real moto
//! answers CreateSecret / PutSecretValue with errors that quote the request body (an AWS-shaped
//! JSON error, a WAF's HTML page, a truncated plain-text excerpt). The planted values must not
//! appear, in any form, in the binary's stdout, stderr or report, while the error itself (its
//! code and the `[REDACTED]` mark where the value was) still does.

use crate::cli::{file_config, Run, Workspace};
use crate::support::{Echo, Moto, ThrottleProxy};
use base64::Engine;

/// An object value with quotes, `<&>`, unicode and a number literal in it (JSON-escaping changes
/// it inside the request body).
const OBJECT: &str =
    r#"{"db":"Pl4ntedObj-<&>\"q\" caf\u00e9 😀","pin":1.50,"k":"Pl4ntedObj-tail"}"#;
/// A string value with a newline and a backslash.
const STRING: &str = "Pl4ntedStr-line1\nline2 \\ back \"quoted\" été";
/// A binary value (not UTF-8).
fn binary() -> Vec<u8> {
    let mut b = b"Pl4ntedBin-".to_vec();
    b.extend((0u8..=255).rev().step_by(3));
    b
}

fn export(object: &str, string: &str, bin: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bin);
    format!(
        "{{\"path\":\"leak/object\",\"value\":{object}}}\n\
         {{\"path\":\"leak/string\",\"value\":{}}}\n\
         {{\"path\":\"leak/binary\",\"value_base64\":\"{b64}\"}}\n",
        serde_json::to_string(string).unwrap()
    )
}

/// Every form a value could leak in: raw, JSON-escaped (as inside the request body),
/// ASCII-escaped, base64, plus the planted marker itself.
fn markers(values: &[Vec<u8>]) -> Vec<String> {
    let mut out = vec!["Pl4nted".to_owned()];
    for v in values {
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        out.push(b64.trim_end_matches('=').to_owned());
        if let Ok(s) = std::str::from_utf8(v) {
            out.push(s.to_owned());
            let json = serde_json::to_string(s).unwrap();
            out.push(json.trim_matches('"').to_owned());
            out.push(
                serde_json::to_string(&json)
                    .unwrap()
                    .trim_matches('"')
                    .to_owned(),
            );
        }
    }
    out
}

fn assert_clean(run: &Run, values: &[Vec<u8>], what: &str) {
    let all = run.all_output();
    for m in markers(values) {
        assert!(
            !all.contains(&m),
            "{what}: planted value form {m:?} leaked:\n{all}"
        );
    }
}

/// The decoded plaintext of the three values (the object as its exact text).
fn plain(object: &str, string: &str, bin: &[u8]) -> Vec<Vec<u8>> {
    vec![
        object.as_bytes().to_vec(),
        string.as_bytes().to_vec(),
        bin.to_vec(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_request_bodies_never_reach_output_or_report() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let ws = Workspace::new();
    let bin = binary();
    ws.write("export.jsonl", &export(OBJECT, STRING, &bin));
    ws.write(
        "cfg.toml",
        &file_config(proxy.endpoint(), "leak", "", "[limits]\nmax_attempts = 2\n"),
    );
    let values = plain(OBJECT, STRING, &bin);
    // Everything at debug, ours at trace. At `trace` the AWS SDK itself logs response bodies;
    // `secretport::log_filter::log_filter` caps it, once main.rs builds its subscriber with it
    // (then this can be plain "trace").
    let trace = [("RUST_LOG", "trace")];

    for (status, echo) in [
        (400, Echo::AwsJson),
        (500, Echo::Html),
        (403, Echo::Truncated),
    ] {
        proxy.echo_next("CreateSecret", 1000, status, echo);
        let run = ws
            .run_with(&["migrate", "-c", "cfg.toml", "--yes"], &trace)
            .await;
        run.expect_code(1);
        assert_eq!(
            run.count("create", "failed"),
            3,
            "{echo:?}: {:#?}",
            run.rows
        );
        assert!(proxy.injected("CreateSecret") > 0);
        for r in run.failed() {
            assert!(
                r["error"].contains("CreateSecret"),
                "{echo:?}: {}",
                r["error"]
            );
        }
        // the JSON echo reaches the error text (so the test tests something) and is scrubbed;
        // the SDK reports non-JSON pages as unparseable without quoting them
        assert!(
            echo != Echo::AwsJson || run.all_output().contains("[REDACTED]"),
            "{echo:?}: no scrubbed echo seen:\n{}",
            run.all_output()
        );
        assert_clean(&run, &values, &format!("CreateSecret {echo:?}"));
        proxy.echo_next("CreateSecret", 0, 400, echo);
        proxy.reset_counters();
    }

    // create them for real, then make PutSecretValue echo
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);

    let object2 = OBJECT.replace("Pl4ntedObj", "Pl4ntedObj2");
    let string2 = STRING.replace("Pl4ntedStr", "Pl4ntedStr2");
    let mut bin2 = bin.clone();
    bin2.push(7);
    ws.write("export.jsonl", &export(&object2, &string2, &bin2));
    let values2 = plain(&object2, &string2, &bin2);
    for (status, echo) in [(400, Echo::AwsJson), (502, Echo::Html)] {
        proxy.echo_next("PutSecretValue", 1000, status, echo);
        let run = ws
            .run_with(&["migrate", "-c", "cfg.toml", "--yes"], &trace)
            .await;
        run.expect_code(1);
        assert_eq!(
            run.count("update", "failed"),
            3,
            "{echo:?}: {:#?}",
            run.rows
        );
        assert!(
            echo != Echo::AwsJson || run.all_output().contains("[REDACTED]"),
            "{}",
            run.all_output()
        );
        assert_clean(&run, &values2, &format!("PutSecretValue {echo:?}"));
    }
}

/// `kms-export --mode direct` sends each plaintext to `kms:Encrypt`: an echo of that request
/// must not reach the output either.
#[tokio::test(flavor = "multi_thread")]
async fn kms_export_encrypt_echo_is_scrubbed() {
    let moto = Moto::start().await;
    let key = moto
        .kms_client("us-east-1")
        .create_key()
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    proxy.echo_next("Encrypt", 1000, 400, Echo::AwsJson);
    let ws = Workspace::new();
    ws.write(
        "plain.jsonl",
        &format!(
            "{{\"path\":\"leak/object\",\"value\":{OBJECT}}}\n{{\"path\":\"leak/string\",\"value\":{}}}\n",
            serde_json::to_string(STRING).unwrap()
        ),
    );
    let run = ws
        .run_with(
            &[
                "kms-export",
                "--input",
                "plain.jsonl",
                "--output",
                "out.jsonl",
                "--key-id",
                &key_id,
                "--mode",
                "direct",
                "--endpoint-url",
                proxy.endpoint(),
            ],
            &[("RUST_LOG", "trace")],
        )
        .await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(proxy.injected("Encrypt") > 0);
    assert!(run.stderr.contains("[REDACTED]"), "{}", run.stderr);
    let values = vec![OBJECT.as_bytes().to_vec(), STRING.as_bytes().to_vec()];
    assert_clean(&run, &values, "kms-export Encrypt");
}
