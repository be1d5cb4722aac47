//! `plan`, `migrate` and `reconcile` for every job of a config: the multi-job orchestration and
//! what a person sees of it. The pipeline of one job is the engine's ([`crate::engine`]).
//!
//! Every job is prepared concurrently (listed, filtered, planned: [`crate::engine::prepare`]),
//! two jobs claiming one secret in one place stop the run, the `on_conflict = fail` gate stops
//! its jobs, then one confirmation covers every job that would write
//! ([`super::confirm::ask`]), then the jobs execute concurrently
//! ([`crate::engine::PreparedJob::execute`]). This module renders: the engine's events as lines
//! and a progress display on stderr, the question, the summary lines, the `plan` table, the
//! `--json` summary and the `<report>.json` sidecar. The confirmation prompt and the shutdown
//! signal are parameters, supplied by the binary (and by tests).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::confirm;
pub use super::confirm::{Confirm, Confirmation};
use super::progress::Progress;
use crate::config::Config;
use crate::cost::Cost;
use crate::engine::{self, Event, Events, Intent, JobReport, PreparedJob, RunError, Stopped};
use crate::exit;
use crate::limits::Limits;
use crate::policy::{self, Mode};
use crate::report::{Action, Counts, Report, Row, Sink, Status};
use crate::shutdown::Shutdown;
use crate::target::{CallError, Caller};

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Process exit code.
    pub exit_code: i32,
    /// The summary: one line per job, then the run's total when there are several jobs.
    pub summary: String,
    /// Counts by action and status (all jobs).
    pub counts: Counts,
    /// Counts per job and calls per quota group, for `--metrics-file` / `--pushgateway`.
    pub stats: crate::metrics::RunStats,
}

/// The engine's events on stderr: its informational lines (named by job when the config has
/// several) and, once execution starts, each finished step on the progress display.
struct Face<'a> {
    command: &'static str,
    several: bool,
    progress: Option<&'a Progress>,
}

impl Face<'_> {
    /// ` (job NAME)` when the config has several jobs, for messages; empty otherwise.
    fn label(&self, job: &str) -> String {
        if self.several {
            format!(" (job {job})")
        } else {
            String::new()
        }
    }
}

impl Events for Face<'_> {
    fn event(&self, event: &Event<'_>) {
        let command = self.command;
        match *event {
            Event::Listing { job, kind } => {
                eprintln!("{command}{}: listing the {kind} source", self.label(job));
            }
            Event::Listed {
                job,
                listed,
                passed,
                filter: Some(ref filter),
            } => eprintln!(
                "{command}{}: {passed} of {listed} source secrets pass the filter ({filter})",
                self.label(job)
            ),
            Event::Planned {
                job,
                passed,
                problems,
                scope,
                target_secrets,
                prefix,
                owned,
                foreign,
            } => eprintln!(
                "{command}{}: {passed} source secrets ({problems} problems) in {}; {target_secrets} target secrets under {}: {owned} owned by this job, {foreign} managed for other scopes (left alone)",
                self.label(job),
                scope.describe(),
                prefix_words(prefix),
            ),
            Event::Done { failed } => {
                if let Some(p) = self.progress {
                    p.inc(failed);
                }
            }
            _ => {}
        }
    }
}

fn prefix_words(prefix: &str) -> String {
    if prefix.is_empty() {
        "no prefix (the whole account)".into()
    } else {
        format!("{prefix}/")
    }
}

/// The question asked before writing: account, region, prefix and counts per action, per job
/// (jobs that would write nothing are not listed).
fn question(mode: Mode, intents: &[Intent<'_>]) -> String {
    let one = |i: &Intent<'_>| {
        let account = match i.caller {
            Ok(c) => c.account.clone(),
            Err(e) => format!("unknown ({e})"),
        };
        let counts: Vec<String> = i
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{what} {n}"))
            .collect();
        let cost = i.cost.words("; adds").unwrap_or_default();
        format!(
            "AWS account {account}, region {}, prefix {}: {}{cost}",
            i.region,
            prefix_words(i.prefix),
            counts.join(", ")
        )
    };
    let writing: Vec<&Intent<'_>> = intents
        .iter()
        .filter(|i| i.counts.iter().any(|(_, n)| *n > 0))
        .collect();
    match writing.as_slice() {
        [i] if intents.len() == 1 => format!("{} into {}. Proceed?", mode.command(), one(i)),
        many => {
            let lines: Vec<String> = many
                .iter()
                .map(|i| format!("  job {}: {}", i.job, one(i)))
                .collect();
            format!(
                "{} {} job(s):\n{}\nProceed?",
                mode.command(),
                many.len(),
                lines.join("\n")
            )
        }
    }
}

/// How one job ended, as shown.
struct JobEnd {
    exit_code: i32,
    summary: String,
    /// What the job's new secrets add per month (created, or planned in a dry run).
    cost: Cost,
}

impl JobEnd {
    fn of(mode: Mode, r: &JobReport, started: Instant, report: &Path) -> JobEnd {
        let summary = match r.stopped {
            Some(Stopped::OnConflicts { conflicts }) => format!(
                "{}: stopped before any write: {conflicts} conflict(s) under on_conflict = fail; report {}",
                mode.command(),
                report.display()
            ),
            None => summary_line(mode, r, started, report),
        };
        JobEnd {
            exit_code: r.exit_code,
            summary,
            cost: r.cost,
        }
    }
}

/// Counts per job (config order) and calls per quota group over the run's distinct limiters.
fn run_stats(ready: &[PreparedJob<'_>], ends: &[(String, JobEnd)]) -> crate::metrics::RunStats {
    use crate::metrics::{CallTally, JobTally, RunStats};
    let mut names: Vec<&str> = ends.iter().map(|(n, _)| n.as_str()).collect();
    for p in ready {
        if !names.contains(&p.job().name.as_str()) {
            names.push(&p.job().name);
        }
    }
    let jobs = names
        .into_iter()
        .map(|name| JobTally {
            name: name.to_owned(),
            counts: ready
                .iter()
                .find(|p| p.job().name == name)
                .map(|p| p.sink().counts())
                .unwrap_or_default(),
        })
        .collect();
    let mut calls: Vec<CallTally> = Vec::new();
    for limits in distinct_limits(ready) {
        for l in limits.all() {
            match calls.iter_mut().find(|c| c.group == l.name()) {
                Some(c) => {
                    c.throttled += l.throttles();
                    c.retried += l.retries();
                }
                None => calls.push(CallTally {
                    group: l.name(),
                    throttled: l.throttles(),
                    retried: l.retries(),
                }),
            }
        }
    }
    RunStats { jobs, calls }
}

/// The run's distinct limiters (jobs of one account and region share one).
fn distinct_limits(ready: &[PreparedJob<'_>]) -> Vec<Arc<Limits>> {
    let mut seen: Vec<Arc<Limits>> = Vec::new();
    for p in ready {
        if !seen.iter().any(|l| Arc::ptr_eq(l, p.limits())) {
            seen.push(p.limits().clone());
        }
    }
    seen
}

/// Runs `plan`, `migrate` or `reconcile` for every job of the config. `shutdown` stops the
/// run between secrets; `confirm` is asked (once, for all jobs) before a run that would write,
/// unless `--yes` was given. `json`: every report row also goes to stdout as a JSON object,
/// then a `{"summary": ...}` object (JSON Lines); `report_path` `-` sends the CSV to stdout
/// instead of a file.
///
/// Jobs are planned concurrently, then (after the one question) executed concurrently. A job
/// that cannot start (its source or target unreachable, an empty listing) is reported and the
/// others go on; with a single job that error is the run's.
pub async fn run(
    cfg: &Config,
    mode: Mode,
    report_path: Option<&Path>,
    json: bool,
    shutdown: Shutdown,
    confirm: &dyn Confirm,
) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let dry_run = mode.dry_run();
    let command = mode.command();
    // a writing run of this config already going on this host: wait for it, then plan
    // against what it wrote (see `commands::lock`; correctness does not depend on it)
    let _lock = if dry_run {
        None
    } else {
        super::lock::acquire(&cfg.digest, command, &shutdown).await
    };
    let mut report = Report::create(&cfg.report.dir, command, report_path)?;
    if json {
        report = report.with_json();
    }
    let report_to_stdout = report.to_stdout();
    let first = cfg.jobs.first().map_or("default", |j| j.name.as_str());
    let sink = Sink::new(report, dry_run, first);
    let report_file = sink.report_path();
    let several = cfg.jobs.len() > 1;
    let lines = Face {
        command,
        several,
        progress: None,
    };

    let links = engine::connect(cfg, &shutdown).await;
    let prepared = futures::future::join_all(
        cfg.jobs
            .iter()
            .zip(&links)
            .map(|(job, link)| link.prepare(cfg, job, sink.for_job(&job.name), mode, &lines)),
    )
    .await;

    // two jobs that would both write one source secret into one place: refused before any
    // write, like a config error
    let planned: Vec<&PreparedJob<'_>> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
    if let Some(o) = engine::overlapping(&planned) {
        let why = o.to_string();
        sink.emit(Row::new(o.example.path(), "", Action::Skip, Status::Failed).error(why.clone()));
        if let Some(e) = sink.take_write_error() {
            return Err(RunError::Report(e));
        }
        return Ok(Outcome {
            exit_code: exit::USAGE,
            summary: format!(
                "{command}: refused: {why}; report {}",
                report_file.display()
            ),
            counts: sink.totals(),
            // refused before any job ran: no job counts or calls to report
            stats: crate::metrics::RunStats::default(),
        });
    }

    let mut ends: Vec<(String, JobEnd)> = Vec::new();
    let mut ready: Vec<PreparedJob<'_>> = Vec::new();
    for (job, p) in cfg.jobs.iter().zip(prepared) {
        match p {
            Ok(p) => match p.stop_on_conflicts() {
                Some(r) => ends.push((
                    job.name.clone(),
                    JobEnd::of(mode, &r, started, &report_file),
                )),
                None => ready.push(p),
            },
            Err(e) if several => {
                let text = crate::error_text::chain(&e);
                eprintln!("{command}: job {}: {text}", job.name);
                ends.push((
                    job.name.clone(),
                    JobEnd {
                        exit_code: e.exit_code(),
                        summary: format!("{command}: job {} did not start: {text}", job.name),
                        cost: Cost::default(),
                    },
                ));
            }
            Err(e) => return Err(e),
        }
    }

    if !dry_run && !mode.yes() {
        let intents: Vec<Intent<'_>> = ready.iter().map(|p| p.intent(mode)).collect();
        if intents.iter().any(Intent::writes) {
            if let Err(declined) = confirm::ask(confirm, &question(mode, &intents)) {
                let why = declined.why;
                sink.emit(Row::new("", "", Action::Skip, Status::Skipped).error(why));
                return Ok(Outcome {
                    exit_code: declined.exit_code,
                    summary: format!("{command}: {why}; report {}", report_file.display()),
                    counts: sink.totals(),
                    stats: run_stats(&ready, &ends),
                });
            }
        }
    }

    let total: u64 = ready.iter().map(PreparedJob::steps).sum();
    let progress = Progress::new(command, total);
    let progress = if dry_run {
        progress
    } else {
        // the pace of every distinct limiter the jobs write through
        let paces = distinct_limits(&ready);
        progress.with_pace(Box::new(move || {
            Some(paces.iter().map(|l| l.write.current_rate()).sum())
        }))
    };
    let face = Face {
        command,
        several,
        progress: Some(&progress),
    };
    let executed =
        futures::future::join_all(ready.iter().map(|p| p.execute(mode, &shutdown, &face))).await;
    progress.finish();
    for (p, r) in ready.iter().zip(&executed) {
        ends.push((
            p.job().name.clone(),
            JobEnd::of(mode, r, started, &report_file),
        ));
    }
    if let Some(e) = sink.take_write_error() {
        return Err(RunError::Report(e));
    }
    // report order: the config's
    ends.sort_by_key(|(name, _)| cfg.jobs.iter().position(|j| &j.name == name));

    let counts = sink.totals();
    let exit_code = policy::combine_exit_codes(ends.iter().map(|(_, e)| e.exit_code));
    let summary = if ends.len() == 1 {
        ends[0].1.summary.clone()
    } else {
        let mut lines: Vec<String> = ends
            .iter()
            .map(|(name, e)| format!("job {name}: {}", e.summary))
            .collect();
        lines.push(total_line(mode, &counts, ends.len(), started, &report_file));
        lines.join("\n")
    };
    let jobs: Vec<JobRecord<'_>> = ends
        .iter()
        .map(|(name, end)| {
            let p = ready.iter().find(|p| &p.job().name == name);
            JobRecord {
                name,
                exit_code: end.exit_code,
                caller: p.map(PreparedJob::caller),
                region: p.map_or("", |p| p.region()),
                prefix: cfg.job(name).map_or("", |j| j.target.prefix.as_str()),
                counts: p.map(|p| p.sink().counts()).unwrap_or_default(),
                summary: &end.summary,
                cost: end.cost,
            }
        })
        .collect();
    let run_id = sink.run_id();
    if !report_to_stdout {
        write_sidecar(
            &report_file,
            &run_id,
            command,
            cfg,
            &jobs,
            &counts,
            exit_code,
        );
    }
    if json {
        print_json_summary(&run_id, command, &jobs, &counts, exit_code, &summary);
    }
    let stats = run_stats(&ready, &ends);
    Ok(Outcome {
        exit_code,
        summary,
        counts,
        stats,
    })
}

/// One job's line in the sidecar and the JSON summary.
struct JobRecord<'a> {
    name: &'a str,
    exit_code: i32,
    caller: Option<&'a Result<Caller, CallError>>,
    region: &'a str,
    prefix: &'a str,
    counts: Counts,
    summary: &'a str,
    cost: Cost,
}

/// The run's total over several jobs.
fn total_line(mode: Mode, counts: &Counts, jobs: usize, started: Instant, report: &Path) -> String {
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
fn summary_line(mode: Mode, r: &JobReport, started: Instant, report: &Path) -> String {
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
fn write_sidecar(
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
fn print_json_summary(
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

    #[test]
    fn the_question_names_account_region_prefix_and_counts() {
        let caller = Ok(Caller {
            account: "111122223333".into(),
            arn: "arn:aws:iam::111122223333:user/x".into(),
        });
        let mode = Mode::Reconcile {
            check: false,
            prune: true,
            force_prune: false,
            restore_deleted: false,
            adopt: false,
            yes: false,
        };
        let intent = |job, prefix, counts: Vec<(&'static str, usize)>| Intent {
            job,
            caller: &caller,
            region: "eu-west-1",
            prefix,
            counts,
            cost: Cost::default(),
        };
        let q = question(
            mode,
            &[intent(
                "default",
                "devops",
                vec![
                    ("create", 3),
                    ("rename", 0),
                    ("schedule for deletion up to", 2),
                ],
            )],
        );
        assert_eq!(
            q,
            "reconcile into AWS account 111122223333, region eu-west-1, prefix devops/: create 3, schedule for deletion up to 2. Proceed?"
        );
        let q = question(mode, &[intent("default", "", vec![("create", 1)])]);
        assert!(q.contains("no prefix (the whole account)"), "{q}");
        // the monthly cost of the new secrets and their replicas
        let mut costly = intent("default", "devops", vec![("create", 3)]);
        costly.cost = Cost::of(3, 1, 0.40);
        let q = question(mode, &[costly]);
        assert_eq!(
            q,
            "reconcile into AWS account 111122223333, region eu-west-1, prefix devops/: create 3; adds $2.40/month (3 new secrets + 3 replicas at $0.40 each). Proceed?"
        );
        // several jobs: one line each for the jobs that would write
        let q = question(
            mode,
            &[
                intent("a", "one", vec![("create", 1)]),
                intent("b", "two", vec![("create", 0)]),
                intent("c", "three", vec![("rename", 2)]),
            ],
        );
        assert_eq!(
            q,
            "reconcile 2 job(s):\n  job a: AWS account 111122223333, region eu-west-1, prefix one/: create 1\n  job c: AWS account 111122223333, region eu-west-1, prefix three/: rename 2\nProceed?"
        );
    }
}
