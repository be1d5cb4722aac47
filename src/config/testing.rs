//! The config text and environment the config tests share.

use std::path::Path;

use super::{Config, ConfigError};

/// The environment the tests' configs name: every variable holds `x`.
pub(super) fn env(k: &str) -> Option<String> {
    match k {
        "VAULT_TOKEN" | "MY_TOKEN" | "AK" | "SK" => Some("x".into()),
        _ => None,
    }
}

/// `text` parsed as `t.toml` in the working directory, with [`env`].
pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("t.toml"), Path::new("."), &env)
}

/// Whether `err` lists a problem at `key` whose message holds `words`.
pub(super) fn has_problem(err: &ConfigError, key: &str, words: &str) -> bool {
    err.problems()
        .iter()
        .any(|p| p.key == key && p.message.contains(words))
}

/// A valid single-form config: a Vault source, a target with tags and an assumed role, one limit.
pub(super) const GOOD: &str = r#"
[source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "secret"
path = "apps/"
auth = { method = "token", token_env = "MY_TOKEN" }
[target]
region = "us-east-1"
prefix = "devops/"
tags = { team = "platform" }
credentials = { type = "assume-role", role_arn = "arn:aws:iam::123456789012:role/migrator", external_id = "ext-1" }
[limits]
write_per_second = 10
"#;
