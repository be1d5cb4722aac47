//! KV engine specifics: version detection and reading one secret.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::http::{encode_path, Reply, Verb};
use super::json;
use super::{at_path, VaultSource};
use crate::secret::SecretValue;
use crate::source::{Fetched, SourceError, SourceErrorKind, SourceRef};

/// KV engine version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kv {
    V1,
    V2,
}

impl Kv {
    pub(crate) fn number(self) -> u8 {
        match self {
            Kv::V1 => 1,
            Kv::V2 => 2,
        }
    }
}

/// The answer of `sys/internal/ui/mounts/<mount>`, the parts we use.
#[derive(Deserialize)]
struct MountInfo {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    options: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct MountAnswer {
    data: MountInfo,
}

/// Outcome of the detection request.
pub(super) enum Detected {
    Version(Kv),
    /// 403: the token may not read the endpoint (or the mount does not exist); the Vault text.
    Denied(String),
}

/// KV v2 `data.metadata` of a read.
#[derive(Deserialize)]
struct Kv2Meta {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    destroyed: bool,
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, serde_json::Value>>,
}

impl Kv2Meta {
    fn custom(&self) -> BTreeMap<String, String> {
        self.custom_metadata
            .iter()
            .flatten()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    fn skip_reason(&self) -> String {
        let what = if self.destroyed {
            "destroyed"
        } else {
            "deleted"
        };
        format!("current version {} is {what}", self.version)
    }
}

fn bad_answer(path: &str, what: impl std::fmt::Display) -> SourceError {
    SourceError::new(
        SourceErrorKind::BadRecord,
        path,
        format!("unexpected answer from Vault: {what}"),
    )
}

impl VaultSource {
    /// `GET sys/internal/ui/mounts/<mount>`: the engine type and `options.version`.
    pub(super) async fn detect_kv(&self) -> Result<Detected, SourceError> {
        let api = format!("sys/internal/ui/mounts/{}", self.mount);
        let reply = self.call(Verb::Get, &encode_path(&api)).await?;
        match reply.status {
            200 => {}
            403 => return Ok(Detected::Denied(reply.errors())),
            _ => return Err(self.unexpected(&api, &reply)),
        }
        let answer: MountAnswer =
            serde_json::from_slice(&reply.body).map_err(|e| bad_answer(&api, e))?;
        let info = answer.data;
        let found = info.path.trim_matches('/');
        if !found.is_empty() && found != self.mount {
            let rest = self
                .mount
                .strip_prefix(found)
                .map(|r| r.trim_matches('/'))
                .unwrap_or_default();
            return Err(SourceError::new(
                SourceErrorKind::Other,
                "",
                format!(
                    "\"{}\" is not a mount: it lies inside the mount \"{found}\"; set mount = \"{found}\" and path = \"{rest}\" in [source]",
                    self.mount
                ),
            ));
        }
        if info.kind != "kv" && info.kind != "generic" {
            return Err(SourceError::new(
                SourceErrorKind::Other,
                "",
                format!(
                    "mount \"{}\" is a \"{}\" secrets engine, not KV",
                    self.mount, info.kind
                ),
            ));
        }
        let version = info
            .options
            .as_ref()
            .and_then(|o| o.get("version"))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        Ok(Detected::Version(match version.as_deref() {
            Some("2") => Kv::V2,
            // KV mounted without options is version 1
            None | Some("" | "1") => Kv::V1,
            Some(other) => {
                return Err(SourceError::new(
                    SourceErrorKind::Other,
                    "",
                    format!(
                        "mount \"{}\" reports KV version {other:?}; set kv_version = 1 or 2 in [source]",
                        self.mount
                    ),
                ))
            }
        }))
    }

    /// The API path of a secret (`<mount>/data/<subtree>/<path>` or `<mount>/<subtree>/<path>`).
    pub(super) fn read_path(&self, rel: &str) -> String {
        let full = self.full_path(rel);
        match self.kv {
            Kv::V2 => format!("{}/data/{full}", self.mount),
            Kv::V1 => format!("{}/{full}", self.mount),
        }
    }

    /// Reads the current value of one secret (one request).
    pub(super) async fn read(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let api = self.read_path(&r.path);
        let reply = self
            .call(Verb::Get, &encode_path(&api))
            .await
            .map_err(|e| at_path(e, &r.path))?;
        match (self.kv, reply.status) {
            (Kv::V2, 200 | 404) => self.kv2_answer(r, &api, &reply),
            (Kv::V1, 200) => {
                let span = json::find(&reply.body, &["data"])
                    .map_err(|e| bad_answer(&r.path, e))?
                    .filter(|s| !json::is_null(&reply.body[s.clone()]))
                    .ok_or_else(|| bad_answer(&r.path, "no data"))?;
                let text = json::compact(&reply.body[span]).map_err(|e| bad_answer(&r.path, e))?;
                Ok(Fetched::Value {
                    value: SecretValue::text(text),
                    version: None,
                    metadata: BTreeMap::new(),
                })
            }
            (_, 404) => Err(not_found(r, &api)),
            (_, 403) => Err(self.denied_read(r, &api, &reply)),
            _ => Err(at_path(self.unexpected(&api, &reply), &r.path)),
        }
    }

    /// A KV v2 answer (200, or 404 that may carry the metadata of a deleted version).
    fn kv2_answer(&self, r: &SourceRef, api: &str, reply: &Reply) -> Result<Fetched, SourceError> {
        let body = &reply.body[..];
        let meta_span =
            json::find(body, &["data", "metadata"]).map_err(|e| bad_answer(&r.path, e))?;
        let meta: Option<Kv2Meta> = match meta_span {
            Some(s) if !json::is_null(&body[s.clone()]) => {
                Some(serde_json::from_slice(&body[s]).map_err(|e| bad_answer(&r.path, e))?)
            }
            _ => None,
        };
        let data_span = json::find(body, &["data", "data"]).map_err(|e| bad_answer(&r.path, e))?;
        let data = data_span.filter(|s| !json::is_null(&body[s.clone()]));
        match (reply.status, meta, data) {
            (200, meta, Some(span)) => {
                let text = json::compact(&body[span]).map_err(|e| bad_answer(&r.path, e))?;
                Ok(Fetched::Value {
                    value: SecretValue::text(text),
                    version: meta.as_ref().map(|m| m.version.to_string()),
                    metadata: meta.as_ref().map(Kv2Meta::custom).unwrap_or_default(),
                })
            }
            // current version soft-deleted or destroyed: 404 with the metadata (200 with null
            // data on some servers)
            (_, Some(meta), None) => Ok(Fetched::Gone {
                reason: meta.skip_reason(),
                version: Some(meta.version.to_string()),
            }),
            (200, None, None) => Err(bad_answer(&r.path, "no data and no metadata")),
            _ => Err(not_found(r, api)),
        }
    }

    fn denied_read(&self, r: &SourceRef, api: &str, reply: &Reply) -> SourceError {
        let why = reply.errors();
        SourceError::new(
            SourceErrorKind::Denied,
            &r.path,
            format!(
                "permission denied reading {api} ({}); the token needs the \"read\" capability there",
                if why.is_empty() { "HTTP 403" } else { why.as_str() }
            ),
        )
    }
}

fn not_found(r: &SourceRef, api: &str) -> SourceError {
    SourceError::new(
        SourceErrorKind::NotFound,
        &r.path,
        format!("no current version at {api} (deleted since listing, or metadata only)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_name_the_version() {
        let m: Kv2Meta = serde_json::from_str(
            r#"{"created_time":"x","custom_metadata":null,"deletion_time":"2026-01-01T00:00:00Z","destroyed":false,"version":2}"#,
        )
        .unwrap();
        assert_eq!(m.skip_reason(), "current version 2 is deleted");
        assert!(m.custom().is_empty());
        let m: Kv2Meta = serde_json::from_str(
            r#"{"custom_metadata":{"owner":"a","n":1},"deletion_time":"","destroyed":true,"version":7}"#,
        )
        .unwrap();
        assert_eq!(m.skip_reason(), "current version 7 is destroyed");
        assert_eq!(m.custom()["owner"], "a");
        assert_eq!(m.custom()["n"], "1");
    }
}
