//! `[source] kind = "kms"`: a KMS-encrypted export file, and the AWS access KMS is called with.

use std::path::PathBuf;

use super::validate::{Section, Validator};
use super::AwsAccess;

/// `[source] kind = "kms"`.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    /// The export file.
    pub file: PathBuf,
    /// The identity's instance: `[source] instance`, else `file` relative to the config
    /// folder (`source::instance`), so a moved checkout is the same source.
    pub instance: String,
    /// Region, endpoint and credentials for KMS.
    pub aws: AwsAccess,
}

impl Validator<'_> {
    /// `[source] kind = "kms"`: the export file, then `region`, `endpoint_url` and
    /// `credentials` (each the target's when absent).
    pub(super) fn kms(&mut self, s: &mut Section) -> Option<KmsConfig> {
        let file = self.export_file(s, "KMS export file");
        let aws = self.aws_access(s);
        file.map(|(file, instance)| KmsConfig {
            file,
            instance,
            aws,
        })
    }
}
