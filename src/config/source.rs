//! `[source]`: which kind of source a job reads ([`SourceKind`]), the keys every kind shares
//! (`kind`, `allow_empty`, `split`, `instance`), and the hand-off to that kind's own checks
//! (`vault.rs`, `file.rs`, `kms.rs`, `ssm.rs`, `sops.rs`, `credstash.rs`).

use super::validate::{Section, Validator};
use super::{CredstashConfig, FileConfig, KmsConfig, SopsConfig, SsmConfig, VaultConfig};
use crate::source::SourceKind;

/// `[source]`.
#[derive(Debug, Clone)]
// one per run, built once: the size of the Vault variant (its resolved auth) costs nothing
#[allow(clippy::large_enum_variant)]
pub enum SourceConfig {
    /// HashiCorp Vault / OpenBao KV.
    Vault(VaultConfig),
    /// JSON Lines export whose values are KMS-encrypted.
    Kms(KmsConfig),
    /// Plaintext JSON Lines export.
    File(FileConfig),
    /// AWS Systems Manager Parameter Store.
    Ssm(SsmConfig),
    /// SOPS-encrypted files (data key wrapped by AWS KMS).
    Sops(SopsConfig),
    /// A credstash DynamoDB table.
    Credstash(CredstashConfig),
}

impl SourceConfig {
    /// Whether source metadata (Vault `custom_metadata`, SSM parameter tags) is copied into
    /// tags.
    pub fn copy_metadata(&self) -> bool {
        match self {
            SourceConfig::Vault(v) => v.copy_metadata,
            SourceConfig::Ssm(s) => s.copy_tags,
            _ => false,
        }
    }
}

/// `[source] split`: what one target secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// One target secret per source secret (a SOPS file): the whole value.
    #[default]
    Whole,
    /// One target secret per top-level key of the value's JSON object, at `<path>/<key>`.
    Keys,
}

/// Reads `[source] split` of a source whose values are JSON objects (not SOPS, which reads its
/// own): `"secret"` or `"keys"`.
fn split_option(s: &mut Section, expected: &str) -> Split {
    match s.opt::<String>("split", expected).as_deref() {
        None | Some("secret") => Split::Whole,
        Some("keys") => Split::Keys,
        Some(other) => {
            s.problem("split", format!("expected {expected}, got {other:?}"));
            Split::Whole
        }
    }
}

impl Validator<'_> {
    /// `[source]` (or `[jobs.source]`): its kind, then that kind's keys.
    pub(super) fn source(&mut self, mut s: Section) -> Option<SourceConfig> {
        self.allow_empty = s
            .opt(
                "allow_empty",
                "true or false (whether a source that lists 0 secrets is fine)",
            )
            .unwrap_or(false);
        let expected = SourceKind::expected();
        let name: Option<String> = s.req("kind", &expected);
        let kind = name.as_deref().and_then(SourceKind::parse);
        self.split = Split::Whole;
        match kind {
            // SOPS reads its own `split` ("file" or "keys")
            Some(SourceKind::Sops) | None => {}
            Some(k) if k.splits_into_keys() => {
                self.split = split_option(&mut s, "\"secret\" (default) or \"keys\"");
            }
            Some(_) => {
                if s.has("split") {
                    s.table.remove("split");
                    s.problem(
                        "split",
                        "only sources whose values are JSON objects (vault, file, kms, sops) can be split into one secret per key",
                    );
                }
            }
        }
        let out = match kind {
            Some(SourceKind::Ssm) => self.ssm(&mut s).map(SourceConfig::Ssm),
            Some(SourceKind::Sops) => self.sops(&mut s).map(SourceConfig::Sops),
            Some(SourceKind::Credstash) => self.credstash(&mut s).map(SourceConfig::Credstash),
            Some(SourceKind::Vault) => self.vault(&mut s).map(SourceConfig::Vault),
            Some(SourceKind::File) => self.file_source(&mut s).map(SourceConfig::File),
            Some(SourceKind::Kms) => self.kms(&mut s).map(SourceConfig::Kms),
            None => {
                if let Some(other) = &name {
                    s.problem(
                        "kind",
                        format!("{other:?} is not a source kind; expected {expected}"),
                    );
                }
                s.unjudged_without("kind");
                None
            }
        };
        if kind.is_some_and(|k| !k.takes_instance()) && s.table.remove("instance").is_some() {
            s.problem(
                "instance",
                "only file, kms and sops sources take an instance; this kind's identity already names its instance (Vault: address, namespace and mount; SSM: region; credstash: region and table)",
            );
        }
        self.problems.extend(s.finish());
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, ConfigError};

    #[test]
    fn split_is_validated_per_source_kind() {
        let env = |k: &str| (k == "VAULT_TOKEN").then(|| "t".to_owned());
        let target = "[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n";
        let vault = "kind = \"vault\"\naddress = \"http://v\"\nmount = \"kv\"\n";
        let parse = |source: &str| {
            Config::parse(
                &format!("[source]\n{source}{target}"),
                Path::new("c.toml"),
                Path::new("/"),
                &env,
            )
        };
        let split_of = |source: &str| match parse(source) {
            Ok(c) => c.jobs[0].split,
            Err(e) => panic!("{source}: {e:?}"),
        };
        let problems = |source: &str| match parse(source) {
            Err(ConfigError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect::<Vec<_>>(),
            other => panic!("{source}: {other:?}"),
        };
        assert_eq!(split_of(vault), Split::Whole);
        assert_eq!(split_of(&format!("{vault}split = \"keys\"\n")), Split::Keys);
        assert_eq!(
            split_of(&format!("{vault}split = \"secret\"\n")),
            Split::Whole
        );
        assert_eq!(
            split_of("kind = \"sops\"\nfiles = [\"*.yaml\"]\nsplit = \"keys\"\n"),
            Split::Keys
        );
        let p = problems(&format!("{vault}split = \"key\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "source.split: expected \"secret\" (default) or \"keys\", got \"key\""
            ),
            "{p:?}"
        );
        let p = problems("kind = \"ssm\"\nsplit = \"keys\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.split: only sources whose values are JSON objects"),
            "{p:?}"
        );
    }

    #[test]
    fn without_a_kind_only_a_typo_of_kind_is_reported() {
        let env = |_: &str| None;
        let parse =
            |text: &str| match Config::parse(text, Path::new("c.toml"), Path::new("/"), &env) {
                Err(ConfigError::Invalid { problems, .. }) => problems
                    .into_iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            };
        let target = "[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n";
        let p = parse(&format!(
            "[source]\nknd = \"vault\"\naddress = \"http://v\"\nmount = \"kv\"\n{target}"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.knd: unknown key; did you mean `kind`? `kind` is missing; expected \"vault\""),
            "{p:?}"
        );
        let p = parse(&format!(
            "[source]\nkind = \"s3\"\nbucket = \"b\"\n{target}"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.kind: \"s3\" is not a source kind"),
            "{p:?}"
        );
    }
}
