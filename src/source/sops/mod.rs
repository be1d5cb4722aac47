//! The `sops` source (in progress).
use std::sync::Arc;

use crate::aws::client::ClientError;
use crate::config::{SopsConfig, TargetConfig};
use crate::limits::Limits;
use crate::retry::RetryPolicy;

/// SOPS files.
pub struct SopsSource;

impl SopsSource {
    /// Opens.
    pub async fn open(
        _c: &SopsConfig,
        _target: &TargetConfig,
        _limits: Arc<Limits>,
        _policy: RetryPolicy,
    ) -> Result<crate::source::file::FileSource, ClientError> {
        Err(ClientError::NoRegion)
    }
}
