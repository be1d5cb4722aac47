//! `secretport rollback --report R`: undo what one `migrate` or `reconcile` run wrote.
//!
//! The report says what the run did: its `ok` rows name each secret (ARN), the action, the
//! VersionId it wrote (`version_id`) and the one it replaced (`previous_version_id`). A report
//! is a file anyone can edit, so it is never trusted on its own: the config of the run is
//! required, a report naming another account or region than that config's target is refused
//! as a whole, and every row is checked against the secret as it is now. A row is acted on only
//! when the secret is **proven to be this job's** (its ownership proof verifies for its name,
//! the job's exact scope and prefix: [`crate::identity::ownership`], the same decision plan and
//! prune use) and claims the row's source path ([`owned_by_job`]). Then ([`undo`] decides,
//! purely):
//! - `create`/`rename`: still at the version the run wrote → scheduled for deletion (recovery
//!   window, never forced);
//! - `update`: still at the version the run wrote → `AWSCURRENT` moved back to the version it
//!   replaced;
//! - `delete` (a prune): still scheduled for deletion → restored;
//! - anything changed since (a later run, a hand edit, a rotation) → left alone, with the reason.
//!
//! Retags and restores are not undone (they carry no value). The rollback writes its own
//! report with action `rollback`, and asks for confirmation like every writing command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::aws::secrets::SecretsTarget;
use crate::commands::run::{Confirm, Confirmation};
use crate::config::{JobConfig, LimitsConfig};
use crate::csv_safe::unescape_formula;
use crate::exit;
use crate::identity::Ownership;
use crate::limits::Limits;
use crate::report::{Action, Report, Row, Status, COLUMNS};
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::target::{Target, TargetSecret};

/// What `rollback` needs.
pub struct Options<'a> {
    /// The report of the run to undo.
    pub report: &'a Path,
    /// The config of that run: the job whose writes are undone (its source scope, prefix and
    /// target), and the limits.
    pub config: (&'a JobConfig, &'a LimitsConfig),
    /// Only the rows of this job (`--job`; a run of several jobs may span several targets).
    pub job: Option<&'a str>,
    /// Where the rollback's own report goes.
    pub own_report: Option<&'a Path>,
    /// Recovery window for deletions.
    pub recovery_window_days: i64,
    /// Skip the confirmation.
    pub yes: bool,
}

/// Why a rollback could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// The report cannot be read or is not a secretport report.
    #[error("report {path}: {why}")]
    BadReport {
        /// The report.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The rollback's own report cannot be written.
    #[error("audit report: {0}")]
    Report(#[from] std::io::Error),
    /// AWS client configuration.
    #[error(transparent)]
    Client(#[from] crate::aws::client::ClientError),
    /// The report names secrets of another account or region than the config's target.
    #[error("report {path}: {why}; refused: nothing was changed (roll back with the config of the run that wrote it)")]
    OtherTarget {
        /// The report.
        path: PathBuf,
        /// Which account or region it names.
        why: String,
    },
    /// The job's source (its scope) or the target's key could not be had.
    #[error("{0}")]
    Run(#[from] crate::commands::run::RunError),
}

impl RollbackError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RollbackError::BadReport { .. } | RollbackError::OtherTarget { .. } => exit::USAGE,
            RollbackError::Run(e) => e.exit_code(),
            _ => exit::FAILED,
        }
    }
}

/// One write of the run being undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Source path (for the new report).
    pub source_path: String,
    /// Secret name.
    pub name: String,
    /// Secret ARN.
    pub arn: String,
    /// What the run did.
    pub action: Action,
    /// The version it wrote.
    pub version_id: String,
    /// The version it replaced.
    pub previous_version_id: String,
    /// The job that wrote it (empty in reports without the column).
    pub job: String,
}

/// What to do about one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// Schedule the secret for deletion.
    Delete,
    /// Move `AWSCURRENT` from `from` back to `to`.
    MoveBack {
        /// The version the run replaced.
        to: String,
        /// The version the run wrote.
        from: String,
    },
    /// Cancel the scheduled deletion.
    Restore,
    /// Leave it, with the reason.
    Leave(String),
}

/// Reads the `ok` writes out of a report's text.
pub fn read_report(text: &str) -> Result<Vec<Written>, String> {
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = [
        "action",
        "status",
        "target_name",
        "target_arn",
        "version_id",
        "previous_version_id",
        "source_path",
        "command",
    ];
    let mut idx = BTreeMap::new();
    for n in need {
        idx.insert(
            n,
            col(n).ok_or_else(|| {
                format!(
                    "no {n:?} column: not a secretport report (columns: {})",
                    COLUMNS.join(",")
                )
            })?,
        );
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("line {}: {e}", i + 2))?;
        let get = |n: &str| unescape_formula(rec.get(idx[n]).unwrap_or("")).to_owned();
        let command = get("command");
        if command == "rollback" {
            return Err(
                "this is a rollback's own report; roll back the original run's report".into(),
            );
        }
        if get("status") != "ok" {
            continue;
        }
        let Some(action) = Action::parse(&get("action")) else {
            return Err(format!(
                "line {}: unknown action {:?}",
                i + 2,
                get("action")
            ));
        };
        if !matches!(
            action,
            Action::Create | Action::Rename | Action::Update | Action::Delete
        ) {
            continue;
        }
        out.push(Written {
            source_path: get("source_path"),
            name: get("target_name"),
            arn: get("target_arn"),
            action,
            version_id: get("version_id"),
            previous_version_id: get("previous_version_id"),
            job: headers
                .iter()
                .position(|h| h == "job")
                .and_then(|i| rec.get(i))
                .map(|j| unescape_formula(j).to_owned())
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Decides what to do about `w` given what the target holds now (`None`: it is gone).
pub fn undo(w: &Written, now: Option<&TargetSecret>) -> Undo {
    let Some(now) = now else {
        return Undo::Leave("no longer exists".into());
    };
    let current = now.current_version.as_deref().unwrap_or("");
    match w.action {
        Action::Delete => {
            if now.deleted_date.is_some() {
                Undo::Restore
            } else {
                Undo::Leave("no longer scheduled for deletion: left alone".into())
            }
        }
        _ if now.deleted_date.is_some() => {
            Undo::Leave("already scheduled for deletion: left alone".into())
        }
        _ if w.version_id.is_empty() => {
            Undo::Leave("the report has no version_id for this write: left alone".into())
        }
        _ if current != w.version_id => Undo::Leave(format!(
            "changed since that run (AWSCURRENT is {current}, the run wrote {}): left alone",
            w.version_id
        )),
        Action::Create | Action::Rename => Undo::Delete,
        Action::Update if w.previous_version_id.is_empty() => {
            Undo::Leave("the run replaced no recorded version: left alone".into())
        }
        Action::Update => Undo::MoveBack {
            to: w.previous_version_id.clone(),
            from: w.version_id.clone(),
        },
        _ => Undo::Leave("nothing to undo".into()),
    }
}

/// How the rollback ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code.
    pub exit_code: i32,
    /// One line.
    pub summary: String,
}

/// The region and account an ARN names (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:…`).
fn region_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    let (region, account) = (parts.nth(3)?, parts.next()?);
    Some((region, account))
}

/// The first write that names another region or account than the target's, in words.
pub fn other_target(writes: &[Written], region: &str, account: Option<&str>) -> Option<String> {
    writes.iter().find_map(|w| {
        let Some((r, a)) = region_and_account(&w.arn) else {
            return Some(format!(
                "{} (line of {}) has no secretsmanager ARN ({:?})",
                w.name,
                w.action.as_str(),
                w.arn
            ));
        };
        if r != region {
            return Some(format!(
                "it names {} in region {r}, and this config's target is region {region}",
                w.name
            ));
        }
        match account {
            Some(acc) if a != acc => Some(format!(
                "it names {} in AWS account {a}, and this config's target is account {acc}",
                w.name
            )),
            _ => None,
        }
    })
}

/// Whether the secret as it is now is provably the job's own secret for the row's source path
/// (`Err`: the reason it is left alone). `ownership` is what [`crate::identity::ownership`]
/// says of it for the job; `relative` the path its identity gives inside the job's scope.
pub fn owned_by_job(
    w: &Written,
    job: &str,
    now: &TargetSecret,
    ownership: &Ownership,
    relative: Option<&str>,
) -> Result<(), String> {
    if !w.job.is_empty() && w.job != job {
        return Err(format!(
            "written by job {}, and this config's job is {job}: left alone",
            w.job
        ));
    }
    match ownership {
        Ownership::Owned(_) => {}
        Ownership::Unmanaged => {
            return Err("not managed by secretport: left alone".into());
        }
        Ownership::Foreign(words) => {
            return Err(format!("{words}, not this job's: left alone"));
        }
        Ownership::Unverified { why, .. } => {
            return Err(format!(
                "ownership cannot be verified ({}): left alone",
                why.words()
            ));
        }
    }
    if now.name != w.name {
        return Err(format!(
            "the report names {}, the secret at that ARN is {}: left alone",
            w.name, now.name
        ));
    }
    if relative != Some(w.source_path.as_str()) {
        return Err(format!(
            "its tags record source path {}, the report says {}: left alone",
            relative.unwrap_or("?"),
            w.source_path
        ));
    }
    Ok(())
}

/// Runs a rollback.
pub async fn rollback(
    opts: &Options<'_>,
    shutdown: Shutdown,
    confirm: &dyn Confirm,
) -> Result<Outcome, RollbackError> {
    let started = Instant::now();
    let bad = |why: String| RollbackError::BadReport {
        path: opts.report.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(opts.report).map_err(|e| bad(e.to_string()))?;
    let mut writes = read_report(&text).map_err(bad)?;
    if let Some(job) = opts.job {
        writes.retain(|w| w.job == job);
    }
    let dir = opts.report.parent().unwrap_or(Path::new("."));
    let mut report = Report::create(dir, "rollback", opts.own_report)?;
    if writes.is_empty() {
        return Ok(Outcome {
            exit_code: exit::OK,
            summary: format!(
                "rollback: the run wrote nothing to undo; report {}",
                report.path().display()
            ),
        });
    }
    let (job, limits_cfg) = opts.config;
    let limits = Arc::new(Limits::with_shutdown(limits_cfg, &shutdown));
    let retry = RetryPolicy::new(limits_cfg.max_attempts);
    let sdk = crate::commands::run::target_sdk(&job.target, limits_cfg).await?;
    let target = SecretsTarget::new(&sdk, limits.clone(), retry);
    // the report's rows must all be in this target's account and region
    let caller = target.caller().await;
    let account = caller.as_ref().ok().map(|c| c.account.clone());
    if let Some(why) = other_target(&writes, target.region(), account.as_deref()) {
        return Err(RollbackError::OtherTarget {
            path: opts.report.to_owned(),
            why,
        });
    }
    // what the job owns: its source's scope, its prefix, and the key proofs verify with
    let source = crate::commands::run::open_source(job, limits_cfg, &limits, retry).await?;
    let scope = source.scope();
    drop(source);
    let prefix = job.target.prefix.as_str();
    let key = crate::commands::run::verification_key(job, &target)
        .await
        .map_err(crate::commands::run::RunError::from)?;

    // what the target holds now, and what to do about each write
    let mut plan = Vec::with_capacity(writes.len());
    for w in &writes {
        let now = match target.describe(&w.arn).await {
            Ok((s, _)) => Some(s),
            Err(e) if e.class == crate::target::ErrorClass::NotFound => None,
            Err(e) => {
                plan.push((w, Undo::Leave(format!("cannot read its state: {e}")), true));
                continue;
            }
        };
        let checked = now.as_ref().map(|n| {
            let o = n.ownership(&scope, prefix, key.as_ref());
            let relative = match &o {
                Ownership::Owned(id) => scope.relative(id),
                _ => None,
            };
            owned_by_job(w, &job.name, n, &o, relative)
        });
        let u = match checked {
            Some(Err(why)) => Undo::Leave(why),
            _ => undo(w, now.as_ref()),
        };
        plan.push((w, u, false));
    }
    let acting = plan
        .iter()
        .filter(|(_, u, _)| !matches!(u, Undo::Leave(_)))
        .count();
    if acting > 0 && !opts.yes {
        let account = match &caller {
            Ok(c) => c.account.clone(),
            Err(e) => format!("unknown ({e})"),
        };
        let n = |f: fn(&Undo) -> bool| plan.iter().filter(|(_, u, _)| f(u)).count();
        let q = format!(
            "rollback of {} in AWS account {account}, region {}: schedule for deletion {}, move AWSCURRENT back {}, restore {}, leave alone {}. Proceed?",
            opts.report.display(),
            target.region(),
            n(|u| *u == Undo::Delete),
            n(|u| matches!(u, Undo::MoveBack { .. })),
            n(|u| *u == Undo::Restore),
            n(|u| matches!(u, Undo::Leave(_))),
        );
        match confirm.confirm(&q) {
            Confirmation::Yes => {}
            Confirmation::No => {
                return Ok(Outcome {
                    exit_code: exit::FAILED,
                    summary: "rollback: declined; nothing written".into(),
                })
            }
            Confirmation::NoTerminal => {
                return Ok(Outcome {
                    exit_code: exit::USAGE,
                    summary: "rollback: refused: stdin is not a terminal to confirm on and --yes was not given; pass --yes".into(),
                })
            }
        }
    }

    let (mut done, mut left, mut failed) = (0, 0, 0);
    for (w, u, read_failed) in plan {
        let start = Instant::now();
        let mut row = Row::new(&w.source_path, &w.name, Action::Rollback, Status::Ok);
        row.target_arn.clone_from(&w.arn);
        if shutdown.is_triggered() {
            row.status = Status::Skipped;
            row.error = format!("interrupted: not started (undo of {})", w.action.as_str());
            report.write(&row)?;
            left += 1;
            continue;
        }
        let result = match &u {
            Undo::Leave(why) => {
                row.status = if read_failed {
                    Status::Failed
                } else {
                    Status::Skipped
                };
                row.error = format!("{}: {why}", w.action.as_str());
                None
            }
            Undo::Delete => Some(
                target
                    .schedule_deletion(&w.arn, opts.recovery_window_days)
                    .await
                    .map(|(date, a)| {
                        row.error = format!(
                            "{} undone: scheduled for deletion on {date} ({}-day recovery window)",
                            w.action.as_str(),
                            opts.recovery_window_days
                        );
                        row.previous_version_id.clone_from(&w.version_id);
                        a
                    }),
            ),
            Undo::MoveBack { to, from } => {
                Some(target.move_current(&w.arn, to, from).await.map(|(_, a)| {
                    row.error =
                        "update undone: AWSCURRENT moved back to the version it replaced".into();
                    row.version_id.clone_from(to);
                    row.previous_version_id.clone_from(from);
                    a
                }))
            }
            Undo::Restore => Some(target.restore(&w.arn).await.map(|(_, a)| {
                row.error = "prune undone: deletion cancelled".into();
                a
            })),
        };
        match result {
            None if read_failed => failed += 1,
            None => left += 1,
            Some(Ok(a)) => {
                row.attempts = a;
                done += 1;
            }
            Some(Err(e)) => {
                row.status = Status::Failed;
                row.attempts = e.attempts;
                row.error = e.to_string();
                failed += 1;
            }
        }
        row.duration_ms = start.elapsed().as_millis();
        report.write(&row)?;
    }
    let exit_code = if failed > 0 || shutdown.is_triggered() {
        exit::FAILED
    } else {
        exit::OK
    };
    Ok(Outcome {
        exit_code,
        summary: format!(
            "rollback: {} write(s) in the report: {}; {:.1}s; report {}",
            writes.len(),
            super::run::shown_counts(
                &[("failed".into(), failed)],
                &[("undone".into(), done), ("left alone".into(), left)],
            ),
            started.elapsed().as_secs_f64(),
            report.path().display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(action: Action, version: &str, previous: &str) -> Written {
        Written {
            source_path: "a".into(),
            name: "p/a".into(),
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:p/a-x".into(),
            action,
            version_id: version.into(),
            previous_version_id: previous.into(),
            job: String::new(),
        }
    }

    fn now(current: &str, deleted: bool) -> TargetSecret {
        TargetSecret {
            current_version: Some(current.into()),
            deleted_date: deleted.then(|| "2026-12-01".into()),
            ..TargetSecret::default()
        }
    }

    #[test]
    fn undo_table() {
        assert_eq!(
            undo(&w(Action::Create, "v1", ""), Some(&now("v1", false))),
            Undo::Delete
        );
        assert_eq!(
            undo(&w(Action::Rename, "v1", ""), Some(&now("v1", false))),
            Undo::Delete
        );
        assert!(
            matches!(undo(&w(Action::Create, "v1", ""), Some(&now("v2", false))), Undo::Leave(w) if w.contains("changed since"))
        );
        assert_eq!(
            undo(&w(Action::Update, "v2", "v1"), Some(&now("v2", false))),
            Undo::MoveBack {
                to: "v1".into(),
                from: "v2".into()
            }
        );
        assert!(matches!(
            undo(&w(Action::Update, "v2", "v1"), Some(&now("v3", false))),
            Undo::Leave(_)
        ));
        assert!(matches!(
            undo(&w(Action::Update, "v2", ""), Some(&now("v2", false))),
            Undo::Leave(_)
        ));
        assert_eq!(
            undo(&w(Action::Delete, "", ""), Some(&now("v1", true))),
            Undo::Restore
        );
        assert!(matches!(
            undo(&w(Action::Delete, "", ""), Some(&now("v1", false))),
            Undo::Leave(_)
        ));
        assert!(matches!(
            undo(&w(Action::Create, "v1", ""), None),
            Undo::Leave(_)
        ));
        assert!(matches!(
            undo(&w(Action::Create, "v1", ""), Some(&now("v1", true))),
            Undo::Leave(_)
        ));
    }

    #[test]
    fn a_report_of_another_region_or_account_is_refused() {
        let ws = vec![w(Action::Create, "v1", "")];
        assert_eq!(other_target(&ws, "us-east-1", Some("1")), None);
        assert!(other_target(&ws, "eu-west-1", Some("1"))
            .unwrap()
            .contains("region us-east-1"));
        assert!(other_target(&ws, "us-east-1", Some("2"))
            .unwrap()
            .contains("account 1"));
        let mut edited = w(Action::Create, "v1", "");
        edited.arn = "p/a".into();
        assert!(other_target(&[edited], "us-east-1", Some("1")).is_some());
    }

    #[test]
    fn only_a_secret_proven_to_be_the_jobs_for_the_rows_path_is_touched() {
        use crate::identity::{SourceIdentity, Unproven};
        let row = w(Action::Create, "v1", "");
        let secret = |name: &str| TargetSecret {
            name: name.into(),
            ..TargetSecret::default()
        };
        let owned = Ownership::Owned(SourceIdentity::new("file", "x", "a"));
        assert_eq!(
            owned_by_job(&row, "default", &secret("p/a"), &owned, Some("a")),
            Ok(())
        );
        let left = |r: Result<(), String>, words: &str| {
            assert!(r.as_ref().is_err_and(|e| e.contains(words)), "{r:?}")
        };
        left(
            owned_by_job(&row, "default", &secret("p/a"), &Ownership::Unmanaged, None),
            "not managed",
        );
        left(
            owned_by_job(
                &row,
                "default",
                &secret("p/a"),
                &Ownership::Foreign("managed by secretport for another scope".into()),
                None,
            ),
            "not this job's",
        );
        left(
            owned_by_job(
                &row,
                "default",
                &secret("p/a"),
                &Ownership::Unverified {
                    identity: SourceIdentity::new("file", "x", "a"),
                    why: Unproven::BadProof,
                },
                None,
            ),
            "cannot be verified",
        );
        // an edited row: another name at that ARN, another source path, another job
        left(
            owned_by_job(&row, "default", &secret("p/b"), &owned, Some("a")),
            "the secret at that ARN is p/b",
        );
        left(
            owned_by_job(&row, "default", &secret("p/a"), &owned, Some("b")),
            "source path b",
        );
        let mut theirs = row.clone();
        theirs.job = "other".into();
        left(
            owned_by_job(&theirs, "default", &secret("p/a"), &owned, Some("a")),
            "written by job other",
        );
    }

    #[test]
    fn reads_ok_writes_only() {
        let head = COLUMNS.join(",");
        let text = format!(
            "{head}\n\
             t,r,migrate,a,,p/a,arn:1,create,ok,1,,3,default,v1,,\n\
             t,r,migrate,b,,p/b,arn:2,update,failed,1,x,3,default,,v0,\n\
             t,r,migrate,c,,p/c,arn:3,retag,ok,1,,3,default,,,\n\
             t,r,migrate,d,,p/d,arn:4,update,ok,1,,3,default,v2,v1,\n"
        );
        let ws = read_report(&text).unwrap();
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[1].previous_version_id, "v1");
        assert!(read_report("a,b\n1,2\n")
            .unwrap_err()
            .contains("not a secretport report"));
    }
}
