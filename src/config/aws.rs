//! The AWS access of an AWS-hosted source or the target: `region`, `endpoint_url` and
//! `credentials`, the keys `[target]`, `kms`, `ssm`, `sops` and `credstash` sources write the same
//! way. Their settings are validated once, here, into [`AwsAccess`] (a source's) and
//! [`Credentials`]; each key of a source defaults to `[target]`'s when the client is built
//! (`aws::client`).

use super::validate::{Section, Validator};
use super::{EnvSecret, Problem};

/// Region, endpoint and credentials of an AWS-hosted source; each defaults to `[target]`'s.
#[derive(Debug, Clone, Default)]
pub struct AwsAccess {
    /// Region (default: the target's).
    pub region: Option<String>,
    /// Endpoint (default: the target's).
    pub endpoint_url: Option<String>,
    /// Credentials (default: the target's).
    pub credentials: Option<Credentials>,
}

/// AWS credentials, as the Harness AWS Secrets Manager setup offers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The SDK's default chain: env, profile, SSO, container/instance role.
    Default,
    /// Static keys from the env vars the config names (read when it was loaded).
    AccessKeys {
        /// The access key id (`access_key_id_env`).
        access_key_id: EnvSecret,
        /// The secret access key (`secret_access_key_env`).
        secret_access_key: EnvSecret,
        /// Optional session token (`session_token_env`).
        session_token: Option<EnvSecret>,
    },
    /// STS AssumeRole on top of the default chain.
    AssumeRole {
        /// Role to assume.
        role_arn: String,
        /// External id demanded by the role's trust policy.
        external_id: Option<String>,
        /// Session duration, 900..=43200.
        duration_seconds: u32,
        /// Session name (shows in CloudTrail).
        session_name: String,
    },
}

impl Validator<'_> {
    /// `region`, `endpoint_url` and `credentials` of an AWS-hosted source.
    pub(super) fn aws_access(&mut self, s: &mut Section) -> AwsAccess {
        let region = self.region(s, "region");
        let endpoint_url = self.url(s, "endpoint_url");
        let credentials = self.credentials_key(s).ok().flatten();
        AwsAccess {
            region,
            endpoint_url,
            credentials,
        }
    }

    /// The `credentials` table of section `s`: `Ok(None)` when it has none (or a value that is
    /// not a table), `Err(())` when the table is wrong; the problems are recorded either way.
    pub(super) fn credentials_key(&mut self, s: &mut Section) -> Result<Option<Credentials>, ()> {
        let Some(c) = s.table("credentials", false) else {
            return Ok(None);
        };
        let (creds, problems) = self.credentials(c);
        self.problems.extend(problems);
        creds.map(Some).ok_or(())
    }

    fn credentials(&mut self, mut c: Section) -> (Option<Credentials>, Vec<Problem>) {
        let kind: Option<String> = c.req("type", "\"default\", \"access-keys\" or \"assume-role\"");
        let creds = match kind.as_deref() {
            Some("default") => Some(Credentials::Default),
            Some("access-keys") => {
                let a =
                    self.env_secret(&mut c, "access_key_id_env", None, "AWS access key id", true);
                let s = self.env_secret(
                    &mut c,
                    "secret_access_key_env",
                    None,
                    "AWS secret access key",
                    true,
                );
                let t = if c.has("session_token_env") {
                    self.env_secret(&mut c, "session_token_env", None, "AWS session token", true)
                } else {
                    None
                };
                a.zip(s).map(|(a, s)| Credentials::AccessKeys {
                    access_key_id: a,
                    secret_access_key: s,
                    session_token: t,
                })
            }
            Some("assume-role") => {
                let role_arn: Option<String> = c.req(
                    "role_arn",
                    "an IAM role ARN (arn:aws:iam::123456789012:role/name)",
                );
                let role_arn = role_arn.filter(|r| {
                    let ok = is_role_arn(r);
                    if !ok {
                        c.problem(
                            "role_arn",
                            format!("{r:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)"),
                        );
                    }
                    ok
                });
                let external_id: Option<String> = c.opt("external_id", "a string");
                if let Some(e) = &external_id {
                    let ok = (2..=1224).contains(&e.len())
                        && e.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "+=,.@:/-_".contains(ch));
                    if !ok {
                        c.problem(
                            "external_id",
                            "must be 2..=1224 characters of A-Za-z0-9+=,.@:/-_",
                        );
                    }
                }
                let duration: i64 = c.opt("duration_seconds", "an integer").unwrap_or(3600);
                if !(900..=43200).contains(&duration) {
                    c.problem(
                        "duration_seconds",
                        format!("must be 900..=43200, got {duration}"),
                    );
                }
                let session_name: String = c
                    .opt("session_name", "a string")
                    .unwrap_or_else(|| "secretport".into());
                let ok = (2..=64).contains(&session_name.len())
                    && session_name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "+=,.@-_".contains(ch));
                if !ok {
                    c.problem(
                        "session_name",
                        "must be 2..=64 characters of A-Za-z0-9+=,.@-_",
                    );
                }
                role_arn.map(|role_arn| Credentials::AssumeRole {
                    role_arn,
                    external_id,
                    duration_seconds: duration.clamp(900, 43200) as u32,
                    session_name,
                })
            }
            Some(other) => {
                c.problem(
                    "type",
                    format!(
                        "{other:?} is not a credential type; expected \"default\", \"access-keys\" or \"assume-role\""
                    ),
                );
                None
            }
            None => None,
        };
        (creds, c.finish())
    }
}

fn is_role_arn(r: &str) -> bool {
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}
