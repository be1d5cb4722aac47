//! The validator engine: a config's TOML taken apart key by key, every problem collected with
//! its dotted key path.
//!
//! The file is parsed into a `toml::Table`, and [`Section`] takes each known key out of it,
//! deserializing the value with serde and recording failures under the key's path; whatever is
//! left in a table afterwards is an unknown key, compared with the keys that table takes for a
//! "did you mean" (`strsim`, as cargo and clap do). [`Validator`] carries what every section's
//! checks share (the problems so far, the environment, the config's folder) and the checks of
//! values any section may hold: URLs, regions, files, `*_env` variables. The sections
//! themselves are checked in the files named after them (`source.rs`, `vault.rs`, `aws.rs`, ...).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::{EnvSecret, Split};

/// One thing wrong with a config: the dotted key it concerns and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `target.credentials.duration_seconds`.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A TOML table being taken apart key by key; leftovers are unknown keys. Every key the
/// validator asks about is remembered (`known`), whether the file has it or not: those are the
/// keys this table takes here (for this source kind, this auth method), which an unknown key is
/// compared with for a "did you mean".
pub(super) struct Section {
    path: String,
    pub(super) table: toml::Table,
    problems: Vec<Problem>,
    known: Vec<String>,
}

impl Section {
    pub(super) fn new(path: &str, table: toml::Table) -> Self {
        Section {
            path: path.to_owned(),
            table,
            problems: Vec::new(),
            known: Vec::new(),
        }
    }

    pub(super) fn note(&mut self, k: &str) {
        if !self.known.iter().any(|x| x == k) {
            self.known.push(k.to_owned());
        }
    }

    /// Whether the table has key `k` (a known key either way).
    pub(super) fn has(&mut self, k: &str) -> bool {
        self.note(k);
        self.table.contains_key(k)
    }

    /// Takes key `k` out of the table, raw.
    pub(super) fn take(&mut self, k: &str) -> Option<toml::Value> {
        self.note(k);
        self.table.remove(k)
    }

    /// Looks at key `k` without taking it.
    pub(super) fn peek(&mut self, k: &str) -> Option<&toml::Value> {
        self.note(k);
        self.table.get(k)
    }

    pub(super) fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{}", self.path, k)
        }
    }

    pub(super) fn problem(&mut self, k: &str, message: impl Into<String>) {
        if !k.contains(['[', '.']) {
            self.note(k);
        }
        let key = self.key(k);
        self.problems.push(Problem {
            key,
            message: message.into(),
        });
    }

    /// Takes an optional key, deserializing it as `T`.
    pub(super) fn opt<T: DeserializeOwned>(&mut self, k: &str, expected: &str) -> Option<T> {
        let value = self.take(k)?;
        match T::deserialize(value.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let got = value.type_str();
                let detail = e.to_string();
                let detail = detail.lines().next().unwrap_or("").trim().to_owned();
                self.problem(k, format!("expected {expected}, got {got} ({detail})"));
                None
            }
        }
    }

    /// Takes a required key.
    pub(super) fn req<T: DeserializeOwned>(&mut self, k: &str, expected: &str) -> Option<T> {
        let present = self.has(k);
        let v = self.opt(k, expected);
        if !present {
            self.problem(k, format!("missing; expected {expected}"));
        }
        v
    }

    /// Takes a sub-table.
    pub(super) fn table(&mut self, k: &str, required: bool) -> Option<Section> {
        match self.take(k) {
            Some(toml::Value::Table(t)) => Some(Section::new(&self.key(k), t)),
            Some(other) => {
                self.problem(k, format!("expected a table, got {}", other.type_str()));
                None
            }
            None => {
                if required {
                    self.problem(k, "missing; expected a table");
                }
                None
            }
        }
    }

    /// Without a valid `selector` (a source's `kind`, an auth `method`), which keys this table
    /// takes is unknown: its other keys are left unjudged (not each called unknown), except a
    /// typo of the selector itself.
    pub(super) fn unjudged_without(&mut self, selector: &str) {
        let selector = [selector.to_owned()];
        self.table
            .retain(|k, _| closest_key(k, &selector).is_some());
    }

    /// Reports every key nobody took as unknown, with the closest known key of this table when
    /// one is close ("did you mean `address`?"); when that key was reported missing, the one
    /// message says both and the "missing" problem goes.
    pub(super) fn finish(mut self) -> Vec<Problem> {
        let leftover: Vec<String> = self.table.keys().cloned().collect();
        for k in leftover {
            let message = match closest_key(&k, &self.known).map(str::to_owned) {
                None => "unknown key".to_owned(),
                Some(m) => {
                    let full = self.key(&m);
                    let missing = self
                        .problems
                        .iter()
                        .position(|p| p.key == full && p.message.starts_with("missing"));
                    match missing {
                        Some(i) => {
                            let p = self.problems.remove(i);
                            format!("unknown key; did you mean `{m}`? `{m}` is {}", p.message)
                        }
                        None => format!("unknown key; did you mean `{m}`?"),
                    }
                }
            };
            self.problems.push(Problem {
                key: self.key(&k),
                message,
            });
        }
        self.problems
    }
}

/// The known key closest to the unknown key `k`, if one is close enough to be a typo of it:
/// at most one edit (insertion, deletion, substitution or swap of neighbours) per three
/// characters, at least one; case is ignored. The first of equally close keys wins.
fn closest_key<'a>(k: &str, known: &'a [String]) -> Option<&'a str> {
    let k = k.to_lowercase();
    let limit = (k.chars().count() / 3).max(1);
    known
        .iter()
        .map(|m| (strsim::osa_distance(&k, &m.to_lowercase()), m))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, m)| m.as_str())
}

/// Whether `r` is spelled like an AWS region (`us-east-1`, `us-gov-west-1`, `eu-central-2`).
pub(super) fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

pub(super) struct Validator<'a> {
    pub(super) problems: Vec<Problem>,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) base: &'a Path,
    pub(super) allow_empty: bool,
    pub(super) split: Split,
}

impl Validator<'_> {
    pub(super) fn bad(&mut self, key: String, message: impl Into<String>) {
        self.problems.push(Problem {
            key,
            message: message.into(),
        });
    }

    pub(super) fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// The value of the variable a `*_env` key names, read here once, as a secret. The key
    /// must name a variable (a value that is not a name is most likely the secret itself pasted
    /// in by mistake, so messages never repeat it); unset, empty and whitespace-only are
    /// problems naming the variable and `what` it must hold. `trim`: surrounding whitespace is
    /// dropped (keys and ids never carry it, a pasted value often does); the token key is
    /// taken byte for byte, since its bytes derive every token.
    pub(super) fn env_secret(
        &mut self,
        s: &mut Section,
        k: &str,
        default: Option<&str>,
        what: &str,
        trim: bool,
    ) -> Option<EnvSecret> {
        let var = self.env_var_name(s, k, default)?;
        match (self.env)(&var) {
            None => {
                s.problem(k, format!("environment variable {var} is not set"));
                None
            }
            Some(v) if v.trim().is_empty() => {
                let how = if v.is_empty() {
                    "empty"
                } else {
                    "only whitespace"
                };
                s.problem(
                    k,
                    format!("environment variable {var} is {how}; it must hold the {what}"),
                );
                None
            }
            Some(v) => {
                let value = if trim { v.trim().to_owned() } else { v };
                Some(EnvSecret {
                    var,
                    value: value.into(),
                })
            }
        }
    }

    pub(super) fn url(&mut self, s: &mut Section, k: &str) -> Option<String> {
        let u: String = s.opt(k, "a URL")?;
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 8 {
            s.problem(k, format!("{u:?} is not an http(s) URL"));
            return None;
        }
        Some(u.trim_end_matches('/').to_owned())
    }

    pub(super) fn region(&mut self, s: &mut Section, k: &str) -> Option<String> {
        let r: String = s.opt(k, "an AWS region such as us-east-1")?;
        if !is_region(&r) {
            s.problem(
                k,
                format!("{r:?} is not an AWS region (expected e.g. us-east-1)"),
            );
            return None;
        }
        Some(r)
    }

    pub(super) fn file(&mut self, s: &mut Section, k: &str, required: bool) -> Option<PathBuf> {
        self.file_as_written(s, k, required).map(|(p, _)| p)
    }

    /// As [`Validator::file`], with the path as the config wrote it.
    pub(super) fn file_as_written(
        &mut self,
        s: &mut Section,
        k: &str,
        required: bool,
    ) -> Option<(PathBuf, String)> {
        let f: String = if required {
            s.req(k, "a file path")?
        } else {
            s.opt(k, "a file path")?
        };
        let p = self.resolve(&f);
        if !p.is_file() {
            s.problem(k, format!("file {} does not exist", p.display()));
            return None;
        }
        Some((p, f))
    }

    /// The name in a `*_env` key (or `default`), checked to be a variable name and not a
    /// value pasted in by mistake (which the message never repeats).
    pub(super) fn env_var_name(
        &mut self,
        s: &mut Section,
        k: &str,
        default: Option<&str>,
    ) -> Option<String> {
        // taken raw: a type error must not quote the value either (`token_env = 1234`)
        let name = match s.take(k) {
            Some(toml::Value::String(n)) => n,
            Some(_) => {
                s.problem(
                    k,
                    "must name an environment variable as a string (e.g. \"VAULT_TOKEN\"), \
                     not hold a value (the value is not repeated here)",
                );
                return None;
            }
            None => match default {
                Some(d) => d.to_owned(),
                None => {
                    s.problem(k, "missing; expected an environment variable name");
                    return None;
                }
            },
        };
        if let Err(why) = check_env_name(&name) {
            s.problem(
                k,
                format!(
                    "must name an environment variable (letters, digits and _, e.g. \
                     VAULT_TOKEN), not hold a value: {why} (the value is not repeated here; if \
                     it is a credential, treat it as exposed and rotate it)"
                ),
            );
            return None;
        }
        Some(name)
    }

    /// The config file's folder, absolute (canonical when it exists).
    pub(super) fn config_dir(&self) -> PathBuf {
        let base = if self.base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            self.base
        };
        std::fs::canonicalize(base)
            .or_else(|_| std::path::absolute(base))
            .unwrap_or_else(|_| base.to_owned())
    }
}

/// A TOML syntax error as line, column, the key on that line (when there is one) and the
/// parser's message, *without* the quoted source line the parser adds: an unquoted credential
/// pasted into the file (`token_env = hvs.CAESI...`) is exactly what fails to parse.
pub(super) fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().trim().to_owned();
    };
    let at = span.start.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    });
    let message = e.message().trim().replace('\n', " ");
    match key {
        Some(k) => format!("line {line_no}, column {column} (key {k}): {message}"),
        None => format!("line {line_no}, column {column}: {message}"),
    }
}

/// Why `name` cannot be an environment variable name, without quoting it: it may be a secret.
fn check_env_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("it is empty");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("it holds characters other than letters, digits and _");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("it starts with a digit");
    }
    if looks_like_aws_key_id(name) {
        return Err("it looks like an AWS access key id");
    }
    if name.len() > 128 {
        return Err("it is longer than 128 characters");
    }
    Ok(())
}

/// `AKIA…`/`ASIA…` and the other IAM unique-id prefixes followed by 16 upper-case letters or
/// digits: a valid-looking variable name that is in fact an access key id.
fn looks_like_aws_key_id(s: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA",
    ];
    s.len() == 20
        && PREFIXES.iter().any(|p| s.starts_with(p))
        && s[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_get_the_closest_known_key() {
        let known: Vec<String> = ["address", "mount", "path", "prefix", "on_conflict", "kind"]
            .map(String::from)
            .to_vec();
        let table: &[(&str, Option<&str>)] = &[
            ("addres", Some("address")),          // one deletion
            ("adress", Some("address")),          // one deletion elsewhere
            ("on_conflcit", Some("on_conflict")), // a swap of neighbours is one edit
            ("Mount", Some("mount")),             // case is ignored
            ("prefx", Some("prefix")),
            ("pth", Some("path")),
            ("knd", Some("kind")),
            ("mnt", None),    // two edits in three characters
            ("zzzzzz", None), // nothing close
            ("addrs", None),  // two edits in five characters
        ];
        for (k, want) in table {
            assert_eq!(closest_key(k, &known), *want, "{k}");
        }
        assert_eq!(closest_key("x", &[]), None);
    }

    #[test]
    fn a_typo_of_a_missing_key_is_one_problem() {
        let mut t = toml::Table::new();
        t.insert("addres".into(), toml::Value::String("http://v".into()));
        let mut s = Section::new("source", t);
        let _: Option<String> = s.req("address", "the Vault URL");
        let _: Option<String> = s.opt("mount", "a mount");
        let problems = s.finish();
        assert_eq!(
            problems,
            vec![Problem {
                key: "source.addres".into(),
                message: "unknown key; did you mean `address`? `address` is missing; expected the Vault URL".into(),
            }]
        );
    }
}
