//! An OpenBao dev server (the Vault API) for tests, one process per [`Bao`] on its own ports.
#![allow(dead_code)]

use super::{
    bin_path, free_port_pair, helper_http_client, wait_for_startup, ServerProcess, Startup,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};

/// Root token of every dev server the tests start.
pub const ROOT_TOKEN: &str = "root";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 5;

/// A running `bao server -dev` on `127.0.0.1:P` (cluster port P+1), killed on drop.
///
/// Dereferences to a root-token [`BaoApi`], so `bao.put_kv2(..)`, `bao.client()` and so on work
/// directly; [`BaoApi::with_token`] and [`BaoApi::in_namespace`] give other views of it.
pub struct Bao {
    api: BaoApi,
    port: u16,
    process: ServerProcess,
}

impl Bao {
    /// Starts a dev server on fresh free ports and waits (up to 20 s) until
    /// `GET /v1/sys/health` answers 200. Retries with other ports if the port was taken in the
    /// meantime; panics with the server log otherwise.
    pub async fn start() -> Bao {
        let bin = bin_path("bao");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port_pair();
            let addr = format!("http://127.0.0.1:{port}");
            let args = vec![
                "server".to_string(),
                "-dev".to_string(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ];
            let mut process = ServerProcess::spawn("bao", &bin, &args);
            let http = helper_http_client();
            let health = format!("{addr}/v1/sys/health");
            let started = Instant::now();
            let outcome = wait_for_startup(&mut process, START_TIMEOUT, |log| {
                let http = http.clone();
                let health = health.clone();
                async move {
                    // Our own process must have said it started: a 200 from a server that
                    // grabbed the port first must not count.
                    log.contains("OpenBao server started")
                        && matches!(http.get(&health).send().await, Ok(r) if r.status() == 200)
                }
            })
            .await;
            match outcome {
                Startup::Ready => {
                    if std::env::var_os("SECRETPORT_TEST_VERBOSE").is_some() {
                        eprintln!("bao ready at {addr} in {:?}", started.elapsed());
                    }
                    return Bao {
                        api: BaoApi {
                            addr,
                            token: ROOT_TOKEN.to_string(),
                            namespace: None,
                            http,
                        },
                        port,
                        process,
                    };
                }
                Startup::Exited { port_taken: true } if attempt < START_ATTEMPTS => continue,
                Startup::Exited { .. } => process.fail("the server exited"),
                Startup::TimedOut => process.fail(&format!(
                    "{health} did not answer 200 within {START_TIMEOUT:?}"
                )),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// The API port P (the cluster port is P+1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

impl Deref for Bao {
    type Target = BaoApi;
    fn deref(&self) -> &BaoApi {
        &self.api
    }
}

/// The HTTP API of a [`Bao`] seen with one token (root by default) in one namespace (the root
/// namespace by default). Cheap to clone; helpers panic with the server's answer on failure.
#[derive(Clone)]
pub struct BaoApi {
    addr: String,
    token: String,
    namespace: Option<String>,
    http: reqwest::Client,
}

impl BaoApi {
    /// `http://127.0.0.1:P`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The token this view acts with (`"root"` for the server's own view).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The namespace this view acts in (`None` = root namespace).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The same server, acting with another token.
    pub fn with_token(&self, token: &str) -> BaoApi {
        BaoApi {
            token: token.to_string(),
            ..self.clone()
        }
    }

    /// The same server, acting inside namespace `ns` (nested under this view's namespace).
    pub fn in_namespace(&self, ns: &str) -> BaoApi {
        let ns = ns.trim_matches('/');
        let namespace = match &self.namespace {
            Some(parent) => format!("{parent}/{ns}"),
            None => ns.to_string(),
        };
        BaoApi {
            namespace: Some(namespace),
            ..self.clone()
        }
    }

    /// A `vaultrs` client for this server, token and namespace. Settings are explicit, so
    /// nothing comes from `VAULT_*` environment variables.
    pub fn client(&self) -> VaultClient {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.addr)
            .token(self.token.clone())
            .ca_certs(Vec::new())
            .identity(None)
            .verify(true)
            .timeout(Some(Duration::from_secs(30)));
        if let Some(ns) = &self.namespace {
            settings.set_namespace(ns.clone());
        } else {
            settings.namespace(None);
        }
        VaultClient::new(settings.build().expect("vaultrs settings")).expect("build vaultrs client")
    }

    /// Raw call: `METHOD /v1/<path>` with this view's token and namespace. Returns the status
    /// and the JSON body (`Value::Null` when empty or not JSON).
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut req = self
            .http
            .request(method.clone(), &url)
            .header("X-Vault-Token", &self.token)
            .header("X-Vault-Request", "true");
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, value)
    }

    /// Like [`request`](Self::request) but panics unless the status is 2xx; returns the body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, value) = self.request(method.clone(), path, body).await;
        if !(200..300).contains(&status) {
            panic!(
                "bao {method} /v1/{path} (namespace {:?}) answered {status}: {value}",
                self.namespace
            );
        }
        value
    }

    /// Mounts a KV engine of version 1 or 2 at `path` (`POST sys/mounts/<path>`).
    pub async fn mount_kv(&self, path: &str, version: u8) {
        assert!(
            version == 1 || version == 2,
            "KV version must be 1 or 2, not {version}"
        );
        let path = path.trim_matches('/');
        let body = json!({ "type": "kv", "options": { "version": version.to_string() } });
        self.call(Method::POST, &format!("sys/mounts/{path}"), Some(&body))
            .await;
        if version == 2 {
            // A fresh KV v2 mount upgrades itself in the background and answers writes with
            // "upgrading" errors until it is done: wait for its config to be readable.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (status, _) = self
                    .request(Method::GET, &format!("{path}/config"), None)
                    .await;
                if status == 200 || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Writes a new version of a KV v2 secret; returns its version number.
    pub async fn put_kv2(&self, mount: &str, path: &str, data: Value) -> u64 {
        let body = json!({ "data": data });
        let answer = self
            .call(Method::POST, &kv_path(mount, "data", path), Some(&body))
            .await;
        answer["data"]["version"].as_u64().unwrap_or_else(|| {
            panic!("KV v2 write to {mount}/{path} answered without a version: {answer}")
        })
    }

    /// Writes a KV v1 secret (a JSON object of string keys).
    pub async fn put_kv1(&self, mount: &str, path: &str, data: Value) {
        let url = format!(
            "{}/{}",
            mount.trim_matches('/'),
            encode_path(path.trim_start_matches('/'))
        );
        self.call(Method::POST, &url, Some(&data)).await;
    }

    /// Reads the latest version of a KV v2 secret: `Some(data)`, or `None` when it is missing,
    /// deleted or destroyed.
    pub async fn read_kv2(&self, mount: &str, path: &str) -> Option<Value> {
        let (status, value) = self
            .request(Method::GET, &kv_path(mount, "data", path), None)
            .await;
        match status {
            200 => Some(value["data"]["data"].clone()),
            404 => None,
            _ => panic!("KV v2 read of {mount}/{path} answered {status}: {value}"),
        }
    }

    /// Soft-deletes the latest version of a KV v2 secret (`DELETE <mount>/data/<path>`).
    pub async fn delete_kv2_latest(&self, mount: &str, path: &str) {
        self.call(Method::DELETE, &kv_path(mount, "data", path), None)
            .await;
    }

    /// Permanently destroys the given versions of a KV v2 secret.
    pub async fn destroy_kv2_versions(&self, mount: &str, path: &str, versions: &[u64]) {
        let body = json!({ "versions": versions });
        self.call(Method::POST, &kv_path(mount, "destroy", path), Some(&body))
            .await;
    }

    /// Writes an ACL policy.
    pub async fn write_policy(&self, name: &str, hcl: &str) {
        let body = json!({ "policy": hcl });
        self.call(
            Method::PUT,
            &format!("sys/policies/acl/{name}"),
            Some(&body),
        )
        .await;
    }

    /// Enables the AppRole auth method at `approle/` (idempotent).
    pub async fn enable_approle(&self) {
        let body = json!({ "type": "approle" });
        let (status, value) = self
            .request(Method::POST, "sys/auth/approle", Some(&body))
            .await;
        let already = status == 400 && value.to_string().contains("already in use");
        if !(200..300).contains(&status) && !already {
            panic!("enabling approle answered {status}: {value}");
        }
    }

    /// Writes policy `role` from `hcl`, enables AppRole, and creates AppRole `role` holding just
    /// that policy; returns `(role_id, secret_id)`.
    pub async fn approle_with_policy(&self, role: &str, hcl: &str) -> (String, String) {
        self.write_policy(role, hcl).await;
        self.enable_approle().await;
        self.create_approle(role, &[role]).await
    }

    /// Creates (or replaces) AppRole `role` whose tokens get `policies`; returns
    /// `(role_id, secret_id)`. Needs [`enable_approle`](Self::enable_approle) first.
    pub async fn create_approle(&self, role: &str, policies: &[&str]) -> (String, String) {
        let body = json!({ "token_policies": policies, "token_ttl": "1h" });
        self.call(
            Method::POST,
            &format!("auth/approle/role/{role}"),
            Some(&body),
        )
        .await;
        let answer = self
            .call(
                Method::GET,
                &format!("auth/approle/role/{role}/role-id"),
                None,
            )
            .await;
        let role_id = answer["data"]["role_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no role_id in {answer}"))
            .to_string();
        let answer = self
            .call(
                Method::POST,
                &format!("auth/approle/role/{role}/secret-id"),
                Some(&json!({})),
            )
            .await;
        let secret_id = answer["data"]["secret_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no secret_id in {answer}"))
            .to_string();
        (role_id, secret_id)
    }

    /// Creates a token with exactly `policies` (no `default` policy, 1 h TTL); returns it.
    pub async fn create_token(&self, policies: &[&str]) -> String {
        let body = json!({ "policies": policies, "no_default_policy": true, "ttl": "1h" });
        let answer = self
            .call(Method::POST, "auth/token/create", Some(&body))
            .await;
        answer["auth"]["client_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no client_token in {answer}"))
            .to_string()
    }

    /// Creates namespace `name` under this view's namespace.
    pub async fn create_namespace(&self, name: &str) {
        self.call(
            Method::POST,
            &format!("sys/namespaces/{}", name.trim_matches('/')),
            Some(&json!({})),
        )
        .await;
    }
}

fn kv_path(mount: &str, kind: &str, path: &str) -> String {
    format!(
        "{}/{kind}/{}",
        mount.trim_matches('/'),
        encode_path(path.trim_start_matches('/'))
    )
}

/// Percent-encodes everything in a secret path but unreserved characters and `/`, so names
/// holding `#`, `?`, `%`, spaces or non-ASCII reach Vault intact.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// KV v2 mount `secret`, subtree `apps`: list the subtree's top and `team-a/`, read only
/// `team-a/*` (so `team-b/` is denied).
pub const TEAM_A_ONLY_POLICY: &str = r#"
path "secret/metadata/apps/" { capabilities = ["list"] }
path "secret/metadata/apps/team-a/*" { capabilities = ["list"] }
path "secret/data/apps/team-a/*" { capabilities = ["read"] }
"#;

/// `bao server -dev -dev-tls`: a generated CA, written to a directory we choose.
pub struct TlsBao {
    pub addr: String,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
    _process: super::ServerProcess,
}

pub async fn start_tls_bao() -> TlsBao {
    let bin = super::bin_path("bao");
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..5 {
        let port = super::free_port_pair();
        let args = vec![
            "server".to_string(),
            "-dev".to_string(),
            "-dev-tls".to_string(),
            format!("-dev-tls-cert-dir={}", dir.path().display()),
            "-dev-root-token-id=root".to_string(),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        let mut process = super::ServerProcess::spawn("bao-tls", &bin, &args);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if process.log().contains("OpenBao server started") {
                return TlsBao {
                    addr: format!("https://127.0.0.1:{port}"),
                    ca: dir.path().join("vault-ca.pem"),
                    _dir: dir,
                    _process: process,
                };
            }
            if process.exited().is_some() {
                break; // port taken: try another
            }
            if Instant::now() > deadline {
                process.fail("no 'OpenBao server started' line");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("could not start bao -dev-tls");
}
