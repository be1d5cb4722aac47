//! The overrides file: explicit `source,target` pairs that win over the naming rules.
//!
//! The caller reads the file; this module only parses text (or a reader) it is given.

use std::collections::HashMap;

use super::{rules::target_problem, NamingError, NamingRules};
use crate::csv_safe::unescape_formula;

/// One explicit rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The source path, verbatim (not trimmed: spaces in Vault paths are significant).
    pub source: String,
    /// The full target name (the prefix is not added to it).
    pub target: String,
    /// 1-based line of the CSV where it was given.
    pub line: u64,
}

/// Explicit `source -> target` renames, from a CSV file with the columns `source,target`.
///
/// * One override per line (`\n` or `\r\n`), as a CSV record: fields may be quoted as usual
///   (`"a,b",devops/a_b`), but a quoted field cannot span lines. Blank lines are ignored.
/// * Without a header, each line has exactly two columns, `source,target`. A first line that
///   names a `source` and a `target` column (any case, any position) is a header; further
///   columns are then allowed and ignored. So the CSV that `secretport rename` writes
///   (`source,target,changed,reasons`) can be edited and used as an overrides file.
/// * A cell that begins with `'` followed by `=`, `+`, `-`, `@`, tab or CR is read without the
///   `'` (the inverse of the formula escaping in secretport's CSV output).
/// * **Override targets are full target names: the configured prefix is NOT added to them.**
///   Write `app/db,devops/legacy/db`, not `app/db,legacy/db`, when the prefix is `devops`.
/// * Each target must be a valid name under the policy ([`super::is_valid_target`]);
///   surrounding ASCII whitespace is trimmed from targets (a valid target has none), never from
///   sources.
/// * A source may appear once, and two sources may not share a target.
///
/// Every error names the 1-based line it concerns.
///
/// An override target is reserved even when its source is not among the names being planned,
/// so that the source gets that name once it appears. A source whose secret secretport already
/// created (sticky name) keeps that name: its override is then ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    entries: Vec<Override>,
    by_source: HashMap<String, usize>,
}

impl Overrides {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the overrides CSV text (see the type's documentation for the format).
    pub fn parse(text: &str, rules: &NamingRules) -> Result<Self, NamingError> {
        Self::parse_bytes(text.as_bytes(), rules)
    }

    /// One override per line (`\n` or `\r\n`); each line is one CSV record. Lines are split
    /// here rather than by the CSV reader so that error line numbers are exact.
    fn parse_bytes(bytes: &[u8], rules: &NamingRules) -> Result<Self, NamingError> {
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        let mut out = Overrides::default();
        let mut targets: HashMap<String, usize> = HashMap::new();
        let mut first = true;
        // Columns of source and target, and how many a row needs; a header may move them.
        let mut cols = (0usize, 1usize);
        let mut exact = Some(2usize);
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = i as u64 + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw).map_err(|_| NamingError::OverrideSyntax {
                line,
                message: "not valid UTF-8".into(),
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let record = parse_record(text)
                .map_err(|message| NamingError::OverrideSyntax { line, message })?;
            if std::mem::replace(&mut first, false) {
                if let Some(header) = header_columns(&record) {
                    cols = header;
                    exact = None;
                    continue;
                }
            }
            let needed = cols.0.max(cols.1) + 1;
            let bad = match exact {
                Some(n) => record.len() != n,
                None => record.len() < needed,
            };
            if bad {
                return Err(NamingError::OverrideSyntax {
                    line,
                    message: match exact {
                        Some(n) => format!(
                            "expected {n} columns (source,target), found {}",
                            record.len()
                        ),
                        None => format!(
                            "expected at least {needed} columns (as in the header), found {}",
                            record.len()
                        ),
                    },
                });
            }
            let source = unescape_formula(&record[cols.0]);
            let target =
                unescape_formula(record[cols.1].trim_matches(|c: char| c.is_ascii_whitespace()));
            out.push(source, target, line, rules, &mut targets)?;
        }
        Ok(out)
    }

    /// Builds overrides from pairs, numbered as lines 1, 2, ... (same checks as [`Self::parse`]).
    pub fn from_pairs<I, S, T>(pairs: I, rules: &NamingRules) -> Result<Self, NamingError>
    where
        I: IntoIterator<Item = (S, T)>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        let mut out = Overrides::default();
        let mut targets = HashMap::new();
        for (i, (s, t)) in pairs.into_iter().enumerate() {
            out.push(s.as_ref(), t.as_ref(), i as u64 + 1, rules, &mut targets)?;
        }
        Ok(out)
    }

    fn push(
        &mut self,
        source: &str,
        target: &str,
        line: u64,
        rules: &NamingRules,
        targets: &mut HashMap<String, usize>,
    ) -> Result<(), NamingError> {
        if source.is_empty() {
            return Err(NamingError::EmptyOverrideSource { line });
        }
        if let Some(message) = target_problem(target, rules.policy) {
            return Err(NamingError::InvalidOverrideTarget {
                line,
                path: source.to_owned(),
                target: target.to_owned(),
                policy: rules.policy,
                message,
            });
        }
        if let Some(&i) = self.by_source.get(source) {
            return Err(NamingError::DuplicateOverrideSource {
                line,
                path: source.to_owned(),
                first_line: self.entries[i].line,
            });
        }
        if let Some(&i) = targets.get(target) {
            let first = &self.entries[i];
            return Err(NamingError::DuplicateOverrideTarget {
                line,
                path: source.to_owned(),
                target: target.to_owned(),
                other: first.source.clone(),
                first_line: first.line,
            });
        }
        let i = self.entries.len();
        self.by_source.insert(source.to_owned(), i);
        targets.insert(target.to_owned(), i);
        self.entries.push(Override {
            source: source.to_owned(),
            target: target.to_owned(),
            line,
        });
        Ok(())
    }

    /// The override target for `source`, if any.
    #[inline]
    pub fn get(&self, source: &str) -> Option<&str> {
        if self.entries.is_empty() {
            return None;
        }
        self.by_source
            .get(source)
            .map(|&i| self.entries[i].target.as_str())
    }

    /// All overrides, in file order.
    pub fn entries(&self) -> &[Override] {
        &self.entries
    }

    /// Number of overrides.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The (source, target) column indices if `record` is a header naming both (any case).
fn header_columns(record: &csv::StringRecord) -> Option<(usize, usize)> {
    let find = |name: &str| {
        record
            .iter()
            .position(|f| f.trim().eq_ignore_ascii_case(name))
    };
    Some((find("source")?, find("target")?))
}

/// Parses one line as one CSV record.
fn parse_record(text: &str) -> Result<csv::StringRecord, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut extra = csv::StringRecord::new();
    let cannot = |e: csv::Error| format!("cannot read CSV: {e}");
    rdr.read_record(&mut record).map_err(cannot)?;
    if rdr.read_record(&mut extra).map_err(cannot)? {
        return Err("a carriage return inside the line splits it into two records".into());
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::Policy;

    fn rules() -> NamingRules {
        NamingRules::new(Some("devops"), Policy::Aws)
    }

    #[test]
    fn parses_with_and_without_header() {
        let o = Overrides::parse(
            "source,target\napp/db,devops/legacy/db\r\n\n\"my secret, v2\", devops/my_secret_v2\n",
            &rules(),
        )
        .unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o.get("app/db"), Some("devops/legacy/db"));
        assert_eq!(o.get("my secret, v2"), Some("devops/my_secret_v2"));
        assert_eq!(o.entries()[1].line, 4);
        assert_eq!(o.get("other"), None);
        let o = Overrides::parse("a b,x/a_b", &rules()).unwrap();
        assert_eq!(o.get("a b"), Some("x/a_b"), "prefix is not added");
        assert!(Overrides::parse("", &rules()).unwrap().is_empty());
        assert!(Overrides::parse("\u{feff}source,target\n", &rules())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn reads_the_rename_output_back() {
        let text = "source,target,changed,reasons\n\
                    '-x,'-x,false,\n\
                    app/db pass,devops/app/db_pass,true,prefix;charset\n";
        let o = Overrides::parse(text, &rules()).unwrap();
        assert_eq!(o.get("-x"), Some("-x"));
        assert_eq!(o.get("app/db pass"), Some("devops/app/db_pass"));
        // Columns in any order.
        let o = Overrides::parse("TARGET,Source\nt1,a\n", &rules()).unwrap();
        assert_eq!(o.get("a"), Some("t1"));
        // With a header, rows need the header's columns.
        let e = Overrides::parse("reasons,source,target\nx,a\n", &rules()).unwrap_err();
        assert!(
            matches!(e, NamingError::OverrideSyntax { line: 2, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn sources_are_not_trimmed() {
        let o = Overrides::parse(" a ,t1\na,t2\n", &rules()).unwrap();
        assert_eq!(o.get(" a "), Some("t1"));
        assert_eq!(o.get("a"), Some("t2"));
    }

    #[test]
    fn invalid_target_names_line() {
        let e = Overrides::parse("source,target\na,ok\nb,not ok\n", &rules()).unwrap_err();
        assert!(
            matches!(&e, NamingError::InvalidOverrideTarget { line: 3, path, .. } if path == "b"),
            "{e:?}"
        );
        assert!(e.to_string().starts_with("overrides line 3:"), "{e}");
        for bad in ["a,", "a,x/db-abcdef", "a,/x", "a,x//y", "a,café"] {
            assert!(
                matches!(
                    Overrides::parse(bad, &rules()),
                    Err(NamingError::InvalidOverrideTarget { line: 1, .. })
                ),
                "{bad}"
            );
        }
        let long = format!("a,{}", "x".repeat(513));
        assert!(Overrides::parse(&long, &rules()).is_err());
        let alnum = NamingRules::new(None, Policy::Alphanumeric);
        assert!(matches!(
            Overrides::parse("a,x_y", &alnum),
            Err(NamingError::InvalidOverrideTarget { line: 1, .. })
        ));
    }

    #[test]
    fn duplicates_name_both_lines() {
        let e = Overrides::parse("a,t1\nb,t2\na,t3\n", &rules()).unwrap_err();
        assert_eq!(
            e,
            NamingError::DuplicateOverrideSource {
                line: 3,
                path: "a".into(),
                first_line: 1
            }
        );
        let e = Overrides::parse("a,t1\n\nb,t1\n", &rules()).unwrap_err();
        assert_eq!(
            e,
            NamingError::DuplicateOverrideTarget {
                line: 3,
                path: "b".into(),
                target: "t1".into(),
                other: "a".into(),
                first_line: 1
            }
        );
        assert!(e.to_string().contains("line 3") && e.to_string().contains("line 1"));
    }

    #[test]
    fn syntax_errors_name_line() {
        let e = Overrides::parse("a,t1\nb\n", &rules()).unwrap_err();
        assert!(
            matches!(e, NamingError::OverrideSyntax { line: 2, .. }),
            "{e:?}"
        );
        let e = Overrides::parse("a,t1\nb,t2,t3\n", &rules()).unwrap_err();
        assert!(
            matches!(e, NamingError::OverrideSyntax { line: 2, .. }),
            "{e:?}"
        );
        let e = Overrides::parse("a,t1\n,t2\n", &rules()).unwrap_err();
        assert_eq!(e, NamingError::EmptyOverrideSource { line: 2 });
        let e = Overrides::parse_bytes(b"a,t1\nb\xff,t2\n", &rules()).unwrap_err();
        assert!(
            matches!(&e, NamingError::OverrideSyntax { line: 2, message } if message.contains("UTF-8")),
            "{e:?}"
        );
    }

    #[test]
    fn from_pairs_checks_too() {
        let o = Overrides::from_pairs([("a", "x/a"), ("b", "x/b")], &rules()).unwrap();
        assert_eq!(o.entries()[1].line, 2);
        assert!(Overrides::from_pairs([("a", "x/a"), ("b", "x/a")], &rules()).is_err());
    }
}
