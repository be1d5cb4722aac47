//! What a run says when it ends: one summary line per job (alarms first, zeros left out), the
//! run's total over several jobs, the `plan` table, the `--json` summary and the
//! `<report>.json` sidecar beside the CSV, all rendered from the engine's typed
//! [`JobReport`]s and [`Counts`]. Part of the face: the engine only counts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::config::Config;
use crate::cost::Cost;
use crate::engine::JobReport;
use crate::policy::{self, Mode};
use crate::report::{Action, Counts, Status};
use crate::target::{CallError, Caller};

/// One job's line in the sidecar and the JSON summary.
pub(crate) struct JobRecord<'a> {
    pub(crate) name: &'a str,
    pub(crate) exit_code: i32,
    pub(crate) caller: Option<&'a Result<Caller, CallError>>,
    pub(crate) region: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) counts: Counts,
    pub(crate) summary: &'a str,
    pub(crate) cost: Cost,
}

/// The run's total over several jobs.
pub(crate) fn total_line(
    mode: Mode,
    counts: &Counts,
    jobs: usize,
    started: Instant,
    report: &Path,
) -> String {
    let conflicts = counts.sum(|a, s| a == Action::Conflict && s != Status::Failed);
    let verb = if mode.dry_run() { "would " } else { "" };
    format!(
        "{}: total of {jobs} jobs: {}; {:.1}s; report {}",
        mode.command(),
        shown_counts(
            &[
                ("failed".into(), counts.failed()),
                ("conflicts".into(), conflicts)
            ],
            &[
                (format!("{verb}create"), counts.done(Action::Create)),
                (format!("{verb}rename"), counts.done(Action::Rename)),
                (format!("{verb}update"), counts.done(Action::Update)),
                ("unchanged".into(), counts.done(Action::Unchanged)),
            ],
        ),
        started.elapsed().as_secs_f64(),
        report.display()
    )
}

/// The counts of a summary line: the `alarms` (failures, conflicts) first, the `rest` after
/// them, each only when it is not zero, so a reader sees what goes wrong and what changes
/// without reading past zeros (every count, zeros included, is in `plan`'s table, the JSON
/// summary and the report). All zero: `nothing to do`.
pub(crate) fn shown_counts(alarms: &[(String, u64)], rest: &[(String, u64)]) -> String {
    let shown: Vec<String> = alarms
        .iter()
        .chain(rest)
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    if shown.is_empty() {
        "nothing to do".into()
    } else {
        shown.join(", ")
    }
}

/// One job's summary line: what happened (or would), alarms first, then the facts a person
/// checks (replicas, drift, foreign secrets, cost, unread values, time and write rate).
pub(crate) fn summary_line(mode: Mode, r: &JobReport, started: Instant, report: &Path) -> String {
    let dry_run = mode.dry_run();
    let counts = &r.counts;
    // what happened (or would): rows that succeeded or are planned; everything not started
    // or deliberately left counts as skipped, whatever its action
    let n = |a: Action| -> u64 {
        match a {
            Action::Conflict | Action::Orphan => counts.sum(|x, s| x == a && s != Status::Failed),
            _ => counts.done(a),
        }
    };
    let skipped = counts.sum(|a, s| {
        s == Status::Skipped && !matches!(a, Action::Conflict | Action::Orphan | Action::Replicate)
    });
    let verb = if dry_run { "would " } else { "" };
    let mut summary = format!(
        "{}: {} secrets: {}",
        mode.command(),
        r.secrets,
        shown_counts(
            &[
                ("failed".into(), counts.failed()),
                ("conflicts".into(), n(Action::Conflict)),
            ],
            &[
                (format!("{verb}create"), n(Action::Create)),
                (format!("{verb}rename"), n(Action::Rename)),
                (format!("{verb}update"), n(Action::Update)),
                ("unchanged".into(), n(Action::Unchanged)),
                (format!("{verb}retag"), n(Action::Retag)),
                ("skipped".into(), n(Action::Skip) + skipped),
                ("orphans".into(), n(Action::Orphan)),
                (format!("{verb}delete"), n(Action::Delete)),
            ],
        ),
    );
    let replica_problems = r.failed_replicas;
    let replicated = n(Action::Replicate) - replica_problems.min(n(Action::Replicate));
    if replicated > 0 || replica_problems > 0 {
        summary.push_str(&format!(
            "; {}",
            shown_counts(
                &[("failed replicas".into(), replica_problems)],
                &[(format!("{verb}replicate"), replicated)],
            )
        ));
    }
    if let Mode::Reconcile { check: true, .. } = mode {
        summary.push_str(if policy::drift(counts) > 0 {
            "; DRIFT"
        } else {
            "; in sync"
        });
    }
    if r.foreign > 0 {
        summary.push_str(&format!(
            "; {} secret(s) of other scopes left alone",
            r.foreign
        ));
    }
    if let Some(words) = r.cost.words(if dry_run { "would add" } else { "adds" }) {
        summary.push_str(&format!("; {words}"));
    }
    if r.unread > 0 {
        summary.push_str(&format!(
            "; {} value(s) unread (no read access): their size is unchecked, and for existing secrets update vs unchanged is undecided",
            r.unread
        ));
    }
    summary.push_str(&format!("; {:.1}s", started.elapsed().as_secs_f64()));
    if r.writes > 0 {
        let secs = r.write_time.as_secs_f64().max(1e-3);
        summary.push_str(&format!(
            ", {} writes at {:.1}/s",
            r.writes,
            r.writes as f64 / secs
        ));
    }
    if r.interrupted {
        summary.push_str("; INTERRUPTED");
    }
    summary.push_str(&format!("; report {}", report.display()));
    summary
}

fn counts_by_key(counts: &Counts) -> BTreeMap<String, u64> {
    counts
        .iter()
        .map(|(a, s, n)| (format!("{}/{}", a.as_str(), s.as_str()), n))
        .collect()
}

fn job_json(j: &JobRecord<'_>) -> serde_json::Value {
    let caller = j.caller.and_then(|c| c.as_ref().ok());
    serde_json::json!({
        "name": j.name,
        "caller_arn": caller.map(|c| c.arn.clone()).unwrap_or_default(),
        "account": caller.map(|c| c.account.clone()).unwrap_or_default(),
        "region": j.region,
        "prefix": j.prefix,
        "exit_code": j.exit_code,
        "counts": counts_by_key(&j.counts),
        "summary": j.summary,
    })
}

/// `<report>.json` beside the CSV: who ran what, with which config, and how it ended (per job,
/// and for the single-job form also at the top, where auditors' scripts look first).
pub(crate) fn write_sidecar(
    report: &Path,
    run_id: &str,
    command: &str,
    cfg: &Config,
    jobs: &[JobRecord<'_>],
    counts: &Counts,
    exit_code: i32,
) {
    let jobs_json: Vec<serde_json::Value> = jobs.iter().map(job_json).collect();
    // the top-level identity: the one job's, or every distinct caller of several jobs
    let pick = |k: &str| -> serde_json::Value {
        let mut seen: Vec<String> = Vec::new();
        for j in &jobs_json {
            let v = j[k].as_str().unwrap_or_default().to_owned();
            if !v.is_empty() && !seen.contains(&v) {
                seen.push(v);
            }
        }
        serde_json::Value::String(seen.join(","))
    };
    let doc = serde_json::json!({
        "run_id": run_id,
        "command": command,
        "secretport_version": env!("CARGO_PKG_VERSION"),
        "caller_arn": pick("caller_arn"),
        "account": pick("account"),
        "region": pick("region"),
        "prefix": if jobs.len() == 1 { serde_json::Value::String(jobs[0].prefix.to_owned()) } else { pick("prefix") },
        "config_sha256": cfg.digest,
        "finished": crate::report::now_rfc3339(),
        "exit_code": exit_code,
        "counts": counts_by_key(counts),
        "jobs": jobs_json,
    });
    let path = report.with_extension("json");
    if let Err(e) = std::fs::write(&path, format!("{doc:#}\n")) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

fn nested_counts(counts: &Counts) -> BTreeMap<&'static str, BTreeMap<&'static str, u64>> {
    let mut by: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for (a, s, n) in counts.iter() {
        *by.entry(a.as_str())
            .or_default()
            .entry(s.as_str())
            .or_default() += n;
    }
    by
}

/// The final JSON Lines object of `--json`: counts by action and status, exit code, summary;
/// and the same per job under `jobs`.
pub(crate) fn print_json_summary(
    run_id: &str,
    command: &str,
    jobs: &[JobRecord<'_>],
    counts: &Counts,
    exit_code: i32,
    summary: &str,
) {
    let total_cost = jobs.iter().fold(Cost::default(), |t, j| t.plus(j.cost));
    let jobs: BTreeMap<&str, serde_json::Value> = jobs
        .iter()
        .map(|j| {
            (
                j.name,
                serde_json::json!({
                    "counts": nested_counts(&j.counts),
                    "drift": policy::drift(&j.counts),
                    "exit_code": j.exit_code,
                    "text": j.summary,
                    "cost": j.cost.json(),
                }),
            )
        })
        .collect();
    let doc = serde_json::json!({ "summary": {
        "run_id": run_id,
        "command": command,
        "counts": nested_counts(counts),
        "drift": policy::drift(counts),
        "exit_code": exit_code,
        "text": summary,
        "cost": total_cost.json(),
        "jobs": jobs,
    }});
    println!("{doc}");
}

/// The summary table `plan` prints: one line per action and status.
pub fn table(counts: &Counts) -> String {
    let mut s = format!("{:<10} {:<8} {:>8}\n", "action", "status", "count");
    for (a, st, n) in counts.iter() {
        s.push_str(&format!("{:<10} {:<8} {:>8}\n", a.as_str(), st.as_str(), n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_show_alarms_first_and_no_zeros() {
        let c = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            pairs.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
        };
        type Counts<'a> = &'a [(&'a str, u64)];
        let table: &[(Counts, Counts, &str)] = &[
            (
                &[("failed", 0), ("conflicts", 0)],
                &[("would create", 9), ("would rename", 0), ("unchanged", 0)],
                "would create 9",
            ),
            (
                &[("failed", 1), ("conflicts", 2)],
                &[("create", 3), ("unchanged", 4)],
                "failed 1, conflicts 2, create 3, unchanged 4",
            ),
            (
                &[("failed", 0), ("conflicts", 1)],
                &[("create", 0), ("unchanged", 5)],
                "conflicts 1, unchanged 5",
            ),
            (&[("failed", 2)], &[("create", 0)], "failed 2"),
            (
                &[("failed", 0), ("conflicts", 0)],
                &[("create", 0)],
                "nothing to do",
            ),
            (&[], &[], "nothing to do"),
        ];
        for (alarms, rest, want) in table {
            assert_eq!(
                shown_counts(&c(alarms), &c(rest)),
                *want,
                "{alarms:?} {rest:?}"
            );
        }
    }
}
