//! Shared AWS plumbing: building SDK configs from the configured credentials ([`client`], the
//! one builder every AWS client comes from), what an AWS error code means ([`classify`], the
//! one table), and AWS Secrets Manager as a [`crate::target::Target`] ([`secrets`]). The
//! Secrets Manager client never leaves `secrets`; the AWS-hosted sources hold their own SSM,
//! DynamoDB and KMS clients (`source::ssm`, `source::credstash`, `source::kms`,
//! `source::sops`), built here and called under the same limiters and retry policy.

pub(crate) mod classify;
pub(crate) mod client;
pub(crate) mod secrets;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Renders an SDK error with its whole cause chain on one line. Callers that sent a secret
/// value scrub the text of it (`error_text::scrub`), since a server or proxy may echo a request.
///
/// A credential-provider failure leads with what to do about it: a profile that is not defined
/// (a mistyped `AWS_PROFILE`), an SSO profile without a cached token (`aws sso login`), or no
/// credentials at all. The SDK's own text buries the first under a list of every provider it
/// tried.
pub(crate) fn describe_error<E: std::error::Error>(e: &E) -> String {
    let text = crate::error_text::chain(e);
    match credentials_hint(e, &text, &|k| std::env::var(k).ok()) {
        Some(hint) => hint,
        None => text,
    }
}

/// One line describing a failed SDK call: the code, HTTP status, AWS's message and the request
/// id when the service answered (AWS messages name resources, never values); else the error and
/// its causes ([`describe_error`]).
pub(crate) fn describe_call<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(ctx) => {
            let meta = ctx.err().meta();
            let mut d = format!(
                "{}, HTTP {}",
                meta.code().unwrap_or("unknown error"),
                ctx.raw().status().as_u16()
            );
            if let Some(m) = meta.message().filter(|m| !m.is_empty()) {
                d.push_str(&format!(": {m}"));
            }
            if let Some(id) = meta.extra("aws_request_id") {
                d.push_str(&format!(", request id {id}"));
            }
            d
        }
        _ => describe_error(e),
    }
}

/// Whether a credential provider failed somewhere in `e`'s causes.
fn is_credentials_error(e: &dyn std::error::Error) -> bool {
    let mut cur = e.source();
    while let Some(c) = cur {
        if c.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The actionable message for a credentials failure, `None` for other errors (see
/// [`describe_error`]). `env` reads environment variables.
fn credentials_hint(
    e: &dyn std::error::Error,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    if !is_credentials_error(e) {
        return None;
    }
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let (profile, from) = match (set("AWS_PROFILE"), set("AWS_DEFAULT_PROFILE")) {
        (Some(p), _) => (p, "AWS_PROFILE"),
        (None, Some(p)) => (p, "AWS_DEFAULT_PROFILE"),
        (None, None) => ("default".to_owned(), ""),
    };
    let files = format!(
        "{} or {}",
        set("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".into()),
        set("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".into())
    );
    let detail = text
        .split_once("dispatch failure: other: ")
        .map_or(text, |(_, rest)| rest);
    let lower = text.to_ascii_lowercase();
    if lower.contains(&format!(
        "profile `{}` was not defined",
        profile.to_ascii_lowercase()
    )) {
        let origin = if from.is_empty() {
            String::new()
        } else {
            format!(" (from {from})")
        };
        return Some(format!(
            "AWS credentials: profile `{profile}`{origin} was not defined in {files}; \
             check the name{}",
            if from.is_empty() {
                String::new()
            } else {
                format!(" or unset {from}")
            }
        ));
    }
    let sso = ["/sso/cache", "sso token", "sso session", "ssooidc", "sso_"]
        .iter()
        .any(|m| lower.contains(m));
    if sso {
        return Some(format!(
            "AWS credentials: the SSO login of profile `{profile}` has no valid cached token \
             (not logged in, or expired): run `aws sso login --profile {profile}` ({detail})"
        ));
    }
    Some(format!("AWS credentials could not be loaded: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;

    #[derive(Debug, thiserror::Error)]
    #[error("dispatch failure: other")]
    struct Outer(#[source] CredentialsError);

    fn hint(cause: &str, env: &[(&str, &str)]) -> Option<String> {
        let e = Outer(CredentialsError::not_loaded(cause.to_owned()));
        let text = crate::error_text::chain(&e);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        credentials_hint(&e, &text, &|k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn credential_errors_lead_with_the_cause() {
        let h = hint(
            "no credentials found in chain. Attempted: Profile: profile `nope` was not defined: x",
            &[("AWS_PROFILE", "nope"), ("AWS_CONFIG_FILE", "/etc/aws.cfg")],
        )
        .unwrap();
        assert!(
            h.starts_with("AWS credentials: profile `nope` (from AWS_PROFILE) was not defined in /etc/aws.cfg or ~/.aws/credentials"),
            "{h}"
        );
        let h = hint(
            "failed to read `/h/.aws/sso/cache/ab.json`: No such file",
            &[("AWS_PROFILE", "dev")],
        )
        .unwrap();
        assert!(h.contains("run `aws sso login --profile dev`"), "{h}");
        let h = hint("no credentials found in chain", &[]).unwrap();
        assert!(
            h.starts_with("AWS credentials could not be loaded: "),
            "{h}"
        );
        let plain = std::io::Error::other("Connection refused");
        assert!(credentials_hint(&plain, "x", &|_| None).is_none());
    }
}
