//! AWS client configuration from `[target]` and the `[source]` of an AWS-hosted source: the one
//! place an SDK configuration is built (the target, the `kms`, `ssm`, `sops` and `credstash`
//! sources, the Vault source's AWS IAM login, `kms-export`).
//!
//! The three credential types of the Harness AWS Secrets Manager setup: `default` (the standard
//! chain: env, profile, SSO, container or instance role, i.e. "assume the IAM role on the
//! delegate"), `access-keys` (static keys from the env vars the config names), and `assume-role`
//! (STS AssumeRole with role ARN, optional external id and session duration, on top of the
//! default chain). `region` and `endpoint_url` come from config, else from the SDK's usual sources
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, profile).
//!
//! The SDK's own retries are disabled: `retry::call` owns retrying, so attempts never multiply.
//!
//! The HTTP client is wrapped ([`Labelled`]) so that a connection failure or timeout names the
//! endpoint it was talking to and where that endpoint came from (`endpoint_url` in the config,
//! `--endpoint-url`, `AWS_ENDPOINT_URL...`, or AWS's own for the region): "Connection refused"
//! alone does not say which of several settings to fix.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::config::{AwsAccess, Credentials, TargetConfig};

/// Why a client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An env var named by the config is missing.
    #[error("{key}: environment variable {var} is not set (or is empty)")]
    MissingEnv {
        /// Config key that names it.
        key: String,
        /// The variable.
        var: String,
    },
    /// No region in config, env or profile (a command with a config).
    #[error("no AWS region: set target.region (or source.region for the kms source) in the config, or AWS_REGION")]
    NoRegion,
    /// No region for `kms-export`, which has no config.
    #[error("no AWS region: pass --region, or set AWS_REGION (or a region in the AWS profile)")]
    NoRegionFlag,
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint<'a> {
    /// Region from config.
    pub(crate) region: Option<&'a str>,
    /// Endpoint override from config.
    pub(crate) endpoint_url: Option<&'a str>,
    /// Credentials.
    pub(crate) credentials: &'a Credentials,
    /// Config key of the credentials, for messages (`target.credentials`).
    pub(crate) key: &'a str,
    /// Time limit of one request attempt.
    pub(crate) timeout: Duration,
}

impl<'a> Endpoint<'a> {
    /// The target's: `[target]`'s region, endpoint and credentials.
    pub(crate) fn of_target(target: &'a TargetConfig, timeout: Duration) -> Self {
        Endpoint {
            region: target.region.as_deref(),
            endpoint_url: target.endpoint_url.as_deref(),
            credentials: &target.credentials,
            key: "target.credentials",
            timeout,
        }
    }

    /// An AWS-hosted source's (`kms`, `ssm`, `sops`, `credstash`): its `[source]` region,
    /// endpoint and credentials, each the target's when the source does not set it.
    pub(crate) fn of_source(
        access: &'a AwsAccess,
        target: &'a TargetConfig,
        timeout: Duration,
    ) -> Self {
        let (credentials, key) = match &access.credentials {
            Some(c) => (c, "source.credentials"),
            None => (&target.credentials, "target.credentials"),
        };
        Endpoint {
            region: access.region.as_deref().or(target.region.as_deref()),
            endpoint_url: access
                .endpoint_url
                .as_deref()
                .or(target.endpoint_url.as_deref()),
            credentials,
            key,
            timeout,
        }
    }
}

/// Builds an `SdkConfig` for the endpoint. AssumeRole credentials are fetched lazily by the SDK
/// (and refreshed before they expire), so a bad role shows on the first call.
pub(crate) async fn sdk_config(ep: &Endpoint<'_>) -> Result<SdkConfig, ClientError> {
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
        access_key_id,
        secret_access_key,
        session_token,
    } = ep.credentials
    {
        // read from the environment once, when the config was loaded
        use secrecy::ExposeSecret;
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            access_key_id.value.expose_secret(),
            secret_access_key.value.expose_secret(),
            session_token
                .as_ref()
                .map(|t| t.value.expose_secret().to_owned()),
            None,
            "secretport-access-keys",
        ));
    }
    let base = loader.load().await;
    if base.region().is_none() {
        return Err(if ep.key.contains('.') {
            ClientError::NoRegion
        } else {
            ClientError::NoRegionFlag
        });
    }
    let inner = base.http_client().unwrap_or_else(default_https_client);
    let origin = ep.endpoint_url.map(|_| endpoint_setting(ep.key));
    let base = base
        .into_builder()
        .http_client(Labelled { inner, origin })
        .build();
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

/// The client the SDK builds by default (aws-smithy-runtime's `default_https_client`: hyper 1.x,
/// rustls with aws-lc, proxy settings from the environment), built here so it can be wrapped.
fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        conn.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            conn.set_sleep_impl(c.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// Where a configured `endpoint_url` was set, from the key of the credentials next to it
/// (`target.credentials` → `target.endpoint_url`; kms-export's `credentials` → `--endpoint-url`).
fn endpoint_setting(credentials_key: &str) -> String {
    match credentials_key.strip_suffix("credentials") {
        Some(section) if !section.is_empty() => format!("{section}endpoint_url in the config"),
        _ => "--endpoint-url".to_owned(),
    }
}

/// Where the endpoint `url` came from when the config did not set one: the SDK's environment
/// variables (service-specific first), else AWS's endpoint for the region.
fn endpoint_origin(url: &str, configured: Option<&str>) -> String {
    if let Some(c) = configured {
        return c.to_owned();
    }
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, v)| k.starts_with("AWS_ENDPOINT_URL") && !v.trim().is_empty())
        .collect();
    // AWS_ENDPOINT_URL_SECRETS_MANAGER before AWS_ENDPOINT_URL
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vars {
        if url.starts_with(v.trim().trim_end_matches('/')) {
            return k;
        }
    }
    "AWS's endpoint for the region (or an endpoint_url in the AWS profile)".to_owned()
}

/// `scheme://authority` of a request URI (no path or query).
fn endpoint_of(uri: &str) -> String {
    let after_scheme = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[after_scheme..]
        .find(['/', '?'])
        .map_or(uri.len(), |i| after_scheme + i);
    uri[..end].to_owned()
}

/// A connection failure or timeout, naming the endpoint and its origin.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {url} (from {origin})")]
pub(crate) struct EndpointError {
    /// `scheme://host:port`.
    pub(crate) url: String,
    /// The setting it came from.
    pub(crate) origin: String,
    #[source]
    source: ConnectorError,
}

/// The SDK's HTTP client with connection failures labelled by endpoint (see the module docs).
#[derive(Debug)]
struct Labelled {
    inner: SharedHttpClient,
    /// The config setting, when the endpoint was configured.
    origin: Option<String>,
}

impl HttpClient for Labelled {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LabelledConnector {
            inner: self.inner.http_connector(settings, components),
            origin: self.origin.clone(),
        })
    }
}

#[derive(Debug)]
struct LabelledConnector {
    inner: SharedHttpConnector,
    origin: Option<String>,
}

impl HttpConnector for LabelledConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let url = endpoint_of(request.uri());
        let origin = self.origin.clone();
        let fut = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            fut.await.map_err(|e| {
                if !(e.is_io() || e.is_timeout()) {
                    return e;
                }
                let timeout = e.is_timeout();
                let labelled = Box::new(EndpointError {
                    origin: endpoint_origin(&url, origin.as_deref()),
                    url,
                    source: e,
                });
                if timeout {
                    ConnectorError::timeout(labelled)
                } else {
                    ConnectorError::io(labelled)
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_takes_each_aws_setting_it_does_not_set_from_the_target() {
        let target = TargetConfig {
            region: Some("eu-west-1".into()),
            prefix: "p".into(),
            endpoint_url: Some("http://t:1".into()),
            kms_key_id: None,
            on_conflict: crate::config::OnConflict::Skip,
            tags: Default::default(),
            credentials: Credentials::Default,
            token_key: None,
            replicas: Vec::new(),
        };
        let keys = Credentials::AssumeRole {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            external_id: None,
            duration_seconds: 900,
            session_name: "s".into(),
        };
        let t = Duration::from_secs(3);
        let none = AwsAccess::default();
        let ep = Endpoint::of_source(&none, &target, t);
        assert_eq!(
            (ep.region, ep.endpoint_url, ep.credentials, ep.key),
            (
                Some("eu-west-1"),
                Some("http://t:1"),
                &Credentials::Default,
                "target.credentials"
            )
        );
        let own = AwsAccess {
            region: Some("us-east-2".into()),
            endpoint_url: Some("http://s:2".into()),
            credentials: Some(keys.clone()),
        };
        let ep = Endpoint::of_source(&own, &target, t);
        assert_eq!(
            (ep.region, ep.endpoint_url, ep.credentials, ep.key),
            (
                Some("us-east-2"),
                Some("http://s:2"),
                &keys,
                "source.credentials"
            )
        );
        let ep = Endpoint::of_target(&target, t);
        assert_eq!(
            (ep.region, ep.endpoint_url, ep.key, ep.timeout),
            (
                Some("eu-west-1"),
                Some("http://t:1"),
                "target.credentials",
                t
            )
        );
    }

    #[test]
    fn endpoints_and_origins() {
        assert_eq!(
            endpoint_of("http://127.0.0.1:9/?Action=x"),
            "http://127.0.0.1:9"
        );
        assert_eq!(
            endpoint_of("https://secretsmanager.us-east-1.amazonaws.com/"),
            "https://secretsmanager.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_setting("target.credentials"),
            "target.endpoint_url in the config"
        );
        assert_eq!(
            endpoint_setting("source.credentials"),
            "source.endpoint_url in the config"
        );
        assert_eq!(endpoint_setting("credentials"), "--endpoint-url");
        assert_eq!(endpoint_origin("http://x", Some("here")), "here");
    }
}
