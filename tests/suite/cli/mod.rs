//! Helpers for tests that drive the real `secretport` binary: a scratch workspace with a config
//! and exports, running a command with test AWS credentials, and reading the audit report back.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The report written (if any).
    pub report: Option<PathBuf>,
    /// Report rows as column -> value.
    pub rows: Vec<BTreeMap<String, String>>,
}

impl Run {
    /// Rows with this action and status.
    pub fn count(&self, action: &str, status: &str) -> usize {
        self.rows
            .iter()
            .filter(|r| r["action"] == action && r["status"] == status)
            .count()
    }

    /// Rows whose status is `failed`.
    pub fn failed(&self) -> Vec<&BTreeMap<String, String>> {
        self.rows
            .iter()
            .filter(|r| r["status"] == "failed")
            .collect()
    }

    /// The row for a source path (first).
    pub fn row(&self, source_path: &str) -> &BTreeMap<String, String> {
        self.rows
            .iter()
            .find(|r| r["source_path"] == source_path)
            .unwrap_or_else(|| panic!("no row for {source_path}: {:#?}", self.rows))
    }

    /// Everything the run printed and wrote.
    pub fn all_output(&self) -> String {
        let report = self
            .report
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        format!("{}\n{}\n{}", self.stdout, self.stderr, report)
    }

    /// Panics with the output when the exit code differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}\nrows: {:#?}",
            self.stdout, self.stderr, self.rows
        );
        self
    }
}

/// A scratch directory holding a config, exports and reports.
pub struct Workspace {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
    env: Vec<(String, String)>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// A new empty workspace.
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("tempdir"),
            runs: AtomicUsize::new(0),
            env: Vec::new(),
        }
    }

    /// Adds an environment variable for every run.
    pub fn env(&mut self, k: &str, v: &str) {
        self.env.push((k.into(), v.into()));
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file in the workspace.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    /// Runs `secretport args...` with the test AWS environment; `--report` is added for
    /// plan/migrate/reconcile so the report can be read back.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[]).await
    }

    /// As [`Workspace::run`] with extra environment variables.
    pub async fn run_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let report = self.dir.path().join(format!("report-{n}.csv"));
        let mut cmd = self.command(args, extra_env);
        let wants_report = matches!(args.first(), Some(&"plan" | &"migrate" | &"reconcile"));
        if wants_report {
            cmd.arg("--report").arg(&report);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("join")
            .expect("run secretport");
        let rows = if wants_report && report.is_file() {
            read_report(&report)
        } else {
            Vec::new()
        };
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report: (wants_report && report.is_file()).then_some(report),
            rows,
        }
    }

    /// The command, not started (for tests that kill it).
    pub fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secretport"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            // no ~/.vault-token of the person running the tests
            .env("HOME", self.dir.path());
        // nor their Vault / OpenBao settings (VAULT_ADDR, BAO_TOKEN, VAULT_SKIP_VERIFY...)
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("VAULT_") || k.starts_with("BAO_") {
                cmd.env_remove(k.as_ref());
            }
        }
        for (k, v) in crate::support::aws_env(crate::support::TEST_REGION) {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Reads a report CSV into rows.
pub fn read_report(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("open report");
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("record");
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// A plaintext export line.
pub fn line(path: &str, value: serde_json::Value) -> String {
    serde_json::json!({ "path": path, "value": value }).to_string()
}

/// A plaintext export of `(path, string value)` entries, one line each.
pub fn string_export(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(p, v)| line(p, serde_json::json!(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` export lines `app-{i/50}/secret-{i}` with distinct values `{tag}-{i}`.
pub fn bulk_export(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| {
            line(
                &format!("app-{}/secret-{i}", i / 50),
                serde_json::json!({ "user": format!("u{i}"), "password": format!("{tag}-{i}") }),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file-source config pointing at `endpoint` with the given extra TOML lines appended to
/// `[target]` and a trailing free-form section.
pub fn file_config(endpoint: &str, prefix: &str, target_extra: &str, tail: &str) -> String {
    format!(
        r#"[source]
kind = "file"
file = "export.jsonl"

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{endpoint}"
{target_extra}

{tail}
"#
    )
}
