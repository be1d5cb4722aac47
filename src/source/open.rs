//! Opening a job's source from its validated config: one call for every kind.
//!
//! Each kind needs something different to start (a Vault session, a KMS client, an SSM client
//! and the region it names), but all of it comes from the same few things a run has: its
//! limiters and retry policy, the time limit of one request, and the job's `[target]` (an
//! AWS-hosted source's region, endpoint and credentials default to the target's). Those travel
//! in one [`SourceContext`], so a caller opens any source the same way
//! ([`SourceConfig::open`]) and adding a kind touches the source's module and this match, not
//! the commands. AWS clients are configured by the one builder, `aws::client::sdk_config`.

use std::sync::Arc;
use std::time::Duration;

use super::credstash::CredstashSource;
use super::file::FileSource;
use super::kms::KmsSource;
use super::sops::SopsSource;
use super::ssm::SsmSource;
use super::vault::VaultSource;
use super::{Source, SourceError};
use crate::aws::client::{sdk_config, ClientError, Endpoint};
use crate::config::{AwsAccess, SourceConfig, TargetConfig};
use crate::limits::Limits;
use crate::retry::RetryPolicy;

/// What a run gives every source it opens.
#[derive(Clone)]
pub(crate) struct SourceContext<'a> {
    /// The run's limiters (each source calls under its quota group's).
    pub(crate) limits: Arc<Limits>,
    /// The one retry policy.
    pub(crate) policy: RetryPolicy,
    /// Time limit of one request attempt.
    pub(crate) timeout: Duration,
    /// The job's target: an AWS-hosted source's region, endpoint and credentials default to
    /// its.
    pub(crate) target: &'a TargetConfig,
}

impl SourceContext<'_> {
    /// The SDK configuration of an AWS-hosted source with `access` (each setting the
    /// target's when absent).
    pub(crate) async fn sdk(
        &self,
        access: &AwsAccess,
    ) -> Result<aws_config::SdkConfig, ClientError> {
        sdk_config(&Endpoint::of_source(access, self.target, self.timeout)).await
    }
}

/// Why a source could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// Its AWS client could not be configured (no region anywhere).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The source refused to start (an unreadable export, a Vault that refuses the token).
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl SourceConfig {
    /// Opens the source this config describes.
    pub(crate) async fn open(&self, cx: &SourceContext<'_>) -> Result<Box<dyn Source>, OpenError> {
        Ok(match self {
            SourceConfig::File(f) => Box::new(FileSource::open(&f.file, &f.instance)?),
            SourceConfig::Vault(v) => {
                Box::new(VaultSource::connect(v, cx.limits.clone(), cx.policy, cx.timeout).await?)
            }
            SourceConfig::Kms(k) => {
                let conf = cx.sdk(&k.aws).await?;
                Box::new(KmsSource::open(
                    &k.file,
                    &k.instance,
                    aws_sdk_kms::Client::new(&conf),
                    cx.limits.clone(),
                    cx.policy,
                )?)
            }
            SourceConfig::Ssm(c) => Box::new(SsmSource::open(c, cx).await?),
            SourceConfig::Sops(c) => Box::new(SopsSource::open(c, cx).await?),
            SourceConfig::Credstash(c) => Box::new(CredstashSource::open(c, cx).await?),
        })
    }
}
