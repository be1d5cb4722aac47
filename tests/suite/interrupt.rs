//! Ctrl-C and SIGTERM against a target that stops answering: the first signal stops retries
//! and new work (the run ends within one request timeout), a second one exits 130 at once, and
//! the report is on disk either way.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{file_config, line, Workspace};
use crate::support::{signal, HungServer};

fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Option<(i32, Duration)> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some((status.code().unwrap_or(-1), start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// `migrate --yes` against `hung` with the given `[limits]`, started; the report's path.
fn start_against(
    ws: &Workspace,
    hung: &HungServer,
    limits: &str,
) -> (std::process::Child, std::path::PathBuf) {
    ws.write("export.jsonl", &line("a", json!("v")));
    ws.write(
        "cfg.toml",
        &file_config(&hung.endpoint(), "h", "", &format!("[limits]\n{limits}\n")),
    );
    let report = ws.path().join("report.csv");
    let mut cmd = ws.command(&["migrate", "-c", "cfg.toml", "--yes"], &[]);
    cmd.arg("--report").arg(&report);
    (cmd.spawn().unwrap(), report)
}

#[tokio::test(flavor = "multi_thread")]
async fn second_interrupt_exits_130_at_once_against_a_hung_target() {
    let hung = HungServer::start().await;
    let ws = Workspace::new();
    // a long timeout: without the second Ctrl-C this run would hang for minutes
    let (mut child, report) = start_against(&ws, &hung, "timeout_seconds = 300");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(child.id(), "INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting on the hung call after one Ctrl-C"
    );
    signal(child.id(), "INT");
    let (code, took) = wait_with_deadline(&mut child, Duration::from_secs(10))
        .expect("exited after the second Ctrl-C");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(code, 130, "{stderr}");
    assert!(
        took < Duration::from_secs(2),
        "second Ctrl-C to exit took {took:?}"
    );
    eprintln!("second Ctrl-C to exit: {took:?}");
    assert!(stderr.contains("interrupted twice"), "{stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.starts_with("timestamp,run_id,command"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_retrying_and_ends_within_one_timeout() {
    let hung = HungServer::start().await;
    let ws = Workspace::new();
    // 8 attempts of 3 s would be ~30 s; a SIGTERM must end it after the attempt in flight
    let (mut child, report) = start_against(&ws, &hung, "timeout_seconds = 3\nmax_attempts = 8");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    signal(child.id(), "TERM");
    let (code, took) =
        wait_with_deadline(&mut child, Duration::from_secs(20)).expect("exited after SIGTERM");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        took < Duration::from_secs(6),
        "SIGTERM to exit took {took:?}: {stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let rows = crate::cli::read_report(&report);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(rows[0]["error"].contains("ListSecrets"), "{rows:?}");
}
