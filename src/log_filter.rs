//! The log filter: `RUST_LOG` as the user gives it, except that the HTTP and AWS SDK crates are
//! never more verbose than `info`.
//!
//! Why: at `trace` the AWS SDK logs whole HTTP response bodies and error structs
//! (`read HTTP response body response=...`, `output_or_error=...`). An error answer from a
//! proxy or WAF that quotes the request then puts the plaintext value on stderr, bypassing the
//! scrubbing of [`crate::error_text::scrub`] (observed with `RUST_LOG=trace`; `debug` was clean,
//! `info` leaves margin for HTTP client crates whose debug output is not audited).
//! `RUST_LOG=trace` remains useful for secretport's own targets.

use tracing_subscriber::EnvFilter;

/// The filter used when `RUST_LOG` is unset or invalid.
pub(crate) const DEFAULT: &str = "secretport=warn";

/// Crates whose logs may carry request or response bodies; capped at [`CAP`].
pub(crate) const CAPPED: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_kms",
    "aws_sdk_secretsmanager",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "aws_sigv4",
    "aws_smithy_http",
    "aws_smithy_http_client",
    "aws_smithy_json",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_types",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustify",
    "rustls",
    "tower",
    "vaultrs",
];

/// The most verbose level a [`CAPPED`] crate may log at.
pub(crate) const CAP: &str = "info";

/// Verbosity rank of a level name (`off` lowest), `None` for anything else.
fn rank(level: &str) -> Option<u8> {
    ["off", "error", "warn", "info", "debug", "trace"]
        .iter()
        .position(|l| l.eq_ignore_ascii_case(level))
        .map(|i| i as u8)
}

fn is_capped(target: &str) -> bool {
    CAPPED
        .iter()
        .any(|c| target == *c || target.starts_with(&format!("{c}::")))
}

/// The filter for `spec` (the value of `RUST_LOG`, if set): every directive as given, except
/// that a directive for a [`CAPPED`] crate is clamped to [`CAP`], and a global level more
/// verbose than [`CAP`] (`RUST_LOG=trace`) gets a `crate=info` directive for each capped crate
/// the spec does not name. Nothing is ever made *more* verbose than the spec asks. An invalid
/// spec falls back to [`DEFAULT`]. Call it where the subscriber is built:
/// `tracing_subscriber::fmt().with_env_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()))`.
pub fn log_filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT);
    let cap = rank(CAP).unwrap_or(3);
    let mut named: Vec<&str> = Vec::new();
    let mut global_verbose = false;
    let mut out: Vec<String> = Vec::new();
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let (lhs, level) = match d.rsplit_once('=') {
            Some((l, lv)) if rank(lv).is_some() => (l, Some(lv)),
            _ => (d, None),
        };
        let target = lhs.split('[').next().unwrap_or("");
        if level.is_none() && !lhs.contains('[') {
            if let Some(r) = rank(lhs) {
                // a bare level: the global default
                global_verbose = r > cap;
                out.push(d.to_owned());
                continue;
            }
        }
        if is_capped(target) {
            named.push(target);
            let r = level.and_then(rank).unwrap_or(5); // a bare target means every level
            let level = if r > cap { CAP } else { level.unwrap_or(CAP) };
            out.push(format!("{lhs}={level}"));
        } else {
            out.push(d.to_owned());
        }
    }
    if global_verbose {
        for c in CAPPED.iter().filter(|c| !named.contains(c)) {
            out.push(format!("{c}={CAP}"));
        }
    }
    EnvFilter::try_new(out.join(",")).unwrap_or_else(|_| EnvFilter::new(DEFAULT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(spec: Option<&str>) -> String {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter(log_filter(spec))
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "sdk-trace-body");
            tracing::debug!(target: "aws_smithy_runtime", "sdk-debug");
            tracing::info!(target: "hyper_util::client", "hyper-info");
            tracing::trace!(target: "secretport::executor", "ours-trace");
            tracing::warn!(target: "secretport", "ours-warn");
        });
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sdk_crates_never_log_below_info() {
        for spec in [
            "trace",
            "aws_smithy_runtime=trace,trace",
            "aws_smithy_runtime::client=trace,secretport=trace",
        ] {
            let out = logged(Some(spec));
            assert!(!out.contains("sdk-trace-body"), "{spec}: {out}");
            assert!(!out.contains("sdk-debug"), "{spec}: {out}");
            assert!(out.contains("ours-trace"), "{spec}: {out}");
        }
        assert!(logged(Some("trace")).contains("hyper-info"));
        // an explicit SDK level below the cap is kept
        let out = logged(Some(
            "aws_smithy_runtime=debug,hyper_util=warn,secretport=info",
        ));
        assert!(
            !out.contains("sdk-debug") && !out.contains("hyper-info"),
            "{out}"
        );
    }

    #[test]
    fn defaults_and_quiet_levels() {
        let out = logged(None);
        assert!(
            out.contains("ours-warn") && !out.contains("ours-trace"),
            "{out}"
        );
        assert!(!out.contains("hyper-info"), "{out}");
        let out = logged(Some("warn"));
        assert!(!out.contains("hyper-info"), "{out}");
        let out = logged(Some("not a [valid filter"));
        assert!(out.contains("ours-warn"), "{out}");
    }
}
