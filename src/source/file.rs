//! The `file` source: a plaintext JSON Lines export, for air-gapped imports and tests.
//!
//! `{"path":"app/db","value":{"user":"u"}}`: an object (or array) value becomes a JSON
//! `SecretString` holding exactly the bytes of that value in the line: number literals (`1.50`,
//! `1e2`, `-0`, integers of any length), duplicate keys, escapes and whitespace inside it are
//! kept, because re-serialising would change them and AWS must store what the export held. A
//! string value becomes a plain `SecretString` (the decoded string), `"value_base64"` a
//! `SecretBinary`. Anything else is refused with a reason on its line, as is a value over AWS's
//! 64 KiB limit.
//!
//! # Memory
//!
//! An export may hold a region's 500,000 secrets. It is read once at open, a line at a time,
//! and every record is validated then; what is kept is an index (line → byte offset, length and
//! a digest of the line), never a value, and the paths only until the listing takes them (the
//! plan holds them from then on: one copy per secret, not two). [`Source::fetch`] finds the
//! record by the reference's line, reads that line again, checks it is what was indexed (the
//! file's size and modification time, the line's digest, the path) and decodes the value; a
//! file changed on disk since the listing is refused with an error saying so, never read as
//! something else. The line buffers are zeroized after use.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde_json::value::RawValue;

use super::export::{take_base64, ExportFile, Fields, Indexed, RecordAt};
use super::{
    Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};
use crate::identity::Scope;
use crate::secret::{SecretValue, MAX_SECRET_BYTES};

/// An indexed plaintext export.
pub struct FileSource {
    file: PathBuf,
    /// The identity's instance (`source::instance`: the file relative to the config folder,
    /// or the configured name).
    instance: String,
    export: ExportFile,
    /// Where each valid record lies, sorted by line.
    records: Vec<RecordAt>,
    /// The listing's references (path and line, sorted by path) until the first
    /// [`Source::list`] takes them; a later listing indexes the file again.
    refs: std::sync::Mutex<Option<Vec<SourceRef>>>,
    problems: Vec<ListProblem>,
}

impl FileSource {
    /// Reads and indexes the export; its secrets' identities name `instance` (see
    /// `source::instance`). Only an unreadable file is an error; bad lines (invalid UTF-8
    /// included) end up in the listing's problems.
    pub fn open(file: &Path, instance: &str) -> Result<Self, SourceError> {
        let (export, records, problems) =
            ExportFile::open(file, |fields| value_of(fields).map(drop)).map_err(|e| {
                SourceError::new(
                    SourceErrorKind::Unavailable,
                    file.display().to_string(),
                    format!("cannot read export: {e}"),
                )
            })?;
        // the paths move into the references (not copied: at 500,000 records a copy of
        // every path is tens of MiB of peak memory)
        let mut refs = Vec::with_capacity(records.len());
        let mut records: Vec<RecordAt> = records
            .into_iter()
            .map(|rec: Indexed<()>| {
                let mut r = SourceRef::new(rec.path);
                r.line = Some(rec.at.line);
                refs.push(r);
                rec.at
            })
            .collect();
        records.sort_unstable_by_key(|at| at.line);
        // the collect above reuses the indexed records' buffer (56 bytes a record, path
        // included): give back what the 32-byte index does not need
        records.shrink_to_fit();
        Ok(FileSource {
            file: file.to_owned(),
            instance: instance.to_owned(),
            export,
            records,
            refs: std::sync::Mutex::new(Some(refs)),
            problems,
        })
    }

    /// Secrets indexed (valid records).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
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
    fn kind(&self) -> SourceKind {
        SourceKind::File
    }

    fn scope(&self) -> Scope {
        Scope::new(SourceKind::File.as_str(), &self.instance, "")
    }

    fn location(&self) -> String {
        format!("export file {}", self.file.display())
    }

    fn empty_advice(&self) -> String {
        "the export file has no records (one JSON object per line, {\"path\": ..., \"value\": ...}); \
         check that the export finished and that [source] file names it"
            .into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move {
            let taken = self.refs.lock().unwrap_or_else(|p| p.into_inner()).take();
            let refs = match taken {
                Some(refs) => refs,
                // listed before: index again (the records fetch reads stay those of the
                // first index, so a file changed since is refused record by record)
                None => FileSource::open(&self.file, &self.instance)?
                    .refs
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or_default(),
            };
            Ok(Listing {
                refs,
                problems: self.problems.clone(),
            })
        })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let found = r.line.and_then(|line| {
                self.records
                    .binary_search_by_key(&line, |at| at.line)
                    .ok()
                    .and_then(|i| self.records.get(i))
            });
            let Some(&at) = found else {
                return Err(SourceError::new(
                    SourceErrorKind::NotFound,
                    &r.path,
                    format!("not in {}", self.file.display()),
                ));
            };
            let value = self
                .export
                .with_record(&r.path, &at, value_of)
                .map_err(|e| {
                    SourceError::new(SourceErrorKind::BadRecord, &r.path, e).at_line(Some(at.line))
                })?;
            Ok(Fetched::Value {
                value,
                version: None,
                metadata: Default::default(),
                description: None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &[u8]) -> (tempfile::NamedTempFile, FileSource) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let s = FileSource::open(f.path(), "export.jsonl").unwrap();
        (f, s)
    }

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
        let (_f, s) = parsed(text.as_bytes());
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

    /// The listing's reference to `path` (it carries the line the source reads).
    async fn reference(s: &FileSource, path: &str) -> SourceRef {
        let l = s.list().await.unwrap();
        l.refs
            .into_iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| SourceRef::new(path))
    }

    async fn fetched_text(s: &FileSource, path: &str) -> String {
        let r = reference(s, path).await;
        let Fetched::Value { value, .. } = s.fetch(&r).await.unwrap() else {
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
        let (_f, s) = parsed(text.as_bytes());
        assert!(s.problems.is_empty(), "{:?}", s.problems);
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
        let (_f, s) = parsed(text.as_bytes());
        assert_eq!(fetched_text(&s, "s").await, "a\u{e9}\n\"b");
        let p = &s.problems;
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

    async fn fetch_err(s: &FileSource, path: &str) -> SourceError {
        let r = reference(s, path).await;
        match s.fetch(&r).await {
            Err(e) => e,
            Ok(_) => panic!("{path}: read from a changed file"),
        }
    }

    #[tokio::test]
    async fn records_are_read_from_the_index_and_a_changed_file_is_refused() {
        // a byte order mark and CRLF before the records: offsets must still land on them
        let text = "\u{feff}{\"path\":\"a\",\"value\":\"1111\"}\r\n\n{\"path\":\"b\",\"value_base64\":\"AP8=\"}\n";
        let (f, s) = parsed(text.as_bytes());
        assert_eq!(s.len(), 2);
        assert_eq!(fetched_text(&s, "a").await, "1111");
        assert_eq!(
            fetched_text(&s, "a").await,
            "1111",
            "read again, same answer"
        );

        // same length, same line, another value: only the line's digest can tell
        std::fs::write(f.path(), text.replace("1111", "2222")).unwrap();
        let e = fetch_err(&s, "a").await;
        assert_eq!((e.kind, e.line), (SourceErrorKind::BadRecord, Some(1)));
        assert!(
            e.message.contains("changed on disk since it was listed"),
            "{e}"
        );
        assert!(!e.to_string().contains("2222"), "{e}");

        // a line appended: the size differs, so even an untouched record is refused
        std::fs::write(
            f.path(),
            format!("{text}{{\"path\":\"c\",\"value\":\"3\"}}\n"),
        )
        .unwrap();
        let e = fetch_err(&s, "b").await;
        assert!(e.message.contains("changed on disk"), "{e}");
    }

    #[tokio::test]
    async fn a_second_listing_indexes_again_and_its_references_read_the_same_values() {
        let text = "{\"path\":\"b\",\"value\":\"2\"}\n{\"path\":\"a\",\"value\":\"1\"}\n";
        let (_f, s) = parsed(text.as_bytes());
        let first = s.list().await.unwrap();
        // the first listing took the paths; the second reads the file again
        let second = s.list().await.unwrap();
        assert_eq!(first.refs, second.refs);
        assert_eq!(
            second
                .refs
                .iter()
                .map(|r| (r.path.as_str(), r.line))
                .collect::<Vec<_>>(),
            [("a", Some(2)), ("b", Some(1))]
        );
        for r in &second.refs {
            let Fetched::Value { value, .. } = s.fetch(r).await.unwrap() else {
                panic!()
            };
            assert_eq!(
                value.expose_str(),
                Some(if r.path == "a" { "1" } else { "2" })
            );
        }
        // a reference without the line the listing gave is not found, never guessed
        let e = s.fetch(&SourceRef::new("a")).await.unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::NotFound);
    }

    #[tokio::test]
    async fn records_moved_within_the_file_are_refused() {
        let text = "{\"path\":\"a\",\"value\":\"x\"}\n{\"path\":\"b\",\"value\":\"y\"}\n";
        let (f, s) = parsed(text.as_bytes());
        // the same bytes, lines swapped: size and (maybe) mtime alike, each offset now holds
        // the other record
        let swapped = "{\"path\":\"b\",\"value\":\"y\"}\n{\"path\":\"a\",\"value\":\"x\"}\n";
        std::fs::write(f.path(), swapped).unwrap();
        let e = fetch_err(&s, "a").await;
        assert!(e.message.contains("changed on disk"), "{e}");
    }
}
