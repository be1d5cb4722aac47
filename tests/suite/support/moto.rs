//! A moto server (AWS Secrets Manager, KMS and STS emulator) for tests, and AWS SDK
//! configuration that talks to any endpoint with static test credentials.
#![allow(dead_code)]

use super::{bin_path, free_port, helper_http_client, wait_for_startup, ServerProcess, Startup};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use std::time::{Duration, Instant};

pub const TEST_ACCESS_KEY_ID: &str = "testing";
pub const TEST_SECRET_ACCESS_KEY: &str = "testing";
/// Region the tests use unless they need another one (moto keeps one store per
/// account + region, so a test can also spread over regions).
pub const TEST_REGION: &str = "us-east-1";
/// moto's default account.
pub const TEST_ACCOUNT_ID: &str = "123456789012";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 5;

/// A running `moto_server -H 127.0.0.1 -p PORT`, killed on drop.
pub struct Moto {
    endpoint: String,
    port: u16,
    http: reqwest::Client,
    process: ServerProcess,
}

impl Moto {
    /// Starts moto on a fresh free port and waits until `GET /moto-api/` answers 200. Retries
    /// with another port if the port was taken meanwhile; panics with moto's log otherwise.
    pub async fn start() -> Moto {
        let bin = bin_path("moto_server");
        for attempt in 1..=START_ATTEMPTS {
            let port = free_port();
            let endpoint = format!("http://127.0.0.1:{port}");
            let args = vec![
                "-H".to_string(),
                "127.0.0.1".to_string(),
                "-p".to_string(),
                port.to_string(),
            ];
            let mut process = ServerProcess::spawn("moto", &bin, &args);
            let http = helper_http_client();
            let probe_url = format!("{endpoint}/moto-api/");
            let running_line = format!("Running on {endpoint}");
            let started = Instant::now();
            let outcome = wait_for_startup(&mut process, START_TIMEOUT, |log| {
                let http = http.clone();
                let probe_url = probe_url.clone();
                let ours = log.contains(&running_line);
                async move {
                    ours && matches!(http.get(&probe_url).send().await, Ok(r) if r.status() == 200)
                }
            })
            .await;
            match outcome {
                Startup::Ready => {
                    if std::env::var_os("SECRETPORT_TEST_VERBOSE").is_some() {
                        eprintln!("moto ready at {endpoint} in {:?}", started.elapsed());
                    }
                    return Moto {
                        endpoint,
                        port,
                        http,
                        process,
                    };
                }
                Startup::Exited { port_taken: true } if attempt < START_ATTEMPTS => continue,
                Startup::Exited { .. } => process.fail("moto exited"),
                Startup::TimedOut => process.fail(&format!(
                    "{probe_url} did not answer 200 within {START_TIMEOUT:?}"
                )),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wipes every account and region (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        let url = format!("{}/moto-api/reset", self.endpoint);
        let resp = self
            .http
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(
            resp.status().is_success(),
            "POST {url} answered {}",
            resp.status()
        );
    }

    /// What moto has logged so far (one line per request).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// [`aws_sdk_config`] for this server.
    pub fn sdk_config(&self, region: &str) -> SdkConfig {
        aws_sdk_config(&self.endpoint, region)
    }

    /// [`sm_client`] for this server.
    pub fn sm_client(&self, region: &str) -> aws_sdk_secretsmanager::Client {
        sm_client(&self.endpoint, region)
    }

    /// [`kms_client`] for this server.
    pub fn kms_client(&self, region: &str) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, region)
    }

    /// [`sts_client`] for this server.
    pub fn sts_client(&self, region: &str) -> aws_sdk_sts::Client {
        sts_client(&self.endpoint, region)
    }
}

/// Static credentials `testing` / `testing`.
pub fn test_credentials() -> Credentials {
    Credentials::new(
        TEST_ACCESS_KEY_ID,
        TEST_SECRET_ACCESS_KEY,
        None,
        None,
        "secretport-tests",
    )
}

/// SDK configuration for `endpoint` in `region` with static test credentials and the SDK's
/// standard retries. Built directly, not loaded: nothing comes from environment variables,
/// `~/.aws` or instance metadata.
pub fn aws_sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_sdk_config_with_retry(endpoint, region, RetryConfig::standard())
}

/// [`aws_sdk_config`] with an explicit retry configuration (e.g. `RetryConfig::disabled()`).
pub fn aws_sdk_config_with_retry(endpoint: &str, region: &str, retry: RetryConfig) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(test_credentials()))
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        )
        .build()
}

/// Secrets Manager client for `endpoint` (standard retries).
pub fn sm_client(endpoint: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_sdk_config(endpoint, region))
}

/// Secrets Manager client for `endpoint` with the SDK's own retries off: every error surfaces.
pub fn sm_client_no_retry(endpoint: &str, region: &str) -> aws_sdk_secretsmanager::Client {
    sm_client_with_retry(endpoint, region, RetryConfig::disabled())
}

/// Secrets Manager client for `endpoint` with an explicit retry configuration.
pub fn sm_client_with_retry(
    endpoint: &str,
    region: &str,
    retry: RetryConfig,
) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_sdk_config_with_retry(endpoint, region, retry))
}

/// KMS client for `endpoint` (standard retries).
pub fn kms_client(endpoint: &str, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&aws_sdk_config(endpoint, region))
}

/// STS client for `endpoint` (standard retries).
pub fn sts_client(endpoint: &str, region: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&aws_sdk_config(endpoint, region))
}

/// Environment for a `secretport` child process that should reach AWS only through a config
/// file's `endpoint_url`, with the static test credentials: credentials and region set, and the
/// shared config/credentials files and instance metadata switched off so the developer's own
/// AWS setup never leaks in. Apply with `Command::envs(aws_env(..))`; clear `AWS_PROFILE` etc.
/// with `env_remove` if the test needs them gone.
pub fn aws_env(region: &str) -> Vec<(String, String)> {
    let none = "/nonexistent/secretport-tests";
    [
        ("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_CONFIG_FILE", none),
        ("AWS_SHARED_CREDENTIALS_FILE", none),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every secret the client's region holds, but the token key: name -> (its `AWSCURRENT` value,
/// scheduled for deletion).
pub async fn state(
    sm: &aws_sdk_secretsmanager::Client,
) -> std::collections::BTreeMap<String, (String, bool)> {
    let mut out = std::collections::BTreeMap::new();
    let mut next = None;
    loop {
        let page = sm
            .list_secrets()
            .include_planned_deletion(true)
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        for s in page.secret_list() {
            let name = s.name().unwrap().to_string();
            if name == "secretport/token-key" {
                continue;
            }
            let deleted = s.deleted_date().is_some();
            let value = if deleted {
                String::new()
            } else {
                // by stage: moto 5.2 keeps serving the old default version after
                // UpdateSecretVersionStage moved AWSCURRENT (AWS serves AWSCURRENT)
                let v = sm
                    .get_secret_value()
                    .secret_id(&name)
                    .version_stage("AWSCURRENT")
                    .send()
                    .await
                    .unwrap();
                v.secret_string().unwrap_or_default().to_string()
            };
            out.insert(name, (value, deleted));
        }
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    out
}
