//! The migration config file (TOML), parsed and validated before anything touches a network.
//!
//! A config names environment variables for every credential and never holds one itself. The
//! whole file is checked in one pass and *every* problem is reported together, each with its key
//! path and what was expected (`target.credentials.duration_seconds: must be 900..=43200`), so a
//! user fixes a config in one round trip. Unknown keys are errors (the effect of serde's
//! `deny_unknown_fields`, but collected instead of stopping at the first one): a typo such as
//! `on_conflcit` must not silently fall back to a default. An unknown key close to one its table
//! takes gets a "did you mean `on_conflict`?" (`strsim`, as cargo and clap do).
//!
//! Where things are: the validator engine (key paths, unknown keys, "did you mean") in
//! `config/validate.rs`; `[source]` and its kinds in `config/source.rs` and one file per kind
//! (`vault.rs`, `file.rs`, `kms.rs`, `ssm.rs`, `sops.rs`, `credstash.rs`); the AWS access
//! (`region`, `endpoint_url`, `credentials`) the target and the AWS-hosted sources share in
//! `config/aws.rs`. This file holds the whole config, its jobs, `[target]`, `[naming]`,
//! `[limits]`, `[report]`, `[reconcile]` and `[cost]`.
//!
//! **Only validated configs run.** [`Config`], [`JobConfig`] and the run-wide settings
//! (target, naming, limits, report, reconcile, [`EnvSecret`]) are `#[non_exhaustive]`: outside
//! this crate they can be read but not built, so what `commands` executes always came through
//! [`Config::load`] / [`Config::parse`]. The per-source settings (`VaultConfig`, `SsmConfig`, ...)
//! stay constructible, to drive one source on its own (its tests, the bench tools).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use self::validate::{syntax_message, Section, Validator};
use crate::filter::PathFilter;
use crate::naming::{self, NamingRules, Overrides, Policy};
use crate::target::limits::{MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS};

mod aws;
mod credstash;
mod file;
mod kms;
mod sops;
mod source;
mod ssm;
mod validate;
mod vault;
mod vault_auth;

pub use self::aws::{AwsAccess, Credentials};
pub(crate) use self::credstash::CredstashConfig;
pub(crate) use self::file::FileConfig;
pub(crate) use self::kms::KmsConfig;
pub use self::sops::{SopsConfig, SopsSplit};
pub use self::source::{SourceConfig, Split};
pub use self::ssm::SsmConfig;
pub(crate) use self::validate::Problem;
pub use self::vault::{ClientIdentity, VaultConfig};
pub use self::vault_auth::{JwtOrigin, VaultAuth};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config {path} is not valid TOML: {message}")]
    Syntax {
        /// The config path.
        path: PathBuf,
        /// Line, column, key and the parser's message (never the source line: it may hold a
        /// credential pasted in by mistake).
        message: String,
    },
    /// The file is TOML but breaks the schema; every problem is listed.
    #[error("config {path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The config path.
        path: PathBuf,
        /// All problems found.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems, for tests and callers that render them differently.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

/// A validated migration config: one or more jobs and the run-wide settings.
///
/// This is also the resolved form (the "second phase" of configuration): every environment
/// variable a config names is read exactly once, here, into a secret type ([`EnvSecret`]);
/// paths are made absolute, names normalised and defaults applied. Nothing after
/// [`Config::load`] reads the environment for a setting again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The jobs, in file order (one, named `default`, for the single `[source]` + `[target]`
    /// form).
    pub jobs: Vec<JobConfig>,
    /// Request rates and concurrency (per account and region: jobs writing to the same one
    /// share them).
    pub limits: LimitsConfig,
    /// Where audit reports go.
    pub report: ReportConfig,
    /// Reconciliation settings.
    pub reconcile: ReconcileConfig,
    /// `[cost]`: the price the plan's monthly cost is computed with.
    pub cost: CostConfig,
    /// SHA-256 of the config text (recorded beside each report).
    pub digest: String,
}

/// One job: a source, a target, naming and which source paths it takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobConfig {
    /// Unique within the config (`default` for the single form); the report's `job` column.
    pub name: String,
    /// Where secrets come from.
    pub source: SourceConfig,
    /// Where they go.
    pub target: TargetConfig,
    /// How names are rewritten (prefix lives in `target`).
    pub naming: NamingConfig,
    /// `include` / `exclude` globs on source paths.
    pub filter: PathFilter,
    /// A source that lists 0 secrets is fine (otherwise an error naming where it looked).
    pub allow_empty: bool,
    /// `[source] split`: one secret per source secret, or one per top-level key of its JSON
    /// object (`vault`, `file`, `kms`, `sops`; SOPS splits its files itself).
    pub split: Split,
}

impl JobConfig {
    /// The naming rules this job implies.
    pub(crate) fn naming_rules(&self) -> NamingRules {
        NamingRules {
            prefix: Some(self.target.prefix.clone()).filter(|p| !p.is_empty()),
            policy: self.naming.policy,
        }
    }
}

/// The value of an environment variable a config names, read once when the config is loaded.
/// `Debug` shows the variable's name only.
#[derive(Clone)]
#[non_exhaustive]
pub struct EnvSecret {
    /// The variable's name (for messages).
    pub var: String,
    /// Its value.
    pub value: secrecy::SecretString,
}

impl fmt::Debug for EnvSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.var)
    }
}

impl PartialEq for EnvSecret {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.var == other.var && self.value.expose_secret() == other.value.expose_secret()
    }
}

impl Eq for EnvSecret {}

/// What to do when a planned target name exists and is not ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Leave it, report `conflict` with status `skipped`.
    #[default]
    Skip,
    /// Take ownership: tag it as ours, then treat it like our own secret.
    Adopt,
    /// Write our value and tags over it.
    Overwrite,
    /// Stop before any write.
    Fail,
}

/// `[target]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TargetConfig {
    /// Region (config, else the SDK's chain: `AWS_REGION`, profile).
    pub region: Option<String>,
    /// Name prefix, without trailing slash (`""`: none, written explicitly).
    pub prefix: String,
    /// Endpoint override (config, else `AWS_ENDPOINT_URL` via the SDK).
    pub endpoint_url: Option<String>,
    /// KMS key for new secrets.
    pub kms_key_id: Option<String>,
    /// Conflict policy.
    pub on_conflict: OnConflict,
    /// Extra tags on every secret.
    pub tags: BTreeMap<String, String>,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The key for HMAC idempotency tokens, from `token_key_env` (see `identity::token`).
    pub token_key: Option<EnvSecret>,
    /// Regions every managed secret is replicated to (AWS-native replication), each with its
    /// own KMS key or `None` for the replica region's `aws/secretsmanager` key.
    pub replicas: Vec<crate::target::ReplicaRegion>,
}

/// `[naming]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NamingConfig {
    /// Character policy.
    pub(crate) policy: Policy,
    /// The overrides file, already parsed and validated.
    pub(crate) overrides: Overrides,
}

/// `[limits]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// CreateSecret + PutSecretValue + UpdateSecret + TagResource (+ delete/restore) per second.
    pub write_per_second: u32,
    /// List/Describe/Get/BatchGet per second.
    pub read_per_second: u32,
    /// KMS Decrypt per second.
    pub kms_per_second: u32,
    /// SSM Parameter Store reads per second (`ssm` source: GetParameters, GetParameter,
    /// ListTagsForResource; AWS's default throughput quota is 40/s, shared by GetParameter,
    /// GetParameters and GetParametersByPath with every other reader in the account).
    pub ssm_per_second: u32,
    /// SSM `DescribeParameters` pages per second (`ssm` source's listing). Not part of the
    /// 40/s throughput quota: AWS meters it on its own, lower and undocumented, limit.
    pub ssm_describe_per_second: u32,
    /// DynamoDB Scan pages per second (`credstash` source).
    pub dynamodb_per_second: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request, first try included.
    pub max_attempts: u32,
    /// Vault requests per second at most (Vault has no AWS-style quota; `parallelism` bounds
    /// requests in flight, this bounds their rate for servers with rate-limit quotas).
    pub vault_per_second: u32,
    /// Time limit of one request attempt (AWS and Vault), in seconds: a hung endpoint costs at
    /// most this per attempt.
    pub timeout_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            write_per_second: 50,
            read_per_second: 100,
            kms_per_second: 1000,
            ssm_per_second: 40,
            ssm_describe_per_second: 10,
            dynamodb_per_second: 50,
            concurrency: 32,
            max_attempts: 8,
            vault_per_second: 10_000,
            timeout_seconds: 30,
        }
    }
}

/// `[report]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportConfig {
    /// Directory for `<command>-<timestamp>.csv` files: `[report] dir`, default `reports`, both
    /// relative to the config file's folder.
    pub(crate) dir: PathBuf,
}

/// `[reconcile]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconcileConfig {
    /// Recovery window for pruned secrets, 7..=30 days.
    pub(crate) recovery_window_days: i64,
    /// Largest share of managed secrets one run may prune without `--force-prune`.
    pub(crate) max_prune_fraction: f64,
}

/// `[cost]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CostConfig {
    /// Price of one secret (or replica) per month, for the plan's "adds $X/month"; default
    /// AWS's list price ([`crate::cost::LIST_PRICE_PER_SECRET_MONTH`]).
    pub(crate) price_per_secret_month: f64,
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it are relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base, &|k| std::env::var(k).ok())
    }

    /// The job named `name`.
    pub fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Keeps only the jobs named in `names` (`--job`); an unknown name is an error that lists
    /// the known ones.
    pub fn select(&mut self, names: &[String]) -> Result<(), String> {
        if names.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
        if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(format!(
                "--job {bad}: no such job in the config; its jobs are: {}",
                known.join(", ")
            ));
        }
        self.jobs.retain(|j| names.contains(&j.name));
        Ok(())
    }

    /// The one job, when there is exactly one (commands that act on one target).
    pub fn single(&self) -> Result<&JobConfig, String> {
        match self.jobs.as_slice() {
            [one] => Ok(one),
            many => Err(format!(
                "the config has {} jobs ({}); name one with --job",
                many.len(),
                many.iter()
                    .map(|j| j.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Parses and validates config text. `env` looks up environment variables (injectable for
    /// tests); `base` resolves relative paths.
    pub fn parse(
        text: &str,
        path: &Path,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: syntax_message(text, &e),
        })?;
        let mut v = Validator {
            problems: Vec::new(),
            env,
            base,
            allow_empty: false,
            split: Split::Whole,
        };
        let mut root = Section::new("", table);
        let jobs = match root.take("jobs") {
            None => v.job(&mut root, None).into_iter().collect(),
            Some(toml::Value::Array(items)) => {
                for single in ["source", "target", "naming"] {
                    if root.take(single).is_some() {
                        root.problem(
                            single,
                            format!("[{single}] beside [[jobs]]: put it inside each job as [jobs.{single}] (a config is either one [source] + [target] or several [[jobs]])"),
                        );
                    }
                }
                if items.is_empty() {
                    root.problem("jobs", "must hold at least one [[jobs]] table");
                }
                let mut jobs: Vec<JobConfig> = Vec::new();
                let mut names: Vec<String> = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let key = format!("jobs[{i}]");
                    let toml::Value::Table(t) = item else {
                        v.bad(key, format!("expected a table, got {}", item.type_str()));
                        continue;
                    };
                    if let Some(toml::Value::String(name)) = t.get("name") {
                        if names.contains(name) {
                            v.bad(
                                format!("{key}.name"),
                                format!("{name:?} names two jobs; job names must be unique"),
                            );
                        }
                        names.push(name.clone());
                    }
                    let mut s = Section::new(&key, t);
                    let job = v.job(&mut s, Some(i));
                    v.problems.extend(s.finish());
                    jobs.extend(job);
                }
                jobs
            }
            Some(other) => {
                root.problem(
                    "jobs",
                    format!(
                        "expected [[jobs]] tables, got {} (write each job as [[jobs]] with name, [jobs.source] and [jobs.target])",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        };
        let limits = v.limits(root.table("limits", false));
        let report = v.report(root.table("report", false));
        let reconcile = v.reconcile(root.table("reconcile", false));
        let cost = v.cost(root.table("cost", false));
        v.problems.extend(root.finish());

        let mut problems = v.problems;
        if problems.is_empty() && !jobs.is_empty() {
            return Ok(Config {
                jobs,
                limits,
                report,
                reconcile,
                cost,
                digest: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())),
            });
        }
        if problems.is_empty() {
            problems.push(Problem {
                key: "config".into(),
                message: "incomplete".into(),
            });
        }
        Err(ConfigError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }
}

/// `[target] replica_regions` and `replica_kms_key_ids`: region names, not the primary region,
/// no duplicates; a key only for a configured replica region (a KMS key id is regional, so the
/// target's `kms_key_id` is never used for a replica).
fn replica_regions(s: &mut Section, primary: Option<&str>) -> Vec<crate::target::ReplicaRegion> {
    let regions: Vec<String> = s
        .opt(
            "replica_regions",
            "a list of AWS regions such as [\"eu-west-1\"]",
        )
        .unwrap_or_default();
    let keys: BTreeMap<String, String> = s
        .opt(
            "replica_kms_key_ids",
            "a table of region = KMS key id, e.g. { \"eu-west-1\" = \"alias/migrated\" }",
        )
        .unwrap_or_default();
    let mut out: Vec<crate::target::ReplicaRegion> = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        let key = format!("replica_regions[{i}]");
        if !validate::is_region(r) {
            s.problem(
                &key,
                format!("{r:?} is not an AWS region (expected e.g. eu-west-1)"),
            );
        } else if primary == Some(r.as_str()) {
            s.problem(
                &key,
                format!(
                    "{r:?} is the target's own region; list only the other regions to replicate to"
                ),
            );
        } else if out.iter().any(|x| x.region == *r) {
            s.problem(
                &key,
                format!("{r:?} is listed twice; list each region once"),
            );
        } else {
            out.push(crate::target::ReplicaRegion {
                region: r.clone(),
                kms_key_id: None,
            });
        }
    }
    for (region, id) in keys {
        let key = format!("replica_kms_key_ids.{region}");
        if id.is_empty() || id.len() > crate::target::limits::MAX_KMS_KEY_ID_CHARS {
            s.problem(
                &key,
                format!(
                    "must be 1..={} characters",
                    crate::target::limits::MAX_KMS_KEY_ID_CHARS
                ),
            );
            continue;
        }
        match out.iter_mut().find(|x| x.region == region) {
            Some(x) => x.kms_key_id = Some(id),
            None => s.problem(
                &key,
                format!("{region:?} is not in replica_regions; add it there or remove this key"),
            ),
        }
    }
    out
}

impl Validator<'_> {
    /// One job: the whole file in the single form (`index` None: `[source]`, `[target]`,
    /// `[naming]` at the top), or one `[[jobs]]` table (with `name`, `include`, `exclude`).
    fn job(&mut self, s: &mut Section, index: Option<usize>) -> Option<JobConfig> {
        let name = match index {
            None => Some("default".to_owned()),
            Some(_) => {
                let n: Option<String> = s.req(
                    "name",
                    "a job name (letters, digits, - _ .), e.g. \"payments-prod\"",
                );
                n.filter(|n| {
                    let ok = (1..=64).contains(&n.len())
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !ok {
                        s.problem(
                            "name",
                            format!("{n:?} is not a job name (1..=64 of A-Za-z0-9 - _ .)"),
                        );
                    }
                    ok
                })
            }
        };
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        if index.is_some() {
            include = s
                .opt::<Vec<String>>("include", "a list of glob patterns on source paths")
                .unwrap_or_default();
            exclude = s
                .opt::<Vec<String>>("exclude", "a list of glob patterns on source paths")
                .unwrap_or_default();
        }
        self.allow_empty = false;
        let source = s.table("source", true).and_then(|mut src| {
            // the single form may give its filters in [source]
            if index.is_none() {
                include = src
                    .opt::<Vec<String>>("include", "a list of glob patterns on source paths")
                    .unwrap_or_default();
                exclude = src
                    .opt::<Vec<String>>("exclude", "a list of glob patterns on source paths")
                    .unwrap_or_default();
            }
            self.source(src)
        });
        let allow_empty = self.allow_empty;
        let split = self.split;
        let filter_at = match index {
            None => "source".to_owned(),
            Some(i) => format!("jobs[{i}]"),
        };
        let filter = match PathFilter::new(&include, &exclude) {
            Ok(f) => Some(f),
            Err(errors) => {
                for e in errors {
                    self.bad(
                        format!("{filter_at}.{}[{}]", e.list, e.index),
                        format!("{:?} is not a glob pattern: {}", e.pattern, e.why),
                    );
                }
                None
            }
        };
        let target = s.table("target", true).map(|t| self.target(t));
        let naming_sec = s.table("naming", false);
        let prefix = target
            .as_ref()
            .map(|t| t.prefix.clone())
            .filter(|p| !p.is_empty());
        let prefix_key = match index {
            None => "target.prefix".to_owned(),
            Some(i) => format!("jobs[{i}].target.prefix"),
        };
        let naming = self.naming(naming_sec, prefix, &prefix_key);
        Some(JobConfig {
            name: name?,
            source: source?,
            target: target?,
            naming: naming?,
            filter: filter?,
            allow_empty,
            split,
        })
    }

    fn target(&mut self, mut s: Section) -> TargetConfig {
        let region = self.region(&mut s, "region");
        let prefix: Option<String> = s.req(
            "prefix",
            "a name prefix such as \"devops\" (secretport owns only what it wrote under it; write prefix = \"\" explicitly for none)",
        );
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.trim_end_matches('/').is_empty() => {
                s.problem(
                    "prefix",
                    format!("{p:?} is not a name prefix; write prefix = \"\" for no prefix, or a name such as \"devops\""),
                );
                None
            }
            Some(p) => Some(p.trim_end_matches('/').to_owned()),
            None => None,
        };
        let endpoint_url = self.url(&mut s, "endpoint_url");
        let kms_key_id: Option<String> = s.opt("kms_key_id", "a KMS key id, ARN or alias");
        if let Some(k) = &kms_key_id {
            if k.is_empty() || k.len() > crate::target::limits::MAX_KMS_KEY_ID_CHARS {
                s.problem(
                    "kms_key_id",
                    format!(
                        "must be 1..={} characters",
                        crate::target::limits::MAX_KMS_KEY_ID_CHARS
                    ),
                );
            }
        }
        let on_conflict = s
            .opt(
                "on_conflict",
                "\"skip\", \"adopt\", \"overwrite\" or \"fail\"",
            )
            .unwrap_or_default();
        let tags: BTreeMap<String, String> = s
            .opt("tags", "a table of string tag values")
            .unwrap_or_default();
        for (k, val) in &tags {
            if let Err(m) = check_tag(k, val) {
                s.problem(&format!("tags.{k}"), m);
            }
        }
        if tags.len() > crate::target::limits::MAX_TAGS - crate::plan::OUR_TAGS {
            s.problem(
                "tags",
                format!(
                    "{} tags given; AWS allows {} per secret and secretport adds {}",
                    tags.len(),
                    crate::target::limits::MAX_TAGS,
                    crate::plan::OUR_TAGS
                ),
            );
        }
        // the key's bytes as given: trimming would change every token derived from it
        let token_key = if s.has("token_key_env") {
            self.env_secret(&mut s, "token_key_env", None, "token key", false)
        } else {
            None
        };
        if let Some(key) = &token_key {
            let (name, len) = (
                &key.var,
                secrecy::ExposeSecret::expose_secret(&key.value).len(),
            );
            if len < crate::identity::token::MIN_KEY_BYTES {
                s.problem(
                    "token_key_env",
                    format!(
                        "environment variable {name} holds {len} bytes; the token key needs at least {}",
                        crate::identity::token::MIN_KEY_BYTES
                    ),
                );
            }
        }
        let credentials = self
            .credentials_key(&mut s)
            .ok()
            .flatten()
            .unwrap_or(Credentials::Default);
        let replicas = replica_regions(&mut s, region.as_deref());
        self.problems.extend(s.finish());
        TargetConfig {
            region,
            prefix: prefix.unwrap_or_default(),
            endpoint_url,
            kms_key_id,
            on_conflict,
            tags,
            credentials,
            token_key,
            replicas,
        }
    }

    fn naming(
        &mut self,
        s: Option<Section>,
        prefix: Option<String>,
        prefix_key: &str,
    ) -> Option<NamingConfig> {
        let mut s = s.unwrap_or_else(|| Section::new("naming", toml::Table::new()));
        let policy: Policy = s
            .opt("policy", "\"aws\" or \"alphanumeric\"")
            .unwrap_or_default();
        if let Some(p) = &prefix {
            if let Err(m) = naming::validate_prefix(p, policy) {
                self.bad(prefix_key.to_owned(), m);
            }
        }
        let rules = NamingRules { prefix, policy };
        let overrides_path = self.file(&mut s, "overrides", false);
        let overrides = match &overrides_path {
            None => Overrides::default(),
            Some(p) => match std::fs::read_to_string(p) {
                Err(e) => {
                    s.problem("overrides", format!("cannot read {}: {e}", p.display()));
                    Overrides::default()
                }
                Ok(text) => match Overrides::parse(&text, &rules) {
                    Ok(o) => o,
                    Err(e) => {
                        s.problem("overrides", format!("{}: {e}", p.display()));
                        Overrides::default()
                    }
                },
            },
        };
        self.problems.extend(s.finish());
        Some(NamingConfig { policy, overrides })
    }

    fn limits(&mut self, s: Option<Section>) -> LimitsConfig {
        let mut l = LimitsConfig::default();
        let Some(mut s) = s else { return l };
        let int = |s: &mut Section, k: &str, lo: i64, hi: i64, dflt: i64| -> i64 {
            let v: i64 = s.opt(k, "an integer").unwrap_or(dflt);
            if !(lo..=hi).contains(&v) {
                s.problem(k, format!("must be {lo}..={hi}, got {v}"));
                dflt
            } else {
                v
            }
        };
        l.write_per_second = int(&mut s, "write_per_second", 1, 10_000, 50) as u32;
        l.read_per_second = int(&mut s, "read_per_second", 1, 10_000, 100) as u32;
        l.kms_per_second = int(&mut s, "kms_per_second", 1, 100_000, 1000) as u32;
        l.ssm_per_second = int(&mut s, "ssm_per_second", 1, 10_000, 40) as u32;
        l.ssm_describe_per_second = int(&mut s, "ssm_describe_per_second", 1, 1000, 10) as u32;
        l.dynamodb_per_second = int(&mut s, "dynamodb_per_second", 1, 10_000, 50) as u32;
        l.concurrency = int(&mut s, "concurrency", 1, 1024, 32) as usize;
        l.max_attempts = int(&mut s, "max_attempts", 1, 50, 8) as u32;
        l.vault_per_second = int(&mut s, "vault_per_second", 1, 100_000, 10_000) as u32;
        l.timeout_seconds = int(&mut s, "timeout_seconds", 1, 600, 30) as u64;
        self.problems.extend(s.finish());
        l
    }

    /// `[report] dir`, relative to the config file; by default `reports` beside the config file
    /// (the same as writing `dir = "reports"`), so a run from any working directory (cron, a
    /// CronJob) puts its reports in one place.
    fn report(&mut self, s: Option<Section>) -> ReportConfig {
        let mut dir = self.resolve("reports");
        if let Some(mut s) = s {
            if let Some(d) = s.opt::<String>("dir", "a directory path") {
                dir = self.resolve(&d);
            }
            self.problems.extend(s.finish());
        }
        ReportConfig { dir }
    }

    fn reconcile(&mut self, s: Option<Section>) -> ReconcileConfig {
        let mut r = ReconcileConfig {
            recovery_window_days: 30,
            max_prune_fraction: 0.10,
        };
        let Some(mut s) = s else { return r };
        if let Some(d) = s.opt::<i64>("recovery_window_days", "an integer") {
            if crate::target::limits::RECOVERY_WINDOW_DAYS.contains(&d) {
                r.recovery_window_days = d;
            } else {
                s.problem("recovery_window_days", format!("must be 7..=30, got {d}"));
            }
        }
        if let Some(f) = s.opt::<f64>("max_prune_fraction", "a number between 0 and 1") {
            if (0.0..=1.0).contains(&f) {
                r.max_prune_fraction = f;
            } else {
                s.problem("max_prune_fraction", format!("must be 0.0..=1.0, got {f}"));
            }
        }
        self.problems.extend(s.finish());
        r
    }

    /// `[cost] price_per_secret_month`: a price (`crate::cost::check_price`), default AWS's
    /// list price.
    fn cost(&mut self, s: Option<Section>) -> CostConfig {
        let mut c = CostConfig {
            price_per_secret_month: crate::cost::LIST_PRICE_PER_SECRET_MONTH,
        };
        let Some(mut s) = s else { return c };
        if let Some(p) = s.opt::<f64>("price_per_secret_month", "a number (price per month)") {
            match crate::cost::check_price(p) {
                Ok(p) => c.price_per_secret_month = p,
                Err(m) => s.problem("price_per_secret_month", m),
            }
        }
        self.problems.extend(s.finish());
        c
    }
}

/// AWS tag rules for Secrets Manager: key 1..=128, value 0..=256, letters, digits, spaces and
/// `_ . : / = + - @`; keys starting with `aws:` are reserved, `secretport:` is ours.
pub(crate) fn check_tag(k: &str, v: &str) -> Result<(), String> {
    let ok_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c))
    };
    if k.is_empty() || k.chars().count() > MAX_TAG_KEY_CHARS {
        return Err(format!(
            "tag keys must be 1..={MAX_TAG_KEY_CHARS} characters"
        ));
    }
    if k.to_ascii_lowercase().starts_with("aws:") || k.starts_with("secretport:") {
        return Err("tag keys starting with aws: or secretport: are reserved".into());
    }
    if v.chars().count() > MAX_TAG_VALUE_CHARS {
        return Err(format!(
            "tag values must be at most {MAX_TAG_VALUE_CHARS} characters"
        ));
    }
    if !ok_chars(k) || !ok_chars(v) {
        return Err("tags may hold letters, digits, spaces and _ . : / = + - @ only".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "VAULT_TOKEN" | "MY_TOKEN" | "AK" | "SK" => Some("x".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"), Path::new("."), &env)
    }

    const GOOD: &str = r#"
[source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "secret"
path = "apps/"
auth = { method = "token", token_env = "MY_TOKEN" }
[target]
region = "us-east-1"
prefix = "devops/"
tags = { team = "platform" }
credentials = { type = "assume-role", role_arn = "arn:aws:iam::123456789012:role/migrator", external_id = "ext-1" }
[limits]
write_per_second = 10
"#;

    #[test]
    fn file_based_sources_have_a_relative_or_named_instance() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir(dir.join("exports")).unwrap();
        std::fs::write(dir.join("exports/e.jsonl"), "").unwrap();
        let target = "[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n";
        let load = |source: &str| {
            Config::parse(
                &format!("[source]\n{source}\n{target}"),
                &dir.join("c.toml"),
                dir,
                &env,
            )
        };
        let instance = |c: Config| match &c.jobs[0].source {
            SourceConfig::File(f) => f.instance.clone(),
            SourceConfig::Kms(k) => k.instance.clone(),
            SourceConfig::Sops(s) => s.instance.clone(),
            _ => panic!("a file-based source"),
        };
        let abs = dir.join("exports/e.jsonl").display().to_string();
        for (source, expected) in [
            (
                "kind = \"file\"\nfile = \"./exports/e.jsonl\"",
                "exports/e.jsonl",
            ),
            (
                &format!("kind = \"file\"\nfile = \"{abs}\"") as &str,
                "exports/e.jsonl",
            ),
            (
                "kind = \"kms\"\nfile = \"exports/../exports/e.jsonl\"",
                "exports/e.jsonl",
            ),
            (
                "kind = \"sops\"\nfiles = [\"b/*.yaml\", \"a/*.json\"]",
                "a/*.json,b/*.yaml",
            ),
            (
                "kind = \"file\"\nfile = \"exports/e.jsonl\"\ninstance = \"payments\"",
                "payments",
            ),
            (
                "kind = \"sops\"\nfiles = [\"*.yaml\"]\ninstance = \"team-a\"",
                "team-a",
            ),
        ] {
            assert_eq!(instance(load(source).expect(source)), expected, "{source}");
        }
        for (source, key, words) in [
            ("kind = \"file\"\nfile = \"exports/e.jsonl\"\ninstance = \"\"", "source.instance", "must not be empty"),
            ("kind = \"kms\"\nfile = \"exports/e.jsonl\"\ninstance = \" x\"", "source.instance", "whitespace"),
            ("kind = \"sops\"\nfiles = [\"*.yaml\"]\ninstance = 3", "source.instance", "expected a name"),
            // the other kinds have an instance of their own (address and mount, region, table)
            (
                "kind = \"vault\"\naddress = \"http://v:8200\"\nmount = \"kv\"\nauth = { method = \"token\", token_env = \"MY_TOKEN\" }\ninstance = \"x\"",
                "source.instance",
                "only file, kms and sops sources take an instance",
            ),
        ] {
            let e = load(source).expect_err(source);
            assert!(
                e.problems()
                    .iter()
                    .any(|p| p.key == key && p.message.contains(words)),
                "{source}: {e}"
            );
        }
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.jobs.len(), 1);
        let job = &c.jobs[0];
        assert_eq!(job.name, "default");
        assert!(job.filter.is_all());
        let SourceConfig::Vault(v) = &job.source else {
            panic!("vault")
        };
        assert_eq!(v.path, "apps");
        assert_eq!(v.parallelism, 16);
        assert_eq!(job.target.prefix, "devops");
        assert_eq!(c.limits.write_per_second, 10);
        assert_eq!(c.limits.read_per_second, 100);
        assert_eq!(job.target.on_conflict, OnConflict::Skip);
        assert_eq!(c.report.dir, Path::new("./reports"));
        assert!(matches!(
            job.target.credentials,
            Credentials::AssumeRole {
                duration_seconds: 3600,
                ..
            }
        ));
    }

    #[test]
    fn cost_price_defaults_to_the_list_price_and_is_validated() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(
            c.cost.price_per_secret_month,
            crate::cost::LIST_PRICE_PER_SECRET_MONTH
        );
        for (price, want) in [("0.5", Some(0.5)), ("1", Some(1.0)), ("0", Some(0.0))] {
            let c = parse(&format!("{GOOD}[cost]\nprice_per_secret_month = {price}\n"))
                .expect("valid price");
            assert_eq!(Some(c.cost.price_per_secret_month), want, "{price}");
        }
        for bad in ["-1", "1e9", "\"0.40\"", "nan"] {
            let err =
                parse(&format!("{GOOD}[cost]\nprice_per_secret_month = {bad}\n")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("cost.price_per_secret_month"),
                "{bad}: {text}"
            );
        }
        let err = parse(&format!("{GOOD}[cost]\nprice = 1\n")).unwrap_err();
        assert!(err.to_string().contains("cost.price"), "{err}");
    }

    #[test]
    fn all_problems_reported_together() {
        let bad = GOOD
            .replace("write_per_second = 10", "write_per_second = 0\nburst = 3")
            .replace("external_id = \"ext-1\"", "duration_seconds = 60");
        let err = parse(&bad).unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"limits.write_per_second"), "{keys:?}");
        assert!(keys.contains(&"limits.burst"), "{keys:?}");
        assert!(
            keys.contains(&"target.credentials.duration_seconds"),
            "{keys:?}"
        );
        let text = err.to_string();
        assert!(text.contains("target.credentials.duration_seconds: must be 900..=43200"));
    }

    const JOBS: &str = r#"
[limits]
write_per_second = 20

[[jobs]]
name = "payments"
include = ["apps/**"]
exclude = ["apps/tmp/**"]
[jobs.source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "secret"
auth = { method = "token", token_env = "MY_TOKEN" }
[jobs.target]
region = "us-east-1"
prefix = "payments"

[[jobs]]
name = "edge"
[jobs.source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "kv"
[jobs.target]
region = "eu-west-1"
prefix = "edge"
[jobs.naming]
policy = "alphanumeric"
"#;

    #[test]
    fn jobs_parse_each_with_its_source_target_naming_and_filter() {
        let c = parse(JOBS).expect("valid");
        let names: Vec<&str> = c.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["payments", "edge"]);
        assert!(c.jobs[0].filter.admits("apps/api"));
        assert!(!c.jobs[0].filter.admits("apps/tmp/x"));
        assert!(!c.jobs[0].filter.admits("web/x"));
        assert!(c.jobs[1].filter.is_all());
        assert_eq!(c.jobs[1].target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.jobs[1].naming.policy, Policy::Alphanumeric);
        assert_eq!(c.limits.write_per_second, 20);
        let mut one = c.clone();
        one.select(&["edge".into()]).expect("known job");
        assert_eq!(one.jobs.len(), 1);
        let err = c.clone().select(&["nope".into()]).unwrap_err();
        assert!(err.contains("payments, edge"), "{err}");
        assert!(c.single().unwrap_err().contains("--job"));
    }

    #[test]
    fn job_problems_name_the_job_index_and_key() {
        let bad = JOBS
            .replace("name = \"edge\"", "name = \"payments\"")
            .replace("\"apps/tmp/**\"", "\"[oops\"")
            .replace("prefix = \"edge\"", "prefix = \"/\"");
        let err = parse(&bad).unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"jobs[1].name"), "{keys:?}");
        assert!(keys.contains(&"jobs[0].exclude[0]"), "{keys:?}");
        assert!(keys.contains(&"jobs[1].target.prefix"), "{keys:?}");
        // both forms at once
        let mixed = format!("{GOOD}\n{JOBS}").replace("[limits]\nwrite_per_second = 20\n", "");
        let err = parse(&mixed).unwrap_err();
        assert!(
            err.problems()
                .iter()
                .any(|p| p.key == "source" && p.message.contains("[[jobs]]")),
            "{err}"
        );
        let unnamed = JOBS.replace("name = \"edge\"\n", "");
        let err = parse(&unnamed).unwrap_err();
        assert!(
            err.problems().iter().any(|p| p.key == "jobs[1].name"),
            "{err}"
        );
    }

    #[test]
    fn single_form_takes_filters_in_source() {
        let c = parse(&GOOD.replace(
            "path = \"apps/\"",
            "path = \"apps/\"\ninclude = [\"team-a/**\"]",
        ))
        .expect("valid");
        assert!(c.jobs[0].filter.admits("team-a/db"));
        assert!(!c.jobs[0].filter.admits("team-b/db"));
    }

    #[test]
    fn env_values_are_read_once_into_the_config() {
        let text = GOOD.replace(
            "credentials = { type = \"assume-role\", role_arn = \"arn:aws:iam::123456789012:role/migrator\", external_id = \"ext-1\" }",
            "credentials = { type = \"access-keys\", access_key_id_env = \"AK\", secret_access_key_env = \"SK\" }",
        );
        let c = parse(&text).expect("valid");
        let Credentials::AccessKeys { access_key_id, .. } = &c.jobs[0].target.credentials else {
            panic!("access keys")
        };
        assert_eq!(access_key_id.var, "AK");
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&access_key_id.value),
            "x"
        );
        assert_eq!(
            format!("{access_key_id:?}"),
            "$AK",
            "Debug never shows the value"
        );
    }
}
