//! The `file` source: a plaintext JSON Lines export, for air-gapped imports and tests.
//!
//! `{"path":"app/db","value":{"user":"u"}}`: an object (or array) value becomes a JSON
//! `SecretString` holding exactly the bytes of that value in the line: number literals (`1.50`,
//! `1e2`, `-0`, integers of any length), duplicate keys, escapes and whitespace inside it are
//! kept, because re-serialising would change them and AWS must store what the export held. A
//! string value becomes a plain `SecretString` (the decoded string), `"value_base64"` a
//! `SecretBinary`. Anything else is refused with a reason on its line, as is a value over AWS's
//! 64 KiB limit. The file is read once; values are kept in [`SecretValue`]s (zeroized on drop)
//! and handed out on [`Source::fetch`], and the file bytes themselves are zeroized after parsing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::export::{parse_export, take_base64, Fields};
use super::{Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceRef};
use crate::identity::Scope;
use crate::secret::{SecretValue, MAX_SECRET_BYTES};

/// A parsed plaintext export.
pub struct FileSource {
    file: PathBuf,
    values: BTreeMap<String, SecretValue>,
    listing: Listing,
}

impl FileSource {
    /// Reads and parses the export. Only an unreadable file is an error; bad lines (invalid
    /// UTF-8 included) end up in the listing's problems.
    pub fn open(file: &Path) -> Result<Self, SourceError> {
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            SourceError::new(
                SourceErrorKind::Unavailable,
                file.display().to_string(),
                format!("cannot read export: {e}"),
            )
        })?);
        Ok(Self::parse(file, &bytes))
    }

    fn parse(file: &Path, bytes: &[u8]) -> Self {
        let (records, mut problems) = parse_export(bytes);
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

fn value_of(fields: &mut Fields<'_>) -> Result<SecretValue, String> {
    let b64 = take_base64(fields, "value_base64")?;
    let value = fields.take("value");
    let extra: Vec<String> = fields.keys().map(|k| format!("{k:?}")).collect();
    if !extra.is_empty() {
        return Err(format!("unknown field(s) {}", extra.join(", ")));
    }
    let value = match (value, b64) {
        (Some(_), Some(_)) => {
            return Err("has both \"value\" and \"value_base64\"; give one".into())
        }
        (None, None) => return Err("missing \"value\" (or \"value_base64\")".into()),
        (None, Some(bytes)) => SecretValue::binary(bytes),
        (Some(raw), None) => text_value(raw)?,
    };
    if value.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "value is {} bytes; AWS Secrets Manager allows at most {MAX_SECRET_BYTES}",
            value.len()
        ));
    }
    Ok(value)
}

/// A `value` field: a string is decoded; an object or array is kept as the exact bytes of the
/// line (see the module docs); anything else is refused.
fn text_value(raw: &RawValue) -> Result<SecretValue, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text)
            .map(SecretValue::text)
            .map_err(|_| {
                "\"value\" is not valid Unicode text (an unpaired surrogate escape?)".to_owned()
            }),
        Some(b'{' | b'[') => Ok(SecretValue::text(text.to_owned())),
        _ => Err(
            "\"value\" must be a JSON object, array or string (a number, true, false or null \
             has no one obvious text form: quote it)"
                .into(),
        ),
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
            "{\"path\":\"app/arr\",\"value\":[1, 2.0]}\n",
        );
        let s = FileSource::parse(Path::new("x.jsonl"), text.as_bytes());
        let l = s.list().await.unwrap();
        assert_eq!(l.refs.len(), 4);
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

    async fn fetched_text(s: &FileSource, path: &str) -> String {
        let Fetched::Value { value, .. } = s.fetch(&SourceRef::new(path)).await.unwrap() else {
            panic!()
        };
        value.expose_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn object_values_are_byte_exact() {
        let values = [
            r#"{"n": 123456789012345678901}"#,
            r#"{"a":1.50,"b":1e2,"c":-0,"d":1E-7}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"u":"caf\u00e9 \ud83d\ude00 \u003c","s":"\/"}"#,
            "{ \"x\" :\t[ 1 , {\"y\" : null } ] }",
            r#"[-0.0, 9007199254740993]"#,
            r#"{}"#,
        ];
        let text: String = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{{\"path\":\"p{i}\",\"value\":{v}}}\n"))
            .collect();
        let s = FileSource::parse(Path::new("x.jsonl"), text.as_bytes());
        assert!(s.listing.problems.is_empty(), "{:?}", s.listing.problems);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(fetched_text(&s, &format!("p{i}")).await, *v);
        }
    }

    #[tokio::test]
    async fn strings_are_decoded_and_bad_values_refused_per_line() {
        let big = "x".repeat(MAX_SECRET_BYTES + 1);
        let text = format!(
            "{{\"path\":\"s\",\"value\":\"a\\u00e9\\n\\\"b\"}}\n\
             {{\"path\":\"big\",\"value\":\"{big}\"}}\n\
             {{\"path\":\"lone\",\"value\":\"\\ud800\"}}\n\
             {{\"path\":\"null\",\"value\":null}}\n"
        );
        let s = FileSource::parse(Path::new("x.jsonl"), text.as_bytes());
        assert_eq!(fetched_text(&s, "s").await, "a\u{e9}\n\"b");
        let p = &s.listing.problems;
        assert_eq!(
            p.iter().map(|p| p.line.unwrap()).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert!(
            p[0].error.contains("value is 65537 bytes"),
            "{}",
            p[0].error
        );
        assert!(p[1].error.contains("not valid Unicode"), "{}", p[1].error);
        assert!(p[2]
            .error
            .contains("must be a JSON object, array or string"));
    }
}
