//! `plan`, `migrate` and `reconcile` for every job of a config: the multi-job orchestration and
//! what a person sees of it. The pipeline of one job is the engine's ([`crate::engine`]).
//!
//! Every job is prepared concurrently (listed, filtered, planned: [`crate::engine::prepare`]),
//! two jobs claiming one secret in one place stop the run, the `on_conflict = fail` gate stops
//! its jobs, then one confirmation covers every job that would write
//! ([`super::confirm::ask`]), then the jobs execute concurrently
//! ([`crate::engine::PreparedJob::execute`]). This module renders the engine's events as lines
//! and a progress display on stderr, and the question; the summaries, the `plan` table, the
//! `--json` summary and the sidecar are [`super::summary`]'s. The confirmation prompt and the
//! shutdown signal are parameters, supplied by the binary (and by tests).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::confirm;
pub use super::confirm::{Confirm, Confirmation};
use super::progress::Progress;
pub use super::summary::table;
use super::summary::{print_json_summary, summary_line, total_line, write_sidecar, JobRecord};
use crate::config::Config;
use crate::cost::Cost;
use crate::engine::{self, Event, Events, Intent, JobReport, PreparedJob, RunError, Stopped};
use crate::exit;
use crate::limits::Limits;
use crate::policy::{self, Mode};
use crate::report::{Action, Counts, Report, Row, Sink, Status};
use crate::shutdown::Shutdown;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Caller;

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
