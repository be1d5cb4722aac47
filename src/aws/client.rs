//! AWS client configuration from `[target]` (and `[source]` for KMS).
//!
//! The three credential types of the Harness AWS Secrets Manager setup: `default` (the standard
//! chain: env, profile, SSO, container or instance role, i.e. "assume the IAM role on the
//! delegate"), `access-keys` (static keys from the env vars the config names), and `assume-role`
//! (STS AssumeRole with role ARN, optional external id and session duration, on top of the
//! default chain). `region` and `endpoint_url` come from config, else from the SDK's usual sources
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, profile).
//!
//! The SDK's own retries are disabled: `retry::call` owns retrying, so attempts never multiply.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::Credentials;

/// Why a client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An env var named by the config is missing.
    #[error("{key}: environment variable {var} is not set")]
    MissingEnv {
        /// Config key that names it.
        key: String,
        /// The variable.
        var: String,
    },
    /// No region in config, env or profile.
    #[error("no AWS region: set target.region in the config, or AWS_REGION")]
    NoRegion,
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    /// Region from config.
    pub region: Option<&'a str>,
    /// Endpoint override from config.
    pub endpoint_url: Option<&'a str>,
    /// Credentials.
    pub credentials: &'a Credentials,
    /// Config key of the credentials, for messages (`target.credentials`).
    pub key: &'a str,
    /// Time limit of one request attempt.
    pub timeout: Duration,
}

fn env(key: &str, var: &str) -> Result<String, ClientError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ClientError::MissingEnv {
            key: key.to_owned(),
            var: var.to_owned(),
        })
}

/// Builds an `SdkConfig` for the endpoint. AssumeRole credentials are fetched lazily by the SDK
/// (and refreshed before they expire), so a bad role shows on the first call.
pub async fn sdk_config(ep: &Endpoint<'_>) -> Result<SdkConfig, ClientError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(ep.timeout)
                .build(),
        );
    if let Some(r) = ep.region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    if let Some(u) = ep.endpoint_url {
        loader = loader.endpoint_url(u);
    }
    if let Credentials::AccessKeys {
        access_key_id_env,
        secret_access_key_env,
        session_token_env,
    } = ep.credentials
    {
        let ak = env(&format!("{}.access_key_id_env", ep.key), access_key_id_env)?;
        let sk = env(
            &format!("{}.secret_access_key_env", ep.key),
            secret_access_key_env,
        )?;
        let token = match session_token_env {
            Some(t) => Some(env(&format!("{}.session_token_env", ep.key), t)?),
            None => None,
        };
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            ak,
            sk,
            token,
            None,
            "secretport-access-keys",
        ));
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(ClientError::NoRegion);
    }
    let Credentials::AssumeRole {
        role_arn,
        external_id,
        duration_seconds,
        session_name,
    } = ep.credentials
    else {
        return Ok(base);
    };
    let mut b = aws_config::sts::AssumeRoleProvider::builder(role_arn.clone())
        .session_name(session_name.clone())
        .session_length(Duration::from_secs(u64::from(*duration_seconds)))
        .configure(&base);
    if let Some(x) = external_id {
        b = b.external_id(x.clone());
    }
    let provider = b.build().await;
    Ok(base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build())
}
