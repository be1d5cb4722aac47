//! What `rollback` undoes, decided purely from a report and the secret as it is now.
//!
//! A report is a file anyone can edit, so nothing in it is trusted on its own: [`read_report`]
//! takes its `ok` writes, [`other_target`] refuses a report naming another account or region
//! than the config's target, [`owned_by_job`] leaves alone every secret not proven to be the
//! job's own for the row's source path (its ownership decided by [`crate::identity::ownership`],
//! the same decision plan and prune use), and [`undo`] says what to do about one write. The
//! steps run through the executor ([`crate::executor::undo`]); `commands::rollback` asks and
//! renders.

use std::collections::BTreeMap;

use crate::csv_safe::unescape_formula;
use crate::identity::Ownership;
use crate::report::{Action, COLUMNS};
use crate::target::TargetSecret;

/// One write of the run being undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Source path (for the new report).
    pub(crate) source_path: String,
    /// Secret name.
    pub(crate) name: String,
    /// Secret ARN.
    pub(crate) arn: String,
    /// What the run did.
    pub(crate) action: Action,
    /// The version it wrote.
    pub(crate) version_id: String,
    /// The version it replaced.
    pub(crate) previous_version_id: String,
    /// The job that wrote it (empty in reports without the column).
    pub(crate) job: String,
}

/// What to do about one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Undo {
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
    /// Its state could not be read: left alone, and the row fails (the rollback is not done).
    Unreadable(String),
}

/// Reads the `ok` writes out of a report's text.
pub(crate) fn read_report(text: &str) -> Result<Vec<Written>, String> {
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
pub(crate) fn undo(w: &Written, now: Option<&TargetSecret>) -> Undo {
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

/// The region and account an ARN names (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:…`).
fn region_and_account(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    let (region, account) = (parts.nth(3)?, parts.next()?);
    Some((region, account))
}

/// The first write that names another region or account than the target's, in words.
pub(crate) fn other_target(
    writes: &[Written],
    region: &str,
    account: Option<&str>,
) -> Option<String> {
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
pub(crate) fn owned_by_job(
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
