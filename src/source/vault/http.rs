//! Raw Vault API requests through the `vaultrs` client's configured HTTP client.
//!
//! `vaultrs` builds the client (address, TLS trust, verification, timeout, connection pool); the
//! KV requests go out as raw `GET`/`LIST` requests on it because secretport needs what the typed
//! endpoints hide: the exact status code (a 404 on the root of a walk is an empty listing, a 404
//! *with* a body on a KV v2 read carries the metadata of a deleted version), the exact JSON text
//! of the data (number literals as Vault wrote them), and a token that can change during a run
//! without a `&mut` client shared by 32 concurrent reads.
//!
//! Every request holds one permit of a semaphore sized by `parallelism`, so that setting bounds
//! the requests in flight against Vault, whatever the caller's concurrency. Requests go through
//! the `vault` limiter group and the run's one retry policy (`retry::call`, `max_attempts`),
//! like every AWS call: transient failures (connection errors, timeouts, 412/5xx) are retried
//! with backoff, 429 lowers the rate (AIMD); reads and lists are idempotent. A shutdown stops
//! the retrying. Each attempt is bounded by `[limits] timeout_seconds`.

use std::error::Error as StdError;
use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Semaphore;
use vaultrs::client::{VaultClient, VaultClientSettings};
use zeroize::Zeroizing;

use crate::config::VaultConfig;
use crate::limits::Limits;
use crate::retry::{self, Class, Classify, RetryPolicy};
use crate::source::{SourceError, SourceErrorKind};

/// Why one attempt did not give a final answer.
enum Attempt {
    /// An answer worth another try (412, 429, 5xx): kept, returned if the retries run out.
    Transient(Reply),
    /// No answer (connection, TLS, timeout).
    NoAnswer(String),
}

impl Classify for Attempt {
    fn class(&self) -> Class {
        match self {
            Attempt::Transient(r) if r.status == 429 => Class::Throttled,
            // a certificate problem does not go away by asking again
            Attempt::NoAnswer(e) if !tls_hint(e).is_empty() => Class::Permanent,
            _ => Class::Transient,
        }
    }
}

/// The HTTP verbs secretport sends to Vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Get,
    List,
    Post,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Post => "POST",
        }
    }
}

/// A Vault answer of any status. The body may hold secret values: it is zeroized on drop.
pub(super) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl Reply {
    /// Vault's `errors` array, tidied (`"1 error occurred:\n\t* permission denied\n\n"` becomes
    /// `permission denied`) and joined with `; `. Error answers never carry secret values.
    pub(crate) fn errors(&self) -> String {
        #[derive(Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        let Ok(e) = serde_json::from_slice::<Errors>(&self.body) else {
            return String::new();
        };
        e.errors
            .iter()
            .flat_map(|m| tidy_error(m))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `HTTP 500 (message)` for messages about unexpected answers.
    pub(crate) fn describe(&self) -> String {
        let errors = self.errors();
        if errors.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {} ({errors})", self.status)
        }
    }
}

/// Go's multierror text (`"2 errors occurred:\n\t* a\n\t* b\n\n"`) as its items.
fn tidy_error(m: &str) -> Vec<String> {
    let items: Vec<String> = m
        .lines()
        .filter_map(|l| l.trim().strip_prefix("* "))
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if m.contains("occurred:") && !items.is_empty() {
        items
    } else {
        vec![m.trim().to_owned()]
    }
}

/// The configured HTTP client, address and request bound.
pub(super) struct Http {
    vault: VaultClient,
    /// `<address>/v1/`
    base: String,
    /// The address as configured, for messages.
    pub(crate) address: String,
    namespace: Option<String>,
    permits: Semaphore,
    limits: Arc<Limits>,
    policy: RetryPolicy,
}

/// `s.parse()` with the error as text; lets the caller's expected type pick `T`.
fn parse_as<T: FromStr>(s: &str) -> Result<T, String>
where
    T::Err: Display,
{
    s.parse::<T>().map_err(|e| e.to_string())
}

/// An error and its sources, `: `-joined (reqwest puts the useful part, such as a TLS or
/// connection failure, in the sources).
pub(super) fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

impl Http {
    /// Builds the client. Nothing is read from `VAULT_*` / `BAO_*` environment variables here:
    /// the config already folded the address, namespace, CA, verification and client
    /// certificate in.
    pub(crate) fn build(
        cfg: &VaultConfig,
        limits: Arc<Limits>,
        policy: RetryPolicy,
        timeout: Duration,
    ) -> Result<Http, SourceError> {
        let address = cfg.address.trim_end_matches('/').to_owned();
        let other = |m: String| SourceError::new(SourceErrorKind::Other, "", m);
        if cfg.tls_skip_verify {
            tracing::warn!(
                address = %address,
                "TLS certificate verification of the Vault server is disabled (tls_skip_verify, or VAULT_SKIP_VERIFY)"
            );
        }
        let identity = match &cfg.client_identity {
            None => None,
            Some(id) => Some(
                vaultrs::client::Identity::from_pem(id.pem.expose_secret().as_bytes()).map_err(
                    |e| {
                        other(format!(
                            "cannot use the client certificate {} with the key {}: {}",
                            id.cert.display(),
                            id.key.display(),
                            chain(&e)
                        ))
                    },
                )?,
            ),
        };
        let namespace = cfg
            .namespace
            .as_deref()
            .map(|n| n.trim_matches('/').to_owned())
            .filter(|n| !n.is_empty());
        if let (Some(ca), true) = (&cfg.ca_cert, address.starts_with("https://")) {
            // vaultrs accepts a file without any certificate (and then trusts nothing extra)
            let pem = std::fs::read(ca).map_err(|e| {
                other(format!(
                    "cannot read the CA certificate {}: {e}",
                    ca.display()
                ))
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(other(format!(
                    "the CA certificate {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    ca.display()
                )));
            }
        }
        let settings = VaultClientSettings {
            address: parse_as(&address)
                .map_err(|e| other(format!("source.address {address:?} is not a URL: {e}")))?,
            ca_certs: cfg
                .ca_cert
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            identity,
            timeout: Some(timeout),
            token: String::new(),
            verify: !cfg.tls_skip_verify,
            version: 1,
            wrapping: false,
            namespace: None, // sent per request (logins may go to another namespace)
            proxy: None,
        };
        let vault = VaultClient::new(settings).map_err(|e| {
            let mut what = match &cfg.ca_cert {
                Some(p) => format!("cannot use the CA certificate {}", p.display()),
                None => "cannot build the Vault client".to_owned(),
            };
            // rustls parses the client key only here
            if let Some(id) = &cfg.client_identity {
                what.push_str(&format!(
                    " with the client certificate {} and key {}",
                    id.cert.display(),
                    id.key.display()
                ));
            }
            other(format!("{what}: {}", chain(&e)))
        })?;
        Ok(Http {
            vault,
            base: format!("{address}/v1/"),
            address,
            namespace,
            permits: Semaphore::new(cfg.parallelism.max(1)),
            limits,
            policy,
        })
    }

    /// Sends `verb /v1/<path>` (`path` already percent-encoded) in the source's namespace,
    /// retrying transient failures. Any HTTP status is an `Ok`; only a failure to get an answer
    /// is an `Err` ([`SourceErrorKind::Unavailable`], path left empty for the caller).
    pub(crate) async fn send(
        &self,
        verb: Verb,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&[u8]>,
    ) -> Result<Reply, SourceError> {
        self.send_in(self.namespace.as_deref(), verb, path, token, body)
            .await
    }

    /// [`send`](Self::send) in namespace `ns` (`None` = the root namespace): logins and token
    /// lookups go to the namespace of the auth mount, which may be a parent of the source's.
    pub(crate) async fn send_in(
        &self,
        ns: Option<&str>,
        verb: Verb,
        path: &str,
        token: Option<&SecretString>,
        body: Option<&[u8]>,
    ) -> Result<Reply, SourceError> {
        let url = format!("{}{}", self.base, path);
        let attempted = retry::call(&self.limits.vault, &self.policy, || async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| Attempt::NoAnswer(e.to_string()))?;
            match self.once(ns, verb, &url, token, body).await {
                Ok(reply) if transient(reply.status) => {
                    tracing::debug!(
                        status = reply.status,
                        "Vault {} /v1/{path}: transient answer",
                        verb.as_str()
                    );
                    Err(Attempt::Transient(reply))
                }
                Ok(reply) => Ok(reply),
                Err(e) => Err(Attempt::NoAnswer(e)),
            }
        })
        .await;
        match attempted.result {
            Ok(reply) | Err(Attempt::Transient(reply)) => Ok(reply),
            Err(Attempt::NoAnswer(e)) => Err(SourceError::new(
                SourceErrorKind::Unavailable,
                "",
                format!(
                    "cannot reach Vault at {}: {e}{}",
                    self.address,
                    tls_hint(&e)
                ),
            )),
        }
    }

    async fn once(
        &self,
        ns: Option<&str>,
        verb: Verb,
        url: &str,
        token: Option<&SecretString>,
        body: Option<&[u8]>,
    ) -> Result<Reply, String> {
        let http = &self.vault.http.http;
        let method = parse_as(verb.as_str())?;
        let mut req = http.request(method, url).header("X-Vault-Request", "true");
        if let Some(ns) = ns.filter(|n| !n.is_empty()) {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(t) = token {
            req = req.header("X-Vault-Token", token_header(t)?);
        }
        if let Some(b) = body {
            // copied into the request; the caller's buffer is the one to zeroize
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_vec());
        }
        let resp = req.send().await.map_err(|e| chain(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| chain(&e))?;
        Ok(Reply {
            status,
            body: Zeroizing::new(Vec::from(bytes)),
        })
    }
}

/// The `X-Vault-Token` header value, marked sensitive: `http`'s `Debug` prints `Sensitive`
/// instead of the token, so a debug print of a request or its headers (ours, reqwest's or a
/// middleware's) cannot show it, and HTTP/2 HPACK never indexes it.
fn token_header(t: &SecretString) -> Result<http::HeaderValue, String> {
    let mut v = http::HeaderValue::from_str(t.expose_secret())
        .map_err(|_| "the Vault token holds characters not allowed in an HTTP header".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// A suggestion for a TLS failure: a certificate the client does not trust is almost always a
/// private CA that `ca_cert` (or `VAULT_CACERT`) must name.
fn tls_hint(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("certificate") || e.contains("unknownissuer") || e.contains("tls") {
        "; if the server's certificate comes from a private CA, set source.ca_cert (or \
         VAULT_CACERT) to that CA's PEM file (tls_skip_verify = true only for tests)"
    } else {
        ""
    }
}

/// Statuses worth another try: performance-standby lag, rate limits, server trouble.
fn transient(status: u16) -> bool {
    matches!(status, 412 | 429 | 500 | 502 | 503 | 504)
}

/// Percent-encodes a `/`-separated API path: every byte but unreserved characters and `/`
/// (spaces, `#`, `?`, `%`, `:`, unicode... all become `%XX`).
pub(super) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_per_byte() {
        assert_eq!(encode_path("secret/data/a b"), "secret/data/a%20b");
        assert_eq!(
            encode_path("café/naïve#1?x:y%z+"),
            "caf%C3%A9/na%C3%AFve%231%3Fx%3Ay%25z%2B"
        );
        assert_eq!(encode_path("a-b_c.d~e/"), "a-b_c.d~e/");
    }

    #[test]
    fn token_header_is_sensitive_and_never_printed() {
        let h = token_header(&SecretString::from("hvs.Pl4ntedVaultToken")).unwrap();
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("Pl4nted"), "{h:?}");
        let mut map = http::HeaderMap::new();
        map.insert("x-vault-token", h);
        assert!(!format!("{map:?}").contains("Pl4nted"));
        let e = token_header(&SecretString::from("bad\ntoken")).unwrap_err();
        assert!(!e.contains("bad"), "{e}");
    }

    #[test]
    fn tls_failures_suggest_ca_cert() {
        assert!(tls_hint("error sending request: client error (Connect): invalid peer certificate: UnknownIssuer").contains("source.ca_cert"));
        assert_eq!(tls_hint("tcp connect error: Connection refused"), "");
    }

    #[test]
    fn vault_errors_are_tidied() {
        let r = Reply {
            status: 403,
            body: Zeroizing::new(
                br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#.to_vec(),
            ),
        };
        assert_eq!(r.errors(), "permission denied");
        assert_eq!(r.describe(), "HTTP 403 (permission denied)");
        let r = Reply {
            status: 404,
            body: Zeroizing::new(br#"{"errors":[]}"#.to_vec()),
        };
        assert_eq!(r.errors(), "");
        assert_eq!(r.describe(), "HTTP 404");
        let r = Reply {
            status: 502,
            body: Zeroizing::new(b"<html>bad gateway</html>".to_vec()),
        };
        assert_eq!(r.describe(), "HTTP 502");
    }
}
