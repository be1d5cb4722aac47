//! `plan`, `migrate` and `reconcile`: one pipeline, three interpreters of the same plan.
//!
//! list the source → take the target's inventory → plan (pure) → gate and confirm (pure
//! policy, prompt passed in) → read current values in bulk → execute every item over the real
//! target or the dry-run gate → handle orphans → summary and exit code (pure policy). The cheap,
//! fatal checks (source authentication, target reachability, an empty listing) come before any
//! write. Terminal I/O is not done here: the confirmation prompt and the shutdown signal are
//! parameters, supplied by the binary (and by tests).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::aws::client::{sdk_config, ClientError, Endpoint};
use crate::aws::secrets::SecretsTarget;
use crate::config::{Config, OnConflict, SourceConfig};
use crate::decide;
use crate::executor::{Executor, Settings, Sink};
use crate::exit;
use crate::identity::token::TokenDeriver;
use crate::limits::Limits;
use crate::naming::NamingError;
use crate::plan::{self, Decision, PlanInput};
use crate::policy::{self, Mode, PruneFacts, Refusal};
use crate::progress::Progress;
use crate::report::{Action, Report, Row, Status};
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::source::file::FileSource;
use crate::source::{Source, SourceError};
use crate::target::dry::DryRun;
use crate::target::token_key::KeyError;
use crate::target::{CallError, Caller, Target, TargetSecret};

/// A failure that stops the whole run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The report could not be created or written.
    #[error("audit report: {0}")]
    Report(#[from] std::io::Error),
    /// AWS client configuration.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The source cannot be read at all.
    #[error("source: {0}")]
    Source(#[from] SourceError),
    /// The source listed nothing, which is almost always a wrong mount or path.
    #[error("source: 0 secrets found at {0}; check mount and path (on KV v2, path is the secret path without data/), or set allow_empty = true in [source] if an empty source is expected")]
    Empty(String),
    /// The target's inventory cannot be read.
    #[error("target: {0}")]
    Target(#[from] CallError),
    /// The token key cannot be had.
    #[error("target: {0}")]
    Key(#[from] KeyError),
    /// Naming failed.
    #[error(transparent)]
    Naming(#[from] NamingError),
}

impl RunError {
    /// The process exit code: 64 when the configuration (or the environment it names) is
    /// incomplete, so nothing useful could be contacted (no region anywhere, a named env var
    /// unset); 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Client(ClientError::NoRegion | ClientError::MissingEnv { .. }) => exit::USAGE,
            _ => exit::FAILED,
        }
    }
}

/// The answer to a confirmation question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Go ahead.
    Yes,
    /// Declined.
    No,
    /// Nobody can be asked (stdin is not a terminal).
    NoTerminal,
}

/// Asks a person whether to go ahead (the binary asks on the terminal; tests answer directly).
pub trait Confirm: Send + Sync {
    /// Shows `question` and returns the answer.
    fn confirm(&self, question: &str) -> Confirmation;
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Process exit code.
    pub exit_code: i32,
    /// The one-line summary.
    pub summary: String,
    /// Counts by action and status.
    pub counts: BTreeMap<(Action, Status), u64>,
    /// The report file.
    pub report: PathBuf,
}

/// Opens the configured source.
pub async fn open_source(
    cfg: &Config,
    limits: &Arc<Limits>,
    policy: RetryPolicy,
) -> Result<Box<dyn Source>, RunError> {
    Ok(match &cfg.source {
        SourceConfig::File(f) => Box::new(FileSource::open(&f.file)?),
        SourceConfig::Vault(v) => Box::new(
            crate::source::vault::VaultSource::connect(
                v,
                limits.clone(),
                policy,
                std::time::Duration::from_secs(cfg.limits.timeout_seconds),
            )
            .await?,
        ),
        SourceConfig::Kms(k) => {
            let timeout = std::time::Duration::from_secs(cfg.limits.timeout_seconds);
            let conf = crate::source::kms::kms_sdk_config(k, &cfg.target, timeout).await?;
            Box::new(crate::source::kms::KmsSource::open(
                &k.file,
                aws_sdk_kms::Client::new(&conf),
                limits.clone(),
                policy,
            )?)
        }
        SourceConfig::Ssm(c) => {
            let timeout = std::time::Duration::from_secs(cfg.limits.timeout_seconds);
            Box::new(
                crate::source::ssm::SsmSource::open(
                    c,
                    &cfg.target,
                    limits.clone(),
                    policy,
                    timeout,
                )
                .await?,
            )
        }
        SourceConfig::Sops(c) => {
            let timeout = std::time::Duration::from_secs(cfg.limits.timeout_seconds);
            Box::new(
                crate::source::sops::SopsSource::open(
                    c,
                    &cfg.target,
                    limits.clone(),
                    policy,
                    timeout,
                )
                .await?,
            )
        }
        SourceConfig::Credstash(c) => {
            let timeout = std::time::Duration::from_secs(cfg.limits.timeout_seconds);
            Box::new(
                crate::source::credstash::CredstashSource::open(
                    c,
                    &cfg.target,
                    limits.clone(),
                    policy,
                    timeout,
                )
                .await?,
            )
        }
    })
}

/// Builds the target's SDK configuration.
pub async fn target_sdk(cfg: &Config) -> Result<aws_config::SdkConfig, ClientError> {
    sdk_config(&Endpoint {
        region: cfg.target.region.as_deref(),
        endpoint_url: cfg.target.endpoint_url.as_deref(),
        credentials: &cfg.target.credentials,
        key: "target.credentials",
        timeout: std::time::Duration::from_secs(cfg.limits.timeout_seconds),
    })
    .await
}

fn prefix_words(prefix: &str) -> String {
    if prefix.is_empty() {
        "no prefix (the whole account)".into()
    } else {
        format!("{prefix}/")
    }
}

/// The question asked before writing: account, region, prefix and counts per action.
fn question(
    mode: Mode,
    caller: &Result<Caller, CallError>,
    region: &str,
    prefix: &str,
    counts: &[(&str, usize)],
) -> String {
    let account = match caller {
        Ok(c) => c.account.clone(),
        Err(e) => format!("unknown ({e})"),
    };
    let counts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    format!(
        "{} into AWS account {account}, region {region}, prefix {}: {}. Proceed?",
        mode.command(),
        prefix_words(prefix),
        counts.join(", ")
    )
}

/// Runs `plan`, `migrate` or `reconcile`. `shutdown` stops the run between secrets; `confirm`
/// is asked before a run that would write, unless `--yes` was given.
/// `json`: every report row also goes to stdout as a JSON object, then a `{"summary": ...}`
/// object (JSON Lines); `report_path` `-` sends the CSV to stdout instead of a file.
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
    let job = "default";
    let mut report = Report::create(&cfg.report.dir, command, report_path)?;
    if json {
        report = report.with_json();
    }
    let report_to_stdout = report.to_stdout();
    let run_id = report.run_id().to_owned();
    let sink = Sink::new(report, dry_run, job);
    let limits = Arc::new(Limits::with_shutdown(&cfg.limits, &shutdown));
    let retry = RetryPolicy::new(cfg.limits.max_attempts);
    let fatal = |sink: &Sink, what: &str, e: &dyn std::error::Error| {
        let text = crate::error_text::chain(e);
        sink.emit(Row::new("", "", Action::Skip, Status::Failed).error(format!("{what}: {text}")));
    };
    let sdk = match target_sdk(cfg).await {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "target configuration", &e);
            return Err(e.into());
        }
    };
    let aws = SecretsTarget::new(&sdk, limits.clone(), retry);
    let dry = DryRun::new(&aws);
    let target: &dyn Target = if dry_run { &dry } else { &aws };

    let source = match open_source(cfg, &limits, retry).await {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "cannot open the source", &e);
            return Err(e);
        }
    };
    eprintln!("{command}: listing the {} source", source.kind());
    let listing = match source.list().await {
        Ok(l) => l,
        Err(e) => {
            fatal(&sink, "source listing failed", &e);
            return Err(e.into());
        }
    };
    if listing.refs.is_empty() && listing.problems.is_empty() && !cfg.allow_empty {
        let e = RunError::Empty(source.location());
        fatal(&sink, "source", &e);
        return Err(e);
    }
    let prefix = cfg.target.prefix.as_str();
    let inventory: Vec<Arc<TargetSecret>> = match target.inventory(prefix).await {
        Ok(i) => i.into_iter().map(Arc::new).collect(),
        Err(e) => {
            fatal(&sink, "target inventory failed", &e);
            return Err(e.into());
        }
    };
    let scope = source.scope();
    let rules = cfg.naming_rules();
    let plan = plan::build(&PlanInput {
        listing: &listing,
        scope: &scope,
        rules: &rules,
        overrides: &cfg.naming.overrides,
        inventory: &inventory,
        on_conflict: cfg.target.on_conflict,
    })?;
    eprintln!(
        "{command}: {} source secrets ({} problems) in {}; {} target secrets under {}: {} owned by this job, {} managed for other scopes (left alone)",
        listing.refs.len(),
        listing.problems.len(),
        scope.describe(),
        inventory.len(),
        prefix_words(prefix),
        plan.owned_live,
        plan.foreign,
    );
    // the plan holds what it needs of the inventory; the rest is not kept for the whole run
    drop(inventory);

    for p in &listing.problems {
        // the error names its line even where the path column already says "line N": the
        // error column is what gets read on its own (ListProblem::described never doubles it)
        let error = match p.line {
            Some(l) if !p.error.starts_with("line ") => format!("line {l}: {}", p.error),
            _ => p.error.clone(),
        };
        sink.emit(Row::new(&p.path, "", Action::Skip, Status::Failed).error(error));
    }

    let conflicts = plan.conflicts().count();
    if !dry_run && cfg.target.on_conflict == OnConflict::Fail && conflicts > 0 {
        for item in &plan.items {
            let (action, status, why) = match item.decision {
                Decision::Conflict { .. } => (
                    Action::Conflict,
                    Status::Failed,
                    "exists and is not this source's (on_conflict = fail)".to_owned(),
                ),
                _ => (
                    Action::Skip,
                    Status::Skipped,
                    format!("not started: on_conflict = fail and {conflicts} conflict(s) found"),
                ),
            };
            sink.emit(Row::new(&item.source.path, &item.mapping.target, action, status).error(why));
        }
        return Ok(Outcome {
            exit_code: exit::FAILED,
            summary: format!(
                "{command}: stopped before any write: {conflicts} conflict(s) under on_conflict = fail; report {}",
                sink.report_path().display()
            ),
            counts: sink.counts(),
            report: sink.report_path(),
        });
    }

    let caller = target.caller().await;
    let prune_asked = matches!(mode, Mode::Reconcile { prune: true, .. });
    if !dry_run && !mode.yes() {
        let count = |d: fn(&plan::Item) -> bool| plan.items.iter().filter(|i| d(i)).count();
        let creates = count(|i| i.decision == Decision::Create && i.renamed_from.is_none());
        let renames = count(|i| i.decision == Decision::Create && i.renamed_from.is_some());
        let compares = count(|i| {
            matches!(
                i.decision,
                Decision::Compare
                    | Decision::Conflict {
                        owner: None,
                        policy: OnConflict::Adopt | OnConflict::Overwrite
                    }
            )
        });
        let restores = if mode.restore_deleted() {
            count(|i| {
                matches!(
                    i.decision,
                    Decision::ScheduledForDeletion { ours: true, .. }
                )
            })
        } else {
            0
        };
        let deletes = if prune_asked { plan.orphans.len() } else { 0 };
        let counts = [
            ("create", creates),
            ("rename", renames),
            ("update where the value differs, of", compares),
            ("restore", restores),
            ("schedule for deletion up to", deletes),
        ];
        if counts.iter().any(|(_, n)| *n > 0) {
            let q = question(mode, &caller, target.region(), prefix, &counts);
            let answer = confirm.confirm(&q);
            if answer != Confirmation::Yes {
                let (code, why) = match answer {
                    Confirmation::NoTerminal => (
                        exit::USAGE,
                        "refused: this run would write, stdin is not a terminal to confirm on, and --yes was not given; pass --yes",
                    ),
                    _ => (exit::FAILED, "declined at the confirmation prompt; nothing written"),
                };
                sink.emit(Row::new("", "", Action::Skip, Status::Skipped).error(why));
                return Ok(Outcome {
                    exit_code: code,
                    summary: format!("{command}: {why}; report {}", sink.report_path().display()),
                    counts: sink.counts(),
                    report: sink.report_path(),
                });
            }
        }
    }

    // validated (set, long enough) when the config was loaded
    let tokens = cfg.target.token_key_env.as_ref().map(|name| {
        TokenDeriver::keyed(zeroize::Zeroizing::new(
            std::env::var(name).unwrap_or_default().into_bytes(),
        ))
    });
    let settings = Settings {
        rules: decide::Rules {
            restore_deleted: mode.restore_deleted(),
            copy_metadata: cfg.source.copy_metadata(),
            config_tags: cfg.target.tags.clone(),
            prefix: prefix.to_owned(),
        },
        kms_key_id: cfg.target.kms_key_id.clone(),
        concurrency: cfg.limits.concurrency,
        policy: cfg.naming.policy,
        tokens,
    };
    let progress = Progress::new(command, (plan.items.len() + plan.orphans.len()) as u64);
    let progress = if dry_run {
        progress
    } else {
        let limits = limits.clone();
        progress.with_pace(Box::new(move || Some(limits.write.current_rate())))
    };
    let exec = Executor::new(
        target,
        source.as_ref(),
        &settings,
        &sink,
        &shutdown,
        &progress,
    );
    let write_start = Instant::now();
    exec.run_all(&plan.items).await;

    let mut orphans = plan.orphans.clone();
    orphans.extend(exec.take_gone());
    orphans.sort_by(|a, b| a.secret.name.cmp(&b.secret.name));
    let interrupted = shutdown.is_triggered();
    let prune = policy::prune(&PruneFacts {
        prune: prune_asked,
        force: matches!(
            mode,
            Mode::Reconcile {
                force_prune: true,
                ..
            }
        ),
        listing_problems: listing.problems.len(),
        listed: listing.refs.len(),
        owned_live: plan.owned_live,
        orphans: orphans.len(),
        max_fraction: cfg.reconcile.max_prune_fraction,
        window_days: cfg.reconcile.recovery_window_days,
        interrupted,
    });
    let prune = prune.map_err(|r: Refusal| r.words());
    exec.orphans(&orphans, prune).await;
    progress.finish();
    if let Some(e) = sink.take_write_error() {
        return Err(RunError::Report(e));
    }

    let counts = sink.counts();
    let exit_code = policy::exit_code(mode, &counts, interrupted);
    let summary = summary_line(
        mode,
        &plan,
        &counts,
        &sink,
        started,
        write_start,
        interrupted,
    );
    if !report_to_stdout {
        write_sidecar(
            &sink.report_path(),
            &run_id,
            command,
            cfg,
            &caller,
            target.region(),
            &counts,
            exit_code,
        );
    }
    if json {
        print_json_summary(&run_id, command, &counts, exit_code, &summary);
    }
    Ok(Outcome {
        exit_code,
        summary,
        counts,
        report: sink.report_path(),
    })
}

fn summary_line(
    mode: Mode,
    plan: &plan::Plan,
    counts: &BTreeMap<(Action, Status), u64>,
    sink: &Sink,
    started: Instant,
    write_start: Instant,
    interrupted: bool,
) -> String {
    let dry_run = mode.dry_run();
    // what happened (or would): rows that succeeded or are planned; everything not started
    // or deliberately left counts as skipped, whatever its action
    let n = |a: Action| -> u64 {
        counts
            .iter()
            .filter(|((x, s), _)| {
                *x == a
                    && match a {
                        Action::Conflict | Action::Orphan => *s != Status::Failed,
                        _ => matches!(s, Status::Ok | Status::Planned),
                    }
            })
            .map(|(_, n)| n)
            .sum()
    };
    let skipped: u64 = counts
        .iter()
        .filter(|((a, s), _)| {
            *s == Status::Skipped && !matches!(a, Action::Conflict | Action::Orphan)
        })
        .map(|(_, n)| n)
        .sum();
    let failed = sink.failed();
    let verb = if dry_run { "would " } else { "" };
    let mut summary = format!(
        "{}: {} secrets: {verb}create {}, {verb}rename {}, {verb}update {}, unchanged {}, {verb}retag {}, conflicts {}, skipped {}, failed {}, orphans {}, {verb}delete {}",
        mode.command(),
        plan.items.len(),
        n(Action::Create),
        n(Action::Rename),
        n(Action::Update),
        n(Action::Unchanged),
        n(Action::Retag),
        n(Action::Conflict),
        n(Action::Skip) + skipped,
        failed,
        n(Action::Orphan),
        n(Action::Delete),
    );
    if let Mode::Reconcile { check: true, .. } = mode {
        summary.push_str(if policy::drift(counts) > 0 {
            "; DRIFT"
        } else {
            "; in sync"
        });
    }
    if plan.foreign > 0 {
        summary.push_str(&format!(
            "; {} secret(s) of other scopes left alone",
            plan.foreign
        ));
    }
    let unread = sink.unread.load(Ordering::Relaxed);
    if unread > 0 {
        summary.push_str(&format!(
            "; {unread} value(s) unread (no read access): their size is unchecked, and for existing secrets update vs unchanged is undecided"
        ));
    }
    summary.push_str(&format!("; {:.1}s", started.elapsed().as_secs_f64()));
    let writes_done = sink.writes.load(Ordering::Relaxed);
    if writes_done > 0 {
        let secs = write_start.elapsed().as_secs_f64().max(1e-3);
        summary.push_str(&format!(
            ", {writes_done} writes at {:.1}/s",
            writes_done as f64 / secs
        ));
    }
    if interrupted {
        summary.push_str("; INTERRUPTED");
    }
    summary.push_str(&format!("; report {}", sink.report_path().display()));
    summary
}

/// `<report>.json` beside the CSV: who ran what, with which config, and how it ended.
#[allow(clippy::too_many_arguments)]
fn write_sidecar(
    report: &Path,
    run_id: &str,
    command: &str,
    cfg: &Config,
    caller: &Result<Caller, CallError>,
    region: &str,
    counts: &BTreeMap<(Action, Status), u64>,
    exit_code: i32,
) {
    let counts: BTreeMap<String, u64> = counts
        .iter()
        .map(|((a, s), n)| (format!("{}/{}", a.as_str(), s.as_str()), *n))
        .collect();
    let doc = serde_json::json!({
        "run_id": run_id,
        "command": command,
        "secretport_version": env!("CARGO_PKG_VERSION"),
        "caller_arn": caller.as_ref().map(|c| c.arn.clone()).unwrap_or_default(),
        "account": caller.as_ref().map(|c| c.account.clone()).unwrap_or_default(),
        "region": region,
        "prefix": cfg.target.prefix,
        "config_sha256": cfg.digest,
        "finished": crate::report::now_rfc3339(),
        "exit_code": exit_code,
        "counts": counts,
    });
    let path = report.with_extension("json");
    if let Err(e) = std::fs::write(&path, format!("{doc:#}\n")) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

/// The final JSON Lines object of `--json`: counts by action and status, exit code, summary.
fn print_json_summary(
    run_id: &str,
    command: &str,
    counts: &BTreeMap<(Action, Status), u64>,
    exit_code: i32,
    summary: &str,
) {
    let mut by: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((a, s), n) in counts {
        *by.entry(a.as_str())
            .or_default()
            .entry(s.as_str())
            .or_default() += n;
    }
    let doc = serde_json::json!({ "summary": {
        "run_id": run_id,
        "command": command,
        "counts": by,
        "drift": policy::drift(counts),
        "exit_code": exit_code,
        "text": summary,
    }});
    println!("{doc}");
}

/// The summary table `plan` prints: one line per action and status.
pub fn table(counts: &BTreeMap<(Action, Status), u64>) -> String {
    let mut s = format!("{:<10} {:<8} {:>8}\n", "action", "status", "count");
    for ((a, st), n) in counts {
        s.push_str(&format!("{:<10} {:<8} {:>8}\n", a.as_str(), st.as_str(), n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
            yes: false,
        };
        let q = question(
            mode,
            &caller,
            "eu-west-1",
            "devops",
            &[
                ("create", 3),
                ("rename", 0),
                ("schedule for deletion up to", 2),
            ],
        );
        assert_eq!(
            q,
            "reconcile into AWS account 111122223333, region eu-west-1, prefix devops/: create 3, schedule for deletion up to 2. Proceed?"
        );
        let q = question(mode, &caller, "eu-west-1", "", &[("create", 1)]);
        assert!(q.contains("no prefix (the whole account)"), "{q}");
    }
}
