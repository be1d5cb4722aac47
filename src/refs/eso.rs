//! `refs --format external-secrets`: one External Secrets Operator `ExternalSecret` per migrated
//! secret, reading it from an AWS Secrets Manager `SecretStore` / `ClusterSecretStore` the
//! cluster already has (named by `--store`).
//!
//! `external-secrets.io/v1`: ESO serves only `v1` since 0.17 (`v1beta1` is no longer served).
//! A source whose values are JSON objects (Vault, SOPS files, exports) becomes `dataFrom:
//! extract`, one Kubernetes Secret key per JSON key, as Vault consumers had them; a plain string
//! value (SSM, credstash, one key of a secret split with `split = "keys"`) becomes one `data` entry whose key is the last segment of
//! the source path. Every string is emitted as a double-quoted scalar (JSON string syntax, which
//! YAML reads the same), so no name can break the document.
//!
//! Rewriting existing manifests in place is not offered: keeping a hand-written manifest's
//! comments and layout needs a YAML editor that preserves them, which the Rust YAML crates in
//! the tree do not; `refs scan` points at the lines to change instead.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::Reference;
use crate::source::SourceKind;

/// The API version of the generated manifests.
pub const API_VERSION: &str = "external-secrets.io/v1";

/// The kind of store `--store` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A namespaced `SecretStore`.
    SecretStore,
    /// A `ClusterSecretStore`.
    ClusterSecretStore,
}

impl StoreKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::SecretStore => "SecretStore",
            StoreKind::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

/// A Kubernetes object name (DNS subdomain: lowercase alphanumerics, `-`, `.`, at most 253,
/// alphanumeric at both ends) for the secret `name`.
pub fn object_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let mut n: String = trimmed.chars().take(240).collect();
    n = n
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    if n.is_empty() {
        n = format!("secret-{}", short_hash(name));
    }
    n
}

/// A Kubernetes Secret data key (`[-._a-zA-Z0-9]+`) from the last segment of `path`.
fn data_key(path: &str) -> String {
    let last = path.rsplit(['/', '#']).next().unwrap_or(path);
    let k: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if k.is_empty() || k == "." || k == ".." {
        "value".to_owned()
    } else {
        k
    }
}

/// Whether the source's values are JSON objects (one Kubernetes key per JSON key).
fn json_object(r: &Reference) -> bool {
    if r.split_key {
        // one key of a source secret (`split = "keys"`): its value is that key's
        return false;
    }
    match r.kind {
        SourceKind::Vault | SourceKind::File | SourceKind::Kms => true,
        SourceKind::Sops => !r.reference.contains('#'),
        SourceKind::Ssm | SourceKind::Credstash => false,
    }
}

/// The manifests, one YAML document per reference (in order), each headed by a comment naming
/// the old reference. Object names are unique: a name that two secrets would share gets a
/// short hash of the secret name.
pub fn manifests(refs: &[Reference], store: &str, kind: StoreKind) -> String {
    let mut seen = BTreeSet::new();
    let mut out = String::new();
    for r in refs {
        let mut name = object_name(&r.target_name);
        if !seen.insert(name.clone()) {
            name = format!("{name}-{}", short_hash(&r.target_name));
            seen.insert(name.clone());
        }
        let _ = writeln!(out, "---");
        let _ = writeln!(
            out,
            "# {} {} -> {}",
            r.kind.as_str(),
            r.reference.replace('\n', " "),
            r.target_name.replace('\n', " ")
        );
        let _ = writeln!(out, "apiVersion: {API_VERSION}");
        let _ = writeln!(out, "kind: ExternalSecret");
        let _ = writeln!(out, "metadata:\n  name: {}", quoted(&name));
        let _ = writeln!(out, "spec:\n  refreshInterval: \"1h\"");
        let _ = writeln!(
            out,
            "  secretStoreRef:\n    name: {}\n    kind: {}",
            quoted(store),
            kind.as_str()
        );
        let _ = writeln!(
            out,
            "  target:\n    name: {}\n    creationPolicy: Owner",
            quoted(&name)
        );
        if json_object(r) {
            let _ = writeln!(
                out,
                "  dataFrom:\n    - extract:\n        key: {}",
                quoted(&r.target_name)
            );
        } else {
            let _ = writeln!(
                out,
                "  data:\n    - secretKey: {}\n      remoteRef:\n        key: {}",
                quoted(&data_key(&r.source_path)),
                quoted(&r.target_name)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_dns_subdomains() {
        let table = [
            ("devops/apps/db", "devops-apps-db"),
            ("Devops/App_DB", "devops-app-db"),
            ("a/b.c@d", "a-b.c-d"),
            ("-x-", "x"),
        ];
        for (name, want) in table {
            assert_eq!(object_name(name), want, "{name}");
        }
        assert!(object_name("___").starts_with("secret-"));
        assert!(object_name(&"a".repeat(600)).len() <= 253);
    }

    #[test]
    fn data_keys_are_secret_keys() {
        for (p, want) in [
            ("db/password", "password"),
            ("a/b c", "b_c"),
            ("f#k", "k"),
            ("..", "value"),
        ] {
            assert_eq!(data_key(p), want, "{p}");
        }
    }
}
