//! `[source] kind = "credstash"`: the DynamoDB table, the KMS encryption context, and the AWS
//! access DynamoDB and KMS are called with.

use std::collections::BTreeMap;

use super::validate::{Section, Validator};
use super::AwsAccess;

/// `[source] kind = "credstash"`.
#[derive(Debug, Clone)]
pub struct CredstashConfig {
    /// The DynamoDB table (default `credential-store`).
    pub table: String,
    /// The KMS encryption context used at `credstash put`.
    pub context: BTreeMap<String, String>,
    /// Region, endpoint and credentials for DynamoDB and KMS.
    pub aws: AwsAccess,
}

impl Validator<'_> {
    pub(super) fn credstash(&mut self, s: &mut Section) -> Option<CredstashConfig> {
        let table: String = s
            .opt("table", "a DynamoDB table name")
            .unwrap_or_else(|| "credential-store".into());
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            s.problem(
                "table",
                format!(
                    "{table:?} is not a DynamoDB table name (3..=255 characters of A-Za-z0-9_.-)"
                ),
            );
        }
        let context: BTreeMap<String, String> = s
            .opt("context", "a table of strings (the KMS encryption context)")
            .unwrap_or_default();
        let aws = self.aws_access(s);
        valid.then_some(CredstashConfig {
            table,
            context,
            aws,
        })
    }
}
