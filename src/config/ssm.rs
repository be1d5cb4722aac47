//! `[source] kind = "ssm"`: a Parameter Store path, the parameter types to take, and the AWS
//! access SSM (and KMS, for SecureStrings) is called with.

use super::validate::{Section, Validator};
use super::AwsAccess;

/// `[source] kind = "ssm"`.
#[derive(Debug, Clone)]
pub struct SsmConfig {
    /// The parameter path to migrate, recursively, normalised to `/a/b` (`/` = everything).
    pub path: String,
    /// Parameter types to migrate (`SecureString`, `String`, `StringList`).
    pub types: Vec<String>,
    /// Copy parameter tags into secret tags (one `ListTagsForResource` per parameter).
    pub copy_tags: bool,
    /// Region, endpoint and credentials for SSM and KMS.
    pub aws: AwsAccess,
}

impl Validator<'_> {
    pub(super) fn ssm(&mut self, s: &mut Section) -> Option<SsmConfig> {
        let path: String = s
            .opt("path", "a parameter path such as \"/prod/\"")
            .unwrap_or_else(|| "/".into());
        let trimmed = path.trim_matches('/');
        let path = format!("/{trimmed}");
        let valid = trimmed.split('/').all(|seg| {
            (trimmed.is_empty() || !seg.is_empty())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        }) && path.len() <= 2048;
        if !valid {
            s.problem(
                "path",
                format!(
                    "{path:?} is not a parameter path (segments of A-Za-z0-9_.- separated by /)"
                ),
            );
        }
        let types: Vec<String> = s
            .opt(
                "types",
                "a list of \"SecureString\", \"String\", \"StringList\"",
            )
            .unwrap_or_else(|| vec!["SecureString".to_owned()]);
        let mut types_ok = !types.is_empty();
        for t in &types {
            if !["SecureString", "String", "StringList"].contains(&t.as_str()) {
                types_ok = false;
                s.problem(
                    "types",
                    format!(
                        "{t:?} is not a parameter type; expected \"SecureString\", \"String\" or \"StringList\""
                    ),
                );
            }
        }
        if types.is_empty() {
            s.problem("types", "must name at least one parameter type");
        }
        let copy_tags = s.opt("copy_tags", "true or false").unwrap_or(false);
        let aws = self.aws_access(s);
        (valid && types_ok).then_some(SsmConfig {
            path,
            types,
            copy_tags,
            aws,
        })
    }
}
