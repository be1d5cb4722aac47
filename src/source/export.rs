//! JSON Lines export files, shared by the `file` and `kms` sources.
//!
//! One secret per line, `path` required. This module does the line-level work both formats
//! share: JSON syntax, the `path` field, and duplicate paths, each reported with its 1-based line
//! number. A bad line never stops the others. Duplicated paths are rejected on *every* line that
//! holds them: with two candidate values nobody can say which one is meant.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ListProblem;

/// One well-formed record of an export.
#[derive(Debug)]
pub struct ExportLine {
    /// 1-based line number.
    pub line: usize,
    /// The record's `path`.
    pub path: String,
    /// All fields, `path` removed.
    pub fields: Map<String, Value>,
}

/// Splits an export into records and per-line problems. Blank lines are ignored; CRLF is fine.
pub fn parse_export(text: &str) -> (Vec<ExportLine>, Vec<ListProblem>) {
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let bad = |error: String| ListProblem {
            path: format!("line {line}"),
            line: Some(line),
            error,
        };
        let mut fields = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                problems.push(bad("record is not a JSON object".into()));
                continue;
            }
            Err(e) => {
                // serde_json's message names a column, never the content
                problems.push(bad(format!(
                    "invalid JSON at column {}: {}",
                    e.column(),
                    classify(&e)
                )));
                continue;
            }
        };
        match fields.remove("path") {
            Some(Value::String(p)) if !p.trim().is_empty() => records.push(ExportLine {
                line,
                path: p,
                fields,
            }),
            Some(Value::String(_)) => problems.push(bad("\"path\" is empty".into())),
            Some(_) => problems.push(bad("\"path\" must be a string".into())),
            None => problems.push(bad("missing \"path\"".into())),
        }
    }
    let mut seen: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for r in &records {
        seen.entry(r.path.as_str()).or_default().push(r.line);
    }
    let dups: BTreeMap<String, Vec<usize>> = seen
        .into_iter()
        .filter(|(_, lines)| lines.len() > 1)
        .map(|(p, l)| (p.to_owned(), l))
        .collect();
    if !dups.is_empty() {
        records.retain(|r| {
            let Some(lines) = dups.get(&r.path) else {
                return true;
            };
            problems.push(ListProblem {
                path: r.path.clone(),
                line: Some(r.line),
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
    records.sort_by(|a, b| a.path.cmp(&b.path));
    (records, problems)
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

/// Takes a string field, with an error naming the field.
pub fn take_str(fields: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// Takes a base64 field and decodes it, with an error naming the field.
pub fn take_base64(fields: &mut Map<String, Value>, key: &str) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    let Some(s) = take_str(fields, key)? else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(Some)
        .map_err(|e| format!("\"{key}\" is not valid base64 ({e})"))
}

/// Takes an `encryption_context` object of string values.
pub fn take_context(
    fields: &mut Map<String, Value>,
    key: &str,
) -> Result<BTreeMap<String, String>, String> {
    match fields.remove(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(format!("\"{key}\" values must be strings (key {k:?})")),
            })
            .collect(),
        Some(_) => Err(format!("\"{key}\" must be an object of strings")),
    }
}

/// The instance part of an export's identity: the file's absolute, canonical path (two configs
/// that read different files never own each other's secrets; a moved file is a new instance,
/// whose old secrets are then foreign and left alone).
pub fn export_instance(file: &std::path::Path) -> String {
    std::fs::canonicalize(file)
        .unwrap_or_else(|_| file.to_owned())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_and_duplicates() {
        let text = "{\"path\":\"a\",\"value\":\"1\"}\r\n\nnot json\n{\"value\":\"x\"}\n{\"path\":\"b\"}\n{\"path\":\"a\",\"value\":\"2\"}\n[1]\n";
        let (recs, probs) = parse_export(text);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].path, "b");
        assert_eq!(recs[0].line, 5);
        let lines: Vec<usize> = probs.iter().filter_map(|p| p.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 6, 7]);
        assert!(probs[0].error.contains("duplicate path (lines 1, 6)"));
        assert!(probs[1].error.contains("invalid JSON"));
        assert!(probs[2].error.contains("missing \"path\""));
    }

    #[test]
    fn json_errors_do_not_echo_input() {
        let (_, probs) = parse_export("{\"path\":\"a\",\"value\":\"s3cr3t-planted\" oops}\n");
        assert_eq!(probs.len(), 1);
        assert!(!probs[0].error.contains("s3cr3t"), "{}", probs[0].error);
    }
}
