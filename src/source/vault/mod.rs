//! The Vault / OpenBao KV source.
//!
//! Reads a subtree of one KV mount, version 1 or 2, of HashiCorp Vault or OpenBao (same API).
//!
//! # Connecting
//! [`VaultSource::connect`] builds the HTTP client (`vaultrs`; TLS verification on, `ca_cert`
//! trusted in addition to the system roots, `tls_skip_verify` only when set, with a warning),
//! authenticates (see the `auth` submodule: a token, or one login with AppRole, Kubernetes, JWT
//! or AWS IAM, in the auth namespace; the token is renewed, or the method logs in again, when it
//! nears expiry during a long run), and finds the KV version in `sys/internal/ui/mounts/<mount>` (`options.version`) unless
//! `kv_version` is set. A token Vault refuses gives one [`SourceErrorKind::Auth`] error.
//!
//! # KV semantics
//! - **Listing** walks the subtree with `LIST <mount>/metadata/<path>/` (v2) or
//!   `LIST <mount>/<path>/` (v1), `parallelism` requests at a time. Keys ending in `/` are
//!   folders. Paths in the listing are relative to the configured `path`, sorted. A folder that
//!   answers 403 (or disappears, 404) becomes a [`ListProblem`](crate::source::ListProblem) for
//!   that folder (`team-b/`) and the walk goes on; the listing is then incomplete, so
//!   reconciliation never calls what it could not see an orphan. A subtree that does not exist is
//!   an empty listing; a 403 on the subtree itself, or a mount that does not exist, is an error.
//!   Listing reads no metadata, so versions are unknown until a value is read.
//! - **Reading** is one request per secret. KV v2: `GET <mount>/data/<path>` returns the current
//!   version; the value is its `data` object as JSON text, the version is `metadata.version`,
//!   and the metadata returned is `custom_metadata` (always returned; the executor copies it into
//!   tags only under `copy_metadata = true`). A current version that is soft-deleted or
//!   destroyed (Vault answers 404 with the metadata in the body) is
//!   [`Fetched::Gone`] with `current version N is deleted` /
//!   `... is destroyed`; older versions are never migrated. A version whose deletion is only
//!   scheduled (`delete_version_after`) is still current and is migrated. KV v1:
//!   `GET <mount>/<path>`, the `data` object as JSON text, no version, no metadata.
//! - **The value text** is the JSON object exactly as Vault returns it, compacted: key order and
//!   number literals are copied, not re-printed (see the `json` submodule). Vault itself sorts
//!   keys (Go maps), and KV v2 stores numbers as float64, so `1.50` written to KV v2 reads back as
//!   `1.5` and big integers lose digits; KV v1 keeps number literals as written.
//! - A 403 on a read is [`SourceErrorKind::Denied`], a 404 [`SourceErrorKind::NotFound`] (deleted
//!   since listing, or a KV v2 secret that only has metadata); both name the path and the rest of
//!   the run goes on.
//! - **Identity** (the `secretport:source` tag): `vault:<address>/<namespace/><mount>/<path
//!   under the mount>`, e.g. `vault:https://vault.example.com/team-a/secret/apps/db`.
//!
//! # Required policy
//! For `plan` (list only; no value is read). KV v2 mount `secret`, subtree `apps`:
//! ```hcl
//! path "secret/metadata/apps/"  { capabilities = ["list"] }
//! path "secret/metadata/apps/*" { capabilities = ["list"] }
//! ```
//! For `migrate` / `reconcile`, add read on the data:
//! ```hcl
//! path "secret/data/apps/*" { capabilities = ["read"] }
//! ```
//! KV v1 mount `kv`: `list` on `kv/apps/` and `kv/apps/*`, plus `read` on `kv/apps/*` to
//! migrate. Token auth also uses `auth/token/lookup-self` and `auth/token/renew-self` (both in
//! Vault's `default` policy); without them the token works but is neither checked up front nor
//! renewed. The KV version comes from `sys/internal/ui/mounts/<mount>`, which Vault and OpenBao
//! answer for any token holding some capability on the mount (a preflight check; ACL rules on
//! the `sys/internal/...` path itself are not consulted by OpenBao), so the rules above suffice;
//! it answers 403 for a mount that does not exist, even to a root token. Set `kv_version` to skip
//! the detection.
//!
//! # Requests and secrets
//! Every request holds one of `parallelism` permits (default 16), so that setting bounds the
//! load on Vault for listing and reading alike, whatever the executor's concurrency. Transient
//! failures (connection errors, 412, 429, 5xx) are retried three times with backoff. Answers are
//! held in zeroized buffers; values leave this module only inside [`SecretValue`](crate::secret::SecretValue)s, and no error
//! message contains a value (Vault's own error texts never do).

mod auth;
mod aws_iam;
mod http;
mod json;
mod kv;
mod walk;

use futures::future::BoxFuture;

use self::auth::Session;
use self::http::{encode_path, Http, Reply, Verb};
use self::kv::{Detected, Kv};
use crate::config::VaultConfig;
use crate::identity::Scope;
use crate::source::{
    Fetched, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};

/// A connected Vault / OpenBao KV source. Cheap to share: `fetch` may run many times at once.
pub struct VaultSource {
    http: Http,
    session: Session,
    /// KV mount, without slashes.
    mount: String,
    /// Subtree inside the mount, without leading/trailing slashes ("" = whole mount).
    subtree: String,
    namespace: Option<String>,
    kv: Kv,
    parallelism: usize,
}

impl std::fmt::Debug for VaultSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSource")
            .field("address", &self.http.address)
            .field("namespace", &self.namespace)
            .field("mount", &self.mount)
            .field("path", &self.subtree)
            .field("kv_version", &self.kv.number())
            .finish_non_exhaustive()
    }
}

impl VaultSource {
    /// Connects: builds the client, authenticates, and detects the KV version (unless
    /// `kv_version` is configured). Errors: [`SourceErrorKind::Auth`] when Vault refuses the
    /// credentials, [`SourceErrorKind::Unavailable`] when it cannot be reached (TLS failures
    /// included), [`SourceErrorKind::Denied`] when the KV version cannot be detected and is not
    /// configured, [`SourceErrorKind::Other`] for a bad CA file or a mount that is not KV.
    pub async fn connect(
        cfg: &VaultConfig,
        limits: std::sync::Arc<crate::limits::Limits>,
        policy: crate::retry::RetryPolicy,
        timeout: std::time::Duration,
    ) -> Result<VaultSource, SourceError> {
        let http = Http::build(cfg, limits, policy, timeout)?;
        let (session, verified) = Session::start(&http, cfg, timeout).await?;
        let mut source = VaultSource {
            http,
            session,
            mount: cfg.mount.trim_matches('/').to_owned(),
            subtree: cfg.path.trim_matches('/').to_owned(),
            namespace: cfg
                .namespace
                .as_deref()
                .map(|n| n.trim_matches('/').to_owned())
                .filter(|n| !n.is_empty()),
            kv: Kv::V2,
            parallelism: cfg.parallelism.max(1),
        };
        let mut verified = verified;
        match cfg.kv_version {
            Some(1) => source.kv = Kv::V1,
            Some(_) => source.kv = Kv::V2,
            None => match source.detect_kv().await? {
                Detected::Version(kv) => {
                    source.kv = kv;
                    verified = true;
                }
                Detected::Denied(why) => {
                    if !verified && !source.token_works().await? {
                        return Err(source.refused());
                    }
                    let api = format!("sys/internal/ui/mounts/{}", source.mount);
                    return Err(SourceError::new(
                        SourceErrorKind::Denied,
                        api.clone(),
                        format!(
                            "cannot detect the KV version of mount \"{}\": Vault answered 403 on {api}{}. \
                             Either the mount does not exist, or the token may not read that path: \
                             check `mount`, set kv_version = 1 or 2 in [source], or grant \"read\" on {api}",
                            source.mount,
                            if why.is_empty() { String::new() } else { format!(" ({why})") },
                        ),
                    ));
                }
            },
        }
        if !verified && !source.token_works().await? {
            return Err(source.refused());
        }
        tracing::debug!(
            address = %source.http.address,
            mount = %source.mount,
            kv_version = source.kv.number(),
            "connected to Vault"
        );
        Ok(source)
    }

    /// The KV version in use (detected or configured).
    pub fn kv_version(&self) -> u8 {
        self.kv.number()
    }

    /// Whether any listing request on the mount gets past authentication (200 or 404, not 403):
    /// tells a valid token that may not look itself up from one Vault refuses.
    async fn token_works(&self) -> Result<bool, SourceError> {
        let mut candidates = vec![self.list_path("")];
        if self.kv == Kv::V2 {
            // the version may be a guess here: try the v1 layout too
            candidates.push(format!("{}/", self.mount));
            if !self.subtree.is_empty() {
                candidates.push(format!("{}/{}/", self.mount, self.subtree));
            }
        }
        for api in candidates {
            let reply = self.call(Verb::List, &encode_path(&api)).await?;
            if reply.status != 403 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn refused(&self) -> SourceError {
        SourceError::new(
            SourceErrorKind::Auth,
            "",
            format!(
                "Vault at {} refused {} (permission denied on auth/token/lookup-self and on mount \"{}\"{}): \
                 the token is wrong, expired or revoked, or no policy of it grants anything on the mount",
                self.http.address,
                self.session.describe(),
                self.mount,
                self.namespace
                    .as_deref()
                    .map(|n| format!(" in namespace \"{n}\""))
                    .unwrap_or_default()
            ),
        )
    }

    /// `<subtree>/<rel>` (or `rel` alone when the whole mount is migrated).
    fn full_path(&self, rel: &str) -> String {
        if self.subtree.is_empty() {
            rel.to_owned()
        } else if rel.is_empty() {
            self.subtree.clone()
        } else {
            format!("{}/{rel}", self.subtree)
        }
    }

    /// One authenticated request (`path` percent-encoded).
    async fn call(&self, verb: Verb, path: &str) -> Result<Reply, SourceError> {
        let token = self.session.token(&self.http).await?;
        self.http.send(verb, path, Some(&token.token), None).await
    }

    /// An answer nothing else expected.
    fn unexpected(&self, api: &str, reply: &Reply) -> SourceError {
        let kind = match reply.status {
            s if s >= 500 => SourceErrorKind::Unavailable,
            _ => SourceErrorKind::Other,
        };
        SourceError::new(
            kind,
            "",
            format!("Vault answered {} on {api}", reply.describe()),
        )
    }
}

/// `e` about `path` instead.
fn at_path(mut e: SourceError, path: &str) -> SourceError {
    e.path = path.to_owned();
    e
}

impl Source for VaultSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Vault
    }

    fn expiry(&self) -> Option<crate::source::expiry::Expiry> {
        Some(self.session.expiry())
    }

    fn scope(&self) -> Scope {
        let mut instance = self.http.address.clone();
        if let Some(ns) = &self.namespace {
            instance.push('/');
            instance.push_str(ns);
        }
        instance.push('/');
        instance.push_str(&self.mount);
        Scope::new(SourceKind::Vault.as_str(), &instance, &self.subtree)
    }

    fn location(&self) -> String {
        let ns = self
            .namespace
            .as_ref()
            .map(|n| format!(" in namespace {n}"))
            .unwrap_or_default();
        format!(
            "mount {}, path {:?}{ns} at {}",
            self.mount,
            format!("{}/", self.subtree).trim_start_matches('/'),
            self.http.address
        )
    }

    fn empty_advice(&self) -> String {
        "check mount and path (on KV v2, path is the secret path without data/)".into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(self.walk())
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.read(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VaultAuth;
    use crate::retry::RetryPolicy;
    use std::time::Duration;

    fn test_limits() -> std::sync::Arc<crate::limits::Limits> {
        std::sync::Arc::new(crate::limits::Limits::new(
            &crate::config::LimitsConfig::default(),
        ))
    }

    fn cfg(path: &str, namespace: Option<&str>) -> VaultConfig {
        let token = VaultAuth::Token {
            token: secrecy::SecretString::from("t".to_owned()),
            origin: "$VAULT_TOKEN".into(),
        };
        let mut c = VaultConfig::with_defaults("http://127.0.0.1:8200", "secret", path, token);
        c.namespace = namespace.map(Into::into);
        c.kv_version = Some(2);
        c.parallelism = 4;
        c
    }

    /// A source that was never connected (no request is made by what these tests call).
    fn offline(c: &VaultConfig, kv: Kv) -> VaultSource {
        let http = Http::build(
            c,
            test_limits(),
            RetryPolicy::new(2),
            Duration::from_secs(5),
        )
        .unwrap();
        let session = Session::offline_for_tests();
        VaultSource {
            http,
            session,
            mount: c.mount.clone(),
            subtree: c.path.clone(),
            namespace: c.namespace.clone(),
            kv,
            parallelism: c.parallelism,
        }
    }

    #[test]
    fn identity_has_address_namespace_mount_subtree_and_path() {
        let s = offline(&cfg("apps", None), Kv::V2);
        assert_eq!(
            s.scope().identity("db/primary").text(),
            "vault:http://127.0.0.1:8200/secret apps/db/primary"
        );
        let s = offline(&cfg("", Some("team-a")), Kv::V2);
        assert_eq!(
            s.scope().identity("café/naïve").text(),
            "vault:http://127.0.0.1:8200/team-a/secret caf=C3=A9/na=C3=AFve"
        );
        assert_eq!(s.kind(), SourceKind::Vault);
    }

    #[test]
    fn api_paths_for_both_versions() {
        let s = offline(&cfg("apps", None), Kv::V2);
        assert_eq!(s.list_path(""), "secret/metadata/apps/");
        assert_eq!(s.list_path("team a/"), "secret/metadata/apps/team a/");
        assert_eq!(s.read_path("db/x"), "secret/data/apps/db/x");
        let s = offline(&cfg("", None), Kv::V1);
        assert_eq!(s.list_path(""), "secret/");
        assert_eq!(s.list_path("a/b/"), "secret/a/b/");
        assert_eq!(s.read_path("a/b"), "secret/a/b");
        let s = offline(&cfg("", None), Kv::V2);
        assert_eq!(s.list_path(""), "secret/metadata/");
    }

    #[test]
    fn debug_shows_no_token() {
        let s = offline(&cfg("apps", None), Kv::V2);
        let d = format!("{s:?}");
        assert!(d.contains("secret") && !d.contains("offline-token"), "{d}");
    }

    #[test]
    fn a_client_certificate_that_is_not_one_names_both_files() {
        let mut c = cfg("", None);
        c.address = "https://127.0.0.1:8200".into();
        c.client_identity = Some(crate::config::ClientIdentity {
            cert: "/etc/vault/client.pem".into(),
            key: "/etc/vault/client-key.pem".into(),
            pem: secrecy::SecretString::from(
                "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n\
                 -----BEGIN PRIVATE KEY-----\nS2V5UGw0bnRlZA==\n-----END PRIVATE KEY-----\n"
                    .to_owned(),
            ),
        });
        let e = Http::build(
            &c,
            test_limits(),
            RetryPolicy::new(1),
            Duration::from_secs(1),
        )
        .err()
        .expect("not a certificate");
        assert!(
            e.message.contains("/etc/vault/client.pem")
                && e.message.contains("/etc/vault/client-key.pem"),
            "{e}"
        );
        assert!(!e.message.contains("S2V5UGw0bnRlZA"), "{e}");
    }

    #[tokio::test]
    async fn unreachable_server_is_unavailable() {
        let mut c = cfg("", None);
        c.address = "http://127.0.0.1:1".into();
        let e = VaultSource::connect(
            &c,
            test_limits(),
            RetryPolicy::new(2),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::Unavailable, "{e}");
        assert!(e.message.contains("127.0.0.1:1"), "{e}");
    }
}
