//! Shared support for the integration tests: real test servers on loopback and the throttling
//! proxy. Every `tests/*.rs` file is its own crate and pulls this in with `mod support;`, so
//! anything one crate leaves unused must not warn.
//!
//! - [`Bao`]: an OpenBao dev server (the Vault API) on its own free port, with helpers to mount
//!   KV engines, write secrets, policies, AppRoles and tokens.
//! - [`Moto`]: a moto server (Secrets Manager, KMS, STS) on its own free port, plus
//!   [`aws_sdk_config`] / [`sm_client`] and friends that point the AWS SDK at any endpoint with
//!   static test credentials and nothing read from the environment or `~/.aws`.
//! - [`ThrottleProxy`]: sits between a client and moto and answers over-quota calls with
//!   `ThrottlingException`, as AWS does; counts what it forwarded.
//!
//! The server binaries come from the project-local virtualenv that `scripts/setup-servers`
//! installs. A missing binary fails the test loudly, naming that script: integration tests are
//! never skipped silently.
#![allow(dead_code, unused_imports)]

pub mod bao;
pub mod moto;
pub mod prom;
pub mod proxy;
pub mod tools;

pub use bao::{start_tls_bao, Bao, BaoApi, TlsBao, TEAM_A_ONLY_POLICY};
pub use moto::{
    aws_env, aws_sdk_config, aws_sdk_config_with_retry, kms_client, sm_client, sm_client_no_retry,
    sm_client_with_retry, sts_client, test_credentials, Moto, TEST_ACCESS_KEY_ID, TEST_ACCOUNT_ID,
    TEST_REGION, TEST_SECRET_ACCESS_KEY,
};
pub use proxy::{Echo, OpCounts, Quota, ThrottleProxy, TokenBucket, WRITE_OPS};
pub use tools::{run_tool, tool_ok};

use std::collections::HashSet;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The command that installs the test servers; named in every "binary missing" panic.
pub const SETUP_HINT: &str =
    "run scripts/setup-servers (or scripts/test) to install the test servers";

/// The repository root (where Cargo.toml lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of `.venv/bin/<name>` in the repository. Panics, naming the setup command, if the
/// binary is missing: tests that need a server never skip silently.
pub fn bin_path(name: &str) -> PathBuf {
    let path = repo_root().join(".venv").join("bin").join(name);
    if !path.is_file() {
        panic!(
            "test server binary {} not found: {SETUP_HINT}",
            path.display()
        );
    }
    path
}

/// Ports handed out by this process, never handed out twice (a server that failed to start may
/// still be shutting down on its port).
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn claim(port: u16) -> bool {
    handed_out().lock().unwrap().insert(port)
}

/// A loopback port that is free right now (the kernel picks it). Another process may still take
/// it before the server binds it: server starters retry on "address already in use".
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        if claim(port) {
            return port;
        }
    }
}

/// A free loopback port P such that P+1 is free too (OpenBao's cluster port is P+1).
pub fn free_port_pair() -> u16 {
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        if port == u16::MAX {
            continue;
        }
        let Ok(next) = TcpListener::bind(("127.0.0.1", port + 1)) else {
            continue;
        };
        drop(next);
        drop(listener);
        let mut ports = handed_out().lock().unwrap();
        if ports.contains(&port) || ports.contains(&(port + 1)) {
            continue;
        }
        ports.insert(port);
        ports.insert(port + 1);
        return port;
    }
    panic!("could not find two adjacent free loopback ports");
}

/// `sh` wrapper that runs the server and kills it (SIGKILL) as soon as our end of its stdin
/// closes: on drop, and also when the test process dies without running destructors (killed,
/// aborted, timed out), so no server outlives its test. The wrapper exits with the server's
/// status, so an early exit (port taken, bad flag) shows through `try_wait`.
const WATCHDOG: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
( cat <&3 >/dev/null; kill -KILL "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid"
"#;

/// A server process started by the tests: output goes to a temporary log file, the process is
/// killed (and reaped) on drop.
pub struct ServerProcess {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    log_path: PathBuf,
    // Holds the log file and the server's HOME; deleted on drop.
    dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `program args...` with stdout and stderr going to a fresh log file, `HOME` set to a
    /// private temporary directory (OpenBao's dev mode writes `~/.vault-token`) and that
    /// directory as working directory.
    pub fn spawn(name: &str, program: &Path, args: &[String]) -> ServerProcess {
        let dir = tempfile::Builder::new()
            .prefix(&format!("secretport-{name}-"))
            .tempdir()
            .expect("create temp dir for a test server");
        let log_path = dir.path().join(format!("{name}.log"));
        let log = File::create(&log_path).expect("create server log file");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg(format!("secretport-{name}-watchdog"))
            .arg(program)
            .args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", program.display()));
        let stdin = child.stdin.take();
        ServerProcess {
            name: name.to_string(),
            child,
            stdin,
            log_path,
            dir,
        }
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `Some(status)` once the server has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the server and waits for it (and its watchdog) to be gone.
    pub fn stop(&mut self) {
        // Closing the pipe makes the watchdog SIGKILL the server; the wrapper then exits.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Panics with the server's log (used when a server does not come up).
    pub fn fail(&mut self, why: &str) -> ! {
        self.stop();
        panic!(
            "{} did not start: {why}\n---- {} log ({}) ----\n{}---- end of log ----",
            self.name,
            self.name,
            self.log_path.display(),
            self.log()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Outcome of waiting for a freshly spawned server.
pub(crate) enum Startup {
    Ready,
    /// The server exited; `port_taken` when its log says its port was in use.
    Exited {
        port_taken: bool,
    },
    TimedOut,
}

/// Polls `probe` every 20 ms until it reports ready, the process exits, or `timeout` passes.
/// `probe` gets the log text so it can require the server's own "started" line (a 200 from a
/// port another server grabbed first must not count).
pub(crate) async fn wait_for_startup<F, Fut>(
    process: &mut ServerProcess,
    timeout: Duration,
    mut probe: F,
) -> Startup
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if process.exited().is_some() {
            let log = process.log().to_lowercase();
            let port_taken = log.contains("address already in use") || log.contains("is in use");
            return Startup::Exited { port_taken };
        }
        if probe(process.log()).await {
            return Startup::Ready;
        }
        if Instant::now() >= deadline {
            return Startup::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain-HTTP client for test helpers: no proxy from the environment, no pooled connections
/// (so it works from any runtime, including several short-lived ones).
pub fn helper_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build reqwest client")
}

/// Sends signal `sig` (`INT`, `TERM`) to process `pid` with the system's `kill` command.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// A TCP server on loopback that accepts connections and never answers: a hung endpoint.
/// Stops accepting when dropped.
pub struct HungServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl HungServer {
    /// Starts it on a free port.
    pub async fn start() -> HungServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock); // keep it open, say nothing
            }
        });
        HungServer { port, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for HungServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
