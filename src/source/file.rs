//! The `file` source: a plaintext JSON Lines export, for air-gapped imports and tests.
//!
//! `{"path":"app/db","value":{"user":"u"}}`: an object value becomes a JSON `SecretString` (key
//! order kept), a string value a plain `SecretString`, `"value_base64"` a `SecretBinary`. The file
//! is read once; values are kept in [`SecretValue`]s (zeroized on drop) and handed out on
//! [`Source::fetch`], and the file text itself is zeroized after parsing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::Value;
use zeroize::Zeroizing;

use super::export::{parse_export, take_base64};
use super::{Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceRef};
use crate::identity::Scope;
use crate::secret::SecretValue;

/// A parsed plaintext export.
pub struct FileSource {
    file: PathBuf,
    values: BTreeMap<String, SecretValue>,
    listing: Listing,
}

impl FileSource {
    /// Reads and parses the export. Only an unreadable file is an error; bad lines end up in the
    /// listing's problems.
    pub fn open(file: &Path) -> Result<Self, SourceError> {
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            SourceError::new(
                SourceErrorKind::Unavailable,
                file.display().to_string(),
                format!("cannot read export: {e}"),
            )
        })?);
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                return Err(SourceError::new(
                    SourceErrorKind::BadRecord,
                    file.display().to_string(),
                    "export is not valid UTF-8",
                )
                .at_line(Some(line)));
            }
        };
        Ok(Self::parse(file, text))
    }

    fn parse(file: &Path, text: &str) -> Self {
        let (records, mut problems) = parse_export(text);
        let mut values = BTreeMap::new();
        let mut refs = Vec::new();
        for mut rec in records {
            match value_of(&mut rec.fields) {
                Ok(v) => {
                    let mut r = SourceRef::new(rec.path.clone());
                    r.line = Some(rec.line);
                    refs.push(r);
                    values.insert(rec.path, v);
                }
                Err(error) => problems.push(ListProblem {
                    path: rec.path,
                    line: Some(rec.line),
                    error,
                }),
            }
        }
        problems.sort_by_key(|p| p.line);
        FileSource {
            file: file.to_owned(),
            values,
            listing: Listing { refs, problems },
        }
    }
}

fn value_of(fields: &mut serde_json::Map<String, Value>) -> Result<SecretValue, String> {
    let b64 = take_base64(fields, "value_base64")?;
    let value = fields.remove("value");
    let extra: Vec<String> = fields.keys().map(|k| format!("{k:?}")).collect();
    if !extra.is_empty() {
        return Err(format!("unknown field(s) {}", extra.join(", ")));
    }
    match (value, b64) {
        (Some(_), Some(_)) => Err("has both \"value\" and \"value_base64\"; give one".into()),
        (None, None) => Err("missing \"value\" (or \"value_base64\")".into()),
        (None, Some(bytes)) => Ok(SecretValue::binary(bytes)),
        (Some(Value::String(s)), None) => Ok(SecretValue::text(s)),
        (Some(v @ Value::Object(_)), None) => serde_json::to_string(&v)
            .map(SecretValue::text)
            .map_err(|_| "value cannot be serialized".to_owned()),
        (Some(_), None) => Err("\"value\" must be a JSON object or a string".into()),
    }
}

impl Source for FileSource {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn scope(&self) -> Scope {
        Scope::new("file", &super::export::export_instance(&self.file), "")
    }

    fn location(&self) -> String {
        format!("export file {}", self.file.display())
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move { Ok(self.listing.clone()) })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            match self.values.get(&r.path) {
                Some(v) => Ok(Fetched::Value {
                    value: v.clone(),
                    version: None,
                    metadata: Default::default(),
                }),
                None => Err(SourceError::new(
                    SourceErrorKind::NotFound,
                    &r.path,
                    format!("not in {}", self.file.display()),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_and_bad_lines() {
        let text = concat!(
            "{\"path\":\"app/db\",\"value\":{\"user\":\"u\",\"n\":1}}\n",
            "{\"path\":\"app/s\",\"value\":\"plain\"}\n",
            "{\"path\":\"app/b\",\"value_base64\":\"AP8=\"}\n",
            "{\"path\":\"bad/both\",\"value\":\"x\",\"value_base64\":\"AA==\"}\n",
            "{\"path\":\"bad/b64\",\"value_base64\":\"!!\"}\n",
            "{\"path\":\"bad/num\",\"value\":5}\n",
        );
        let s = FileSource::parse(Path::new("x.jsonl"), text);
        let l = s.list().await.unwrap();
        assert_eq!(l.refs.len(), 3);
        assert_eq!(
            l.problems
                .iter()
                .map(|p| p.line.unwrap())
                .collect::<Vec<_>>(),
            vec![4, 5, 6]
        );
        let db = l.refs.iter().find(|r| r.path == "app/db").unwrap();
        let Fetched::Value { value, .. } = s.fetch(db).await.unwrap() else {
            panic!()
        };
        assert_eq!(value.expose_str(), Some("{\"user\":\"u\",\"n\":1}"));
        let b = l.refs.iter().find(|r| r.path == "app/b").unwrap();
        let Fetched::Value { value, .. } = s.fetch(b).await.unwrap() else {
            panic!()
        };
        assert!(value.is_binary());
        assert_eq!(value.expose_bytes(), &[0, 255]);
    }
}
