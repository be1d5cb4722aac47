//! `secretport refs`: the old → new mapping for the people who change consumers.
//!
//! A migration's real work starts after the secrets are in AWS: every consumer (an
//! `ExternalSecret`, a Vault Agent template, a script calling `vault kv get`, a CloudFormation
//! `{{resolve:ssm-secure:…}}`) still names the old store. The audit report knows each migrated
//! secret's source path, AWS name and ARN; the config knows what that path is relative to (the
//! Vault mount and subtree, the SSM path). This module joins the two, purely: report rows plus
//! [`Origin`]s (from the config, [`origin`]) become [`Reference`]s, the reference as consumers
//! write it beside its new name and ARN, and an [`Index`] that finds a reference a consumer
//! wrote ([`scan`]) again. No I/O and no AWS call here; `commands::refs` reads the files.
//!
//! What the report does not carry is said, not guessed: the JSON keys of a value are never in
//! a report (values stay out of it), so a key is mapped generically: `path#key` → the ARN with
//! `:key::` (the ECS / CloudFormation `{{resolve:secretsmanager:…}}` JSON-key syntax).

pub mod eso;
pub mod origin;
pub mod scan;

use std::collections::BTreeMap;

use crate::csv_safe::{escape_formula, unescape_formula};
use crate::report::{Action, Status};
use crate::source::SourceKind;

pub use origin::{Location, Origin};

/// A problem with the inputs of `refs` (the report, the config).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefsError {
    /// The report cannot be read as a secretport report.
    #[error("{path}: {message}")]
    Report {
        /// The report file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Bad usage (a folder to scan that does not exist).
    #[error("{0}")]
    Usage(String),
    /// The config cannot say where the report's sources lie.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// What is wrong, with the key.
        message: String,
    },
}

/// One report row `refs` uses (the columns it needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportEntry {
    /// The job (`default` for reports of a single-job config or without the column).
    pub job: String,
    /// Source path, relative to the job's subtree.
    pub source_path: String,
    /// AWS name.
    pub target_name: String,
    /// AWS ARN (may be empty in a dry run's rows).
    pub target_arn: String,
    /// What the run did.
    pub action: Action,
    /// How it ended.
    pub status: Status,
}

/// Reads the rows of a report's CSV text (columns by name, so older reports with fewer
/// columns read too; the formula escape is undone).
pub fn read_report(text: &str) -> Result<Vec<ReportEntry>, String> {
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut need = BTreeMap::new();
    for n in [
        "source_path",
        "target_name",
        "target_arn",
        "action",
        "status",
    ] {
        let i = col(n).ok_or_else(|| format!("no {n:?} column: not a secretport report"))?;
        need.insert(n, i);
    }
    let job_col = col("job");
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let get = |n: &str| unescape_formula(rec.get(need[n]).unwrap_or("")).to_owned();
        let action = Action::parse(&get("action"))
            .ok_or_else(|| format!("line {line}: unknown action {:?}", get("action")))?;
        let status = Status::parse(&get("status"))
            .ok_or_else(|| format!("line {line}: unknown status {:?}", get("status")))?;
        let job = job_col
            .and_then(|c| rec.get(c))
            .map(|j| unescape_formula(j).to_owned())
            .filter(|j| !j.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        out.push(ReportEntry {
            job,
            source_path: get("source_path"),
            target_name: get("target_name"),
            target_arn: get("target_arn"),
            action,
            status,
        });
    }
    Ok(out)
}

/// Whether a row says the source now lives at its target name: a create, update, unchanged or
/// rename that AWS confirmed.
pub fn is_migrated(e: &ReportEntry) -> bool {
    e.status == Status::Ok
        && matches!(
            e.action,
            Action::Create | Action::Update | Action::Unchanged | Action::Rename
        )
}

/// One migrated secret: how consumers named it, and its name and ARN now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The job that migrated it.
    pub job: String,
    /// The source kind.
    pub kind: SourceKind,
    /// The report's source path (relative to the job's subtree).
    pub source_path: String,
    /// The reference as consumers write it: Vault `mount/path` (what `vault kv get` takes),
    /// the SSM parameter name, `file#key` for SOPS, the credstash name, `export#path`.
    pub reference: String,
    /// Vault: the HTTP API path (`mount/data/path` on KV v2; on a mount the config declares
    /// `kv_version = 1`, the same as `reference`). Empty for other kinds.
    pub api_path: String,
    /// The AWS name.
    pub target_name: String,
    /// The AWS ARN (empty when the report has none, e.g. a dry run's).
    pub target_arn: String,
    /// The secret holds one key of a source secret (`split = "keys"`; `reference` ends in
    /// `#key`): its value is that key's, with no JSON keys to pick.
    pub split_key: bool,
}

impl Reference {
    /// How a consumer reads one JSON key of the new secret: the ARN (or the name when the
    /// report has no ARN) with `:KEY::`, the syntax of ECS `valueFrom` and CloudFormation's
    /// `{{resolve:secretsmanager:…:SecretString:KEY}}` drops the `SecretString`. Empty for a
    /// key-secret (`split = "keys"`), whose value is the key's own.
    pub fn json_key_template(&self) -> String {
        if self.split_key {
            return String::new();
        }
        let id = if self.target_arn.is_empty() {
            &self.target_name
        } else {
            &self.target_arn
        };
        format!("{id}:<key>::")
    }
}

/// Every migrated secret of `entries` as a reference, in report order with one entry per job
/// and source path (the last row wins, so a report of several passes gives the current name).
/// A row of a job `origins` does not describe is an error naming the job: guessing its mount
/// would send consumers to a wrong path.
pub fn map_rows(entries: &[ReportEntry], origins: &[Origin]) -> Result<Vec<Reference>, String> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut latest: BTreeMap<(String, String), &ReportEntry> = BTreeMap::new();
    for e in entries.iter().filter(|e| is_migrated(e)) {
        let key = (e.job.clone(), e.source_path.clone());
        if latest.insert(key.clone(), e).is_none() {
            order.push(key);
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let e = latest[&key];
        let origin = origins
            .iter()
            .find(|o| o.job == e.job)
            .or_else(|| match origins {
                [one] if e.job == "default" => Some(one),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "the report's job {:?} is not in the config (its jobs: {}); pass the config of the run that wrote the report",
                    e.job,
                    origins.iter().map(|o| o.job.as_str()).collect::<Vec<_>>().join(", ")
                )
            })?;
        let (kind, reference, api_path) = origin.location.consumer_reference(&e.source_path);
        out.push(Reference {
            job: e.job.clone(),
            kind,
            source_path: e.source_path.clone(),
            reference,
            api_path,
            target_name: e.target_name.clone(),
            target_arn: e.target_arn.clone(),
            split_key: origin.location.splits_keys(),
        });
    }
    Ok(out)
}

/// The CSV columns of `refs --format csv`.
pub const CSV_COLUMNS: [&str; 8] = [
    "job",
    "kind",
    "source_path",
    "reference",
    "api_path",
    "target_name",
    "target_arn",
    "json_key",
];

/// Writes `refs` as CSV (header first; cells formula-escaped as in the report).
pub fn write_csv(refs: &[Reference], out: &mut dyn std::io::Write) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for r in refs {
        let key = r.json_key_template();
        let cells = [
            r.job.as_str(),
            r.kind.as_str(),
            &r.source_path,
            &r.reference,
            &r.api_path,
            &r.target_name,
            &r.target_arn,
            &key,
        ];
        w.write_record(cells.iter().map(|c| escape_formula(c).into_owned()))?;
    }
    w.flush()?;
    Ok(())
}

/// One reference as a JSON object (`refs --format json` writes one per line).
pub fn to_json(r: &Reference) -> serde_json::Value {
    serde_json::json!({
        "job": r.job,
        "kind": r.kind.as_str(),
        "source_path": r.source_path,
        "reference": r.reference,
        "api_path": r.api_path,
        "target_name": r.target_name,
        "target_arn": r.target_arn,
        "json_key": r.json_key_template(),
    })
}

/// Which store a reference found in a consumer points at, as far as its syntax tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// A Vault path (a template, an annotation, the Vault CLI, an ESO Vault store).
    Vault,
    /// An SSM parameter name (CloudFormation `ssm-secure`, an ECS `valueFrom`).
    Ssm,
    /// Not known (an `ExternalSecret` whose store is not defined in the scanned tree): either.
    Unknown,
}

/// Finds the migrated secret a consumer's reference names.
#[derive(Debug, Default)]
pub struct Index<'a> {
    vault: BTreeMap<String, &'a Reference>,
    /// Vault mount-relative paths (`apps/db` for `secret/apps/db`), for ESO keys relative to
    /// the store's mount; with the mount, since a path under two mounts is two secrets.
    vault_relative: BTreeMap<String, Vec<(String, &'a Reference)>>,
    ssm: BTreeMap<String, &'a Reference>,
    /// The Vault secrets split into key-secrets (`split = "keys"`), by `mount/path` and API
    /// path: a consumer that still reads the whole secret reads the old store. One reference
    /// per secret, naming every key-secret.
    split_parents: BTreeMap<String, Reference>,
}

/// The secret a key-secret's reference belongs to: `secret/apps/db#password` (source path
/// `db/password`) -> `secret/apps/db`. `None` unless the reference ends in the key.
fn split_parent(r: &Reference) -> Option<(String, String, String)> {
    let key = r.source_path.rsplit('/').next()?;
    let suffix = format!("#{key}");
    let reference = r.reference.strip_suffix(&suffix)?.to_owned();
    let api = r.api_path.strip_suffix(&suffix)?.to_owned();
    let source = r
        .source_path
        .strip_suffix(key)
        .map(|p| p.trim_end_matches('/').to_owned())?;
    Some((reference, api, source))
}

impl<'a> Index<'a> {
    /// Indexes `refs` by every spelling a consumer may use.
    pub fn new(refs: &'a [Reference]) -> Index<'a> {
        let mut ix = Index::default();
        for r in refs {
            match r.kind {
                SourceKind::Vault => {
                    if r.split_key {
                        ix.add_split_parent(r);
                    }
                    ix.vault.insert(r.reference.clone(), r);
                    ix.vault.insert(r.api_path.clone(), r);
                    if let Some((mount, rel)) = r.reference.split_once('/') {
                        ix.vault_relative
                            .entry(rel.to_owned())
                            .or_default()
                            .push((mount.to_owned(), r));
                    }
                }
                SourceKind::Ssm => {
                    ix.ssm.insert(r.reference.clone(), r);
                }
                _ => {}
            }
        }
        ix
    }

    fn add_split_parent(&mut self, r: &Reference) {
        let Some((reference, api, source)) = split_parent(r) else {
            return;
        };
        for spelling in [reference.clone(), api.clone()] {
            let parent = self
                .split_parents
                .entry(spelling)
                .or_insert_with(|| Reference {
                    job: r.job.clone(),
                    kind: r.kind,
                    source_path: source.clone(),
                    reference: reference.clone(),
                    api_path: api.clone(),
                    target_name: String::new(),
                    target_arn: String::new(),
                    split_key: true,
                });
            if !parent.target_name.is_empty() {
                parent.target_name.push_str(", ");
            }
            parent.target_name.push_str(&r.target_name);
        }
    }

    /// The reference `written` names in `store`. `mount`: the mount an ESO Vault store reads
    /// (its `path`), for a key relative to it.
    pub fn lookup(&self, written: &str, store: Store, mount: Option<&str>) -> Option<&Reference> {
        let clean = written.trim().trim_matches('/');
        let vault = || {
            let whole = || self.split_parents.get(clean);
            self.vault.get(clean).copied().or_else(whole).or_else(|| {
                let candidates = self.vault_relative.get(clean)?;
                match mount {
                    Some(m) => candidates
                        .iter()
                        .find(|(cm, _)| cm == m.trim_matches('/'))
                        .map(|(_, r)| *r),
                    // a key relative to an unknown store's mount: only when it is unambiguous
                    None if store == Store::Unknown && candidates.len() == 1 => {
                        Some(candidates[0].1)
                    }
                    None => None,
                }
            })
        };
        let ssm = || {
            let name = written.trim();
            self.ssm
                .get(name)
                .or_else(|| self.ssm.get(&format!("/{}", name.trim_start_matches('/'))))
                .copied()
        };
        match store {
            Store::Vault => vault(),
            Store::Ssm => ssm(),
            Store::Unknown => vault().or_else(ssm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(job: &str, path: &str, name: &str, action: Action, status: Status) -> ReportEntry {
        ReportEntry {
            job: job.into(),
            source_path: path.into(),
            target_name: name.into(),
            target_arn: format!(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
            ),
            action,
            status,
        }
    }

    fn vault(job: &str, mount: &str, path: &str) -> Origin {
        Origin {
            job: job.into(),
            location: Location::Vault {
                mount: mount.into(),
                path: path.into(),
                kv_version: None,
                split_keys: false,
            },
        }
    }

    #[test]
    fn only_confirmed_migrations_are_mapped() {
        let table = [
            (Action::Create, Status::Ok, true),
            (Action::Update, Status::Ok, true),
            (Action::Unchanged, Status::Ok, true),
            (Action::Rename, Status::Ok, true),
            (Action::Create, Status::Planned, false),
            (Action::Create, Status::Failed, false),
            (Action::Conflict, Status::Skipped, false),
            (Action::Orphan, Status::Ok, false),
            (Action::Delete, Status::Ok, false),
            (Action::Skip, Status::Skipped, false),
        ];
        for (a, s, want) in table {
            assert_eq!(
                is_migrated(&entry("j", "p", "n", a, s)),
                want,
                "{a:?} {s:?}"
            );
        }
    }

    #[test]
    fn split_keys_map_path_hash_key_to_the_key_secret() {
        let mut origin = vault("default", "secret", "apps");
        if let Location::Vault { split_keys, .. } = &mut origin.location {
            *split_keys = true;
        }
        let rows = vec![
            entry(
                "default",
                "db/user",
                "k/db/user",
                Action::Create,
                Status::Ok,
            ),
            entry(
                "default",
                "db/password",
                "k/db/password",
                Action::Create,
                Status::Ok,
            ),
        ];
        let refs = map_rows(&rows, &[origin]).unwrap();
        let got: Vec<_> = refs
            .iter()
            .map(|r| {
                (
                    r.reference.as_str(),
                    r.api_path.as_str(),
                    r.target_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "secret/apps/db#user",
                    "secret/data/apps/db#user",
                    "k/db/user"
                ),
                (
                    "secret/apps/db#password",
                    "secret/data/apps/db#password",
                    "k/db/password"
                ),
            ]
        );
        assert_eq!(refs[1].json_key_template(), "");
        let ix = Index::new(&refs);
        let hit = ix
            .lookup("secret/apps/db#password", Store::Vault, None)
            .unwrap();
        assert_eq!(hit.target_name, "k/db/password");
    }

    #[test]
    fn vault_rows_map_to_mount_path_and_api_path_last_row_wins() {
        let rows = vec![
            entry("default", "db", "devops/db", Action::Create, Status::Ok),
            entry(
                "default",
                "db",
                "devops/db-renamed",
                Action::Rename,
                Status::Ok,
            ),
            entry("default", "x", "devops/x", Action::Create, Status::Failed),
        ];
        let refs = map_rows(&rows, &[vault("default", "secret", "apps")]).unwrap();
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].reference, "secret/apps/db");
        assert_eq!(refs[0].api_path, "secret/data/apps/db");
        assert_eq!(refs[0].target_name, "devops/db-renamed");
        assert!(refs[0]
            .json_key_template()
            .ends_with("devops/db-renamed-AbCdEf:<key>::"));
    }

    #[test]
    fn an_unknown_job_is_an_error_naming_it() {
        let rows = vec![entry("other", "db", "n", Action::Create, Status::Ok)];
        let e = map_rows(&rows, &[vault("a", "secret", ""), vault("b", "kv", "")]).unwrap_err();
        assert!(e.contains("\"other\"") && e.contains("a, b"), "{e}");
    }

    #[test]
    fn index_finds_every_spelling_and_no_other_mount() {
        let rows = vec![entry(
            "default",
            "db",
            "devops/db",
            Action::Create,
            Status::Ok,
        )];
        let mut origins = vec![vault("default", "secret", "apps")];
        let refs = map_rows(&rows, &origins).unwrap();
        let ix = Index::new(&refs);
        let table: [(&str, Store, Option<&str>, bool); 9] = [
            ("secret/apps/db", Store::Vault, None, true),
            ("secret/data/apps/db", Store::Vault, None, true),
            ("/secret/apps/db/", Store::Vault, None, true),
            ("other/apps/db", Store::Vault, None, false),
            ("other/data/apps/db", Store::Vault, None, false),
            ("apps/db", Store::Vault, Some("secret"), true),
            ("apps/db", Store::Vault, Some("other"), false),
            ("apps/db", Store::Unknown, None, true),
            ("secret/apps/db", Store::Ssm, None, false),
        ];
        for (w, s, m, want) in table {
            assert_eq!(ix.lookup(w, s, m).is_some(), want, "{w} {s:?} {m:?}");
        }
        origins[0] = Origin {
            job: "default".into(),
            location: Location::Ssm {
                path: "/prod".into(),
            },
        };
        let refs = map_rows(&rows, &origins).unwrap();
        assert_eq!(refs[0].reference, "/prod/db");
        let ix = Index::new(&refs);
        assert!(ix.lookup("/prod/db", Store::Ssm, None).is_some());
        assert!(ix.lookup("prod/db", Store::Ssm, None).is_some());
        assert!(ix.lookup("/prod/db", Store::Unknown, None).is_some());
        assert!(ix.lookup("/prod/db", Store::Vault, None).is_none());
        assert!(ix.lookup("/dev/db", Store::Ssm, None).is_none());
    }

    #[test]
    fn reports_read_back_with_escapes_and_without_a_job_column() {
        let text = "source_path,target_name,target_arn,action,status\n'=x,n,arn,create,ok\n";
        let rows = read_report(text).unwrap();
        assert_eq!(rows[0].source_path, "=x");
        assert_eq!(rows[0].job, "default");
        assert!(read_report("a,b\n1,2\n")
            .unwrap_err()
            .contains("source_path"));
        let bad = "source_path,target_name,target_arn,action,status\np,n,a,explode,ok\n";
        assert!(read_report(bad).unwrap_err().contains("line 2"));
    }
}
