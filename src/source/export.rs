//! JSON Lines export files, shared by the `file` and `kms` sources.
//!
//! One secret per line, `path` required. This module does the line-level work both formats
//! share: UTF-8, JSON syntax, the `path` field, and duplicate paths, each reported with its
//! 1-based line number. A bad line never stops the others: an invalid UTF-8 sequence is that
//! line's error, and a UTF-8 byte order mark at the start of the file is skipped (editors on
//! Windows write one; it must not cost the first record). Duplicated paths are rejected on
//! *every* line that holds them: with two candidate values nobody can say which one is meant.
//!
//! # Why fields stay raw
//!
//! Values must reach AWS byte for byte as the export holds them. Parsing a record into
//! `serde_json::Value` and printing it again changes number literals (`1.50` → `1.5`,
//! `123456789012345678901` → `1.2345678901234568e20`, `-0` → `-0.0`), collapses duplicate keys
//! and rewrites escapes and whitespace. So a record is only split into its top-level fields, each
//! kept as a borrowed [`RawValue`]: the exact text of that field in the line. A JSON object or
//! array `value` is then stored as exactly that text; strings, base64 and contexts are decoded
//! from it. The fields borrow the caller's buffer (which the sources zeroize), so no second
//! copy of a plaintext is made here.
//!
//! [`ExportLine`] and [`Fields`] print only field *names* in their `Debug`: they hold plaintext.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::ListProblem;

/// The top-level fields of one record, in line order, `path` removed. Each value is the exact
/// JSON text of the field (borrowed from the export's buffer).
pub(crate) struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// Removes and returns the field `key`.
    pub(crate) fn take(&mut self, key: &str) -> Option<&'a RawValue> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Whether the field `key` is present.
    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Names of the fields left.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // names only: the values are plaintext
        f.debug_list().entries(self.keys()).finish()
    }
}

/// One well-formed record of an export.
pub(crate) struct ExportLine<'a> {
    /// 1-based line number.
    pub(crate) line: usize,
    /// The record's `path`.
    pub(crate) path: String,
    /// All fields, `path` removed.
    pub(crate) fields: Fields<'a>,
}

impl fmt::Debug for ExportLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportLine")
            .field("line", &self.line)
            .field("path", &self.path)
            .field("fields", &self.fields)
            .finish()
    }
}

/// A record's top-level members in order, duplicates kept (so they can be refused).
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Keys of a JSON object in order (duplicates kept), without building the values.
struct ObjectKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for ObjectKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectKeys;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, IgnoredAny)) = m.next_entry::<String, IgnoredAny>()? {
                    out.push(k);
                }
                Ok(ObjectKeys(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The first key that appears twice among `keys`.
fn first_duplicate<'k>(keys: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let mut seen = std::collections::BTreeSet::new();
    keys.into_iter().find(|k| !seen.insert(*k))
}

/// The 1-based column (in characters) of byte offset `at` in `line`, for messages.
fn column(line: &[u8], at: usize) -> usize {
    String::from_utf8_lossy(&line[..at.min(line.len())])
        .chars()
        .count()
        + 1
}

/// Parses one line (already valid UTF-8, trimmed, not empty) into a record, or says why not.
fn parse_line<'a>(line: usize, raw: &'a str) -> Result<ExportLine<'a>, String> {
    if !raw.starts_with('{') {
        // distinguish "not an object" from "not JSON"
        return match serde_json::from_str::<IgnoredAny>(raw) {
            Ok(_) => Err("record is not a JSON object".into()),
            Err(e) => Err(json_error(&e)),
        };
    }
    let Members(mut members) =
        serde_json::from_str::<Members<'a>>(raw).map_err(|e| json_error(&e))?;
    if let Some(k) = first_duplicate(members.iter().map(|(k, _)| k.as_str())) {
        return Err(format!("field {k:?} appears more than once; give it once"));
    }
    let Some(i) = members.iter().position(|(k, _)| k == "path") else {
        return Err("missing \"path\"".into());
    };
    let (_, path) = members.remove(i);
    let path = match path.get().as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(path.get())
            .map_err(|_| "\"path\" is not valid Unicode text".to_owned())?,
        _ => return Err("\"path\" must be a string".into()),
    };
    if path.trim().is_empty() {
        return Err("\"path\" is empty".into());
    }
    Ok(ExportLine {
        line,
        path,
        fields: Fields(members),
    })
}

/// serde_json's message names a column and may quote input, which could be part of a value: only
/// the column and the category are kept.
fn json_error(e: &serde_json::Error) -> String {
    format!("invalid JSON at column {}: {}", e.column(), classify(e))
}

/// Splits an export into records and per-line problems. Blank lines are ignored; CRLF is fine; a
/// leading UTF-8 byte order mark is skipped; a line that is not valid UTF-8 is that line's
/// problem. (Tests; a source indexes its file with [`index_export`].)
#[cfg(test)]
pub(crate) fn parse_export(bytes: &[u8]) -> (Vec<ExportLine<'_>>, Vec<ListProblem>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let Some(raw) = line_text(line, raw, &mut problems) else {
            continue;
        };
        match parse_line(line, raw) {
            Ok(r) => records.push(r),
            Err(error) => problems.push(line_problem(line, error)),
        }
    }
    drop_duplicates(&mut records, &mut problems, |r| (&r.path, r.line));
    (records, problems)
}

/// A problem with line `line` as a whole (before its path is known).
fn line_problem(line: usize, error: String) -> ListProblem {
    ListProblem {
        path: format!("line {line}"),
        line: Some(line),
        error,
    }
}

/// Line `line`'s text, trimmed; `None` for a blank line, and for one that is not UTF-8 (then
/// with that line's problem recorded). Shared by the in-memory parser and the indexer, so both
/// read an export the same way.
fn line_text<'a>(line: usize, raw: &'a [u8], problems: &mut Vec<ListProblem>) -> Option<&'a str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Some(s.trim()).filter(|t| !t.is_empty()),
        Err(e) => {
            problems.push(line_problem(
                line,
                format!(
                    "not valid UTF-8 (at column {})",
                    column(raw, e.valid_up_to())
                ),
            ));
            None
        }
    }
}

/// Rejects every record whose path appears more than once (a problem per line), then sorts the
/// problems by line and the records by path.
fn drop_duplicates<R>(
    records: &mut Vec<R>,
    problems: &mut Vec<ListProblem>,
    key: impl Fn(&R) -> (&String, usize),
) {
    records.sort_by(|a, b| key(a).cmp(&key(b)));
    let mut dups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for w in records.windows(2) {
        let ((p, l), (q, m)) = (key(&w[0]), key(&w[1]));
        if p == q {
            let lines = dups.entry(p.clone()).or_default();
            if lines.is_empty() {
                lines.push(l);
            }
            lines.push(m);
        }
    }
    if !dups.is_empty() {
        records.retain(|r| {
            let (path, line) = key(r);
            let Some(lines) = dups.get(path) else {
                return true;
            };
            problems.push(ListProblem {
                path: path.clone(),
                line: Some(line),
                error: format!(
                    "duplicate path (lines {}); none of them is migrated",
                    lines
                        .iter()
                        .map(|l| l.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
            false
        });
    }
    problems.sort_by_key(|p| p.line);
}

/// Where one record lies in the export file, and a digest of what it held when it was listed,
/// so a re-read can tell that the file changed underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordAt {
    /// 1-based line number.
    pub(crate) line: usize,
    /// Byte offset of the line in the file (after a leading byte order mark).
    pub(crate) offset: u64,
    /// Length of the line in bytes, without its `\n`.
    pub(crate) len: u32,
    /// The first 8 bytes of the SHA-256 of those bytes.
    pub(crate) digest: [u8; 8],
}

/// One well-formed record of an indexed export: its path, where it lies, and what the source
/// kept of it (`T`: nothing for `file`, the data key cell for `kms`). No value.
#[derive(Debug)]
pub(crate) struct Indexed<T> {
    /// The record's `path`.
    pub(crate) path: String,
    /// Where it lies.
    pub(crate) at: RecordAt,
    /// What the source keeps.
    pub(crate) meta: T,
}

fn digest8(bytes: &[u8]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(bytes);
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Reads an export line by line (one line in memory at a time, zeroized after use) and indexes
/// its records by byte offset: `check` validates a record's fields (and keeps what the source
/// needs of them, never a value); bad lines, refused records and duplicated paths become
/// problems, as in [`parse_export`]. Records come back sorted by path.
pub(crate) fn index_export<R: std::io::BufRead, T>(
    mut reader: R,
    mut check: impl FnMut(&mut Fields<'_>) -> Result<T, String>,
) -> std::io::Result<(Vec<Indexed<T>>, Vec<ListProblem>)> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut offset = 0u64;
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        let mut start = offset;
        offset += n as u64;
        let mut raw: &[u8] = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if line == 1 {
            if let Some(rest) = raw.strip_prefix(b"\xEF\xBB\xBF") {
                raw = rest;
                start += 3;
            }
        }
        let Some(text) = line_text(line, raw, &mut problems) else {
            continue;
        };
        let Ok(len) = u32::try_from(raw.len()) else {
            problems.push(line_problem(line, "line longer than 4 GiB".into()));
            continue;
        };
        match parse_line(line, text) {
            Ok(mut r) => match check(&mut r.fields) {
                Ok(meta) => records.push(Indexed {
                    path: r.path,
                    at: RecordAt {
                        line,
                        offset: start,
                        len,
                        digest: digest8(raw),
                    },
                    meta,
                }),
                Err(error) => problems.push(ListProblem {
                    path: r.path,
                    line: Some(line),
                    error,
                }),
            },
            Err(error) => problems.push(line_problem(line, error)),
        }
    }
    drop_duplicates(&mut records, &mut problems, |r| (&r.path, r.at.line));
    Ok((records, problems))
}

/// The export file a source re-reads records from: the open handle and its size and
/// modification time when it was indexed.
pub(crate) struct ExportFile {
    path: std::path::PathBuf,
    file: std::sync::Mutex<std::fs::File>,
    stamp: (u64, Option<std::time::SystemTime>),
}

impl ExportFile {
    /// Opens `path` and indexes it (see [`index_export`]).
    pub(crate) fn open<T>(
        path: &std::path::Path,
        check: impl FnMut(&mut Fields<'_>) -> Result<T, String>,
    ) -> std::io::Result<(ExportFile, Vec<Indexed<T>>, Vec<ListProblem>)> {
        let file = std::fs::File::open(path)?;
        let (records, problems) = index_export(std::io::BufReader::new(&file), check)?;
        let meta = file.metadata()?;
        let export = ExportFile {
            path: path.to_owned(),
            stamp: (meta.len(), meta.modified().ok()),
            file: std::sync::Mutex::new(file),
        };
        Ok((export, records, problems))
    }

    /// Reads the record at `at` again and hands its fields to `f`. Refused, with a message
    /// that says so, when the file's size or modification time changed since it was indexed
    /// or the line no longer holds what it held (its digest differs), or when it no longer
    /// holds the record `path`: a record is never read from a file that changed underneath.
    pub(crate) fn with_record<R>(
        &self,
        path: &str,
        at: &RecordAt,
        f: impl FnOnce(&mut Fields<'_>) -> Result<R, String>,
    ) -> Result<R, String> {
        use std::io::{Read, Seek, SeekFrom};
        let changed = || {
            format!(
                "{} changed on disk since it was listed; nothing read from it (run again on \
                 the file as it is now)",
                self.path.display()
            )
        };
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; at.len as usize]);
        {
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            let meta = file
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            if (meta.len(), meta.modified().ok()) != self.stamp {
                return Err(changed());
            }
            file.seek(SeekFrom::Start(at.offset))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        }
        if digest8(&bytes) != at.digest {
            return Err(changed());
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| changed())?.trim();
        let mut rec = parse_line(at.line, text).map_err(|_| changed())?;
        if rec.path != path {
            return Err(changed());
        }
        f(&mut rec.fields)
    }
}

/// A description of a JSON error that cannot echo input text (serde_json messages may quote
/// fragments of the input, which could be part of a value).
fn classify(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of line",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Io => "read error",
    }
}

/// Whether a raw field is the literal `null`.
fn is_null(v: &RawValue) -> bool {
    v.get() == "null"
}

/// Takes a string field (absent or `null` = `None`), with an error naming the field.
pub(crate) fn take_str(fields: &mut Fields<'_>, key: &str) -> Result<Option<String>, String> {
    match fields.take(key) {
        None => Ok(None),
        Some(v) if is_null(v) => Ok(None),
        Some(v) if v.get().starts_with('"') => serde_json::from_str::<String>(v.get())
            .map(Some)
            .map_err(|_| format!("\"{key}\" is not valid Unicode text")),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// Takes a base64 field and decodes it, with an error naming the field.
pub(crate) fn take_base64(fields: &mut Fields<'_>, key: &str) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    let Some(s) = take_str(fields, key)? else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(Some)
        .map_err(|e| format!("\"{key}\" is not valid base64 ({e})"))
}

/// Takes an `encryption_context` object of string values. A key given twice is refused (which
/// one KMS would see is not for us to guess).
pub(crate) fn take_context(
    fields: &mut Fields<'_>,
    key: &str,
) -> Result<BTreeMap<String, String>, String> {
    let v = match fields.take(key) {
        None => return Ok(BTreeMap::new()),
        Some(v) if is_null(v) => return Ok(BTreeMap::new()),
        Some(v) if v.get().starts_with('{') => v,
        Some(_) => return Err(format!("\"{key}\" must be an object of strings")),
    };
    let keys = serde_json::from_str::<ObjectKeys>(v.get())
        .map_err(|_| format!("\"{key}\" must be an object of strings"))?;
    if let Some(k) = first_duplicate(keys.0.iter().map(String::as_str)) {
        return Err(format!("\"{key}\" has the key {k:?} more than once"));
    }
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(v.get())
        .map_err(|_| format!("\"{key}\" must be an object of strings"))?;
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(format!("\"{key}\" values must be strings (key {k:?})")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_and_duplicates() {
        let text = "{\"path\":\"a\",\"value\":\"1\"}\r\n\nnot json\n{\"value\":\"x\"}\n{\"path\":\"b\"}\n{\"path\":\"a\",\"value\":\"2\"}\n[1]\n";
        let (recs, probs) = parse_export(text.as_bytes());
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].path, "b");
        assert_eq!(recs[0].line, 5);
        let lines: Vec<usize> = probs.iter().filter_map(|p| p.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 6, 7]);
        assert!(probs[0].error.contains("duplicate path (lines 1, 6)"));
        assert!(probs[1].error.contains("invalid JSON"));
        assert!(probs[2].error.contains("missing \"path\""));
        assert!(probs[4].error.contains("not a JSON object"));
    }

    #[test]
    fn json_errors_do_not_echo_input() {
        let (_, probs) = parse_export(b"{\"path\":\"a\",\"value\":\"s3cr3t-planted\" oops}\n");
        assert_eq!(probs.len(), 1);
        assert!(!probs[0].error.contains("s3cr3t"), "{}", probs[0].error);
    }

    #[test]
    fn invalid_utf8_is_one_lines_problem_and_bom_is_skipped() {
        let mut text = b"\xEF\xBB\xBF{\"path\":\"first\",\"value\":\"1\"}\n".to_vec();
        text.extend_from_slice(b"{\"path\":\"bad\",\"value\":\"\xff\xfe\"}\n");
        text.extend_from_slice(b"{\"path\":\"third\",\"value\":\"3\"}\n");
        let (recs, probs) = parse_export(&text);
        assert_eq!(
            recs.iter()
                .map(|r| (r.path.as_str(), r.line))
                .collect::<Vec<_>>(),
            [("first", 1), ("third", 3)]
        );
        assert_eq!(probs.len(), 1);
        assert_eq!(probs[0].line, Some(2));
        assert!(
            probs[0].error.contains("not valid UTF-8 (at column 24)"),
            "{}",
            probs[0].error
        );
    }

    #[test]
    fn fields_are_raw_and_duplicates_refused() {
        let (recs, probs) = parse_export(
            b"{\"path\":\"a\", \"value\" : {\"n\": 1.50, \"n\": 1e2} }\n{\"path\":\"b\",\"value\":1,\"value\":2}\n",
        );
        assert_eq!(recs.len(), 1);
        let mut f = Fields(recs[0].fields.0.clone());
        assert_eq!(f.take("value").unwrap().get(), "{\"n\": 1.50, \"n\": 1e2}");
        assert!(probs[0]
            .error
            .contains("field \"value\" appears more than once"));
    }

    #[test]
    fn debug_shows_field_names_not_values() {
        let (recs, _) = parse_export(b"{\"path\":\"a\",\"value\":\"pl4nted-debug\"}\n");
        let d = format!("{:?}", recs[0]);
        assert!(!d.contains("pl4nted"), "{d}");
        assert!(d.contains("\"value\""), "{d}");
    }

    #[test]
    fn contexts() {
        let (mut recs, _) = parse_export(
            b"{\"path\":\"a\",\"c\":{\"k\":\"v\",\"k\":\"w\"},\"d\":{\"x\":\"y\"},\"e\":{\"x\":1},\"f\":null}\n",
        );
        let f = &mut recs[0].fields;
        assert!(take_context(f, "c").unwrap_err().contains("more than once"));
        assert_eq!(take_context(f, "d").unwrap()["x"], "y");
        assert!(take_context(f, "e")
            .unwrap_err()
            .contains("must be strings"));
        assert!(take_context(f, "f").unwrap().is_empty());
    }
}
