//! `[target]`: the Secrets Manager the secrets go to: region, endpoint, name prefix, KMS key,
//! conflict policy, tags, credentials, token key and replica regions.
//!
//! The tag rules are checked here, where the user wrote the tags, so a tag AWS would refuse is a
//! config problem naming `target.tags.<key>` before any write, and the number of configured tags
//! leaves room for secretport's own ([`crate::plan::OUR_TAGS`]) within AWS's limit.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::validate::{self, Section, Validator};
use super::{Credentials, EnvSecret};
use crate::target::limits::{MAX_KMS_KEY_ID_CHARS, MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS};

/// What to do when a planned target name exists and is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Leave it, report `conflict` with status `skipped`.
    #[default]
    Skip,
    /// Take ownership: tag it as ours, then treat it like our own secret.
    Adopt,
    /// Write our value and tags over it.
    Overwrite,
    /// Stop before any write.
    Fail,
}

/// `[target]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TargetConfig {
    /// Region (config, else the SDK's chain: `AWS_REGION`, profile).
    pub region: Option<String>,
    /// Name prefix, without trailing slash (`""`: none, written explicitly).
    pub prefix: String,
    /// Endpoint override (config, else `AWS_ENDPOINT_URL` via the SDK).
    pub endpoint_url: Option<String>,
    /// KMS key for new secrets.
    pub kms_key_id: Option<String>,
    /// Conflict policy.
    pub on_conflict: OnConflict,
    /// Extra tags on every secret.
    pub tags: BTreeMap<String, String>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The key for HMAC idempotency tokens, from `token_key_env` (see `identity::token`).
    pub(crate) token_key: Option<EnvSecret>,
    /// Regions every managed secret is replicated to (AWS-native replication), each with its
    /// own KMS key or `None` for the replica region's `aws/secretsmanager` key.
    pub replicas: Vec<crate::target::ReplicaRegion>,
}

impl Validator<'_> {
    pub(super) fn target(&mut self, mut s: Section) -> TargetConfig {
        let region = self.region(&mut s, "region");
        let prefix: Option<String> = s.req(
            "prefix",
            "a name prefix such as \"devops\" (secretport owns only what it wrote under it; write prefix = \"\" explicitly for none)",
        );
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.trim_end_matches('/').is_empty() => {
                s.problem(
                    "prefix",
                    format!("{p:?} is not a name prefix; write prefix = \"\" for no prefix, or a name such as \"devops\""),
                );
                None
            }
            Some(p) => Some(p.trim_end_matches('/').to_owned()),
            None => None,
        };
        let endpoint_url = self.url(&mut s, "endpoint_url");
        let kms_key_id: Option<String> = s.opt("kms_key_id", "a KMS key id, ARN or alias");
        if let Some(Err(m)) = kms_key_id.as_deref().map(check_kms_key_id) {
            s.problem("kms_key_id", m);
        }
        let on_conflict = s
            .opt(
                "on_conflict",
                "\"skip\", \"adopt\", \"overwrite\" or \"fail\"",
            )
            .unwrap_or_default();
        let tags: BTreeMap<String, String> = s
            .opt("tags", "a table of string tag values")
            .unwrap_or_default();
        for (k, val) in &tags {
            if let Err(m) = check_tag(k, val) {
                s.problem(&format!("tags.{k}"), m);
            }
        }
        if tags.len() > crate::target::limits::MAX_TAGS - crate::plan::OUR_TAGS {
            s.problem(
                "tags",
                format!(
                    "{} tags given; AWS allows {} per secret and secretport adds {}",
                    tags.len(),
                    crate::target::limits::MAX_TAGS,
                    crate::plan::OUR_TAGS
                ),
            );
        }
        // the key's bytes as given: trimming would change every token derived from it
        let token_key = if s.has("token_key_env") {
            self.env_secret(&mut s, "token_key_env", None, "token key", false)
        } else {
            None
        };
        if let Some(key) = &token_key {
            let (name, len) = (
                &key.var,
                secrecy::ExposeSecret::expose_secret(&key.value).len(),
            );
            if len < crate::identity::token::MIN_KEY_BYTES {
                s.problem(
                    "token_key_env",
                    format!(
                        "environment variable {name} holds {len} bytes; the token key needs at least {}",
                        crate::identity::token::MIN_KEY_BYTES
                    ),
                );
            }
        }
        let credentials = self
            .credentials_key(&mut s)
            .ok()
            .flatten()
            .unwrap_or(Credentials::Default);
        let replicas = replica_regions(&mut s, region.as_deref());
        self.problems.extend(s.finish());
        TargetConfig {
            region,
            prefix: prefix.unwrap_or_default(),
            endpoint_url,
            kms_key_id,
            on_conflict,
            tags,
            credentials,
            token_key,
            replicas,
        }
    }
}

/// `[target] replica_regions` and `replica_kms_key_ids`: region names, not the primary region,
/// no duplicates; a key only for a configured replica region (a KMS key id is regional, so the
/// target's `kms_key_id` is never used for a replica).
fn replica_regions(s: &mut Section, primary: Option<&str>) -> Vec<crate::target::ReplicaRegion> {
    let regions: Vec<String> = s
        .opt(
            "replica_regions",
            "a list of AWS regions such as [\"eu-west-1\"]",
        )
        .unwrap_or_default();
    let keys: BTreeMap<String, String> = s
        .opt(
            "replica_kms_key_ids",
            "a table of region = KMS key id, e.g. { \"eu-west-1\" = \"alias/migrated\" }",
        )
        .unwrap_or_default();
    let mut out: Vec<crate::target::ReplicaRegion> = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        let key = format!("replica_regions[{i}]");
        if !validate::is_region(r) {
            s.problem(
                &key,
                format!("{r:?} is not an AWS region (expected e.g. eu-west-1)"),
            );
        } else if primary == Some(r.as_str()) {
            s.problem(
                &key,
                format!(
                    "{r:?} is the target's own region; list only the other regions to replicate to"
                ),
            );
        } else if out.iter().any(|x| x.region == *r) {
            s.problem(
                &key,
                format!("{r:?} is listed twice; list each region once"),
            );
        } else {
            out.push(crate::target::ReplicaRegion {
                region: r.clone(),
                kms_key_id: None,
            });
        }
    }
    for (region, id) in keys {
        let key = format!("replica_kms_key_ids.{region}");
        if let Err(m) = check_kms_key_id(&id) {
            s.problem(&key, m);
            continue;
        }
        match out.iter_mut().find(|x| x.region == region) {
            Some(x) => x.kms_key_id = Some(id),
            None => s.problem(
                &key,
                format!("{region:?} is not in replica_regions; add it there or remove this key"),
            ),
        }
    }
    out
}

/// A KMS key id, ARN or alias as Secrets Manager takes one: 1..=[`MAX_KMS_KEY_ID_CHARS`]
/// characters.
fn check_kms_key_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_KMS_KEY_ID_CHARS {
        return Err(format!("must be 1..={MAX_KMS_KEY_ID_CHARS} characters"));
    }
    Ok(())
}

/// AWS tag rules for Secrets Manager: key 1..=128, value 0..=256, letters, digits, spaces and
/// `_ . : / = + - @`; keys starting with `aws:` are reserved, `secretport:` is ours.
fn check_tag(k: &str, v: &str) -> Result<(), String> {
    use crate::plan::LeftOutWhy;
    // AWS's tag rules are written once (`plan::unfit`, which also names the source tags a run
    // leaves out); here they refuse a configured tag, in the config's words
    match crate::plan::unfit(k, v) {
        None | Some(LeftOutWhy::OverLimit | LeftOutWhy::SetByConfig) => Ok(()),
        Some(LeftOutWhy::KeyLength) => Err(format!(
            "tag keys must be 1..={MAX_TAG_KEY_CHARS} characters"
        )),
        Some(LeftOutWhy::AwsPrefix | LeftOutWhy::OurPrefix) => {
            Err("tag keys starting with aws: or secretport: are reserved".into())
        }
        Some(LeftOutWhy::ValueLength) => Err(format!(
            "tag values must be at most {MAX_TAG_VALUE_CHARS} characters"
        )),
        Some(LeftOutWhy::Characters) => {
            Err("tags may hold letters, digits, spaces and _ . : / = + - @ only".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_to_the_rules_aws_enforces() {
        let long_key = "k".repeat(MAX_TAG_KEY_CHARS + 1);
        let long_value = "v".repeat(MAX_TAG_VALUE_CHARS + 1);
        let longest_value = "v".repeat(MAX_TAG_VALUE_CHARS);
        for (k, v, refused) in [
            ("team", "platform", None),
            ("team", "", None),
            ("a b_.:/=+-@", "Zürich 1", None),
            ("team", &longest_value as &str, None),
            ("", "x", Some("1..=128 characters")),
            (&long_key, "x", Some("1..=128 characters")),
            ("aws:owner", "x", Some("reserved")),
            ("AWS:owner", "x", Some("reserved")),
            ("secretport:owner", "x", Some("reserved")),
            ("team", &long_value, Some("at most 256 characters")),
            ("team", "a#b", Some("letters, digits, spaces")),
            ("t*", "x", Some("letters, digits, spaces")),
        ] {
            match (check_tag(k, v), refused) {
                (Ok(()), None) => {}
                (Err(m), Some(words)) => assert!(m.contains(words), "{k:?}={v:?}: {m}"),
                (got, want) => panic!("{k:?}={v:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
