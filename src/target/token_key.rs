//! Where the idempotency-token key lives when the config names none: a secret in the target
//! account itself, [`KEY_NAME`], created with 32 bytes from the operating system's CSPRNG
//! (`getrandom`; a failing generator is an error) on the first writing run.
//!
//! Tokens become VersionIds that principals without `GetSecretValue` can see; keying them with a
//! value only `GetSecretValue` on this secret reveals means a VersionId tells nothing about the
//! value it names. No setup is needed for a first run, every machine and CronJob that writes to
//! the account finds the same key, and `[target] token_key_env` overrides it (a key from your
//! own secret store). The key secret carries no `secretport:managed` tag: no job owns it, no
//! prune touches it.

use std::collections::BTreeMap;

use base64::Engine;
use zeroize::Zeroizing;

use super::{CallError, ErrorClass, NewSecret, Target};
use crate::identity::token::{random_bytes, RandomError, TokenDeriver, MIN_KEY_BYTES};
use crate::secret::SecretValue;

/// The key secret's name (one per account and region).
pub(crate) const KEY_NAME: &str = "secretport/token-key";
/// Tag that marks it.
pub(crate) const ROLE_TAG: &str = "secretport:role";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or creating it failed.
    #[error("token key {KEY_NAME}: {0}")]
    Call(#[from] CallError),
    /// The OS random number generator gave no key.
    #[error("token key {KEY_NAME}: {0}")]
    Random(#[from] RandomError),
    /// It exists but holds something else.
    #[error("token key {KEY_NAME}: holds no base64 key of at least {MIN_KEY_BYTES} bytes; delete it (a new one is made) or set target.token_key_env")]
    Malformed,
}

fn decode(v: &SecretValue) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = v.expose_str().ok_or(KeyError::Malformed)?;
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed)?,
    );
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError::Malformed);
    }
    Ok(key)
}

/// Reads the key secret: `None` when it does not exist yet (no secret was written with it).
pub async fn load(target: &dyn Target) -> Result<Option<TokenDeriver>, KeyError> {
    match target.get_value(KEY_NAME).await {
        Ok((Some(c), _)) => Ok(Some(TokenDeriver::keyed(decode(&c.value)?))),
        Ok((None, _)) => Err(KeyError::Malformed),
        Err(e) if e.class == ErrorClass::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the key secret, creating it when it does not exist yet (a concurrent first run that
/// wins the race is read back).
pub(crate) async fn load_or_create(target: &dyn Target) -> Result<TokenDeriver, KeyError> {
    if let Some(t) = load(target).await? {
        return Ok(t);
    }
    // 32 bytes from the OS CSPRNG; a failing generator is an error, never a weaker key
    let raw = random_bytes(32)?;
    let value = SecretValue::text(base64::engine::general_purpose::STANDARD.encode(&*raw));
    let tags = BTreeMap::from([(ROLE_TAG.to_owned(), "token-key".to_owned())]);
    let new = NewSecret {
        name: KEY_NAME,
        value: &value,
        token: uuid_like()?,
        description:
            "secretport: key for idempotency tokens (ClientRequestTokens); keep, do not share",
        kms_key_id: None,
        tags: &tags,
        replicas: &[],
    };
    match target.create(&new).await {
        Ok(_) => Ok(TokenDeriver::keyed(raw)),
        // another first run won the race, or this create landed and its answer was lost:
        // whichever key the account now holds is the key
        Err(e) => match load(target).await {
            Ok(Some(t)) => Ok(t),
            Ok(None) | Err(_) => Err(e.into()),
        },
    }
}

fn uuid_like() -> Result<String, RandomError> {
    Ok(crate::identity::token::uuid_text(&random_bytes(16)?))
}
