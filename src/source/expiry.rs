//! A source credential's end of life, passed from the source to the executor as a value (as
//! the shutdown signal is, [`crate::shutdown`]): a source whose credential will expire with no
//! way to renew or replace it (a Vault token capped by its `max_ttl`, or not renewable at all)
//! records when; the executor consults it before it starts each secret and reports the rest as
//! not started, instead of starting secrets whose reads would all fail. The engine prints
//! nothing: the words are rendered into the report by the executor.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long before the credential ends no new secret is started: a fetch started later might
/// not finish in time.
pub(crate) const DISPATCH_GUARD: Duration = Duration::from_secs(1);

/// When a credential ends for good, and what to use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialEnd {
    /// The instant it stops working.
    pub(crate) at: Instant,
    /// The same moment on the wall clock (for the report).
    pub(crate) wall: SystemTime,
    /// Which credential (`the Vault token in $VAULT_TOKEN`).
    pub(crate) credential: String,
    /// What to use instead.
    pub(crate) advice: String,
}

impl CredentialEnd {
    /// A credential that ends `left` after `now`.
    pub(crate) fn after(left: Duration, now: Instant, credential: String, advice: String) -> Self {
        CredentialEnd {
            at: now + left,
            wall: SystemTime::now() + left.saturating_sub(now.elapsed()),
            credential,
            advice,
        }
    }

    /// `the Vault token in $VAULT_TOKEN expires at 2026-12-02T06:50:03Z and cannot be renewed;
    /// use …`.
    pub(crate) fn words(&self) -> String {
        let at = OffsetDateTime::from(self.wall)
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "its end of life".into());
        format!(
            "{} expires at {at} and cannot be renewed; {}",
            self.credential, self.advice
        )
    }
}

/// The watch a source shares with the executor. Clones share the state.
#[derive(Debug, Clone, Default)]
pub struct Expiry {
    inner: Arc<Mutex<Option<CredentialEnd>>>,
}

impl Expiry {
    /// A watch with no end known.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records that the credential ends (the source found it cannot renew or replace it).
    pub(crate) fn set(&self, end: CredentialEnd) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Some(end);
    }

    /// A new credential replaced the old one: no end known any more.
    pub(crate) fn clear(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The recorded end, if any.
    pub(crate) fn end(&self) -> Option<CredentialEnd> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The end, when a secret started at `now` would not finish before it
    /// ([`DISPATCH_GUARD`]): then no new secret may start.
    pub(crate) fn stops_at(&self, now: Instant) -> Option<CredentialEnd> {
        self.end().filter(|e| now + DISPATCH_GUARD >= e.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_only_within_the_guard_of_a_known_end() {
        let now = Instant::now();
        let w = Expiry::new();
        assert_eq!(w.stops_at(now), None);
        let end = CredentialEnd::after(
            Duration::from_secs(10),
            now,
            "the Vault token in $VAULT_TOKEN".into(),
            "use a login method".into(),
        );
        w.clone().set(end.clone());
        assert_eq!(w.stops_at(now), None);
        assert_eq!(w.stops_at(now + Duration::from_secs(8)), None);
        assert_eq!(w.stops_at(now + Duration::from_secs(9)), Some(end.clone()));
        assert_eq!(w.stops_at(now + Duration::from_secs(60)), Some(end.clone()));
        let words = end.words();
        assert!(
            words.starts_with("the Vault token in $VAULT_TOKEN expires at 20"),
            "{words}"
        );
        assert!(
            words.ends_with("Z and cannot be renewed; use a login method"),
            "{words}"
        );
        w.clear();
        assert_eq!(w.stops_at(now + Duration::from_secs(60)), None);
    }
}
