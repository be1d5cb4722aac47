//! Authentication and token lifetime.
//!
//! The credentials arrive resolved in the config's [`VaultAuth`] (the environment and
//! `~/.vault-token` were read once, at config validation); nothing here reads an environment
//! variable.
//!
//! - **token**: checked with `auth/token/lookup-self`, which also tells its TTL and whether it
//!   is renewable. A token without the `default` policy may not look itself up; its validity is
//!   then proven by the first request that is not a 403 (see `VaultSource::connect`).
//! - **Logins** (`approle`, `kubernetes`, `jwt`, `aws`): one `POST auth/<mount>/login` with the
//!   method's body: `{role_id, secret_id}`, `{role, jwt}` (Kubernetes and JWT/OIDC: same call),
//!   or the signed `sts:GetCallerIdentity` request of AWS IAM auth (`aws_iam`). A JWT file (the
//!   projected service-account token of a pod rotates) is read again at every later login; AWS
//!   credentials come from the SDK's provider chain each time (it caches and refreshes them).
//!
//! Logins and token lookups go to the **auth namespace** (`[source.auth] namespace`, else the
//! source's): a token issued in a parent namespace reads secrets in a child one. A refused login
//! names the URL, the namespace and the mount, since a wrong namespace or mount gets the same
//! 403 from Vault as a wrong credential. No message holds a credential: Vault's error text is
//! scrubbed of the login body's secrets before it is kept.
//!
//! Renewal is checked before every request, which costs a clock read: when less than a third of
//! the token's TTL (at most 5 minutes, at least 0.5 s) is left, one task renews it
//! (`auth/token/renew-self`) while the others wait on a mutex and then use the result. If the
//! renewal fails or no longer extends the token (it reached its max TTL), a login method logs in
//! again; a plain token carries on until it expires, after which every request fails with one
//! clear [`SourceErrorKind::Auth`] error instead of a 403 per secret. A plain token that cannot
//! outlive the run (not renewable, or capped by its max TTL), or a login method whose new login
//! is refused (not merely unreachable), records the token's end on the session's [`Expiry`]
//! watch, so the executor stops starting secrets just before it and reports the rest as not
//! started, naming the token and what to use instead; a later successful login clears it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::aws_iam;
use super::http::{Http, Verb};
use crate::config::{JwtOrigin, VaultAuth, VaultConfig};
use crate::error_text::scrub;
use crate::secret::SecretValue;
use crate::source::expiry::{CredentialEnd, Expiry};
use crate::source::{SourceError, SourceErrorKind};

/// How we log in, with the credentials the config resolved.
enum Method {
    Token { origin: String },
    Login { mount: String, how: Login },
}

/// The login methods' own parts.
enum Login {
    AppRole {
        role_id: SecretString,
        secret_id: SecretString,
        role_id_env: String,
        secret_id_env: String,
    },
    /// `kubernetes` and `jwt`: the same `{role, jwt}` call.
    Jwt {
        method: &'static str,
        role: String,
        /// The JWT read at config time.
        first: SecretString,
        origin: JwtOrigin,
    },
    Aws {
        role: Option<String>,
        header_value: Option<String>,
        sts_endpoint: String,
        sts_region: String,
        provider: SharedCredentialsProvider,
    },
}

impl Login {
    fn name(&self) -> &'static str {
        match self {
            Login::AppRole { .. } => "AppRole",
            Login::Jwt {
                method: "kubernetes",
                ..
            } => "Kubernetes",
            Login::Jwt { .. } => "JWT",
            Login::Aws { .. } => "AWS IAM",
        }
    }
}

/// The current token and what we know of its lifetime.
pub(super) struct TokenState {
    pub(crate) token: SecretString,
    expires_at: Option<Instant>,
    margin: Duration,
    renewable: bool,
    /// No refresh attempt before this instant (after a failure, or when nothing can be done).
    quiet_until: Option<Instant>,
}

/// How long before expiry a token is refreshed: a third of its TTL, within 0.5 s ..= 5 min.
fn margin_for(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(500), Duration::from_secs(300))
}

impl TokenState {
    fn new(token: SecretString, ttl_secs: u64, renewable: bool, now: Instant) -> Self {
        let ttl = Duration::from_secs(ttl_secs);
        TokenState {
            token,
            expires_at: (ttl_secs > 0).then(|| now + ttl),
            margin: margin_for(ttl),
            renewable,
            quiet_until: None,
        }
    }

    fn needs_refresh(&self, now: Instant) -> bool {
        match self.expires_at {
            None => false,
            Some(e) => {
                e.saturating_duration_since(now) <= self.margin
                    && !matches!(self.quiet_until, Some(q) if now < q)
            }
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.expires_at.map(|e| e.saturating_duration_since(now))
    }
}

/// The authenticated session: the login method and the current token.
pub(super) struct Session {
    method: Method,
    /// Where logins and token lookups go (`None` = the root namespace).
    namespace: Option<String>,
    state: RwLock<Arc<TokenState>>,
    refresh: tokio::sync::Mutex<()>,
    /// Set once the token is known to end with nothing to replace it (the executor then starts
    /// no new secret, see [`Expiry`]).
    expiry: Expiry,
}

/// What to use instead of a plain token that cannot outlive the run.
const TOKEN_ADVICE: &str = "use a login method (approle, kubernetes, jwt, aws), or a token whose \
                            max_ttl covers the run";

/// `auth/token/lookup-self` and `renew-self` answers, the parts we use.
#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: Option<bool>,
}

#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

/// The `auth` object of a login or `renew-self` answer.
#[derive(Deserialize)]
struct AuthInfo {
    #[serde(default)]
    client_token: Option<String>,
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct AuthReply {
    auth: AuthInfo,
}

fn auth_error(message: String) -> SourceError {
    SourceError::new(SourceErrorKind::Auth, "", message)
}

/// `namespace "a/b"` or `the root namespace`, for messages.
fn ns_text(ns: Option<&str>) -> String {
    match ns {
        Some(n) => format!("namespace \"{n}\""),
        None => "the root namespace".to_owned(),
    }
}

impl Session {
    /// Authenticates with the configured method. Returns the session and whether the token is
    /// known to be valid (false only when a plain token may not look itself up). `timeout`
    /// bounds the AWS credential provider's calls (AWS IAM auth).
    pub(crate) async fn start(
        http: &Http,
        cfg: &VaultConfig,
        timeout: Duration,
    ) -> Result<(Session, bool), SourceError> {
        let namespace = cfg.login_namespace().map(str::to_owned);
        let jwt =
            |method, mount: &String, role: &String, jwt: &SecretString, origin| Method::Login {
                mount: mount.clone(),
                how: Login::Jwt {
                    method,
                    role: role.clone(),
                    first: jwt.clone(),
                    origin,
                },
            };
        let method = match &cfg.auth {
            VaultAuth::Token { origin, .. } => Method::Token {
                origin: origin.clone(),
            },
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
                role_id_env,
                secret_id_env,
            } => Method::Login {
                mount: mount.clone(),
                how: Login::AppRole {
                    role_id: role_id.clone(),
                    secret_id: secret_id.clone(),
                    role_id_env: role_id_env.clone(),
                    secret_id_env: secret_id_env.clone(),
                },
            },
            VaultAuth::Kubernetes {
                mount,
                role,
                jwt: t,
                jwt_file,
            } => jwt(
                "kubernetes",
                mount,
                role,
                t,
                JwtOrigin::File(jwt_file.clone()),
            ),
            VaultAuth::Jwt {
                mount,
                role,
                jwt: t,
                origin,
            } => jwt("jwt", mount, role, t, origin.clone()),
            VaultAuth::Aws {
                mount,
                role,
                header_value,
                sts_endpoint,
                sts_region,
                credentials,
            } => {
                let sdk = crate::aws::client::sdk_config(&crate::aws::client::Endpoint {
                    region: Some(sts_region),
                    endpoint_url: None,
                    credentials,
                    key: "source.auth.credentials",
                    timeout,
                })
                .await
                .map_err(|e| auth_error(format!("AWS IAM login to Vault: {e}")))?;
                let provider = sdk.credentials_provider().ok_or_else(|| {
                    auth_error(
                        "AWS IAM login to Vault: no AWS credentials found (environment, profile, \
                         container or instance role); set source.auth.credentials"
                            .to_owned(),
                    )
                })?;
                Method::Login {
                    mount: mount.clone(),
                    how: Login::Aws {
                        role: role.clone(),
                        header_value: header_value.clone(),
                        sts_endpoint: sts_endpoint.clone(),
                        sts_region: sts_region.clone(),
                        provider,
                    },
                }
            }
        };
        let mut session = Session {
            method,
            namespace,
            state: RwLock::new(Arc::new(TokenState::new(
                SecretString::from(String::new()),
                0,
                false,
                Instant::now(),
            ))),
            refresh: tokio::sync::Mutex::new(()),
            expiry: Expiry::new(),
        };
        let now = Instant::now();
        let (state, verified) = match (&session.method, &cfg.auth) {
            (Method::Token { .. }, VaultAuth::Token { token, .. }) => {
                session.lookup(http, token.clone()).await?
            }
            _ => (session.login(http, true, now).await?, true),
        };
        if let Some(left) = state.remaining(now) {
            tracing::debug!(
                ttl_s = left.as_secs(),
                renewable = state.renewable,
                "Vault token lifetime"
            );
        }
        if let (Method::Token { .. }, false, Some(left)) =
            (&session.method, state.renewable, state.remaining(now))
        {
            // not renewable: its end is known from the start
            session.record_end(left, now, TOKEN_ADVICE.to_owned());
        }
        session.state = RwLock::new(Arc::new(state));
        Ok((session, verified))
    }

    /// The watch on the token's end of life (set when it cannot be renewed or replaced).
    pub(crate) fn expiry(&self) -> Expiry {
        self.expiry.clone()
    }

    /// Records that the current token ends `left` after `now` and nothing can replace it.
    /// `advice`: what to do instead (for a login method, why the new login failed).
    fn record_end(&self, left: Duration, now: Instant, advice: String) {
        let credential = match &self.method {
            Method::Token { origin } => format!("the Vault token in {origin}"),
            Method::Login { mount, how } => {
                format!("the Vault {} token (auth/{mount})", how.name())
            }
        };
        self.expiry
            .set(CredentialEnd::after(left, now, credential, advice));
    }

    /// Where the token came from, for messages (`the token in $VAULT_TOKEN`).
    pub(crate) fn describe(&self) -> String {
        match &self.method {
            Method::Token { origin } => format!("the token in {origin}"),
            Method::Login { mount, how } => format!("the {} token (auth/{mount})", how.name()),
        }
    }

    /// The token to send now, renewed or replaced first when it nears expiry.
    pub(crate) async fn token(&self, http: &Http) -> Result<Arc<TokenState>, SourceError> {
        let current = self.current();
        if !current.needs_refresh(Instant::now()) {
            return self.usable(current);
        }
        let _one_at_a_time = self.refresh.lock().await;
        let current = self.current();
        let now = Instant::now();
        if !current.needs_refresh(now) {
            return self.usable(current);
        }
        let next = Arc::new(self.refresh(http, &current, now).await);
        *self.state.write().expect("token lock") = next.clone();
        self.usable(next)
    }

    fn current(&self) -> Arc<TokenState> {
        self.state.read().expect("token lock").clone()
    }

    fn usable(&self, state: Arc<TokenState>) -> Result<Arc<TokenState>, SourceError> {
        if state.expired(Instant::now()) {
            return Err(auth_error(format!(
                "{} has expired and could not be renewed{}",
                self.describe(),
                match self.method {
                    Method::Token { .. } =>
                        "; use a token whose TTL covers the run, or a login method (approle, kubernetes, jwt, aws)",
                    Method::Login { .. } => " or replaced by a new login",
                }
            )));
        }
        Ok(state)
    }

    /// A renewed or new token; on failure the current one, left alone for a while.
    async fn refresh(&self, http: &Http, current: &TokenState, now: Instant) -> TokenState {
        if current.renewable {
            match self.renew(http, &current.token).await {
                Ok((lease, renewable)) => {
                    let mut next = TokenState::new(
                        SecretString::from(current.token.expose_secret().to_owned()),
                        lease,
                        renewable,
                        Instant::now(),
                    );
                    next.margin = current.margin;
                    if !next.needs_refresh(Instant::now()) {
                        tracing::debug!(lease_s = lease, "renewed the Vault token");
                        return next;
                    }
                    if matches!(self.method, Method::Token { .. }) {
                        tracing::warn!(
                            "{} reached its maximum TTL and expires in {lease} s; secrets not started by then are reported as not started",
                            self.describe()
                        );
                        if let Some(left) = next.remaining(Instant::now()) {
                            self.record_end(left, Instant::now(), TOKEN_ADVICE.to_owned());
                        }
                        next.quiet_until = next.expires_at;
                        return next;
                    }
                }
                Err(e) => tracing::debug!("renewing the Vault token failed: {e}"),
            }
        }
        match &self.method {
            Method::Login { how, .. } => match self.login(http, false, Instant::now()).await {
                Ok(next) => {
                    tracing::debug!("logged in to Vault again ({})", how.name());
                    self.expiry.clear();
                    next
                }
                Err(e) => {
                    tracing::warn!("{} login to renew the Vault token failed: {e}", how.name());
                    // refused (not unreachable): the same credentials will be refused again, so
                    // the current token's end is the run's, unless a later login succeeds
                    if let (SourceErrorKind::Auth, Some(left)) = (e.kind, current.remaining(now)) {
                        self.record_end(
                            left,
                            now,
                            format!(
                                "the {} login to replace it was refused: {}",
                                how.name(),
                                e.message
                            ),
                        );
                    }
                    copy_quiet(current, now + Duration::from_secs(2))
                }
            },
            Method::Token { .. } => {
                let left = current.remaining(now).unwrap_or_default();
                tracing::warn!(
                    "{} expires in {} s and cannot be renewed; secrets not started by then are reported as not started",
                    self.describe(),
                    left.as_secs()
                );
                self.record_end(left, now, TOKEN_ADVICE.to_owned());
                copy_quiet(current, current.expires_at.unwrap_or(now))
            }
        }
    }

    /// `auth/token/lookup-self` (in the auth namespace): the token's TTL, or `verified = false`
    /// on a 403 (an invalid token and a valid one without the `default` policy both get 403;
    /// the caller tells them apart).
    async fn lookup(
        &self,
        http: &Http,
        token: SecretString,
    ) -> Result<(TokenState, bool), SourceError> {
        let now = Instant::now();
        let reply = http
            .send_in(
                self.namespace.as_deref(),
                Verb::Get,
                "auth/token/lookup-self",
                Some(&token),
                None,
            )
            .await?;
        match reply.status {
            200 => {
                let l: Lookup = serde_json::from_slice(&reply.body).map_err(|e| {
                    SourceError::new(
                        SourceErrorKind::Other,
                        "auth/token/lookup-self",
                        format!("unexpected answer from Vault: {e}"),
                    )
                })?;
                let renewable = l.data.renewable.unwrap_or(false);
                Ok((TokenState::new(token, l.data.ttl, renewable, now), true))
            }
            403 => {
                tracing::debug!(
                    "auth/token/lookup-self denied for {}; checking it on the mount",
                    self.describe()
                );
                Ok((TokenState::new(token, 0, false, now), false))
            }
            400 | 401 => Err(auth_error(format!(
                "Vault at {} ({}) refused {}: {}",
                http.address,
                ns_text(self.namespace.as_deref()),
                self.describe(),
                reply.describe()
            ))),
            _ => Err(SourceError::new(
                if reply.status >= 500 {
                    SourceErrorKind::Unavailable
                } else {
                    SourceErrorKind::Other
                },
                "auth/token/lookup-self",
                format!("Vault at {} answered {}", http.address, reply.describe()),
            )),
        }
    }

    /// The login body of a login method and the secrets in it (to scrub from error texts).
    /// `first`: the first login, which uses the JWT read at config time; later logins read a
    /// JWT file again.
    async fn login_body(
        &self,
        how: &Login,
        first: bool,
    ) -> Result<(Zeroizing<Vec<u8>>, Vec<SecretString>), SourceError> {
        let json = |v: serde_json::Value| {
            serde_json::to_vec(&v)
                .map(Zeroizing::new)
                .map_err(|e| auth_error(e.to_string()))
        };
        match how {
            Login::AppRole {
                role_id, secret_id, ..
            } => Ok((
                json(serde_json::json!({
                    "role_id": role_id.expose_secret(),
                    "secret_id": secret_id.expose_secret(),
                }))?,
                vec![role_id.clone(), secret_id.clone()],
            )),
            Login::Jwt {
                role,
                first: jwt,
                origin,
                ..
            } => {
                let jwt = match origin {
                    JwtOrigin::File(p) if !first => reread(p).unwrap_or_else(|why| {
                        tracing::warn!("{why}; logging in with the JWT read at start");
                        jwt.clone()
                    }),
                    _ => jwt.clone(),
                };
                Ok((
                    json(serde_json::json!({ "role": role, "jwt": jwt.expose_secret() }))?,
                    vec![jwt],
                ))
            }
            Login::Aws {
                role,
                header_value,
                sts_endpoint,
                sts_region,
                provider,
            } => {
                let creds = provider.provide_credentials().await.map_err(|e| {
                    auth_error(format!(
                        "AWS IAM login to Vault: cannot get AWS credentials: {}",
                        crate::error_text::chain(&e)
                    ))
                })?;
                let body = aws_iam::login_body(
                    &creds,
                    role.as_deref(),
                    sts_endpoint,
                    sts_region,
                    header_value.as_deref(),
                    SystemTime::now(),
                )
                .map_err(|e| auth_error(format!("AWS IAM login to Vault: {e}")))?;
                let mut secrets = vec![SecretString::from(creds.secret_access_key().to_owned())];
                if let Some(t) = creds.session_token() {
                    secrets.push(SecretString::from(t.to_owned()));
                }
                Ok((body, secrets))
            }
        }
    }

    /// `POST auth/<mount>/login` in the auth namespace; the new token.
    async fn login(
        &self,
        http: &Http,
        first: bool,
        now: Instant,
    ) -> Result<TokenState, SourceError> {
        let Method::Login { mount, how } = &self.method else {
            unreachable!("login is only for login methods");
        };
        let (body, secrets) = self.login_body(how, first).await?;
        let api = format!("auth/{mount}/login");
        let ns = self.namespace.as_deref();
        let url = format!("{}/v1/{api}", http.address);
        let reply = http
            .send_in(
                ns,
                Verb::Post,
                &super::http::encode_path(&api),
                None,
                Some(&body),
            )
            .await
            .map_err(|e| {
                SourceError::new(
                    e.kind,
                    "",
                    format!(
                        "{} login at {url} ({}) failed: {}",
                        how.name(),
                        ns_text(ns),
                        e.message
                    ),
                )
            })?;
        if reply.status == 200 {
            let parsed: Option<AuthReply> = serde_json::from_slice(&reply.body).ok();
            return match parsed {
                Some(AuthReply {
                    auth:
                        AuthInfo {
                            client_token: Some(t),
                            lease_duration,
                            renewable,
                        },
                }) => Ok(TokenState::new(
                    SecretString::from(t),
                    lease_duration,
                    renewable,
                    now,
                )),
                _ => Err(SourceError::new(
                    SourceErrorKind::Other,
                    "",
                    format!(
                        "{} login at {url}: unexpected answer from Vault (no auth.client_token)",
                        how.name()
                    ),
                )),
            };
        }
        let mut why = reply.errors();
        for s in &secrets {
            why = scrub(&why, &SecretValue::text(s.expose_secret().to_owned()));
        }
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        let kind = if reply.status >= 500 {
            SourceErrorKind::Unavailable
        } else {
            SourceErrorKind::Auth
        };
        let hint = self.login_hint(mount, how);
        Err(SourceError::new(
            kind,
            "",
            format!(
                "{} login at {url} ({}) failed (HTTP {}{why}); {hint}",
                how.name(),
                ns_text(ns),
                reply.status
            ),
        ))
    }

    /// What to check after a refused login: a wrong namespace or mount looks the same to Vault's
    /// caller as a wrong credential, so the namespace and mount come first.
    fn login_hint(&self, mount: &str, how: &Login) -> String {
        let place = format!(
            "check that the {} auth method is enabled at auth/{mount} in {} (source.auth.namespace, \
             else source.namespace) and",
            how.name(),
            ns_text(self.namespace.as_deref())
        );
        match how {
            Login::AppRole {
                role_id_env,
                secret_id_env,
                ..
            } => format!("{place} that the role id in ${role_id_env} and the secret id in ${secret_id_env} belong to it"),
            Login::Jwt {
                method: "kubernetes",
                role,
                origin,
                ..
            } => format!("{place} that role \"{role}\" exists there and is bound to this pod's service account ({origin})"),
            Login::Jwt { role, origin, .. } => format!(
                "{place} that role \"{role}\" exists there and accepts {origin} (the mount's signing keys, the role's bound_audiences and bound claims)"
            ),
            Login::Aws { role, .. } => format!(
                "{place} that role {} exists there with auth_type = \"iam\" and is bound to the IAM principal of these AWS credentials (and that header_value matches the mount's iam_server_id_header_value)",
                role.as_deref().map(|r| format!("\"{r}\"")).unwrap_or_else(|| "(the IAM principal's name)".into())
            ),
        }
    }

    /// `auth/token/renew-self` (in the auth namespace): the new lease and whether it stays
    /// renewable.
    async fn renew(&self, http: &Http, token: &SecretString) -> Result<(u64, bool), String> {
        let reply = http
            .send_in(
                self.namespace.as_deref(),
                Verb::Post,
                "auth/token/renew-self",
                Some(token),
                Some(b"{}"),
            )
            .await
            .map_err(|e| e.message)?;
        if reply.status != 200 {
            return Err(reply.describe());
        }
        let r: AuthReply = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        Ok((r.auth.lease_duration, r.auth.renewable))
    }
}

/// A JWT file read again for a later login.
fn reread(p: &PathBuf) -> Result<SecretString, String> {
    match std::fs::read_to_string(p) {
        Ok(t) if !t.trim().is_empty() => Ok(SecretString::from(t.trim().to_owned())),
        Ok(_) => Err(format!("{} is empty", p.display())),
        Err(e) => Err(format!("cannot read {}: {e}", p.display())),
    }
}

fn copy_quiet(current: &TokenState, until: Instant) -> TokenState {
    TokenState {
        token: SecretString::from(current.token.expose_secret().to_owned()),
        expires_at: current.expires_at,
        margin: current.margin,
        renewable: current.renewable,
        quiet_until: Some(until),
    }
}

#[cfg(test)]
impl Session {
    /// A session that never talks to Vault (unit tests of path building).
    pub(super) fn offline_for_tests() -> Session {
        Session {
            method: Method::Token {
                origin: "$UNUSED".into(),
            },
            namespace: None,
            state: RwLock::new(Arc::new(TokenState::new(
                SecretString::from("offline-token".to_owned()),
                0,
                false,
                Instant::now(),
            ))),
            refresh: tokio::sync::Mutex::new(()),
            expiry: Expiry::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(ttl: u64, now: Instant) -> TokenState {
        TokenState::new(SecretString::from("t".to_owned()), ttl, true, now)
    }

    #[test]
    fn refresh_when_a_third_of_the_ttl_is_left() {
        let now = Instant::now();
        let s = state(3600, now);
        assert!(!s.needs_refresh(now));
        assert!(!s.needs_refresh(now + Duration::from_secs(3290)));
        assert!(s.needs_refresh(now + Duration::from_secs(3310))); // 5 min cap
        let s = state(30, now);
        assert!(!s.needs_refresh(now + Duration::from_secs(19)));
        assert!(s.needs_refresh(now + Duration::from_secs(21)));
        assert!(!s.expired(now + Duration::from_secs(29)));
        assert!(s.expired(now + Duration::from_secs(30)));
    }

    #[test]
    fn tokens_without_ttl_never_refresh() {
        let now = Instant::now();
        let s = state(0, now);
        assert!(!s.needs_refresh(now + Duration::from_secs(1_000_000)));
        assert!(!s.expired(now + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn quiet_period_is_respected() {
        let now = Instant::now();
        let s = copy_quiet(&state(3, now), now + Duration::from_secs(10));
        assert!(!s.needs_refresh(now + Duration::from_secs(2)));
        assert!(s.needs_refresh(now + Duration::from_secs(10)));
    }
}
