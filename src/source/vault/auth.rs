//! Authentication and token lifetime.
//!
//! - **token**: read once from the configured env var and checked with
//!   `auth/token/lookup-self`, which also tells its TTL and whether it is renewable. A token
//!   without the `default` policy may not look itself up; its validity is then proven by the
//!   first request that is not a 403 (see `VaultSource::connect`).
//! - **AppRole**: one login (`vaultrs`' typed `auth/<mount>/login` endpoint) with the role id and
//!   secret id from their env vars.
//!
//! Renewal is checked before every request, which costs a clock read: when less than a third of
//! the token's TTL (at most 5 minutes, at least 0.5 s) is left, one task renews it
//! (`auth/token/renew-self`) while the others wait on a mutex and then use the result. If the
//! renewal fails or no longer extends the token (it reached its max TTL), AppRole logs in again;
//! a plain token carries on until it expires, after which every request fails with one clear
//! [`SourceErrorKind::Auth`] error instead of a 403 per secret.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::http::{chain, Http, Verb};
use crate::config::VaultAuth;
use crate::source::{SourceError, SourceErrorKind};

/// How we log in, with the credentials read from the environment.
enum Method {
    Token {
        env: String,
    },
    AppRole {
        mount: String,
        role_id: SecretString,
        secret_id: SecretString,
        role_id_env: String,
        secret_id_env: String,
    },
}

/// The current token and what we know of its lifetime.
pub(super) struct TokenState {
    pub token: SecretString,
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
    state: RwLock<Arc<TokenState>>,
    refresh: tokio::sync::Mutex<()>,
}

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

#[derive(Deserialize)]
struct RenewAuth {
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Renew {
    auth: RenewAuth,
}

fn auth_error(message: String) -> SourceError {
    SourceError::new(SourceErrorKind::Auth, "", message)
}

fn env_secret(name: &str, what: &str) -> Result<SecretString, SourceError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        _ => Err(auth_error(format!(
            "environment variable {name} (the Vault {what}) is not set or empty"
        ))),
    }
}

impl Session {
    /// Reads the credentials and authenticates. Returns the session and whether the token is
    /// known to be valid (false only when a plain token may not look itself up).
    pub async fn start(http: &Http, auth: &VaultAuth) -> Result<(Session, bool), SourceError> {
        let now = Instant::now();
        let (method, state, verified) = match auth {
            VaultAuth::Token { token_env } => {
                let token = env_secret(token_env, "token")?;
                let (state, verified) = lookup(http, token, token_env).await?;
                (
                    Method::Token {
                        env: token_env.clone(),
                    },
                    state,
                    verified,
                )
            }
            VaultAuth::AppRole {
                role_id_env,
                secret_id_env,
                mount,
            } => {
                let method = Method::AppRole {
                    mount: mount.clone(),
                    role_id: env_secret(role_id_env, "AppRole role id")?,
                    secret_id: env_secret(secret_id_env, "AppRole secret id")?,
                    role_id_env: role_id_env.clone(),
                    secret_id_env: secret_id_env.clone(),
                };
                let state = login(http, &method, now).await?;
                (method, state, true)
            }
        };
        if let Some(left) = state.remaining(now) {
            tracing::debug!(
                ttl_s = left.as_secs(),
                renewable = state.renewable,
                "Vault token lifetime"
            );
        }
        Ok((
            Session {
                method,
                state: RwLock::new(Arc::new(state)),
                refresh: tokio::sync::Mutex::new(()),
            },
            verified,
        ))
    }

    /// Where the token came from, for messages (`the token in $VAULT_TOKEN`).
    pub fn describe(&self) -> String {
        match &self.method {
            Method::Token { env } => format!("the token in ${env}"),
            Method::AppRole { mount, .. } => format!("the AppRole token (auth/{mount})"),
        }
    }

    /// The token to send now, renewed or replaced first when it nears expiry.
    pub async fn token(&self, http: &Http) -> Result<Arc<TokenState>, SourceError> {
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
                    Method::Token { .. } => "; use a token whose TTL covers the run, or AppRole",
                    Method::AppRole { .. } => " or replaced by a new login",
                }
            )));
        }
        Ok(state)
    }

    /// A renewed or new token; on failure the current one, left alone for a while.
    async fn refresh(&self, http: &Http, current: &TokenState, now: Instant) -> TokenState {
        if current.renewable {
            match renew(http, &current.token).await {
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
                            "{} reached its maximum TTL and expires in {lease} s; requests after that will fail",
                            self.describe()
                        );
                        next.quiet_until = next.expires_at;
                        return next;
                    }
                }
                Err(e) => tracing::debug!("renewing the Vault token failed: {e}"),
            }
        }
        match &self.method {
            Method::AppRole { .. } => match login(http, &self.method, Instant::now()).await {
                Ok(next) => {
                    tracing::debug!("logged in to Vault again with AppRole");
                    next
                }
                Err(e) => {
                    tracing::warn!("AppRole login to renew the Vault token failed: {e}");
                    copy_quiet(current, now + Duration::from_secs(2))
                }
            },
            Method::Token { .. } => {
                let left = current.remaining(now).unwrap_or_default();
                tracing::warn!(
                    "{} expires in {} s and cannot be renewed; requests after that will fail",
                    self.describe(),
                    left.as_secs()
                );
                copy_quiet(current, current.expires_at.unwrap_or(now))
            }
        }
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

/// `auth/token/lookup-self`: the token's TTL, or `verified = false` on a 403 (an invalid token
/// and a valid one without the `default` policy both get 403; the caller tells them apart).
async fn lookup(
    http: &Http,
    token: SecretString,
    env: &str,
) -> Result<(TokenState, bool), SourceError> {
    let now = Instant::now();
    let reply = http
        .send(Verb::Get, "auth/token/lookup-self", Some(&token), None)
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
                "auth/token/lookup-self denied for the token in ${env}; checking it on the mount"
            );
            Ok((TokenState::new(token, 0, false, now), false))
        }
        400 | 401 => Err(auth_error(format!(
            "Vault at {} refused the token in ${env}: {}",
            http.address,
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

/// AppRole login through `vaultrs`.
async fn login(http: &Http, method: &Method, now: Instant) -> Result<TokenState, SourceError> {
    let Method::AppRole {
        mount,
        role_id,
        secret_id,
        role_id_env,
        secret_id_env,
    } = method
    else {
        unreachable!("login is only for AppRole");
    };
    match vaultrs::auth::approle::login(
        http.vault(),
        mount,
        role_id.expose_secret(),
        secret_id.expose_secret(),
    )
    .await
    {
        Ok(info) => Ok(TokenState::new(
            SecretString::from(info.client_token),
            info.lease_duration,
            info.renewable,
            now,
        )),
        Err(vaultrs::error::ClientError::APIError { code, errors }) => {
            let why = errors
                .iter()
                .map(|e| e.trim())
                .collect::<Vec<_>>()
                .join("; ");
            let kind = if code >= 500 {
                SourceErrorKind::Unavailable
            } else {
                SourceErrorKind::Auth
            };
            Err(SourceError::new(
                kind,
                "",
                format!(
                    "AppRole login at {}/v1/auth/{mount}/login failed (HTTP {code}: {why}); check the role id in ${role_id_env} and the secret id in ${secret_id_env}",
                    http.address
                ),
            ))
        }
        Err(e) => Err(SourceError::new(
            SourceErrorKind::Unavailable,
            "",
            format!(
                "AppRole login at {}/v1/auth/{mount}/login failed: {}",
                http.address,
                chain(&e)
            ),
        )),
    }
}

/// `auth/token/renew-self`: the new lease and whether it stays renewable.
async fn renew(http: &Http, token: &SecretString) -> Result<(u64, bool), String> {
    let reply = http
        .send(
            Verb::Post,
            "auth/token/renew-self",
            Some(token),
            Some(&serde_json::json!({})),
        )
        .await
        .map_err(|e| e.message)?;
    if reply.status != 200 {
        return Err(reply.describe());
    }
    let r: Renew = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
    Ok((r.auth.lease_duration, r.auth.renewable))
}

#[cfg(test)]
impl Session {
    /// A session that never talks to Vault (unit tests of path building).
    pub(super) fn offline_for_tests() -> Session {
        Session {
            method: Method::Token {
                env: "UNUSED".into(),
            },
            state: RwLock::new(Arc::new(TokenState::new(
                SecretString::from("offline-token".to_owned()),
                0,
                false,
                Instant::now(),
            ))),
            refresh: tokio::sync::Mutex::new(()),
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
