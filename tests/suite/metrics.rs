//! `--metrics-file` and `--pushgateway` through the binary, checked with the real Prometheus
//! tools: the textfile parses with `promtool check metrics`, a real Pushgateway shows what was
//! pushed, the last success survives a failed run in both, a metrics write or push that fails
//! is a warning that leaves the exit code alone, and the alert rules of docs/operations.md pass
//! `promtool check rules` and fire when they should (`promtool test rules`).

use crate::cli::{file_config, string_export as export, Workspace};
use crate::support::prom::{promtool, sample, Pushgateway};
use crate::support::{free_port, repo_root, Moto, ThrottleProxy};

fn check_metrics(text: &str, dir: &std::path::Path) {
    let out = promtool(&["check", "metrics"], text.as_bytes(), dir);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const BROKEN: &str = "[source]\nkind = \"nope\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn metrics_file_parses_keeps_the_last_success_and_never_changes_the_exit_code() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &export(&[("db", "p1"), ("api", "k1"), ("web", "w1")]),
    );
    let config = file_config(moto.endpoint(), "m", "", "");
    ws.write("nightly.toml", &config);
    std::fs::create_dir(ws.path().join("textfile")).unwrap();
    let file = ws.path().join("textfile/secretport.prom");
    let file_arg = file.to_str().unwrap();

    let run = ws
        .run(&[
            "migrate",
            "-c",
            "nightly.toml",
            "--yes",
            "--metrics-file",
            file_arg,
        ])
        .await;
    run.expect_code(0);
    let text = std::fs::read_to_string(&file).unwrap();
    check_metrics(&text, ws.path());
    let l = ["command=\"migrate\"", "config=\"nightly\""];
    let with = |extra: &[&'static str]| -> Vec<&str> { l.iter().chain(extra).copied().collect() };
    assert_eq!(
        sample(&text, "secretport_exit_code", &l),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "secretport_secrets",
            &with(&[
                "secretport_job=\"default\"",
                "action=\"create\"",
                "status=\"ok\""
            ])
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "secretport_drift_secrets",
            &with(&["secretport_job=\"default\""])
        ),
        Some(3.0),
        "{text}"
    );
    for group in ["group=\"write\"", "group=\"read\""] {
        assert_eq!(
            sample(&text, "secretport_throttled_calls", &with(&[group])),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "secretport_retried_calls", &with(&[group])),
            Some(0.0),
            "{text}"
        );
    }
    let success = sample(&text, "secretport_last_success_timestamp_seconds", &l).expect("success");
    let last_run = sample(&text, "secretport_last_run_timestamp_seconds", &l).expect("last run");
    assert_eq!(success, last_run);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - success).abs() < 120.0, "{success} vs {now}");
    assert!(sample(&text, "secretport_run_duration_seconds", &l).unwrap() > 0.0);
    // only the file itself is left: the temporary file was renamed into place
    let names: Vec<_> = std::fs::read_dir(ws.path().join("textfile"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("secretport.prom")]);

    // the next night the config is broken: exit 64, and the last success is the earlier one
    ws.write("nightly.toml", BROKEN);
    let run = ws
        .run(&[
            "migrate",
            "-c",
            "nightly.toml",
            "--yes",
            "--metrics-file",
            file_arg,
        ])
        .await;
    run.expect_code(64);
    let text = std::fs::read_to_string(&file).unwrap();
    check_metrics(&text, ws.path());
    assert_eq!(sample(&text, "secretport_exit_code", &l), Some(64.0));
    assert_eq!(
        sample(&text, "secretport_last_success_timestamp_seconds", &l),
        Some(success),
        "{text}"
    );
    assert!(sample(&text, "secretport_last_run_timestamp_seconds", &l).unwrap() >= last_run);

    // a metrics file that cannot be written and a gateway that is not there: warnings, and
    // the exit code is the run's
    ws.write("nightly.toml", &config);
    let closed = format!("http://127.0.0.1:{}", free_port());
    let run = ws
        .run(&[
            "plan",
            "-c",
            "nightly.toml",
            "--metrics-file",
            "no/such/dir/secretport.prom",
            "--pushgateway",
            &closed,
        ])
        .await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("warning: cannot write metrics file")
            && run.stderr.contains("warning: cannot push metrics to"),
        "{}",
        run.stderr
    );
    // a --pushgateway that is not a URL is bad usage, before anything runs
    let run = ws
        .run(&[
            "plan",
            "-c",
            "nightly.toml",
            "--pushgateway",
            "gateway:9091",
        ])
        .await;
    run.expect_code(64);
    assert!(run.stderr.contains("--pushgateway"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pushgateway_shows_the_push_and_keeps_the_last_success_of_a_failed_run() {
    let moto = Moto::start().await;
    let gateway = Pushgateway::start().await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("db", "p1"), ("api", "k1")]));
    let config = file_config(moto.endpoint(), "g", "", "");
    ws.write("nightly.toml", &config);
    let url = gateway.url();

    ws.run(&[
        "migrate",
        "-c",
        "nightly.toml",
        "--yes",
        "--pushgateway",
        url,
    ])
    .await
    .expect_code(0);
    let shown = gateway.metrics().await;
    let group = |command: &'static str| {
        vec![
            "job=\"secretport\"",
            "config=\"nightly\"",
            if command == "migrate" {
                "command=\"migrate\""
            } else {
                "command=\"reconcile\""
            },
        ]
    };
    assert_eq!(
        sample(&shown, "secretport_exit_code", &group("migrate")),
        Some(0.0),
        "{shown}"
    );
    let mut created = group("migrate");
    created.extend(["action=\"create\"", "status=\"ok\""]);
    assert_eq!(
        sample(&shown, "secretport_secrets", &created),
        Some(2.0),
        "{shown}"
    );
    let success = sample(
        &shown,
        "secretport_last_success_timestamp_seconds",
        &group("migrate"),
    )
    .expect("last success pushed");

    // drift: reconcile --check exits 2, which is a success with drift
    ws.write("export.jsonl", &export(&[("db", "p2"), ("api", "k1")]));
    ws.run(&[
        "reconcile",
        "-c",
        "nightly.toml",
        "--check",
        "--pushgateway",
        url,
    ])
    .await
    .expect_code(2);
    let shown = gateway.metrics().await;
    let mut drift = group("reconcile");
    drift.push("secretport_job=\"default\"");
    assert_eq!(
        sample(&shown, "secretport_drift_secrets", &drift),
        Some(1.0),
        "{shown}"
    );
    assert_eq!(
        sample(&shown, "secretport_exit_code", &group("reconcile")),
        Some(2.0)
    );
    assert!(sample(
        &shown,
        "secretport_last_success_timestamp_seconds",
        &group("reconcile")
    )
    .is_some());

    // a failed migrate: its exit code is pushed, the gateway keeps the last success
    ws.write("nightly.toml", BROKEN);
    ws.run(&[
        "migrate",
        "-c",
        "nightly.toml",
        "--yes",
        "--pushgateway",
        url,
    ])
    .await
    .expect_code(64);
    let shown = gateway.metrics().await;
    assert_eq!(
        sample(&shown, "secretport_exit_code", &group("migrate")),
        Some(64.0),
        "{shown}"
    );
    assert_eq!(
        sample(
            &shown,
            "secretport_last_success_timestamp_seconds",
            &group("migrate")
        ),
        Some(success),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_and_retried_calls_are_the_ones_aws_answered() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("db", "p1"), ("api", "k1")]));
    ws.write("calls.toml", &file_config(proxy.endpoint(), "t", "", ""));
    // AWS throttles two CreateSecret calls and fails one ListSecrets with a transient error
    proxy.fail_next("CreateSecret", 2, 400, "ThrottlingException");
    proxy.fail_next("ListSecrets", 1, 500, "InternalServiceError");
    let file = ws.path().join("calls.prom");
    ws.run(&[
        "migrate",
        "-c",
        "calls.toml",
        "--yes",
        "--metrics-file",
        file.to_str().unwrap(),
    ])
    .await
    .expect_code(0);
    let text = std::fs::read_to_string(&file).unwrap();
    check_metrics(&text, ws.path());
    let group = |g: &'static str| ["command=\"migrate\"", g];
    let value = |name: &str, g: &'static str| sample(&text, name, &group(g));
    assert_eq!(proxy.injected("CreateSecret"), 2);
    assert_eq!(
        value("secretport_throttled_calls", "group=\"write\""),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value("secretport_retried_calls", "group=\"write\""),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value("secretport_throttled_calls", "group=\"read\""),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value("secretport_retried_calls", "group=\"read\""),
        Some(1.0),
        "{text}"
    );
}

/// The ```yaml block under "## Alerting rules" in docs/operations.md.
fn documented_rules() -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    let section = doc
        .split("## Alerting rules")
        .nth(1)
        .expect("docs/operations.md has an \"## Alerting rules\" section");
    let block = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("a ```yaml block in it");
    format!("{block}\n")
}

const RULE_TESTS: &str = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      # the last success stays at the epoch (the nightly run stopped succeeding at time 0)
      - series: 'secretport_last_success_timestamp_seconds{command="reconcile",config="nightly"}'
        values: '0x30'
      - series: 'secretport_exit_code{command="reconcile",config="nightly"}'
        values: '0 0 2'
    alert_rule_test:
      - eval_time: 25h
        alertname: SecretportNoRecentSuccess
        exp_alerts: []
      - eval_time: 27h
        alertname: SecretportNoRecentSuccess
        exp_alerts:
          - exp_labels: {severity: page, command: reconcile, config: nightly}
            exp_annotations:
              summary: "secretport reconcile (config nightly) has not succeeded for 26 hours"
      - eval_time: 1h
        alertname: SecretportDrift
        exp_alerts: []
      - eval_time: 2h
        alertname: SecretportDrift
        exp_alerts:
          - exp_labels: {severity: ticket, command: reconcile, config: nightly}
            exp_annotations:
              summary: "secretport reconcile (config nightly) found drift or left it unrepaired (exit code 2)"
"#;

#[test]
fn the_documented_alert_rules_pass_promtool_and_fire_when_they_should() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), documented_rules()).unwrap();
    std::fs::write(dir.path().join("tests.yml"), RULE_TESTS).unwrap();
    for args in [
        &["check", "rules", "rules.yml"][..],
        &["test", "rules", "tests.yml"][..],
    ] {
        let out = promtool(args, b"", dir.path());
        assert!(
            out.status.success(),
            "promtool {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
