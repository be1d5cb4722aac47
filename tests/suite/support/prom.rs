//! The real Prometheus tools the metrics tests check secretport's output with, from Debian's
//! packages (`scripts/setup-servers` installs them): `promtool` (package `prometheus`) parses
//! metrics files and rule files as Prometheus does, and a Pushgateway (package
//! `prometheus-pushgateway`) started on its own free loopback port receives pushes. A missing
//! tool fails the test with the command that installs it: never skipped silently.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, helper_http_client, wait_for_startup, ServerProcess, Startup};

/// The command that installs the Prometheus tools; named when one is missing.
pub const PROM_SETUP_HINT: &str = "run scripts/setup-servers (as root it runs `apt-get install prometheus prometheus-pushgateway`; elsewhere run that with sudo)";

/// A system binary (`/usr/bin/<name>` or on `PATH`); panics with the setup command if missing.
pub fn system_tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: {PROM_SETUP_HINT}"))
}

/// `promtool args...` with `stdin` fed in.
pub fn promtool(args: &[&str], stdin: &[u8], dir: &Path) -> Output {
    use std::io::Write;
    let mut child = Command::new(system_tool("promtool"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write to promtool");
    child.wait_with_output().expect("wait for promtool")
}

/// A Pushgateway on a free loopback port (killed on drop).
pub struct Pushgateway {
    url: String,
    http: reqwest::Client,
    process: ServerProcess,
}

impl Pushgateway {
    /// Starts `prometheus-pushgateway --web.listen-address=127.0.0.1:PORT` and waits for
    /// `/-/ready`; retries with another port if the port was taken meanwhile.
    pub async fn start() -> Pushgateway {
        let bin = system_tool("prometheus-pushgateway");
        for attempt in 1..=5 {
            let port = free_port();
            let url = format!("http://127.0.0.1:{port}");
            let args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
            let mut process = ServerProcess::spawn("pushgateway", &bin, &args);
            let http = helper_http_client();
            let ready = format!("{url}/-/ready");
            let started = Instant::now();
            let outcome = wait_for_startup(&mut process, Duration::from_secs(20), |log| {
                let http = http.clone();
                let ready = ready.clone();
                let ours = log.contains(&format!("127.0.0.1:{port}"));
                async move {
                    ours && matches!(http.get(&ready).send().await, Ok(r) if r.status() == 200)
                }
            })
            .await;
            match outcome {
                Startup::Ready => {
                    if std::env::var_os("SECRETPORT_TEST_VERBOSE").is_some() {
                        eprintln!("pushgateway ready at {url} in {:?}", started.elapsed());
                    }
                    return Pushgateway { url, http, process };
                }
                Startup::Exited { port_taken: true } if attempt < 5 => continue,
                Startup::Exited { .. } => process.fail("the pushgateway exited"),
                Startup::TimedOut => process.fail(&format!("{ready} did not answer 200")),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the gateway's own `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.url);
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(r.status(), 200, "GET {url}");
        r.text().await.expect("body")
    }
}

/// The value of the sample whose line starts with `name{` and holds every label of `labels`
/// (`key="value"` each), from Prometheus text; `None` when there is none.
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            let end = l.rfind('}').unwrap_or(0);
            labels.iter().all(|want| l[..end].contains(want))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
