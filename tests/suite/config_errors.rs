//! A table of bad configs: each must exit 64, name the offending key and say what is expected,
//! before any network call (the endpoints point at a closed port: contacting it would fail
//! differently and slowly).

use crate::cli::Workspace;

const BASE: &str = r#"
[source]
kind = "file"
file = "export.jsonl"

[target]
region = "us-east-1"
prefix = "devops"
endpoint_url = "http://127.0.0.1:9"
"#;

fn with(find: &str, replace: &str) -> String {
    assert!(BASE.contains(find), "{find}");
    BASE.replacen(find, replace, 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configs_name_their_key_and_exit_64() {
    let mut ws = Workspace::new();
    ws.env("SET_TOKEN", "t");
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    ws.write(
        "bad-overrides.csv",
        "source,target\na,devops/x\nb,bad name!\n",
    );
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("unknown top-level key", format!("{BASE}\n[extra]\nx = 1\n"), &["extra: unknown key"]),
        ("typo in a key", with("prefix = \"devops\"", "prefx = \"devops\""), &["target.prefx: unknown key"]),
        ("missing source", BASE.replace("[source]\nkind = \"file\"\nfile = \"export.jsonl\"\n", ""), &["source: missing"]),
        ("bad source kind", with("kind = \"file\"", "kind = \"s3\""), &["source.kind", "\"vault\", \"kms\", \"file\", \"ssm\", \"sops\" or \"credstash\""]),
        ("missing export file", with("file = \"export.jsonl\"", "file = \"nope.jsonl\""), &["source.file", "does not exist"]),
        ("bad region", with("region = \"us-east-1\"", "region = \"Mars\""), &["target.region", "us-east-1"]),
        ("wrong type", with("region = \"us-east-1\"", "region = 5"), &["target.region: expected"]),
        ("bad endpoint", with("endpoint_url = \"http://127.0.0.1:9\"", "endpoint_url = \"localhost:9\""), &["target.endpoint_url", "http(s) URL"]),
        ("bad prefix", with("prefix = \"devops\"", "prefix = \"dev ops\""), &["target.prefix"]),
        ("bad on_conflict", format!("{BASE}on_conflict = \"merge\"\n"), &["target.on_conflict", "\"skip\", \"adopt\", \"overwrite\" or \"fail\""]),
        ("reserved tag", format!("{BASE}tags = {{ \"aws:x\" = \"y\" }}\n"), &["target.tags.aws:x", "reserved"]),
        (
            "duration out of range",
            format!("{BASE}credentials = {{ type = \"assume-role\", role_arn = \"arn:aws:iam::123456789012:role/m\", duration_seconds = 60 }}\n"),
            &["target.credentials.duration_seconds: must be 900..=43200"],
        ),
        (
            "bad role arn",
            format!("{BASE}credentials = {{ type = \"assume-role\", role_arn = \"role/m\" }}\n"),
            &["target.credentials.role_arn", "IAM role ARN"],
        ),
        (
            "unset key env var",
            format!("{BASE}credentials = {{ type = \"access-keys\", access_key_id_env = \"NOPE_AK\", secret_access_key_env = \"SET_TOKEN\" }}\n"),
            &["target.credentials.access_key_id_env", "NOPE_AK is not set"],
        ),
        (
            "unknown credential type",
            format!("{BASE}credentials = {{ type = \"sso\" }}\n"),
            &["target.credentials.type"],
        ),
        ("limits out of range", format!("{BASE}\n[limits]\nwrite_per_second = 0\nconcurrency = 5000\n"), &["limits.write_per_second: must be 1..=10000", "limits.concurrency: must be 1..=1024"]),
        ("bad policy", format!("{BASE}\n[naming]\npolicy = \"strict\"\n"), &["naming.policy", "\"aws\" or \"alphanumeric\""]),
        ("invalid override", format!("{BASE}\n[naming]\noverrides = \"bad-overrides.csv\"\n"), &["naming.overrides", "line 3"]),
        ("recovery window", format!("{BASE}\n[reconcile]\nrecovery_window_days = 3\n"), &["reconcile.recovery_window_days: must be 7..=30"]),
        (
            "vault without token",
            "[source]\nkind = \"vault\"\naddress = \"http://127.0.0.1:9\"\nmount = \"secret\"\nauth = { method = \"token\", token_env = \"NO_SUCH_TOKEN\" }\n[target]\nregion = \"us-east-1\"\n".to_string(),
            &["source.auth.token_env", "NO_SUCH_TOKEN is not set"],
        ),
        (
            "approle missing env",
            "[source]\nkind = \"vault\"\naddress = \"http://127.0.0.1:9\"\nmount = \"secret\"\nauth = { method = \"approle\", role_id_env = \"SET_TOKEN\" }\n[target]\nregion = \"us-east-1\"\n".to_string(),
            &["source.auth.secret_id_env: missing"],
        ),
        (
            "bad kv version",
            "[source]\nkind = \"vault\"\naddress = \"http://127.0.0.1:9\"\nmount = \"secret\"\nkv_version = 3\nauth = { method = \"token\", token_env = \"SET_TOKEN\" }\n[target]\nregion = \"us-east-1\"\n".to_string(),
            &["source.kv_version: must be 1 or 2"],
        ),
        ("not toml", "[source\nkind=".to_string(), &["not valid TOML", "line 1"]),
    ];
    for (what, cfg, expect) in &cases {
        ws.write("cfg.toml", cfg);
        for cmd in ["plan", "migrate"] {
            let run = ws
                .run(&[cmd, "-c", "cfg.toml", "--yes"][..if cmd == "plan" { 3 } else { 4 }])
                .await;
            assert_eq!(run.code, 64, "{what} ({cmd}): {}", run.stderr);
            for e in *expect {
                assert!(
                    run.stderr.contains(e),
                    "{what}: expected {e:?} in:\n{}",
                    run.stderr
                );
            }
            assert!(run.report.is_none(), "{what}: no report for a bad config");
        }
    }

    // every problem at once
    ws.write(
        "cfg.toml",
        &format!("{BASE}on_conflict = \"merge\"\n[limits]\nconcurrency = 0\nburst = 1\n"),
    );
    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    assert_eq!(run.code, 64);
    for k in ["target.on_conflict", "limits.concurrency", "limits.burst"] {
        assert!(run.stderr.contains(k), "{k} in {}", run.stderr);
    }
    assert!(run.stderr.contains("3 problem(s)"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn typos_in_source_and_target_say_did_you_mean() {
    let ws = Workspace::new();
    // [source]: the typo of a required key is one message, not "unknown" beside "missing"
    ws.write(
        "cfg.toml",
        "[source]\nkind = \"vault\"\naddres = \"http://127.0.0.1:9\"\nmount = \"secret\"\n\
         auth = { method = \"token\", token_env = \"NO_SUCH_TOKEN_VAR\" }\n\
         [target]\nregion = \"us-east-1\"\nprefix = \"p\"\n",
    );
    let run = ws
        .run_with(&["plan", "-c", "cfg.toml"], &[("NO_SUCH_TOKEN_VAR", "t")])
        .await;
    assert_eq!(run.code, 64, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "source.addres: unknown key; did you mean `address`? `address` is missing; expected the Vault URL"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("source.address:"), "{}", run.stderr);
    assert!(run.stderr.contains("1 problem(s)"), "{}", run.stderr);

    // [target]: a required key, an optional one, a transposition, and one too far from any
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    ws.write(
        "cfg.toml",
        "[source]\nkind = \"file\"\nfile = \"export.jsonl\"\n\
         [target]\nregion = \"us-east-1\"\nprefx = \"p\"\nendpoint_ur = \"http://127.0.0.1:9\"\n\
         on_conflcit = \"fail\"\nzzzzzz = 1\n",
    );
    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    assert_eq!(run.code, 64, "{}", run.stderr);
    for want in [
        "target.prefx: unknown key; did you mean `prefix`? `prefix` is missing; expected a name prefix",
        "target.endpoint_ur: unknown key; did you mean `endpoint_url`?\n",
        "target.on_conflcit: unknown key; did you mean `on_conflict`?\n",
        "target.zzzzzz: unknown key\n",
    ] {
        assert!(run.stderr.contains(want), "{want:?} in\n{}", run.stderr);
    }
    assert!(run.stderr.contains("4 problem(s)"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_usage_exits_64_and_help_exits_0() {
    let ws = Workspace::new();
    let run = ws.run(&["migrate"]).await;
    assert_eq!(run.code, 64, "{}", run.stderr);
    let run = ws.run(&["frobnicate"]).await;
    assert_eq!(run.code, 64);
    let run = ws.run(&["--help"]).await;
    assert_eq!(run.code, 0);
    for c in ["rename", "plan", "migrate", "reconcile"] {
        assert!(run.stdout.contains(c), "{c} in help");
    }
    let run = ws.run(&["reconcile", "--help"]).await;
    assert!(run.stdout.contains("--check") && run.stdout.contains("--prune"));
    let run = ws.run(&["rename", "--prefix", "bad prefix!"]).await;
    assert_eq!(run.code, 64);
    assert!(run.stderr.contains("--prefix"), "{}", run.stderr);
}

/// A credential pasted into a `*_env` key (quoted, unquoted, as a number, or an access key id
/// that looks like a variable name) is refused with the key and what it must hold, and the
/// value is never repeated: not on stderr, not on stdout.
#[tokio::test(flavor = "multi_thread")]
async fn credentials_pasted_into_env_keys_are_refused_without_echo() {
    let mut ws = Workspace::new();
    ws.env("SET_TOKEN", "t");
    ws.env("BLANK_TOKEN", "  \t ");
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    let vault = |auth: &str| {
        format!(
            "[source]\nkind = \"vault\"\naddress = \"http://127.0.0.1:9\"\nmount = \"secret\"\n\
             auth = {auth}\n[target]\nregion = \"us-east-1\"\nendpoint_url = \"http://127.0.0.1:9\"\n"
        )
    };
    let token = "hvs.CAESIPl4ntedT0kenZZZZZZZZZZZZZZZZ";
    let cases: Vec<(&str, String, &str, &[&str])> = vec![
        (
            "vault token in token_env",
            vault(&format!("{{ method = \"token\", token_env = \"{token}\" }}")),
            token,
            &["source.auth.token_env", "must name an environment variable"],
        ),
        (
            "unquoted token (TOML syntax error)",
            vault(&format!("{{ method = \"token\", token_env = {token} }}")),
            "Pl4nted",
            &["not valid TOML", "line 5"],
        ),
        (
            "PIN as a number",
            vault("{ method = \"approle\", role_id_env = 918273, secret_id_env = \"SET_TOKEN\" }"),
            "918273",
            &["source.auth.role_id_env", "must name an environment variable"],
        ),
        (
            "secret access key",
            format!(
                "{BASE}credentials = {{ type = \"access-keys\", access_key_id_env = \"SET_TOKEN\", \
                 secret_access_key_env = \"wJalrXUtnPl4nted/K7MDENG/bPxRfiCYEXAMPLEKEY\" }}\n"
            ),
            "Pl4nted",
            &["target.credentials.secret_access_key_env", "must name an environment variable"],
        ),
        (
            "access key id",
            format!(
                "{BASE}credentials = {{ type = \"access-keys\", access_key_id_env = \"AKIAPL4NTEDEXAMPLE12\", \
                 secret_access_key_env = \"SET_TOKEN\" }}\n"
            ),
            "AKIAPL4NTEDEXAMPLE12",
            &["target.credentials.access_key_id_env", "looks like an AWS access key id"],
        ),
        (
            "whitespace-only variable",
            vault("{ method = \"token\", token_env = \"BLANK_TOKEN\" }"),
            "\t",
            &["source.auth.token_env", "environment variable BLANK_TOKEN is only whitespace"],
        ),
    ];
    for (what, cfg, secret, expect) in &cases {
        ws.write("cfg.toml", cfg);
        let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
        assert_eq!(run.code, 64, "{what}: {}", run.stderr);
        for e in *expect {
            assert!(
                run.stderr.contains(e),
                "{what}: expected {e:?} in:\n{}",
                run.stderr
            );
        }
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{what}: the value was echoed:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_region_anywhere_is_a_usage_error() {
    let ws = Workspace::new();
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"v\"}\n");
    ws.write(
        "cfg.toml",
        "[source]\nkind = \"file\"\nfile = \"export.jsonl\"\n[target]\nprefix = \"p\"\nendpoint_url = \"http://127.0.0.1:9\"\n",
    );
    let mut cmd = ws.command(&["plan", "-c", "cfg.toml"], &[]);
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("no AWS region") && stderr.contains("target.region"),
        "{stderr}"
    );
}
