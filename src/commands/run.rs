//! `plan`, `migrate` and `reconcile`: one pipeline, three interpreters of the same plan.
//!
//! list the source → take the target's inventory → plan (pure) → read current values in bulk →
//! execute (or dry-run) every item → handle orphans (reconcile) → summary. The order is chosen so
//! that the cheap, fatal checks (source authentication, target reachability) come before any
//! write, and a wrong Vault token writes nothing at all.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::aws::client::{sdk_config, ClientError, Endpoint};
use crate::aws::secrets::{CallError, SecretsTarget};
use crate::aws::token::TokenDeriver;
use crate::config::{Config, OnConflict, SourceConfig};
use crate::executor::{Executor, Settings, Sink};
use crate::exit;
use crate::limits::Limits;
use crate::naming::NamingError;
use crate::plan::{self, Decision, PlanInput};
use crate::progress::Progress;
use crate::report::{Action, Report, Row, Status};
use crate::retry::RetryPolicy;
use crate::source::file::FileSource;
use crate::source::{Source, SourceError};

/// Which command is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dry run of `migrate`.
    Plan,
    /// Create and update.
    Migrate {
        /// Don't ask for confirmation.
        yes: bool,
        /// Restore our secrets scheduled for deletion.
        restore_deleted: bool,
    },
    /// Create, update, retag, report orphans; `check` writes nothing; `prune` deletes orphans.
    Reconcile {
        /// Read only; exit 2 on drift.
        check: bool,
        /// Schedule orphans for deletion.
        prune: bool,
        /// Override the prune safety valve.
        force_prune: bool,
        /// Restore our secrets scheduled for deletion.
        restore_deleted: bool,
    },
}

impl Mode {
    /// The command name (report file name, `command` column).
    pub fn command(self) -> &'static str {
        match self {
            Mode::Plan => "plan",
            Mode::Migrate { .. } => "migrate",
            Mode::Reconcile { .. } => "reconcile",
        }
    }

    fn dry_run(self) -> bool {
        matches!(self, Mode::Plan | Mode::Reconcile { check: true, .. })
    }
}

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
    /// The target's inventory cannot be read.
    #[error("target: {0}")]
    Target(#[from] CallError),
    /// Naming failed.
    #[error(transparent)]
    Naming(#[from] NamingError),
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
        SourceConfig::Vault(v) => Box::new(crate::source::vault::VaultSource::connect(v).await?),
        SourceConfig::Kms(k) => {
            let conf = crate::source::kms::kms_sdk_config(k, &cfg.target).await?;
            Box::new(crate::source::kms::KmsSource::open(
                &k.file,
                aws_sdk_kms::Client::new(&conf),
                limits.clone(),
                policy,
            )?)
        }
        SourceConfig::Ssm(c) => Box::new(
            crate::source::ssm::SsmSource::open(c, &cfg.target, limits.clone(), policy).await?,
        ),
        SourceConfig::Sops(c) => Box::new(
            crate::source::sops::SopsSource::open(c, &cfg.target, limits.clone(), policy).await?,
        ),
        SourceConfig::Credstash(c) => Box::new(
            crate::source::credstash::CredstashSource::open(c, &cfg.target, limits.clone(), policy)
                .await?,
        ),
    })
}

/// Builds the target client.
pub async fn target_sdk(cfg: &Config) -> Result<aws_config::SdkConfig, ClientError> {
    sdk_config(&Endpoint {
        region: cfg.target.region.as_deref(),
        endpoint_url: cfg.target.endpoint_url.as_deref(),
        credentials: &cfg.target.credentials,
        key: "target.credentials",
    })
    .await
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Runs `plan`, `migrate` or `reconcile`.
pub async fn run(
    cfg: &Config,
    mode: Mode,
    report_path: Option<&Path>,
) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let dry_run = mode.dry_run();
    let report = Report::create(&cfg.report.dir, mode.command(), report_path)?;
    let sink = Sink::new(report, dry_run);
    let limits = Arc::new(Limits::new(&cfg.limits));
    let policy = RetryPolicy::new(cfg.limits.max_attempts);
    let sdk = target_sdk(cfg).await?;
    let target = SecretsTarget::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        limits.clone(),
        policy,
    );

    let fatal = |sink: &Sink, what: &str, e: &dyn std::error::Error| {
        let text = crate::error_text::chain(e);
        sink.emit(Row::new("", "", Action::Skip, Status::Failed).error(format!("{what}: {text}")));
    };
    let source = match open_source(cfg, &limits, policy).await {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "cannot open the source", &e);
            return Err(e);
        }
    };
    eprintln!("{}: listing the {} source", mode.command(), source.kind());
    let listing = match source.list().await {
        Ok(l) => l,
        Err(e) => {
            fatal(&sink, "source listing failed", &e);
            return Err(e.into());
        }
    };
    let prefix = cfg.target.prefix.as_deref();
    let inventory = match target.inventory(prefix).await {
        Ok(i) => i,
        Err(e) => {
            fatal(&sink, "target inventory failed", &e);
            return Err(e.into());
        }
    };
    eprintln!(
        "{}: {} source secrets ({} problems), {} existing target secrets under {}",
        mode.command(),
        listing.refs.len(),
        listing.problems.len(),
        inventory.len(),
        prefix
            .map(|p| format!("{p}/"))
            .unwrap_or_else(|| "the account".into())
    );
    let identities: Vec<String> = listing.refs.iter().map(|r| source.identity(r)).collect();
    let rules = cfg.naming_rules();
    let plan = plan::build(&PlanInput {
        listing: &listing,
        identities: &identities,
        rules: &rules,
        overrides: &cfg.naming.overrides,
        inventory: &inventory,
        on_conflict: cfg.target.on_conflict,
    })?;

    for p in &listing.problems {
        let mut row = Row::new(&p.path, "", Action::Skip, Status::Failed).error(p.error.clone());
        if let Some(l) = p.line {
            row.error = format!("line {l}: {}", p.error);
        }
        sink.emit(row);
    }

    let writes = !dry_run;
    let conflicts = plan.conflicts().count();
    if writes && cfg.target.on_conflict == OnConflict::Fail && conflicts > 0 {
        for item in &plan.items {
            let (action, status, why) = match item.decision {
                Decision::Conflict { .. } => (
                    Action::Conflict,
                    Status::Failed,
                    "exists and is not managed by secretport (on_conflict = fail)".to_owned(),
                ),
                _ => (
                    Action::Skip,
                    Status::Skipped,
                    format!("not started: on_conflict = fail and {conflicts} conflict(s) found"),
                ),
            };
            sink.emit(Row::new(&item.source.path, &item.mapping.target, action, status).error(why));
        }
        let counts = sink.counts();
        return Ok(Outcome {
            exit_code: exit::FAILED,
            summary: format!(
                "{}: stopped before any write: {conflicts} conflict(s) under on_conflict = fail; report {}",
                mode.command(),
                sink.report_path().display()
            ),
            counts,
            report: sink.report_path(),
        });
    }

    if let Mode::Migrate { yes: false, .. } = mode {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            let creates = plan
                .items
                .iter()
                .filter(|i| i.decision == Decision::Create)
                .count();
            let q = format!(
                "migrate {} secrets ({creates} new names, {} existing) into {} under {}?",
                plan.items.len(),
                plan.items.len() - creates,
                cfg.target.region.as_deref().unwrap_or("the default region"),
                prefix
                    .map(|p| format!("{p}/"))
                    .unwrap_or_else(|| "no prefix".into())
            );
            if !confirm(&q) {
                sink.emit(
                    Row::new("", "", Action::Skip, Status::Skipped)
                        .error("declined at the confirmation prompt"),
                );
                return Ok(Outcome {
                    exit_code: exit::FAILED,
                    summary: "migrate: declined; nothing written".into(),
                    counts: sink.counts(),
                    report: sink.report_path(),
                });
            }
        }
    }

    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.store(true, Ordering::Relaxed);
                eprintln!("interrupted: finishing requests in flight, then writing the report");
            }
        });
    }
    let (restore_deleted, reconcile) = match mode {
        Mode::Plan => (false, None),
        Mode::Migrate {
            restore_deleted, ..
        } => (restore_deleted, None),
        Mode::Reconcile {
            prune,
            force_prune,
            restore_deleted,
            ..
        } => (restore_deleted, Some((prune, force_prune))),
    };
    let settings = Settings {
        dry_run,
        restore_deleted,
        kms_key_id: cfg.target.kms_key_id.clone(),
        config_tags: cfg.target.tags.clone(),
        copy_metadata: cfg.source.copy_metadata(),
        concurrency: cfg.limits.concurrency,
        policy: cfg.naming.policy,
        tokens: match &cfg.target.token_key_env {
            // Validated (set, long enough) when the config was loaded.
            Some(name) => TokenDeriver::keyed(zeroize::Zeroizing::new(
                std::env::var(name).unwrap_or_default().into_bytes(),
            )),
            None => TokenDeriver::unkeyed(),
        },
    };
    let total = plan.items.len()
        + if reconcile.is_some() {
            plan.orphans.len()
        } else {
            0
        };
    let progress = Progress::new(mode.command(), total as u64);
    let exec = Executor {
        target: &target,
        source: source.as_ref(),
        settings: &settings,
        sink: &sink,
        cancel: &cancel,
        progress: &progress,
    };
    let write_start = Instant::now();
    let pre = exec.prefetch(&plan.items).await;
    exec.run(&plan.items, &pre).await;

    if let Some((prune, force)) = reconcile {
        let managed = inventory
            .iter()
            .filter(|s| s.is_managed() && s.deleted_date.is_none())
            .count();
        let allowed = (managed as f64 * cfg.reconcile.max_prune_fraction).floor() as usize;
        let decision = if !prune {
            Err("source is gone; run reconcile --prune to schedule its deletion".to_owned())
        } else if !listing.is_complete() {
            Err(format!(
                "source is gone from the listing, but the listing was incomplete ({} problem(s)): nothing is pruned",
                listing.problems.len()
            ))
        } else if cancel.load(Ordering::Relaxed) {
            Err("interrupted: nothing pruned".to_owned())
        } else if plan.orphans.len() > allowed && !force {
            Err(format!(
                "prune refused: {} orphans of {managed} managed secrets exceeds max_prune_fraction {} (limit {allowed}); rerun with --force-prune if this is intended",
                plan.orphans.len(),
                cfg.reconcile.max_prune_fraction
            ))
        } else {
            Ok(cfg.reconcile.recovery_window_days)
        };
        exec.orphans(&plan.orphans, decision).await;
    }
    progress.finish();
    if let Some(e) = sink.take_write_error() {
        return Err(RunError::Report(e));
    }

    let counts = sink.counts();
    let elapsed = started.elapsed().as_secs_f64();
    let n = |a: Action| -> u64 {
        counts
            .iter()
            .filter(|((x, s), _)| *x == a && *s != Status::Failed)
            .map(|(_, n)| n)
            .sum()
    };
    let failed = sink.failed();
    let writes_done = sink.writes.load(Ordering::Relaxed);
    let write_secs = write_start.elapsed().as_secs_f64().max(1e-3);
    let drift: u64 = counts
        .iter()
        .filter(|((a, s), _)| {
            *s != Status::Failed
                && matches!(
                    a,
                    Action::Create
                        | Action::Update
                        | Action::Retag
                        | Action::Conflict
                        | Action::Orphan
                        | Action::Delete
                        | Action::Restore
                )
        })
        .map(|(_, n)| n)
        .sum();
    let interrupted = cancel.load(Ordering::Relaxed);
    let exit_code = if failed > 0 || interrupted {
        exit::FAILED
    } else if matches!(mode, Mode::Reconcile { check: true, .. }) && drift > 0 {
        exit::DRIFT
    } else {
        exit::OK
    };
    let verb = if dry_run { "would " } else { "" };
    let mut summary = format!(
        "{}: {} secrets: {verb}create {}, {verb}update {}, unchanged {}, {verb}retag {}, conflicts {}, skipped {}, failed {}",
        mode.command(),
        plan.items.len(),
        n(Action::Create),
        n(Action::Update),
        n(Action::Unchanged),
        n(Action::Retag),
        n(Action::Conflict),
        n(Action::Skip),
        failed
    );
    if reconcile.is_some() {
        summary.push_str(&format!(
            ", orphans {}, {verb}delete {}",
            n(Action::Orphan),
            n(Action::Delete)
        ));
        if matches!(mode, Mode::Reconcile { check: true, .. }) {
            summary.push_str(if drift > 0 { "; DRIFT" } else { "; in sync" });
        }
    }
    let unread = sink.unread.load(Ordering::Relaxed);
    if unread > 0 {
        summary.push_str(&format!(
            "; {unread} value(s) unread (no read access): their size is unchecked, and for existing secrets update vs unchanged is undecided"
        ));
    }
    summary.push_str(&format!("; {elapsed:.1}s"));
    if writes_done > 0 {
        summary.push_str(&format!(
            ", {writes_done} writes at {:.1}/s",
            writes_done as f64 / write_secs
        ));
    }
    if interrupted {
        summary.push_str("; INTERRUPTED");
    }
    summary.push_str(&format!("; report {}", sink.report_path().display()));
    Ok(Outcome {
        exit_code,
        summary,
        counts,
        report: sink.report_path(),
    })
}

/// The summary table `plan` prints: one line per action and status.
pub fn table(counts: &BTreeMap<(Action, Status), u64>) -> String {
    let mut s = format!("{:<10} {:<8} {:>8}\n", "action", "status", "count");
    for ((a, st), n) in counts {
        s.push_str(&format!("{:<10} {:<8} {:>8}\n", a.as_str(), st.as_str(), n));
    }
    s
}
