//! Everything before a job's first write: where its target and limiters come from
//! ([`connect`]), its source ([`open_source`]), and its plan ([`prepare`], [`plan_job`]).
//!
//! list the source → filter → take the target's inventory → load the ownership key → plan
//! (pure, [`plan::build`]). The cheap, fatal checks (target configuration, source
//! authentication, an empty listing, an unreadable inventory or key) happen here, so a job that
//! cannot work stops before anything is written anywhere; each such stop is also a `failed`
//! row in the report. Jobs writing to the same account and region share one [`Limits`] (AWS
//! quotas are per account and region), grouped by typed keys, never by formatted text.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Event, Events, RunError};
use crate::aws::client::{sdk_config, ClientError, Endpoint};
use crate::aws::secrets::SecretsTarget;
use crate::config::{Config, Credentials, JobConfig, LimitsConfig, OnConflict, TargetConfig};
use crate::cost::Cost;
use crate::identity::token::TokenDeriver;
use crate::identity::Scope;
use crate::limits::Limits;
use crate::plan::{self, Decision, PlanInput};
use crate::policy::Mode;
use crate::report::{Action, Row, Sink, Status};
use crate::retry::RetryPolicy;
use crate::shutdown::Shutdown;
use crate::source::Source;
use crate::target::listed::Inventory;
use crate::target::token_key::KeyError;
use crate::target::{CallError, Caller, Target};

/// Opens a job's source.
pub(crate) async fn open_source(
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
pub(crate) async fn target_sdk(
    target: &TargetConfig,
    limits_cfg: &LimitsConfig,
) -> Result<aws_config::SdkConfig, ClientError> {
    sdk_config(&Endpoint::of_target(
        target,
        std::time::Duration::from_secs(limits_cfg.timeout_seconds),
    ))
    .await
}

/// One job's way to AWS: its Secrets Manager target (or why it has none), the limiters it
/// shares with the jobs writing to the same account and region, and the caller when grouping
/// already asked STS.
pub(crate) struct Link {
    target: Result<SecretsTarget, ClientError>,
    limits: Arc<Limits>,
    caller: Option<Caller>,
}

/// The credentials a target is reached with: jobs with equal ones are one caller, asked once.
#[derive(PartialEq)]
struct CredentialSet<'a> {
    endpoint_url: Option<&'a str>,
    credentials: &'a Credentials,
}

/// An AWS account, as far as it could be learnt.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Account {
    /// From STS `GetCallerIdentity`.
    Known(String),
    /// STS did not answer: the n-th such credential set, a group of its own, never sharing
    /// limiters by mistake.
    Unknown(usize),
}

/// What AWS quotas are per: one limiter group each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct QuotaScope {
    account: Account,
    region: String,
}

/// Every job's [`Link`], in config order. With one job nothing is shared and no extra call is
/// made; with several, the account is learnt from STS `GetCallerIdentity`, once per credential
/// set, and jobs of one account and region share one [`Limits`].
pub(crate) async fn connect(cfg: &Config, shutdown: &Shutdown) -> Vec<Link> {
    let retry = RetryPolicy::new(cfg.limits.max_attempts);
    let sdks: Vec<Result<aws_config::SdkConfig, ClientError>> =
        futures::future::join_all(cfg.jobs.iter().map(|j| target_sdk(&j.target, &cfg.limits)))
            .await;
    let fresh = || Arc::new(Limits::with_shutdown(&cfg.limits, shutdown));
    let mut callers: Vec<(CredentialSet<'_>, Account, Option<Caller>)> = Vec::new();
    let mut groups: BTreeMap<QuotaScope, Arc<Limits>> = BTreeMap::new();
    let mut links = Vec::with_capacity(sdks.len());
    for (job, sdk) in cfg.jobs.iter().zip(sdks) {
        let sdk = match sdk {
            Ok(sdk) => sdk,
            Err(e) => {
                links.push(Link {
                    target: Err(e),
                    limits: fresh(),
                    caller: None,
                });
                continue;
            }
        };
        if cfg.jobs.len() == 1 {
            let limits = fresh();
            links.push(Link {
                target: Ok(SecretsTarget::new(&sdk, limits.clone(), retry)),
                limits,
                caller: None,
            });
            continue;
        }
        let set = CredentialSet {
            endpoint_url: job.target.endpoint_url.as_deref(),
            credentials: &job.target.credentials,
        };
        let (account, caller) = match callers.iter().find(|(s, _, _)| *s == set) {
            Some((_, account, caller)) => (account.clone(), caller.clone()),
            None => {
                let probe = SecretsTarget::new(&sdk, fresh(), retry);
                let (account, caller) = match probe.caller().await {
                    Ok(c) => (Account::Known(c.account.clone()), Some(c)),
                    Err(_) => (Account::Unknown(callers.len()), None),
                };
                callers.push((set, account.clone(), caller.clone()));
                (account, caller)
            }
        };
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let limits = groups
            .entry(QuotaScope { account, region })
            .or_insert_with(fresh)
            .clone();
        links.push(Link {
            target: Ok(SecretsTarget::new(&sdk, limits.clone(), retry)),
            limits,
            caller,
        });
    }
    links
}

impl Link {
    /// Prepares `job` over this link ([`prepare`]); a target that could not be configured is
    /// the job's fatal error.
    pub(crate) async fn prepare<'a>(
        &'a self,
        cfg: &'a Config,
        job: &'a JobConfig,
        sink: Sink,
        mode: Mode,
        events: &dyn Events,
    ) -> Result<PreparedJob<'a>, RunError> {
        let target = match &self.target {
            Ok(t) => t,
            Err(e) => {
                fatal(&sink, "target configuration", e);
                return Err(e.clone().into());
            }
        };
        let input = JobInput {
            cfg,
            job,
            target,
            limits: self.limits.clone(),
            caller: self.caller.clone(),
        };
        prepare(input, sink, mode, events).await
    }
}

/// What a job runs with.
pub struct JobInput<'a> {
    /// The config (limits, cost, reconcile settings).
    pub cfg: &'a Config,
    /// The job.
    pub job: &'a JobConfig,
    /// Its target: AWS Secrets Manager, or a test's or bench's in-memory one.
    pub target: &'a dyn Target,
    /// The limiters its source and target calls go through.
    pub limits: Arc<Limits>,
    /// The caller, when already known.
    pub caller: Option<Caller>,
}

/// A job between planning and execution.
pub struct PreparedJob<'a> {
    pub(super) cfg: &'a Config,
    pub(super) job: &'a JobConfig,
    pub(super) sink: Sink,
    pub(super) target: &'a dyn Target,
    pub(super) source: Box<dyn Source + 'a>,
    /// Secrets the (filtered) listing held, and entries it could not produce: the prune
    /// safety valve's facts. The listing itself is dropped once planned (the items hold what
    /// they need), so it does not add to the execution's memory.
    pub(super) listed: usize,
    pub(super) listing_problems: usize,
    pub(super) plan: plan::Plan,
    pub(super) limits: Arc<Limits>,
    pub(super) caller: Result<Caller, CallError>,
    /// The token key, when the config names one or planning read it (ownership proofs are
    /// verified with it); `None`: the executor reads or creates it on the first write.
    pub(super) key: Option<TokenDeriver>,
}

/// A fatal error as the job's report row (a row about no secret: the command prints it too).
fn fatal(sink: &Sink, what: &str, e: &dyn std::error::Error) {
    let text = crate::error_text::chain(e);
    sink.emit(Row::new("", "", Action::Skip, Status::Failed).error(format!("{what}: {text}")));
}

/// Opens, lists, filters and plans one job; the cheap, fatal checks (a replica region that is
/// the target's own, source authentication, target reachability, an empty listing) happen here,
/// before anything is written anywhere. Each fatal error is also the job's `failed` row.
pub async fn prepare<'a>(
    input: JobInput<'a>,
    sink: Sink,
    mode: Mode,
    events: &dyn Events,
) -> Result<PreparedJob<'a>, RunError> {
    if let Some(r) = input
        .job
        .target
        .replicas
        .iter()
        .find(|r| r.region == input.target.region())
    {
        let e = RunError::ReplicaIsPrimary(r.region.clone());
        fatal(&sink, "target configuration", &e);
        return Err(e);
    }
    let retry = RetryPolicy::new(input.cfg.limits.max_attempts);
    let source = match open_source(input.job, &input.cfg.limits, &input.limits, retry).await {
        Ok(s) => s,
        Err(e) => {
            fatal(&sink, "cannot open the source", &e);
            return Err(e);
        }
    };
    plan_job(input, source, sink, mode, events).await
}

/// [`prepare`] with the source already open (tests bring their own).
pub async fn plan_job<'a>(
    input: JobInput<'a>,
    source: Box<dyn Source + 'a>,
    sink: Sink,
    mode: Mode,
    events: &dyn Events,
) -> Result<PreparedJob<'a>, RunError> {
    let JobInput {
        cfg,
        job,
        target,
        limits,
        caller,
    } = input;
    let name = job.name.as_str();
    events.event(&Event::Listing {
        job: name,
        kind: source.kind(),
    });
    let mut listing = match source.list().await {
        Ok(l) => l,
        Err(e) => {
            fatal(&sink, "source listing failed", &e);
            return Err(e.into());
        }
    };
    let listed = listing.refs.len();
    if !job.filter.is_all() {
        // excluded secrets are never read, planned, nor (see plan::build) orphans
        listing.refs.retain(|r| job.filter.admits(&r.path));
        listing
            .problems
            .retain(|p| p.path.is_empty() || p.line.is_some() || job.filter.admits(&p.path));
    }
    events.event(&Event::Listed {
        job: name,
        listed,
        passed: listing.refs.len(),
        filter: (!job.filter.is_all()).then(|| job.filter.describe()),
    });
    if listing.refs.is_empty() && listing.problems.is_empty() && !job.allow_empty {
        let e = RunError::Empty {
            location: source.location(),
            advice: source.empty_advice(),
        };
        fatal(&sink, "source", &e);
        return Err(e);
    }
    let prefix = job.target.prefix.as_str();
    let scope = source.scope();
    // read a page at a time into compact records, each one's standing decided as it arrives
    let inventory = match Inventory::read(target, &scope, prefix).await {
        Ok(i) => i,
        Err(e) => {
            fatal(&sink, "target inventory failed", &e);
            return Err(e.into());
        }
    };
    events.event(&Event::Inventory {
        job: name,
        secrets: inventory.len(),
    });
    let key = match ownership_key(job, target, &inventory).await {
        Ok(k) => k,
        Err(e) => {
            fatal(&sink, "ownership cannot be verified", &e);
            return Err(e.into());
        }
    };
    let rules = job.naming_rules();
    // the references move into the plan's items; the problems are reported below
    let problems = std::mem::take(&mut listing.problems);
    let passed = listing.refs.len();
    let target_secrets = inventory.len();
    let plan = plan::build(PlanInput {
        listing,
        scope: &scope,
        rules: &rules,
        overrides: &job.naming.overrides,
        inventory,
        on_conflict: job.target.on_conflict,
        filter: &job.filter,
        key: key.as_ref(),
        adopt: mode.adopt(),
    })?;
    events.event(&Event::Planned {
        job: name,
        passed,
        problems: problems.len(),
        scope: &scope,
        target_secrets,
        prefix,
        owned: plan.owned_live,
        foreign: plan.foreign,
    });
    for p in &problems {
        // the error names its line even where the path column already says "line N": the
        // error column is what gets read on its own (ListProblem::described never doubles it)
        let error = match p.line {
            Some(l) if !p.error.starts_with("line ") => format!("line {l}: {}", p.error),
            _ => p.error.clone(),
        };
        sink.emit(Row::new(&p.path, "", Action::Skip, Status::Failed).error(error));
    }
    for (secret, why) in plan.unverified() {
        let path = secret.claimed_path().unwrap_or_default();
        let mut row = Row::new(path, secret.name(), Action::Conflict, Status::Skipped)
            .error(plan::unverified_words(why));
        row.target_arn = secret.arn();
        sink.emit(row);
    }
    let caller = match caller {
        Some(c) => Ok(c),
        None => target.caller().await,
    };
    Ok(PreparedJob {
        cfg,
        job,
        sink,
        target,
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
    target: &dyn Target,
    inventory: &Inventory,
) -> Result<Option<TokenDeriver>, KeyError> {
    if job.target.token_key.is_none() && !inventory.any_managed() {
        return Ok(None);
    }
    verification_key(job, target).await
}

/// The key ownership proofs of `job` are verified with: `[target] token_key_env` (no read),
/// else the account's key secret (one read; `None` when it does not exist).
pub(crate) async fn verification_key(
    job: &JobConfig,
    target: &dyn Target,
) -> Result<Option<TokenDeriver>, KeyError> {
    match configured_key(job) {
        Some(k) => Ok(Some(k)),
        None => crate::target::token_key::load(target).await,
    }
}

/// What one job would write, for the confirmation question.
pub(crate) struct Intent<'a> {
    /// The job.
    pub(crate) job: &'a str,
    /// Who writes (the account).
    pub(crate) caller: &'a Result<Caller, CallError>,
    /// The target's region.
    pub(crate) region: &'a str,
    /// The job's prefix.
    pub(crate) prefix: &'a str,
    /// What it would do, in the question's words, with how many.
    pub(crate) counts: Vec<(&'static str, usize)>,
    /// What the new secrets would add to the monthly bill.
    pub(crate) cost: Cost,
}

impl Intent<'_> {
    /// Whether the job would write anything.
    pub(crate) fn writes(&self) -> bool {
        self.counts.iter().any(|(_, n)| *n > 0)
    }
}

impl<'a> PreparedJob<'a> {
    /// The job.
    pub(crate) fn job(&self) -> &'a JobConfig {
        self.job
    }

    /// The job's sink (its counts; the run's report).
    pub(crate) fn sink(&self) -> &Sink {
        &self.sink
    }

    /// The limiters its calls go through.
    pub(crate) fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    /// Who the target is written as.
    pub(crate) fn caller(&self) -> &Result<Caller, CallError> {
        &self.caller
    }

    /// The target's region.
    pub(crate) fn region(&self) -> &str {
        self.target.region()
    }

    /// The steps [`execute`](Self::execute) sends one [`Event::Done`] each for: every plan
    /// item and every orphan of the plan (a secret found gone while reading is one step,
    /// counted when its orphan row is written).
    pub(crate) fn steps(&self) -> u64 {
        (self.plan.len() + self.plan.orphans.len()) as u64
    }

    /// What the job would write, for the confirmation question.
    pub(crate) fn intent(&self, mode: Mode) -> Intent<'_> {
        let plan = &self.plan;
        let count = |d: fn(&plan::Item<'_>) -> bool| plan.items().filter(|i| d(i)).count();
        let creates = count(|i| *i.decision() == Decision::Create && i.renamed_from().is_none());
        let renames = count(|i| *i.decision() == Decision::Create && i.renamed_from().is_some());
        let compares = count(|i| {
            matches!(
                i.decision(),
                Decision::Compare
                    | Decision::Conflict {
                        managed: false,
                        policy: OnConflict::Adopt | OnConflict::Overwrite
                    }
            )
        });
        let restores = if mode.restore_deleted() {
            count(|i| {
                matches!(
                    i.decision(),
                    Decision::ScheduledForDeletion { ours: true, .. }
                )
            })
        } else {
            0
        };
        let prune_asked = matches!(mode, Mode::Reconcile { prune: true, .. }) && !mode.adopt();
        let deletes = if prune_asked { plan.orphans.len() } else { 0 };
        let adopts = count(|i| *i.decision() == Decision::Adopt);
        Intent {
            job: &self.job.name,
            caller: &self.caller,
            region: self.target.region(),
            prefix: &self.job.target.prefix,
            counts: vec![
                ("create", creates),
                ("rename", renames),
                ("adopt (write ownership proofs on)", adopts),
                ("update where the value differs, of", compares),
                ("restore", restores),
                ("schedule for deletion up to", deletes),
            ],
            cost: Cost::of(
                (creates + renames) as u64,
                self.job.target.replicas.len(),
                self.cfg.cost.price_per_secret_month,
            ),
        }
    }
}

/// The first two planned jobs that would both claim a source secret in one account, region
/// and prefix (`overlap::find`, fed with every job's filtered listing as identities).
pub(crate) fn overlapping(ready: &[&PreparedJob<'_>]) -> Option<crate::overlap::Overlap> {
    if ready.len() < 2 {
        return None;
    }
    let scopes: Vec<Scope> = ready.iter().map(|p| p.source.scope()).collect();
    let claims = ready
        .iter()
        .zip(&scopes)
        .map(|(p, scope)| crate::overlap::Claim {
            job: p.job.name.as_str(),
            place: crate::overlap::Place {
                account: p.caller.as_ref().map_or("unknown", |c| c.account.as_str()),
                region: p.target.region(),
                prefix: p.job.target.prefix.as_str(),
            },
            identities: p.plan.items().map(move |i| i.identity(scope)),
        })
        .collect();
    crate::overlap::find(claims)
}
