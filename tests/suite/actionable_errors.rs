//! Errors a user can act on, through the binary: a mistyped `AWS_PROFILE`, an SSO profile that
//! never logged in, an endpoint on a closed port (from the config and from `AWS_ENDPOINT_URL`),
//! a Vault server whose certificate comes from a private CA, and `kms-export` without a region.
//! Credential errors must come back at once (no retries) with the real cause first.

use std::time::{Duration, Instant};

use crate::cli::{Run, Workspace};

const AWS_CONFIG: &str = "\
[profile real]
region = us-east-1
aws_access_key_id = testing
aws_secret_access_key = testing

[profile ssoprof]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_account_id = 123456789012
sso_role_name = Admin
region = us-east-1
";

/// A file-source config with `endpoint` (a closed port: nothing may be contacted successfully).
fn config(endpoint: Option<&str>, tail: &str) -> String {
    format!(
        "[source]\nkind = \"file\"\nfile = \"export.jsonl\"\n[target]\nregion = \"us-east-1\"\n\
         prefix = \"p\"\n{}\n{tail}",
        endpoint
            .map(|e| format!("endpoint_url = \"{e}\""))
            .unwrap_or_default()
    )
}

/// Runs `secretport args` in `ws` with the profile files of `ws` and `env`, without the test
/// access keys (so the default chain goes to the profile), timing it.
async fn run_profile(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> (Run, Duration) {
    let mut cmd = ws.command(args, env);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", ws.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            ws.path().join("aws-credentials"),
        )
        .env("HOME", ws.path());
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: None,
        rows: Vec::new(),
    };
    (run, started.elapsed())
}

fn closed_port() -> u16 {
    // bound then dropped: nothing listens there
    crate::support::free_port()
}

#[tokio::test(flavor = "multi_thread")]
async fn mistyped_profile_fails_at_once_with_the_real_cause() {
    let ws = Workspace::new();
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    ws.write("aws-config", AWS_CONFIG);
    ws.write("aws-credentials", "");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    ws.write("cfg.toml", &config(Some(&endpoint), ""));

    let (run, took) =
        run_profile(&ws, &["plan", "-c", "cfg.toml"], &[("AWS_PROFILE", "nope")]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("profile `nope` (from AWS_PROFILE) was not defined in"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("already taken"), "{}", run.stderr);
    // 8 attempts with backoff took 6 s; one attempt is well under a second
    assert!(took < Duration::from_secs(3), "took {took:?}: retried?");

    let (run, took) = run_profile(
        &ws,
        &["plan", "-c", "cfg.toml"],
        &[("AWS_PROFILE", "ssoprof")],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("run `aws sso login --profile ssoprof`"),
        "{}",
        run.stderr
    );
    assert!(took < Duration::from_secs(3), "took {took:?}: retried?");

    // the right profile gets as far as the (closed) endpoint, which the message names
    ws.write(
        "cfg1.toml",
        &config(Some(&endpoint), "[limits]\nmax_attempts = 1\n"),
    );
    let (run, _) = run_profile(
        &ws,
        &["plan", "-c", "cfg1.toml"],
        &[("AWS_PROFILE", "real")],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot reach {endpoint} (from target.endpoint_url in the config)"
        )),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_endpoint_is_named_with_its_origin() {
    let ws = Workspace::new();
    ws.write("export.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    ws.write(
        "cfg.toml",
        &config(Some(&endpoint), "[limits]\nmax_attempts = 1\n"),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(1);
    let want = format!("cannot reach {endpoint} (from target.endpoint_url in the config)");
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    assert!(
        run.rows.iter().any(|r| r["error"].contains(&want)),
        "{:#?}",
        run.rows
    );

    ws.write("cfg.toml", &config(None, "[limits]\nmax_attempts = 1\n"));
    let run = ws
        .run_with(
            &["plan", "-c", "cfg.toml"],
            &[("AWS_ENDPOINT_URL", &endpoint)],
        )
        .await;
    run.expect_code(1);
    assert!(
        run.stderr
            .contains(&format!("cannot reach {endpoint} (from AWS_ENDPOINT_URL)")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_tls_error_suggests_ca_cert() {
    let port = crate::support::free_port_pair();
    let ws = Workspace::new();
    let certs = ws.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let _bao = crate::support::ServerProcess::spawn(
        "bao-tls",
        &crate::support::bin_path("bao"),
        &[
            "server".into(),
            "-dev".into(),
            "-dev-tls".into(),
            format!("-dev-tls-cert-dir={}", certs.display()),
            "-dev-root-token-id=root".into(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(certs.join("vault-ca.pem").is_file()
        && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    {
        assert!(Instant::now() < deadline, "bao -dev-tls did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let vault = |ca: &str| {
        format!(
            "[source]\nkind = \"vault\"\naddress = \"https://127.0.0.1:{port}\"\nmount = \"secret\"\n\
             auth = {{ method = \"token\", token_env = \"VT\" }}\n{ca}\n[target]\n\
             region = \"us-east-1\"\nprefix = \"t\"\nendpoint_url = \"http://127.0.0.1:{}\"\n\
             [limits]\nmax_attempts = 1\n",
            closed_port()
        )
    };
    ws.write("cfg.toml", &vault(""));
    let env = [("VT", "root")];
    let run = ws.run_with(&["plan", "-c", "cfg.toml"], &env).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("set source.ca_cert (or VAULT_CACERT)"),
        "{}",
        run.stderr
    );
    // and with the CA the Vault side works: the run gets past TLS (and stops on the empty mount
    // or the closed AWS endpoint)
    ws.write("cfg.toml", &vault("ca_cert = \"certs/vault-ca.pem\""));
    let run = ws.run_with(&["plan", "-c", "cfg.toml"], &env).await;
    assert!(
        !run.stderr.contains("ca_cert") && !run.stderr.contains("certificate"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("0 secrets found") || run.stderr.contains("cannot reach http://"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_export_without_region_says_pass_region() {
    let ws = Workspace::new();
    ws.write("plain.jsonl", "{\"path\":\"a\",\"value\":\"b\"}\n");
    let mut cmd = ws.command(
        &[
            "kms-export",
            "--input",
            "plain.jsonl",
            "--output",
            "out.jsonl",
            "--key-id",
            "alias/x",
        ],
        &[],
    );
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("pass --region"), "{stderr}");
    assert!(!stderr.contains("target.region"), "{stderr}");
    assert!(!ws.path().join("out.jsonl").exists());
}
