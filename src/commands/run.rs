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
use crate::config::{Config, JobConfig, LimitsConfig, OnConflict, TargetConfig};
use crate::cost::Cost;
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
use crate::source::{Source, SourceError};
use crate::target::dry::DryRun;
use crate::target::listed::Inventory;
use crate::target::token_key::KeyError;
use crate::target::{CallError, Caller, Target};

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
    /// The source listed nothing, which is almost always a wrong setting: `advice` comes from
    /// the source ([`Source::empty_advice`]) and names what to check for that kind.
    #[error("source: 0 secrets found at {location}: {advice}; or set allow_empty = true in [source] if an empty source is expected")]
    Empty {
        /// Where the listing looked ([`Source::location`]).
        location: String,
        /// What to check, in the source's terms.
        advice: String,
    },
    /// The target's inventory cannot be read.
    #[error("target: {0}")]
    Target(#[from] CallError),
    /// The token key cannot be had.
    #[error("target: {0}")]
    Key(#[from] KeyError),
    /// Naming failed.
    #[error(transparent)]
    Naming(#[from] NamingError),
    /// A replica region is the target's own region (taken from the environment or profile,
    /// so the config check could not see it).
    #[error("target.replica_regions: {0:?} is the target's own region (from the environment or profile); list only the other regions to replicate to")]
    ReplicaIsPrimary(String),
}

impl RunError {
    /// The process exit code: 64 when the configuration (or the environment it names) is
    /// incomplete, so nothing useful could be contacted (no region anywhere, a named env var
    /// unset); 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Client(ClientError::NoRegion) | RunError::ReplicaIsPrimary(_) => exit::USAGE,
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
    /// The summary: one line per job, then the run's total when there are several jobs.
    pub summary: String,
    /// Counts by action and status (all jobs).
    pub counts: BTreeMap<(Action, Status), u64>,
    /// The report file.
    pub report: PathBuf,
    /// Counts per job and calls per quota group, for `--metrics-file` / `--pushgateway`.
    pub stats: crate::metrics::RunStats,
}

/// Opens a job's source.
pub async fn open_source(
    job: &JobConfig,
    limits_cfg: &LimitsConfig,
    limits: &Arc<Limits>,
    policy: RetryPolicy,
) -> Result<Box<dyn Source>, RunError> {
    let cx = crate::source::SourceContext {
        limits: limits.clone(),
        policy,
        timeout: std::time::Duration::from_secs(limits_cfg.timeout_seconds),
        target: &job.target,
    };
    let source = job.source.open(&cx).await.map_err(|e| match e {
        crate::source::OpenError::Client(e) => RunError::Client(e),
        crate::source::OpenError::Source(e) => RunError::Source(e),
    })?;
    Ok(crate::source::split::wrap(
        job,
        limits_cfg.concurrency,
        source,
    ))
}

/// Builds a target's SDK configuration.
pub async fn target_sdk(
    target: &TargetConfig,
    limits_cfg: &LimitsConfig,
) -> Result<aws_config::SdkConfig, ClientError> {
    sdk_config(&Endpoint::of_target(
        target,
        std::time::Duration::from_secs(limits_cfg.timeout_seconds),
    ))
    .await
}

fn prefix_words(prefix: &str) -> String {
    if prefix.is_empty() {
        "no prefix (the whole account)".into()
    } else {
        format!("{prefix}/")
    }
}

/// What one job would write, for the confirmation question.
struct Intent<'a> {
    job: &'a str,
    caller: &'a Result<Caller, CallError>,
    region: &'a str,
    prefix: &'a str,
    counts: Vec<(&'static str, usize)>,
    /// What the new secrets would add to the monthly bill.
    cost: Cost,
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

/// A job between planning and execution.
struct Prepared<'a> {
    job: &'a JobConfig,
    sink: Sink,
    aws: SecretsTarget,
    source: Box<dyn Source>,
    /// Secrets the (filtered) listing held, and entries it could not produce: the prune
    /// safety valve's facts. The listing itself is dropped once planned (the items hold what
    /// they need), so it does not add to the execution's memory.
    listed: usize,
    listing_problems: usize,
    plan: plan::Plan,
    limits: Arc<Limits>,
    caller: Result<Caller, CallError>,
    /// The token key, when the config names one or planning read it (ownership proofs are
    /// verified with it); `None`: the executor reads or creates it on the first write.
    key: Option<TokenDeriver>,
}

/// How one job ended.
struct JobEnd {
    exit_code: i32,
    summary: String,
    /// What the job's new secrets add per month (created, or planned in a dry run).
    cost: Cost,
}

/// Where a job's limiters come from: jobs writing to the same account and region share one
/// [`Limits`] (AWS quotas are per account and region); the account is learnt from STS
/// `GetCallerIdentity`, once per credential set. With one job nothing is shared and no extra
/// call is made.
async fn limiters(
    cfg: &Config,
    sdks: &[Option<aws_config::SdkConfig>],
    shutdown: &Shutdown,
    retry: RetryPolicy,
) -> Vec<(Arc<Limits>, Option<Caller>)> {
    let fresh = || Arc::new(Limits::with_shutdown(&cfg.limits, shutdown));
    if cfg.jobs.len() == 1 {
        return vec![(fresh(), None)];
    }
    let mut accounts: BTreeMap<String, (String, Option<Caller>)> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Arc<Limits>> = BTreeMap::new();
    let mut out = Vec::new();
    for (job, sdk) in cfg.jobs.iter().zip(sdks) {
        let Some(sdk) = sdk else {
            out.push((fresh(), None));
            continue;
        };
        let credential_set = format!("{:?} {:?}", job.target.endpoint_url, job.target.credentials);
        let (account, caller) = match accounts.get(&credential_set) {
            Some(a) => a.clone(),
            None => {
                let probe = SecretsTarget::new(sdk, fresh(), retry);
                let a = match probe.caller().await {
                    Ok(c) => (c.account.clone(), Some(c)),
                    // unknown: a group of its own, never sharing by mistake
                    Err(_) => (format!("unknown-{}", accounts.len()), None),
                };
                accounts.insert(credential_set, a.clone());
                a
            }
        };
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let limits = groups
            .entry((account, region))
            .or_insert_with(fresh)
            .clone();
        out.push((limits, caller));
    }
    out
}

/// Lists, filters and plans one job; the cheap, fatal checks (source authentication, target
/// reachability, an empty listing) happen here, before anything is written anywhere.
async fn prepare<'a>(
    cfg: &'a Config,
    job: &'a JobConfig,
    sdk: Result<aws_config::SdkConfig, ClientError>,
    (limits, known_caller): (Arc<Limits>, Option<Caller>),
    sink: Sink,
    mode: Mode,
) -> Result<Prepared<'a>, (RunError, Sink)> {
    let command = mode.command();
    let retry = RetryPolicy::new(cfg.limits.max_attempts);
    let fatal = |sink: &Sink, what: &str, e: &dyn std::error::Error| {
        let text = crate::error_text::chain(e);
        sink.emit(Row::new("", "", Action::Skip, Status::Failed).error(format!("{what}: {text}")));
    };
    let sdk = match sdk {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "target configuration", &e);
            return Err((e.into(), sink));
        }
    };
    let aws = SecretsTarget::new(&sdk, limits.clone(), retry);
    if let Some(r) = job
        .target
        .replicas
        .iter()
        .find(|r| r.region == aws.region())
    {
        let e = RunError::ReplicaIsPrimary(r.region.clone());
        fatal(&sink, "target configuration", &e);
        return Err((e, sink));
    }
    let source = match open_source(job, &cfg.limits, &limits, retry).await {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "cannot open the source", &e);
            return Err((e, sink));
        }
    };
    let label = job_label(cfg, job);
    eprintln!("{command}{label}: listing the {} source", source.kind());
    let mut listing = match source.list().await {
        Ok(l) => l,
        Err(e) => {
            fatal(&sink, "source listing failed", &e);
            return Err((e.into(), sink));
        }
    };
    let listed = listing.refs.len();
    if !job.filter.is_all() {
        // excluded secrets are never read, planned, nor (see plan::build) orphans
        listing.refs.retain(|r| job.filter.admits(&r.path));
        listing
            .problems
            .retain(|p| p.path.is_empty() || p.line.is_some() || job.filter.admits(&p.path));
        eprintln!(
            "{command}{label}: {} of {listed} source secrets pass the filter ({})",
            listing.refs.len(),
            job.filter.describe()
        );
    }
    if listing.refs.is_empty() && listing.problems.is_empty() && !job.allow_empty {
        let e = RunError::Empty {
            location: source.location(),
            advice: source.empty_advice(),
        };
        fatal(&sink, "source", &e);
        return Err((e, sink));
    }
    let prefix = job.target.prefix.as_str();
    let scope = source.scope();
    // read a page at a time into compact records, each one's standing decided as it arrives
    let inventory = match Inventory::read(&aws, &scope, prefix).await {
        Ok(i) => i,
        Err(e) => {
            fatal(&sink, "target inventory failed", &e);
            return Err((e.into(), sink));
        }
    };
    let key = match ownership_key(job, &aws, &inventory).await {
        Ok(k) => k,
        Err(e) => {
            fatal(&sink, "ownership cannot be verified", &e);
            return Err((e.into(), sink));
        }
    };
    let rules = job.naming_rules();
    // the references move into the plan's items; the problems are reported below
    let problems = std::mem::take(&mut listing.problems);
    let passed = listing.refs.len();
    let plan = match plan::build(PlanInput {
        listing,
        scope: &scope,
        rules: &rules,
        overrides: &job.naming.overrides,
        inventory: inventory.secrets(),
        on_conflict: job.target.on_conflict,
        filter: &job.filter,
        key: key.as_ref(),
        adopt: mode.adopt(),
    }) {
        Ok(p) => p,
        Err(e) => return Err((e.into(), sink)),
    };
    eprintln!(
        "{command}{label}: {} source secrets ({} problems) in {}; {} target secrets under {}: {} owned by this job, {} managed for other scopes (left alone)",
        passed,
        problems.len(),
        scope.describe(),
        inventory.len(),
        prefix_words(prefix),
        plan.owned_live,
        plan.foreign,
    );
    // the plan holds what it needs of the inventory; the rest is not kept for the whole run
    drop(inventory);
    for p in &problems {
        // the error names its line even where the path column already says "line N": the
        // error column is what gets read on its own (ListProblem::described never doubles it)
        let error = match p.line {
            Some(l) if !p.error.starts_with("line ") => format!("line {l}: {}", p.error),
            _ => p.error.clone(),
        };
        sink.emit(Row::new(&p.path, "", Action::Skip, Status::Failed).error(error));
    }
    for u in &plan.unverified {
        let mut row = Row::new(&u.path, u.secret.name(), Action::Conflict, Status::Skipped)
            .error(plan::unverified_words(u.why));
        row.target_arn = u.secret.arn();
        sink.emit(row);
    }
    let caller = match known_caller {
        Some(c) => Ok(c),
        None => aws.caller().await,
    };
    Ok(Prepared {
        job,
        sink,
        aws,
        source,
        listed: passed,
        listing_problems: problems.len(),
        plan,
        limits,
        caller,
        key,
    })
}

/// The key made from `[target] token_key_env`, when the config names one.
fn configured_key(job: &JobConfig) -> Option<TokenDeriver> {
    job.target.token_key.as_ref().map(|key| {
        use secrecy::ExposeSecret;
        TokenDeriver::keyed(zeroize::Zeroizing::new(
            key.value.expose_secret().as_bytes().to_vec(),
        ))
    })
}

/// The key ownership proofs are verified with: the configured one (no read), else the
/// account's key secret, read once when the inventory holds any managed secret (a target with
/// none needs no key to plan). `None`: there is no key, so no secret is proven ours. A key
/// that exists but cannot be read stops the job: without it every managed secret would look
/// unverified, which is never what the user has.
async fn ownership_key(
    job: &JobConfig,
    aws: &SecretsTarget,
    inventory: &Inventory,
) -> Result<Option<TokenDeriver>, KeyError> {
    if job.target.token_key.is_none() && !inventory.any_managed() {
        return Ok(None);
    }
    verification_key(job, aws).await
}

/// The key ownership proofs of `job` are verified with: `[target] token_key_env` (no read),
/// else the account's key secret (one read; `None` when it does not exist).
pub(crate) async fn verification_key(
    job: &JobConfig,
    aws: &dyn Target,
) -> Result<Option<TokenDeriver>, KeyError> {
    match configured_key(job) {
        Some(k) => Ok(Some(k)),
        None => crate::target::token_key::load(aws).await,
    }
}

/// The first two planned jobs that would both claim a source secret in one account, region
/// and prefix (`overlap::find`, fed with every job's filtered listing as identities).
fn overlapping(
    prepared: &[Result<Prepared<'_>, (RunError, Sink)>],
) -> Option<crate::overlap::Overlap> {
    let ready: Vec<&Prepared<'_>> = prepared.iter().filter_map(|p| p.as_ref().ok()).collect();
    if ready.len() < 2 {
        return None;
    }
    let scopes: Vec<crate::identity::Scope> = ready.iter().map(|p| p.source.scope()).collect();
    let claims = ready
        .iter()
        .zip(&scopes)
        .map(|(p, scope)| crate::overlap::Claim {
            job: p.job.name.as_str(),
            place: crate::overlap::Place {
                account: p.caller.as_ref().map_or("unknown", |c| c.account.as_str()),
                region: p.aws.region(),
                prefix: p.job.target.prefix.as_str(),
            },
            identities: p.plan.items.iter().map(move |i| i.identity(scope)),
        })
        .collect();
    crate::overlap::find(claims)
}

/// ` (job NAME)` when the config has several jobs, for messages; empty otherwise.
fn job_label(cfg: &Config, job: &JobConfig) -> String {
    if cfg.jobs.len() > 1 {
        format!(" (job {})", job.name)
    } else {
        String::new()
    }
}

/// The counts the confirmation question shows for one job.
fn intent_counts(mode: Mode, plan: &plan::Plan) -> Vec<(&'static str, usize)> {
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
    let prune_asked = matches!(mode, Mode::Reconcile { prune: true, .. }) && !mode.adopt();
    let deletes = if prune_asked { plan.orphans.len() } else { 0 };
    let adopts = count(|i| i.decision == Decision::Adopt);
    vec![
        ("create", creates),
        ("rename", renames),
        ("adopt (write ownership proofs on)", adopts),
        ("update where the value differs, of", compares),
        ("restore", restores),
        ("schedule for deletion up to", deletes),
    ]
}

/// What a job's planned new secrets (creates and renames) and their replicas would add per
/// month, for the confirmation question.
fn planned_cost(cfg: &Config, p: &Prepared<'_>) -> Cost {
    let new = p
        .plan
        .items
        .iter()
        .filter(|i| i.decision == Decision::Create)
        .count();
    Cost::of(
        new as u64,
        p.job.target.replicas.len(),
        cfg.cost.price_per_secret_month,
    )
}

/// New secrets a job created (or, in a dry run, would create): create and rename rows.
fn new_secrets(counts: &BTreeMap<(Action, Status), u64>) -> u64 {
    counts
        .iter()
        .filter(|((a, s), _)| {
            matches!(a, Action::Create | Action::Rename)
                && matches!(s, Status::Ok | Status::Planned)
        })
        .map(|(_, n)| n)
        .sum()
}

/// Counts per job (config order) and calls per quota group over the run's distinct limiters.
fn run_stats(ready: &[Prepared<'_>], ends: &[(String, JobEnd)]) -> crate::metrics::RunStats {
    use crate::metrics::{CallTally, JobTally, RunStats};
    let mut names: Vec<&str> = ends.iter().map(|(n, _)| n.as_str()).collect();
    for p in ready {
        if !names.contains(&p.job.name.as_str()) {
            names.push(&p.job.name);
        }
    }
    let jobs = names
        .into_iter()
        .map(|name| JobTally {
            name: name.to_owned(),
            counts: ready
                .iter()
                .find(|p| p.job.name == name)
                .map(|p| p.sink.counts())
                .unwrap_or_default(),
        })
        .collect();
    let mut seen: Vec<&Arc<Limits>> = Vec::new();
    let mut calls: Vec<CallTally> = Vec::new();
    for p in ready {
        if seen.iter().any(|l| Arc::ptr_eq(l, &p.limits)) {
            continue;
        }
        seen.push(&p.limits);
        for l in p.limits.all() {
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

/// `on_conflict = fail` with conflicts: the job stops before any write, every item reported.
fn stop_on_conflicts(p: &Prepared<'_>, command: &str) -> Option<JobEnd> {
    let conflicts = p.plan.conflicts().count();
    if p.job.target.on_conflict != OnConflict::Fail || conflicts == 0 {
        return None;
    }
    for item in &p.plan.items {
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
        p.sink
            .emit(Row::new(&item.source.path, &item.target_name(), action, status).error(why));
    }
    Some(JobEnd {
        exit_code: exit::FAILED,
        summary: format!(
            "{command}: stopped before any write: {conflicts} conflict(s) under on_conflict = fail; report {}",
            p.sink.report_path().display()
        ),
        cost: Cost::default(),
    })
}

/// Executes one planned job: items, then orphans under the prune policy.
async fn execute(
    cfg: &Config,
    p: &Prepared<'_>,
    mode: Mode,
    shutdown: &Shutdown,
    progress: &Progress,
    started: Instant,
) -> JobEnd {
    let dry_run = mode.dry_run();
    let dry = DryRun::new(&p.aws);
    let target: &dyn Target = if dry_run { &dry } else { &p.aws };
    let job = p.job;
    let tokens = p.key.clone();
    let settings = Settings {
        rules: decide::Rules {
            restore_deleted: mode.restore_deleted(),
            copy_metadata: job.source.copy_metadata(),
            config_tags: job.target.tags.clone(),
            prefix: job.target.prefix.clone(),
            replicas: job.target.replicas.clone(),
        },
        kms_key_id: job.target.kms_key_id.clone(),
        concurrency: cfg.limits.concurrency,
        policy: job.naming.policy,
        tokens,
    };
    let exec = Executor::new(
        target,
        p.source.as_ref(),
        &settings,
        &p.sink,
        shutdown,
        progress,
    );
    let write_start = Instant::now();
    exec.run_all(&p.plan.items).await;

    let mut orphans = p.plan.orphans.clone();
    orphans.extend(exec.take_gone());
    orphans.sort_by(|a, b| a.secret.name().cmp(b.secret.name()));
    let interrupted = shutdown.is_triggered();
    let prune = policy::prune(&PruneFacts {
        prune: matches!(mode, Mode::Reconcile { prune: true, .. }),
        force: matches!(
            mode,
            Mode::Reconcile {
                force_prune: true,
                ..
            }
        ),
        listing_problems: p.listing_problems,
        listed: p.listed,
        owned_live: p.plan.owned_live,
        orphans: orphans.len(),
        max_fraction: cfg.reconcile.max_prune_fraction,
        window_days: cfg.reconcile.recovery_window_days,
        interrupted,
        adopting: mode.adopt(),
    });
    let prune = prune.map_err(|r: Refusal| r.words());
    exec.orphans(&orphans, prune).await;
    let counts = p.sink.counts();
    let cost = Cost::of(
        new_secrets(&counts),
        job.target.replicas.len(),
        cfg.cost.price_per_secret_month,
    );
    JobEnd {
        exit_code: policy::exit_code(mode, &counts, interrupted),
        summary: summary_line(
            mode,
            &p.plan,
            &counts,
            &p.sink,
            (started, write_start),
            interrupted,
            &cost,
        ),
        cost,
    }
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
    let run_id = report.run_id().to_owned();
    let first = cfg.jobs.first().map_or("default", |j| j.name.as_str());
    let sink = Sink::new(report, dry_run, first);
    let retry = RetryPolicy::new(cfg.limits.max_attempts);

    let sdks: Vec<Result<aws_config::SdkConfig, ClientError>> =
        futures::future::join_all(cfg.jobs.iter().map(|j| target_sdk(&j.target, &cfg.limits)))
            .await;
    let usable: Vec<Option<aws_config::SdkConfig>> =
        sdks.iter().map(|s| s.as_ref().ok().cloned()).collect();
    let limits = limiters(cfg, &usable, &shutdown, retry).await;
    let prepared =
        futures::future::join_all(cfg.jobs.iter().zip(sdks).zip(limits).map(
            |((job, sdk), limits)| prepare(cfg, job, sdk, limits, sink.for_job(&job.name), mode),
        ))
        .await;

    // two jobs that would both write one source secret into one place: refused before any
    // write, like a config error
    if let Some(o) = overlapping(&prepared) {
        let why = o.to_string();
        sink.emit(Row::new(o.example.path(), "", Action::Skip, Status::Failed).error(why.clone()));
        if let Some(e) = sink.take_write_error() {
            return Err(RunError::Report(e));
        }
        return Ok(Outcome {
            exit_code: exit::USAGE,
            summary: format!(
                "{command}: refused: {why}; report {}",
                sink.report_path().display()
            ),
            counts: sink.totals(),
            report: sink.report_path(),
            // refused before any job ran: no job counts or calls to report
            stats: crate::metrics::RunStats::default(),
        });
    }

    let mut ends: Vec<(String, JobEnd)> = Vec::new();
    let mut ready: Vec<Prepared<'_>> = Vec::new();
    for (job, p) in cfg.jobs.iter().zip(prepared) {
        match p {
            Ok(p) => match stop_on_conflicts(&p, command) {
                Some(end) => ends.push((job.name.clone(), end)),
                None => ready.push(p),
            },
            Err((e, job_sink)) if cfg.jobs.len() > 1 => {
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
                drop(job_sink);
            }
            Err((e, _)) => return Err(e),
        }
    }

    if !dry_run && !mode.yes() {
        let intents: Vec<Intent<'_>> = ready
            .iter()
            .map(|p| Intent {
                job: &p.job.name,
                caller: &p.caller,
                region: p.aws.region(),
                prefix: &p.job.target.prefix,
                counts: intent_counts(mode, &p.plan),
                cost: planned_cost(cfg, p),
            })
            .collect();
        if intents.iter().any(|i| i.counts.iter().any(|(_, n)| *n > 0)) {
            let answer = confirm.confirm(&question(mode, &intents));
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
                    counts: sink.totals(),
                    report: sink.report_path(),
                    stats: run_stats(&ready, &ends),
                });
            }
        }
    }

    let total: usize = ready
        .iter()
        .map(|p| p.plan.items.len() + p.plan.orphans.len())
        .sum();
    let progress = Progress::new(command, total as u64);
    let progress = if dry_run {
        progress
    } else {
        // the pace of every distinct limiter the jobs write through
        let mut paces: Vec<Arc<Limits>> = Vec::new();
        for p in &ready {
            if !paces.iter().any(|l| Arc::ptr_eq(l, &p.limits)) {
                paces.push(p.limits.clone());
            }
        }
        progress.with_pace(Box::new(move || {
            Some(paces.iter().map(|l| l.write.current_rate()).sum())
        }))
    };
    let executed = futures::future::join_all(
        ready
            .iter()
            .map(|p| execute(cfg, p, mode, &shutdown, &progress, started)),
    )
    .await;
    progress.finish();
    for (p, end) in ready.iter().zip(executed) {
        ends.push((p.job.name.clone(), end));
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
        lines.push(total_line(mode, &counts, ends.len(), started, &sink));
        lines.join("\n")
    };
    let jobs: Vec<JobRecord<'_>> = ends
        .iter()
        .map(|(name, end)| {
            let p = ready.iter().find(|p| &p.job.name == name);
            JobRecord {
                name,
                exit_code: end.exit_code,
                caller: p.map(|p| &p.caller),
                region: p.map_or("", |p| p.aws.region()),
                prefix: cfg.job(name).map_or("", |j| j.target.prefix.as_str()),
                counts: p.map(|p| p.sink.counts()).unwrap_or_default(),
                summary: &end.summary,
                cost: end.cost,
            }
        })
        .collect();
    if !report_to_stdout {
        write_sidecar(
            &sink.report_path(),
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
        report: sink.report_path(),
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
    counts: BTreeMap<(Action, Status), u64>,
    summary: &'a str,
    cost: Cost,
}

/// The run's total over several jobs.
fn total_line(
    mode: Mode,
    counts: &BTreeMap<(Action, Status), u64>,
    jobs: usize,
    started: Instant,
    sink: &Sink,
) -> String {
    let by = |a: Action| -> u64 {
        counts
            .iter()
            .filter(|((x, s), _)| *x == a && matches!(s, Status::Ok | Status::Planned))
            .map(|(_, n)| n)
            .sum()
    };
    let failed: u64 = counts
        .iter()
        .filter(|((_, s), _)| *s == Status::Failed)
        .map(|(_, n)| n)
        .sum();
    let conflicts: u64 = counts
        .iter()
        .filter(|((a, s), _)| *a == Action::Conflict && *s != Status::Failed)
        .map(|(_, n)| n)
        .sum();
    let verb = if mode.dry_run() { "would " } else { "" };
    format!(
        "{}: total of {jobs} jobs: {}; {:.1}s; report {}",
        mode.command(),
        shown_counts(
            &[("failed".into(), failed), ("conflicts".into(), conflicts)],
            &[
                (format!("{verb}create"), by(Action::Create)),
                (format!("{verb}rename"), by(Action::Rename)),
                (format!("{verb}update"), by(Action::Update)),
                ("unchanged".into(), by(Action::Unchanged)),
            ],
        ),
        started.elapsed().as_secs_f64(),
        sink.report_path().display()
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

fn summary_line(
    mode: Mode,
    plan: &plan::Plan,
    counts: &BTreeMap<(Action, Status), u64>,
    sink: &Sink,
    (started, write_start): (Instant, Instant),
    interrupted: bool,
    cost: &Cost,
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
            *s == Status::Skipped
                && !matches!(a, Action::Conflict | Action::Orphan | Action::Replicate)
        })
        .map(|(_, n)| n)
        .sum();
    let failed = sink.failed();
    let verb = if dry_run { "would " } else { "" };
    let mut summary = format!(
        "{}: {} secrets: {}",
        mode.command(),
        plan.items.len(),
        shown_counts(
            &[
                ("failed".into(), failed),
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
    let replica_problems = sink.failed_replicas.load(Ordering::Relaxed);
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
    if plan.foreign > 0 {
        summary.push_str(&format!(
            "; {} secret(s) of other scopes left alone",
            plan.foreign
        ));
    }
    if let Some(words) = cost.words(if dry_run { "would add" } else { "adds" }) {
        summary.push_str(&format!("; {words}"));
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

fn counts_by_key(counts: &BTreeMap<(Action, Status), u64>) -> BTreeMap<String, u64> {
    counts
        .iter()
        .map(|((a, s), n)| (format!("{}/{}", a.as_str(), s.as_str()), *n))
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
    counts: &BTreeMap<(Action, Status), u64>,
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

fn nested_counts(
    counts: &BTreeMap<(Action, Status), u64>,
) -> BTreeMap<&'static str, BTreeMap<&'static str, u64>> {
    let mut by: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((a, s), n) in counts {
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
    counts: &BTreeMap<(Action, Status), u64>,
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
