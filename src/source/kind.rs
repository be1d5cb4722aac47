//! The kinds of source, and the one place their config names are spelled.
//!
//! `[source] kind = "..."` picks one; the same word is each source's [`super::Source::kind`],
//! the first part of every identity it writes (`secretport:source`, pinned by the golden
//! file), the `kind` column of `refs`, and what config messages list as expected. Spelling it
//! once here keeps those from drifting apart.

use std::fmt;

/// A kind of source, as `[source] kind` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// HashiCorp Vault / OpenBao KV.
    Vault,
    /// AWS Systems Manager Parameter Store.
    Ssm,
    /// SOPS-encrypted files (data key wrapped by AWS KMS).
    Sops,
    /// A credstash DynamoDB table.
    Credstash,
    /// Plaintext JSON Lines export.
    File,
    /// JSON Lines export whose values are KMS-encrypted.
    Kms,
}

impl SourceKind {
    /// Every kind, in the order config messages list them.
    pub(crate) const ALL: [SourceKind; 6] = [
        SourceKind::Vault,
        SourceKind::Kms,
        SourceKind::File,
        SourceKind::Ssm,
        SourceKind::Sops,
        SourceKind::Credstash,
    ];

    /// The config spelling (`vault`, `kms`, ...).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Vault => "vault",
            SourceKind::Ssm => "ssm",
            SourceKind::Sops => "sops",
            SourceKind::Credstash => "credstash",
            SourceKind::File => "file",
            SourceKind::Kms => "kms",
        }
    }

    /// The kind a config spells `name`, if any.
    pub(crate) fn parse(name: &str) -> Option<SourceKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// `"vault", "kms", "file", "ssm", "sops" or "credstash"`: what a config may write, for
    /// messages.
    pub(crate) fn expected() -> String {
        let quoted: Vec<String> = Self::ALL
            .iter()
            .map(|k| format!("{:?}", k.as_str()))
            .collect();
        match quoted.split_last() {
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Whether its values are JSON objects a job can split into one secret per top-level key
    /// (`split = "keys"`): Vault, export files and SOPS (which splits its files itself).
    pub(crate) const fn splits_into_keys(self) -> bool {
        matches!(
            self,
            SourceKind::Vault | SourceKind::File | SourceKind::Kms | SourceKind::Sops
        )
    }

    /// Whether `[source] instance` names it: the file-based kinds, whose location alone (a
    /// path on one machine) is not a stable identity. The others' identity already names
    /// their instance (Vault: address, namespace and mount; SSM: region; credstash: region
    /// and table).
    pub(crate) const fn takes_instance(self) -> bool {
        matches!(self, SourceKind::File | SourceKind::Kms | SourceKind::Sops)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_listed_once() {
        for k in SourceKind::ALL {
            assert_eq!(SourceKind::parse(k.as_str()), Some(k), "{k}");
            assert_eq!(k.to_string(), k.as_str());
        }
        assert_eq!(SourceKind::parse("Vault"), None);
        assert_eq!(SourceKind::parse("s3"), None);
        assert_eq!(
            SourceKind::expected(),
            "\"vault\", \"kms\", \"file\", \"ssm\", \"sops\" or \"credstash\""
        );
        let split: Vec<&str> = SourceKind::ALL
            .into_iter()
            .filter(|k| k.splits_into_keys())
            .map(SourceKind::as_str)
            .collect();
        assert_eq!(split, ["vault", "kms", "file", "sops"]);
        let instance: Vec<&str> = SourceKind::ALL
            .into_iter()
            .filter(|k| k.takes_instance())
            .map(SourceKind::as_str)
            .collect();
        assert_eq!(instance, ["kms", "file", "sops"]);
    }
}
