//! Prometheus metrics of a `plan`, `migrate` or `reconcile` run, for scheduled runs that a
//! monitoring stack watches (`--metrics-file`, `--pushgateway`).
//!
//! A nightly CronJob that silently stops running has no exit code anyone sees; what an alert can
//! see is a "last success" timestamp that stops moving. So every run, whatever its outcome, ends
//! with the same metrics: when it ran and when a run last succeeded, how long it took, its exit
//! code, the secrets per job, action and status, the drift per job, and the throttled and
//! retried calls per quota group.
//!
//! - [`encode`] builds the text from a run's facts: pure, tested against `promtool`.
//! - [`write_file`] writes it atomically (a temporary file in the same directory, renamed over
//!   the old one), the node_exporter textfile collector's convention, so a scrape never reads a
//!   half-written file. "Last success" survives a failed run: the previous file's value is kept.
//! - [`push`] POSTs it to a Pushgateway under the grouping key `job="secretport"`,
//!   `config=<config>`, `command=<command>`. A failed run's push leaves the last success out,
//!   and POST replaces only the metrics it carries, so the gateway keeps the previous one.
//!
//! What counts as a success: the run finished its work, exit code 0 (in sync, done) or 2 (drift
//! found or left, which the drift metric reports on its own). 1 (a secret failed, a fatal
//! error, an interrupted run) and 64 (bad usage or config) are not successes. A process killed
//! outright (a second Ctrl-C, SIGKILL) writes nothing: its last-run time stops moving, which is
//! what the "no success" alert catches.
//!
//! Writing or pushing metrics never changes a run's outcome: the binary turns a
//! [`MetricsError`] into a warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::exit;
use crate::report::Counts;

/// The Pushgateway's `job` grouping label.
pub(crate) const PUSH_JOB: &str = "secretport";

/// Metric names (with the `secretport_` prefix, as written).
pub(crate) const LAST_SUCCESS: &str = "secretport_last_success_timestamp_seconds";

/// One job's counts, as the run ended.
#[derive(Debug, Clone, Default)]
pub struct JobTally {
    /// The config's job name.
    pub name: String,
    /// Rows by action and status.
    pub counts: Counts,
}

/// Calls of one quota group (`write`, `read`, `kms`, `ssm`, `dynamodb`, `vault`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTally {
    /// The group's name.
    pub group: &'static str,
    /// Answers that were throttling errors.
    pub throttled: u64,
    /// Calls sent again after a retryable failure.
    pub retried: u64,
}

/// What the engine knows at the end of a run: per job counts and the calls per group.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Jobs in the config's order.
    pub jobs: Vec<JobTally>,
    /// Quota groups, summed over the run's limiters.
    pub calls: Vec<CallTally>,
}

/// Everything one run's metrics say.
#[derive(Debug, Clone)]
pub struct RunFacts<'a> {
    /// `plan`, `migrate` or `reconcile`.
    pub command: &'static str,
    /// The config's label ([`config_label`]).
    pub config: &'a str,
    /// When the run ended, seconds since the Unix epoch.
    pub finished: f64,
    /// How long it ran.
    pub duration: Duration,
    /// Its exit code.
    pub exit_code: i32,
    /// Its counts (empty when it stopped before any job ran).
    pub stats: &'a RunStats,
}

impl RunFacts<'_> {
    /// Whether the run counts as a success (see the module docs): exit 0 or 2.
    pub fn succeeded(&self) -> bool {
        matches!(self.exit_code, exit::OK | exit::DRIFT)
    }
}

/// A metrics file that could not be written, or a push that failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Writing the temporary file or renaming it failed.
    #[error("cannot write metrics file {path}: {source}")]
    Write {
        /// The metrics file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Pushgateway could not be reached or refused the push.
    #[error("cannot push metrics to {url}: {message}")]
    Push {
        /// The push URL.
        url: String,
        /// What went wrong (the gateway's answer when it gave one).
        message: String,
    },
}

/// The label a config is known by in metrics: the config file's name without `.toml` when it is
/// made of `A-Za-z0-9_.-`, else the first 12 hex digits of the config's digest (the Pushgateway
/// takes the label as a URL path segment).
pub fn config_label(config_file: &Path, digest: Option<&str>) -> String {
    let stem = config_file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if plain(stem) {
        stem.to_owned()
    } else {
        match digest {
            Some(d) if d.len() >= 12 => d[..12].to_owned(),
            _ => "config".to_owned(),
        }
    }
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn float_gauge(value: f64) -> Gauge<f64, std::sync::atomic::AtomicU64> {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(value);
    g
}

/// The run's metrics as Prometheus text. `last_success`: the time of the last successful run
/// (this one's end when it succeeded, else what an earlier run recorded; `None` leaves the
/// metric out). `constant`: labels on every sample (`command` and `config` in a file; none for
/// a push, where the grouping key carries them).
pub fn encode(
    facts: &RunFacts<'_>,
    last_success: Option<f64>,
    constant: &[(&str, &str)],
) -> String {
    let constant: Vec<(
        std::borrow::Cow<'static, str>,
        std::borrow::Cow<'static, str>,
    )> = constant
        .iter()
        .map(|(k, v)| ((*k).to_owned().into(), (*v).to_owned().into()))
        .collect();
    let mut r = Registry::with_prefix_and_labels("secretport", constant.into_iter());
    r.register_with_unit(
        "last_run_timestamp",
        "When the last run ended (Unix time), whatever its outcome",
        Unit::Seconds,
        float_gauge(facts.finished),
    );
    if let Some(t) = last_success {
        r.register_with_unit(
            "last_success_timestamp",
            "When a run last succeeded (exit code 0 or 2), Unix time",
            Unit::Seconds,
            float_gauge(t),
        );
    }
    r.register_with_unit(
        "run_duration",
        "How long the last run took",
        Unit::Seconds,
        float_gauge(facts.duration.as_secs_f64()),
    );
    let code = Gauge::<i64>::default();
    code.set(i64::from(facts.exit_code));
    r.register(
        "exit_code",
        "The last run's exit code (0 ok, 1 failures or interrupted, 2 drift, 64 usage or config)",
        code,
    );
    let secrets = Family::<Labels, Gauge>::default();
    let drift = Family::<Labels, Gauge>::default();
    for job in &facts.stats.jobs {
        for (action, status, n) in job.counts.iter() {
            secrets
                .get_or_create(&labels(&[
                    ("secretport_job", &job.name),
                    ("action", action.as_str()),
                    ("status", status.as_str()),
                ]))
                .set(clamp(n));
        }
        drift
            .get_or_create(&labels(&[("secretport_job", &job.name)]))
            .set(clamp(crate::policy::drift(&job.counts)));
    }
    r.register(
        "secrets",
        "Secrets of the last run by job, action and status (the report's rows)",
        secrets,
    );
    r.register(
        "drift_secrets",
        "Secrets of the last run whose target differs from the source, by job",
        drift,
    );
    let throttled = Family::<Labels, Gauge>::default();
    let retried = Family::<Labels, Gauge>::default();
    for c in &facts.stats.calls {
        let l = labels(&[("group", c.group)]);
        throttled.get_or_create(&l).set(clamp(c.throttled));
        retried.get_or_create(&l).set(clamp(c.retried));
    }
    r.register(
        "throttled_calls",
        "Calls of the last run answered with throttling, by quota group",
        throttled,
    );
    r.register(
        "retried_calls",
        "Calls of the last run sent again after a retryable failure, by quota group",
        retried,
    );
    let mut out = String::new();
    // the registry holds only gauges built here: encoding cannot fail
    let _ = encode_registry(&mut out, &r);
    out
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The last-success time a metrics file records for `command` (`None` when it has none).
pub(crate) fn previous_success(text: &str, command: &str) -> Option<f64> {
    let want = format!("command=\"{command}\"");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(LAST_SUCCESS)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let end = r.rfind('}')?;
                    (&r[..end], &r[end + 1..])
                }
                None => ("", rest),
            };
            if !labels.split(',').any(|p| p.trim() == want) {
                return None;
            }
            value.split_whitespace().next()?.parse::<f64>().ok()
        })
        .filter(|v| v.is_finite())
        .reduce(f64::max)
}

/// The last success to record: this run's end when it succeeded, else `previous`.
pub(crate) fn last_success(facts: &RunFacts<'_>, previous: Option<f64>) -> Option<f64> {
    if facts.succeeded() {
        Some(facts.finished)
    } else {
        previous
    }
}

/// Writes the metrics to `path` atomically: a temporary file beside it (not ending in `.prom`,
/// so the textfile collector never reads it), then renamed over `path`. The last success
/// recorded by the file already there is kept when this run failed.
pub fn write_file(path: &Path, facts: &RunFacts<'_>) -> Result<(), MetricsError> {
    let err = |source| MetricsError::Write {
        path: path.to_owned(),
        source,
    };
    let previous = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| previous_success(&t, facts.command));
    let text = encode(
        facts,
        last_success(facts, previous),
        &[("command", facts.command), ("config", facts.config)],
    );
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "metrics".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// The push URL of a run: `<gateway>/metrics/job/secretport/config/<config>/command/<command>`.
pub(crate) fn push_url(gateway: &str, facts: &RunFacts<'_>) -> String {
    format!(
        "{}/metrics/job/{PUSH_JOB}/config/{}/command/{}",
        gateway.trim_end_matches('/'),
        facts.config,
        facts.command
    )
}

/// Pushes the metrics to the Pushgateway at `gateway` (POST: the group's other metrics, such as
/// the last success a failed run leaves out, stay).
pub async fn push(gateway: &str, facts: &RunFacts<'_>) -> Result<(), MetricsError> {
    let url = push_url(gateway, facts);
    let fail = |message: String| MetricsError::Push {
        url: url.clone(),
        message,
    };
    let body = encode(facts, last_success(facts, None), &[]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(crate::error_text::chain(&e)))?;
    let answer = client
        .post(&url)
        .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .body(body)
        .send()
        .await
        .map_err(|e| fail(crate::error_text::chain(&e)))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let text = answer.text().await.unwrap_or_default();
    Err(fail(format!("HTTP {status}: {}", text.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Action, Status};

    fn stats() -> RunStats {
        let counts: Counts = [
            (Action::Create, Status::Planned),
            (Action::Create, Status::Planned),
            (Action::Create, Status::Planned),
            (Action::Unchanged, Status::Ok),
            (Action::Unchanged, Status::Ok),
        ]
        .into_iter()
        .collect();
        RunStats {
            jobs: vec![JobTally {
                name: "apps".into(),
                counts,
            }],
            calls: vec![CallTally {
                group: "write",
                throttled: 4,
                retried: 5,
            }],
        }
    }

    fn facts(exit_code: i32, stats: &RunStats) -> RunFacts<'_> {
        RunFacts {
            command: "reconcile",
            config: "nightly",
            finished: 1_700_000_000.5,
            duration: Duration::from_millis(1500),
            exit_code,
            stats,
        }
    }

    #[test]
    fn every_metric_is_there_with_its_labels() {
        let s = stats();
        let text = encode(
            &facts(0, &s),
            Some(1_700_000_000.5),
            &[("command", "reconcile"), ("config", "nightly")],
        );
        for line in [
            "secretport_last_run_timestamp_seconds{command=\"reconcile\",config=\"nightly\"} 1700000000.5",
            "secretport_last_success_timestamp_seconds{command=\"reconcile\",config=\"nightly\"} 1700000000.5",
            "secretport_run_duration_seconds{command=\"reconcile\",config=\"nightly\"} 1.5",
            "secretport_exit_code{command=\"reconcile\",config=\"nightly\"} 0",
            "secretport_secrets{command=\"reconcile\",config=\"nightly\",secretport_job=\"apps\",action=\"create\",status=\"planned\"} 3",
            "secretport_drift_secrets{command=\"reconcile\",config=\"nightly\",secretport_job=\"apps\"} 3",
            "secretport_throttled_calls{command=\"reconcile\",config=\"nightly\",group=\"write\"} 4",
            "secretport_retried_calls{command=\"reconcile\",config=\"nightly\",group=\"write\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn last_success_is_this_run_or_the_previous_one() {
        let s = stats();
        // (exit code, previous) -> recorded
        let table = [
            (exit::OK, None, Some(1_700_000_000.5)),
            (exit::DRIFT, Some(5.0), Some(1_700_000_000.5)),
            (exit::FAILED, Some(5.0), Some(5.0)),
            (exit::FAILED, None, None),
            (exit::USAGE, Some(5.0), Some(5.0)),
            (130, Some(5.0), Some(5.0)),
        ];
        for (code, previous, want) in table {
            assert_eq!(last_success(&facts(code, &s), previous), want, "{code}");
        }
        let text = encode(&facts(exit::FAILED, &s), None, &[]);
        assert!(!text.contains("last_success"), "{text}");
    }

    #[test]
    fn the_previous_success_is_read_for_the_same_command_only() {
        let s = stats();
        let text = encode(
            &facts(0, &s),
            Some(42.0),
            &[("command", "reconcile"), ("config", "nightly")],
        );
        assert_eq!(previous_success(&text, "reconcile"), Some(42.0));
        assert_eq!(previous_success(&text, "migrate"), None);
        assert_eq!(previous_success("", "reconcile"), None);
        assert_eq!(
            previous_success(
                "# HELP x\nsecretport_last_success_timestamp_seconds{command=\"reconcile\"} garbage\n",
                "reconcile"
            ),
            None
        );
    }

    #[test]
    fn config_labels_are_url_safe() {
        let d = Some("0123456789abcdef0123");
        assert_eq!(
            config_label(Path::new("/etc/sp/nightly.toml"), d),
            "nightly"
        );
        assert_eq!(config_label(Path::new("a b.toml"), d), "0123456789ab");
        assert_eq!(config_label(Path::new("x/é.toml"), None), "config");
        let s = stats();
        assert_eq!(
            push_url("http://127.0.0.1:9091/", &facts(0, &s)),
            "http://127.0.0.1:9091/metrics/job/secretport/config/nightly/command/reconcile"
        );
    }

    #[test]
    fn a_file_is_replaced_whole_and_keeps_the_last_success_of_a_failed_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secretport.prom");
        let s = stats();
        write_file(&path, &facts(exit::OK, &s)).expect("written");
        let mut failed = facts(exit::FAILED, &s);
        failed.finished = 1_800_000_000.0;
        write_file(&path, &failed).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(previous_success(&text, "reconcile"), Some(1_700_000_000.5));
        assert!(text.contains("secretport_exit_code{command=\"reconcile\",config=\"nightly\"} 1"));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("secretport.prom")]);
        let missing = dir.path().join("no/such/dir/x.prom");
        let e = write_file(&missing, &failed).expect_err("no directory");
        assert!(e.to_string().contains("x.prom"), "{e}");
    }
}
