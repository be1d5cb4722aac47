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
//! Implementation: the file is parsed into a `toml::Table`, and [`Section`] takes each known key
//! out of it, deserializing the value with serde and recording failures under the key's path;
//! whatever is left in a table afterwards is an unknown key.
//!
//! **Only validated configs run.** [`Config`], [`JobConfig`] and the run-wide settings
//! (target, naming, limits, report, reconcile, [`EnvSecret`]) are `#[non_exhaustive]`: outside
//! this crate they can be read but not built, so what `commands` executes always came through
//! [`Config::load`] / [`Config::parse`]. The per-source settings (`VaultConfig`, `SsmConfig`, ...)
//! stay constructible, to drive one source on its own (its tests, the bench tools).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::filter::PathFilter;
use crate::naming::{self, NamingRules, Overrides, Policy};
use crate::target::limits::{MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS};

mod vault;

/// One thing wrong with a config: the dotted key it concerns and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `target.credentials.duration_seconds`.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

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
    pub fn naming_rules(&self) -> NamingRules {
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

/// `[source]`.
#[derive(Debug, Clone)]
// one per run, built once: the size of the Vault variant (its resolved auth) costs nothing
#[allow(clippy::large_enum_variant)]
pub enum SourceConfig {
    /// HashiCorp Vault / OpenBao KV.
    Vault(VaultConfig),
    /// JSON Lines export whose values are KMS-encrypted.
    Kms(KmsConfig),
    /// Plaintext JSON Lines export.
    File(FileConfig),
    /// AWS Systems Manager Parameter Store.
    Ssm(SsmConfig),
    /// SOPS-encrypted files (data key wrapped by AWS KMS).
    Sops(SopsConfig),
    /// A credstash DynamoDB table.
    Credstash(CredstashConfig),
}

impl SourceConfig {
    /// `vault`, `kms`, `file`, `ssm`, `sops` or `credstash`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Vault(_) => "vault",
            SourceConfig::Kms(_) => "kms",
            SourceConfig::File(_) => "file",
            SourceConfig::Ssm(_) => "ssm",
            SourceConfig::Sops(_) => "sops",
            SourceConfig::Credstash(_) => "credstash",
        }
    }

    /// Whether source metadata (Vault `custom_metadata`, SSM parameter tags) is copied into
    /// tags.
    pub fn copy_metadata(&self) -> bool {
        match self {
            SourceConfig::Vault(v) => v.copy_metadata,
            SourceConfig::Ssm(s) => s.copy_tags,
            _ => false,
        }
    }
}

/// Region, endpoint and credentials of an AWS-hosted source; each defaults to `[target]`'s.
#[derive(Debug, Clone, Default)]
pub struct AwsAccess {
    /// Region (default: the target's).
    pub region: Option<String>,
    /// Endpoint (default: the target's).
    pub endpoint_url: Option<String>,
    /// Credentials (default: the target's).
    pub credentials: Option<Credentials>,
}

/// `[source] kind = "ssm"`.
#[derive(Debug, Clone)]
pub struct SsmConfig {
    /// The parameter path to migrate, recursively, normalised to `/a/b` (`/` = everything).
    pub path: String,
    /// Parameter types to migrate (`SecureString`, `String`, `StringList`).
    pub types: Vec<String>,
    /// Copy parameter tags into secret tags (one `ListTagsForResource` per parameter).
    pub copy_tags: bool,
    /// Region, endpoint and credentials for SSM and KMS.
    pub aws: AwsAccess,
}

/// `[source] split`: what one target secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    /// One target secret per source secret (a SOPS file): the whole value.
    #[default]
    Whole,
    /// One target secret per top-level key of the value's JSON object, at `<path>/<key>`.
    Keys,
}

/// How a SOPS file becomes secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SopsSplit {
    /// One secret per file: the document as a JSON object.
    #[default]
    File,
    /// One secret per top-level key.
    Keys,
}

/// `[source] kind = "sops"`.
#[derive(Debug, Clone)]
pub struct SopsConfig {
    /// The config file's directory (absolute): globs and source paths are relative to it.
    pub dir: PathBuf,
    /// Glob patterns, relative to `dir`.
    pub files: Vec<String>,
    /// The identity's instance: `[source] instance`, else the file set (the globs), relative
    /// to the config folder (`source::instance`), so a moved checkout is the same source.
    pub instance: String,
    /// One secret per file or per top-level key.
    pub split: SopsSplit,
    /// Region, endpoint and credentials for KMS (a key's region comes from its ARN).
    pub aws: AwsAccess,
}

/// `[source] kind = "credstash"`.
#[derive(Debug, Clone)]
pub struct CredstashConfig {
    /// The DynamoDB table (default `credential-store`).
    pub table: String,
    /// The KMS encryption context used at `credstash put`.
    pub context: BTreeMap<String, String>,
    /// Region, endpoint and credentials for DynamoDB and KMS.
    pub aws: AwsAccess,
}

pub use self::vault::{ClientIdentity, JwtOrigin, VaultAuth, VaultConfig};

/// `[source] kind = "kms"`.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    /// The export file.
    pub file: PathBuf,
    /// The identity's instance: `[source] instance`, else `file` relative to the config
    /// folder (`source::instance`), so a moved checkout is the same source.
    pub instance: String,
    /// KMS region (default: the target's).
    pub region: Option<String>,
    /// KMS endpoint (default: the target's).
    pub endpoint_url: Option<String>,
    /// Credentials for KMS (default: the target's).
    pub credentials: Option<Credentials>,
}

/// `[source] kind = "file"`.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// The export file.
    pub file: PathBuf,
    /// The identity's instance: `[source] instance`, else `file` relative to the config
    /// folder (`source::instance`), so a moved checkout is the same source.
    pub instance: String,
}

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

/// AWS credentials, as the Harness AWS Secrets Manager setup offers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// The SDK's default chain: env, profile, SSO, container/instance role.
    Default,
    /// Static keys from the env vars the config names (read when it was loaded).
    AccessKeys {
        /// The access key id (`access_key_id_env`).
        access_key_id: EnvSecret,
        /// The secret access key (`secret_access_key_env`).
        secret_access_key: EnvSecret,
        /// Optional session token (`session_token_env`).
        session_token: Option<EnvSecret>,
    },
    /// STS AssumeRole on top of the default chain.
    AssumeRole {
        /// Role to assume.
        role_arn: String,
        /// External id demanded by the role's trust policy.
        external_id: Option<String>,
        /// Session duration, 900..=43200.
        duration_seconds: u32,
        /// Session name (shows in CloudTrail).
        session_name: String,
    },
}

/// `[naming]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NamingConfig {
    /// Character policy.
    pub policy: Policy,
    /// The overrides file, already parsed and validated.
    pub overrides: Overrides,
    /// Where the overrides came from, for messages.
    pub overrides_path: Option<PathBuf>,
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
    pub dir: PathBuf,
}

/// `[reconcile]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconcileConfig {
    /// Recovery window for pruned secrets, 7..=30 days.
    pub recovery_window_days: i64,
    /// Largest share of managed secrets one run may prune without `--force-prune`.
    pub max_prune_fraction: f64,
}

/// `[cost]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CostConfig {
    /// Price of one secret (or replica) per month, for the plan's "adds $X/month"; default
    /// AWS's list price ([`crate::cost::LIST_PRICE_PER_SECRET_MONTH`]).
    pub price_per_secret_month: f64,
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

/// A TOML table being taken apart key by key; leftovers are unknown keys. Every key the
/// validator asks about is remembered (`known`), whether the file has it or not: those are the
/// keys this table takes here (for this source kind, this auth method), which an unknown key is
/// compared with for a "did you mean".
struct Section {
    path: String,
    table: toml::Table,
    problems: Vec<Problem>,
    known: Vec<String>,
}

impl Section {
    fn new(path: &str, table: toml::Table) -> Self {
        Section {
            path: path.to_owned(),
            table,
            problems: Vec::new(),
            known: Vec::new(),
        }
    }

    fn note(&mut self, k: &str) {
        if !self.known.iter().any(|x| x == k) {
            self.known.push(k.to_owned());
        }
    }

    /// Whether the table has key `k` (a known key either way).
    fn has(&mut self, k: &str) -> bool {
        self.note(k);
        self.table.contains_key(k)
    }

    /// Takes key `k` out of the table, raw.
    fn take(&mut self, k: &str) -> Option<toml::Value> {
        self.note(k);
        self.table.remove(k)
    }

    /// Looks at key `k` without taking it.
    fn peek(&mut self, k: &str) -> Option<&toml::Value> {
        self.note(k);
        self.table.get(k)
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{}", self.path, k)
        }
    }

    fn problem(&mut self, k: &str, message: impl Into<String>) {
        if !k.contains(['[', '.']) {
            self.note(k);
        }
        let key = self.key(k);
        self.problems.push(Problem {
            key,
            message: message.into(),
        });
    }

    /// Takes an optional key, deserializing it as `T`.
    fn opt<T: DeserializeOwned>(&mut self, k: &str, expected: &str) -> Option<T> {
        let value = self.take(k)?;
        match T::deserialize(value.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let got = value.type_str();
                let detail = e.to_string();
                let detail = detail.lines().next().unwrap_or("").trim().to_owned();
                self.problem(k, format!("expected {expected}, got {got} ({detail})"));
                None
            }
        }
    }

    /// Takes a required key.
    fn req<T: DeserializeOwned>(&mut self, k: &str, expected: &str) -> Option<T> {
        let present = self.has(k);
        let v = self.opt(k, expected);
        if !present {
            self.problem(k, format!("missing; expected {expected}"));
        }
        v
    }

    /// Takes a sub-table.
    fn table(&mut self, k: &str, required: bool) -> Option<Section> {
        match self.take(k) {
            Some(toml::Value::Table(t)) => Some(Section::new(&self.key(k), t)),
            Some(other) => {
                self.problem(k, format!("expected a table, got {}", other.type_str()));
                None
            }
            None => {
                if required {
                    self.problem(k, "missing; expected a table");
                }
                None
            }
        }
    }

    /// Without a valid `selector` (a source's `kind`, an auth `method`), which keys this table
    /// takes is unknown: its other keys are left unjudged (not each called unknown), except a
    /// typo of the selector itself.
    fn unjudged_without(&mut self, selector: &str) {
        let selector = [selector.to_owned()];
        self.table
            .retain(|k, _| closest_key(k, &selector).is_some());
    }

    /// Reports every key nobody took as unknown, with the closest known key of this table when
    /// one is close ("did you mean `address`?"); when that key was reported missing, the one
    /// message says both and the "missing" problem goes.
    fn finish(mut self) -> Vec<Problem> {
        let leftover: Vec<String> = self.table.keys().cloned().collect();
        for k in leftover {
            let message = match closest_key(&k, &self.known).map(str::to_owned) {
                None => "unknown key".to_owned(),
                Some(m) => {
                    let full = self.key(&m);
                    let missing = self
                        .problems
                        .iter()
                        .position(|p| p.key == full && p.message.starts_with("missing"));
                    match missing {
                        Some(i) => {
                            let p = self.problems.remove(i);
                            format!("unknown key; did you mean `{m}`? `{m}` is {}", p.message)
                        }
                        None => format!("unknown key; did you mean `{m}`?"),
                    }
                }
            };
            self.problems.push(Problem {
                key: self.key(&k),
                message,
            });
        }
        self.problems
    }
}

/// The known key closest to the unknown key `k`, if one is close enough to be a typo of it:
/// at most one edit (insertion, deletion, substitution or swap of neighbours) per three
/// characters, at least one; case is ignored. The first of equally close keys wins.
fn closest_key<'a>(k: &str, known: &'a [String]) -> Option<&'a str> {
    let k = k.to_lowercase();
    let limit = (k.chars().count() / 3).max(1);
    known
        .iter()
        .map(|m| (strsim::osa_distance(&k, &m.to_lowercase()), m))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, m)| m.as_str())
}

/// Whether `r` is spelled like an AWS region (`us-east-1`, `us-gov-west-1`, `eu-central-2`).
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
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
        if !is_region(r) {
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

/// Reads `[source] split` of a vault, file or kms source: `"secret"` or `"keys"`.
fn split_option(s: &mut Section, expected: &str) -> Split {
    match s.opt::<String>("split", expected).as_deref() {
        None | Some("secret") => Split::Whole,
        Some("keys") => Split::Keys,
        Some(other) => {
            s.problem("split", format!("expected {expected}, got {other:?}"));
            Split::Whole
        }
    }
}

struct Validator<'a> {
    problems: Vec<Problem>,
    env: &'a dyn Fn(&str) -> Option<String>,
    base: &'a Path,
    allow_empty: bool,
    split: Split,
}

impl Validator<'_> {
    fn bad(&mut self, key: String, message: impl Into<String>) {
        self.problems.push(Problem {
            key,
            message: message.into(),
        });
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    /// The value of the variable a `*_env` key names, read here once, as a secret. The key
    /// must name a variable (a value that is not a name is most likely the secret itself pasted
    /// in by mistake, so messages never repeat it); unset, empty and whitespace-only are
    /// problems naming the variable and `what` it must hold. `trim`: surrounding whitespace is
    /// dropped (keys and ids never carry it, a pasted value often does); the token key is
    /// taken byte for byte, since its bytes derive every token.
    pub(super) fn env_secret(
        &mut self,
        s: &mut Section,
        k: &str,
        default: Option<&str>,
        what: &str,
        trim: bool,
    ) -> Option<EnvSecret> {
        let var = self.env_var_name(s, k, default)?;
        match (self.env)(&var) {
            None => {
                s.problem(k, format!("environment variable {var} is not set"));
                None
            }
            Some(v) if v.trim().is_empty() => {
                let how = if v.is_empty() {
                    "empty"
                } else {
                    "only whitespace"
                };
                s.problem(
                    k,
                    format!("environment variable {var} is {how}; it must hold the {what}"),
                );
                None
            }
            Some(v) => {
                let value = if trim { v.trim().to_owned() } else { v };
                Some(EnvSecret {
                    var,
                    value: value.into(),
                })
            }
        }
    }

    fn url(&mut self, s: &mut Section, k: &str) -> Option<String> {
        let u: String = s.opt(k, "a URL")?;
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 8 {
            s.problem(k, format!("{u:?} is not an http(s) URL"));
            return None;
        }
        Some(u.trim_end_matches('/').to_owned())
    }

    fn region(&mut self, s: &mut Section, k: &str) -> Option<String> {
        let r: String = s.opt(k, "an AWS region such as us-east-1")?;
        if !is_region(&r) {
            s.problem(
                k,
                format!("{r:?} is not an AWS region (expected e.g. us-east-1)"),
            );
            return None;
        }
        Some(r)
    }

    fn file(&mut self, s: &mut Section, k: &str, required: bool) -> Option<PathBuf> {
        self.file_as_written(s, k, required).map(|(p, _)| p)
    }

    /// As [`Validator::file`], with the path as the config wrote it.
    fn file_as_written(
        &mut self,
        s: &mut Section,
        k: &str,
        required: bool,
    ) -> Option<(PathBuf, String)> {
        let f: String = if required {
            s.req(k, "a file path")?
        } else {
            s.opt(k, "a file path")?
        };
        let p = self.resolve(&f);
        if !p.is_file() {
            s.problem(k, format!("file {} does not exist", p.display()));
            return None;
        }
        Some((p, f))
    }

    /// The config file's folder, absolute (canonical when it exists).
    fn config_dir(&self) -> PathBuf {
        let base = if self.base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            self.base
        };
        std::fs::canonicalize(base)
            .or_else(|_| std::path::absolute(base))
            .unwrap_or_else(|_| base.to_owned())
    }

    /// `[source] instance` of a file-based source (`file`, `kms`, `sops`): optional, and when
    /// given a non-empty name without surrounding whitespace; `Err(())` when given and bad
    /// (the problem is recorded).
    fn instance(&mut self, s: &mut Section) -> Result<Option<String>, ()> {
        let present = s.table.contains_key("instance");
        let Some(i) = s.opt::<String>(
            "instance",
            "a name for this source in the secrets' identity, e.g. \"payments-export\"",
        ) else {
            return if present { Err(()) } else { Ok(None) };
        };
        if i.trim().is_empty() {
            s.problem(
                "instance",
                "must not be empty: remove the key to use the file's path relative to the config file, or name the source (e.g. \"payments-export\")",
            );
            return Err(());
        }
        if i.trim() != i {
            s.problem(
                "instance",
                format!("{i:?} has surrounding whitespace; write it without"),
            );
            return Err(());
        }
        Ok(Some(i))
    }

    /// An export file source's `file` and its identity instance (`[source] instance`, else the
    /// file relative to the config folder).
    /// `what` names the kind of file in the message for a missing one, which also says where a
    /// relative path is read from.
    fn export_file(&mut self, s: &mut Section, what: &str) -> Option<(PathBuf, String)> {
        let instance = self.instance(s);
        let written: String = s.req("file", "the path of the export file")?;
        let file = self.resolve(&written);
        if !file.is_file() {
            let relative = if Path::new(&written).is_absolute() {
                ""
            } else {
                " (a relative path is read from the config file's folder)"
            };
            s.problem(
                "file",
                format!(
                    "the {what} {} does not exist; check [source] file{relative}",
                    file.display()
                ),
            );
            return None;
        }
        let instance = instance.ok()?.unwrap_or_else(|| {
            crate::source::instance::export_instance(&self.config_dir(), &written)
        });
        Some((file, instance))
    }

    /// `region`, `endpoint_url` and `credentials` of an AWS-hosted source.
    fn aws_access(&mut self, s: &mut Section) -> AwsAccess {
        let region = self.region(s, "region");
        let endpoint_url = self.url(s, "endpoint_url");
        let credentials = s.table("credentials", false).and_then(|c| {
            let (creds, problems) = self.credentials(c);
            self.problems.extend(problems);
            creds
        });
        AwsAccess {
            region,
            endpoint_url,
            credentials,
        }
    }

    fn ssm(&mut self, s: &mut Section) -> Option<SsmConfig> {
        let path: String = s
            .opt("path", "a parameter path such as \"/prod/\"")
            .unwrap_or_else(|| "/".into());
        let trimmed = path.trim_matches('/');
        let path = format!("/{trimmed}");
        let valid = trimmed.split('/').all(|seg| {
            (trimmed.is_empty() || !seg.is_empty())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        }) && path.len() <= 2048;
        if !valid {
            s.problem(
                "path",
                format!(
                    "{path:?} is not a parameter path (segments of A-Za-z0-9_.- separated by /)"
                ),
            );
        }
        let types: Vec<String> = s
            .opt(
                "types",
                "a list of \"SecureString\", \"String\", \"StringList\"",
            )
            .unwrap_or_else(|| vec!["SecureString".to_owned()]);
        let mut types_ok = !types.is_empty();
        for t in &types {
            if !["SecureString", "String", "StringList"].contains(&t.as_str()) {
                types_ok = false;
                s.problem(
                    "types",
                    format!(
                        "{t:?} is not a parameter type; expected \"SecureString\", \"String\" or \"StringList\""
                    ),
                );
            }
        }
        if types.is_empty() {
            s.problem("types", "must name at least one parameter type");
        }
        let copy_tags = s.opt("copy_tags", "true or false").unwrap_or(false);
        let aws = self.aws_access(s);
        (valid && types_ok).then_some(SsmConfig {
            path,
            types,
            copy_tags,
            aws,
        })
    }

    fn sops(&mut self, s: &mut Section) -> Option<SopsConfig> {
        let files: Option<Vec<String>> = s.req(
            "files",
            "a list of glob patterns relative to the config file, e.g. [\"secrets/*.yaml\"]",
        );
        let mut ok = true;
        if let Some(files) = &files {
            if files.is_empty() {
                ok = false;
                s.problem("files", "must hold at least one glob pattern");
            }
            for (i, f) in files.iter().enumerate() {
                if let Err(e) = glob::Pattern::new(f) {
                    ok = false;
                    s.problem(
                        &format!("files[{i}]"),
                        format!("{f:?} is not a glob pattern: {e}"),
                    );
                } else if Path::new(f).is_absolute() || f.split('/').any(|seg| seg == "..") {
                    ok = false;
                    s.problem(
                        &format!("files[{i}]"),
                        format!(
                            "{f:?} must be relative to the config file's folder, without \"..\""
                        ),
                    );
                }
            }
        }
        let split = s.opt("split", "\"file\" or \"keys\"").unwrap_or_default();
        if split == SopsSplit::Keys {
            self.split = Split::Keys;
        }
        let aws = self.aws_access(s);
        let instance = self.instance(s);
        let dir = self.config_dir();
        let files = files?;
        let instance = instance
            .ok()?
            .unwrap_or_else(|| crate::source::instance::sops_instance(&files));
        ok.then_some(SopsConfig {
            dir,
            files,
            instance,
            split,
            aws,
        })
    }

    fn credstash(&mut self, s: &mut Section) -> Option<CredstashConfig> {
        let table: String = s
            .opt("table", "a DynamoDB table name")
            .unwrap_or_else(|| "credential-store".into());
        let valid = (3..=255).contains(&table.len())
            && table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            s.problem(
                "table",
                format!(
                    "{table:?} is not a DynamoDB table name (3..=255 characters of A-Za-z0-9_.-)"
                ),
            );
        }
        let context: BTreeMap<String, String> = s
            .opt("context", "a table of strings (the KMS encryption context)")
            .unwrap_or_default();
        let aws = self.aws_access(s);
        valid.then_some(CredstashConfig {
            table,
            context,
            aws,
        })
    }

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

    fn source(&mut self, mut s: Section) -> Option<SourceConfig> {
        self.allow_empty = s
            .opt(
                "allow_empty",
                "true or false (whether a source that lists 0 secrets is fine)",
            )
            .unwrap_or(false);
        const KINDS: &str = "\"vault\", \"kms\", \"file\", \"ssm\", \"sops\" or \"credstash\"";
        let kind: Option<String> = s.req("kind", KINDS);
        self.split = Split::Whole;
        if matches!(kind.as_deref(), Some("vault" | "file" | "kms")) {
            self.split = split_option(&mut s, "\"secret\" (default) or \"keys\"");
        } else if matches!(kind.as_deref(), Some("ssm" | "credstash")) && s.has("split") {
            s.table.remove("split");
            s.problem(
                "split",
                "only sources whose values are JSON objects (vault, file, kms, sops) can be split into one secret per key",
            );
        }
        let out = match kind.as_deref() {
            Some("ssm") => self.ssm(&mut s).map(SourceConfig::Ssm),
            Some("sops") => self.sops(&mut s).map(SourceConfig::Sops),
            Some("credstash") => self.credstash(&mut s).map(SourceConfig::Credstash),
            Some("vault") => self.vault(&mut s).map(SourceConfig::Vault),
            Some("file") => self
                .export_file(&mut s, "export file")
                .map(|(file, instance)| SourceConfig::File(FileConfig { file, instance })),
            Some("kms") => {
                let file = self.export_file(&mut s, "KMS export file");
                let region = self.region(&mut s, "region");
                let endpoint_url = self.url(&mut s, "endpoint_url");
                let credentials = s.table("credentials", false).and_then(|c| {
                    let (creds, problems) = self.credentials(c);
                    self.problems.extend(problems);
                    creds
                });
                file.map(|(file, instance)| {
                    SourceConfig::Kms(KmsConfig {
                        file,
                        instance,
                        region,
                        endpoint_url,
                        credentials,
                    })
                })
            }
            Some(other) => {
                s.problem(
                    "kind",
                    format!("{other:?} is not a source kind; expected {KINDS}"),
                );
                s.unjudged_without("kind");
                None
            }
            None => {
                s.unjudged_without("kind");
                None
            }
        };
        if matches!(kind.as_deref(), Some("vault" | "ssm" | "credstash"))
            && s.table.remove("instance").is_some()
        {
            s.problem(
                "instance",
                "only file, kms and sops sources take an instance; this kind's identity already names its instance (Vault: address, namespace and mount; SSM: region; credstash: region and table)",
            );
        }
        self.problems.extend(s.finish());
        out
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
        let credentials = match s.table("credentials", false) {
            None => Credentials::Default,
            Some(c) => {
                let (creds, problems) = self.credentials(c);
                self.problems.extend(problems);
                creds.unwrap_or(Credentials::Default)
            }
        };
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

    fn credentials(&mut self, mut c: Section) -> (Option<Credentials>, Vec<Problem>) {
        let kind: Option<String> = c.req("type", "\"default\", \"access-keys\" or \"assume-role\"");
        let creds = match kind.as_deref() {
            Some("default") => Some(Credentials::Default),
            Some("access-keys") => {
                let a =
                    self.env_secret(&mut c, "access_key_id_env", None, "AWS access key id", true);
                let s = self.env_secret(
                    &mut c,
                    "secret_access_key_env",
                    None,
                    "AWS secret access key",
                    true,
                );
                let t = if c.has("session_token_env") {
                    self.env_secret(&mut c, "session_token_env", None, "AWS session token", true)
                } else {
                    None
                };
                a.zip(s).map(|(a, s)| Credentials::AccessKeys {
                    access_key_id: a,
                    secret_access_key: s,
                    session_token: t,
                })
            }
            Some("assume-role") => {
                let role_arn: Option<String> = c.req(
                    "role_arn",
                    "an IAM role ARN (arn:aws:iam::123456789012:role/name)",
                );
                let role_arn = role_arn.filter(|r| {
                    let ok = is_role_arn(r);
                    if !ok {
                        c.problem(
                            "role_arn",
                            format!("{r:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)"),
                        );
                    }
                    ok
                });
                let external_id: Option<String> = c.opt("external_id", "a string");
                if let Some(e) = &external_id {
                    let ok = (2..=1224).contains(&e.len())
                        && e.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "+=,.@:/-_".contains(ch));
                    if !ok {
                        c.problem(
                            "external_id",
                            "must be 2..=1224 characters of A-Za-z0-9+=,.@:/-_",
                        );
                    }
                }
                let duration: i64 = c.opt("duration_seconds", "an integer").unwrap_or(3600);
                if !(900..=43200).contains(&duration) {
                    c.problem(
                        "duration_seconds",
                        format!("must be 900..=43200, got {duration}"),
                    );
                }
                let session_name: String = c
                    .opt("session_name", "a string")
                    .unwrap_or_else(|| "secretport".into());
                let ok = (2..=64).contains(&session_name.len())
                    && session_name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "+=,.@-_".contains(ch));
                if !ok {
                    c.problem(
                        "session_name",
                        "must be 2..=64 characters of A-Za-z0-9+=,.@-_",
                    );
                }
                role_arn.map(|role_arn| Credentials::AssumeRole {
                    role_arn,
                    external_id,
                    duration_seconds: duration.clamp(900, 43200) as u32,
                    session_name,
                })
            }
            Some(other) => {
                c.problem(
                    "type",
                    format!(
                        "{other:?} is not a credential type; expected \"default\", \"access-keys\" or \"assume-role\""
                    ),
                );
                None
            }
            None => None,
        };
        (creds, c.finish())
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
        Some(NamingConfig {
            policy,
            overrides,
            overrides_path,
        })
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

/// A TOML syntax error as line, column, the key on that line (when there is one) and the
/// parser's message, *without* the quoted source line the parser adds: an unquoted credential
/// pasted into the file (`token_env = hvs.CAESI...`) is exactly what fails to parse.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return e.message().trim().to_owned();
    };
    let at = span.start.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim()).filter(|k| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    });
    let message = e.message().trim().replace('\n', " ");
    match key {
        Some(k) => format!("line {line_no}, column {column} (key {k}): {message}"),
        None => format!("line {line_no}, column {column}: {message}"),
    }
}

/// Why `name` cannot be an environment variable name, without quoting it: it may be a secret.
fn check_env_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("it is empty");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("it holds characters other than letters, digits and _");
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("it starts with a digit");
    }
    if looks_like_aws_key_id(name) {
        return Err("it looks like an AWS access key id");
    }
    if name.len() > 128 {
        return Err("it is longer than 128 characters");
    }
    Ok(())
}

/// `AKIA…`/`ASIA…` and the other IAM unique-id prefixes followed by 16 upper-case letters or
/// digits: a valid-looking variable name that is in fact an access key id.
fn looks_like_aws_key_id(s: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "AKIA", "ASIA", "AIDA", "AROA", "AGPA", "ANPA", "ANVA", "AIPA",
    ];
    s.len() == 20
        && PREFIXES.iter().any(|p| s.starts_with(p))
        && s[4..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether a Vault `mount`/`path` written with KV v2's API segments should be flagged: unless
/// the config says KV v1 (where a folder may really be called `data`).
fn kv_v2_api_path(kv_version: Option<&toml::Value>, mount: Option<&str>, path: &str) -> bool {
    let v1 = kv_version.and_then(toml::Value::as_integer) == Some(1);
    let suspicious = mount.is_some_and(|m| m.ends_with("/data") || m.ends_with("/metadata"))
        || ["data", "metadata"]
            .iter()
            .any(|a| path == *a || path.starts_with(&format!("{a}/")));
    !v1 && suspicious
}

fn is_role_arn(r: &str) -> bool {
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
}

/// AWS tag rules for Secrets Manager: key 1..=128, value 0..=256, letters, digits, spaces and
/// `_ . : / = + - @`; keys starting with `aws:` are reserved, `secretport:` is ours.
pub fn check_tag(k: &str, v: &str) -> Result<(), String> {
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

    #[test]
    fn unknown_keys_get_the_closest_known_key() {
        let known: Vec<String> = ["address", "mount", "path", "prefix", "on_conflict", "kind"]
            .map(String::from)
            .to_vec();
        let table: &[(&str, Option<&str>)] = &[
            ("addres", Some("address")),          // one deletion
            ("adress", Some("address")),          // one deletion elsewhere
            ("on_conflcit", Some("on_conflict")), // a swap of neighbours is one edit
            ("Mount", Some("mount")),             // case is ignored
            ("prefx", Some("prefix")),
            ("pth", Some("path")),
            ("knd", Some("kind")),
            ("mnt", None),    // two edits in three characters
            ("zzzzzz", None), // nothing close
            ("addrs", None),  // two edits in five characters
        ];
        for (k, want) in table {
            assert_eq!(closest_key(k, &known), *want, "{k}");
        }
        assert_eq!(closest_key("x", &[]), None);
    }

    #[test]
    fn split_is_validated_per_source_kind() {
        let env = |k: &str| (k == "VAULT_TOKEN").then(|| "t".to_owned());
        let target = "[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n";
        let vault = "kind = \"vault\"\naddress = \"http://v\"\nmount = \"kv\"\n";
        let parse = |source: &str| {
            Config::parse(
                &format!("[source]\n{source}{target}"),
                Path::new("c.toml"),
                Path::new("/"),
                &env,
            )
        };
        let split_of = |source: &str| match parse(source) {
            Ok(c) => c.jobs[0].split,
            Err(e) => panic!("{source}: {e:?}"),
        };
        let problems = |source: &str| match parse(source) {
            Err(ConfigError::Invalid { problems, .. }) => problems
                .into_iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect::<Vec<_>>(),
            other => panic!("{source}: {other:?}"),
        };
        assert_eq!(split_of(vault), Split::Whole);
        assert_eq!(split_of(&format!("{vault}split = \"keys\"\n")), Split::Keys);
        assert_eq!(
            split_of(&format!("{vault}split = \"secret\"\n")),
            Split::Whole
        );
        assert_eq!(
            split_of("kind = \"sops\"\nfiles = [\"*.yaml\"]\nsplit = \"keys\"\n"),
            Split::Keys
        );
        let p = problems(&format!("{vault}split = \"key\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with(
                "source.split: expected \"secret\" (default) or \"keys\", got \"key\""
            ),
            "{p:?}"
        );
        let p = problems("kind = \"ssm\"\nsplit = \"keys\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.split: only sources whose values are JSON objects"),
            "{p:?}"
        );
    }

    #[test]
    fn without_a_kind_only_a_typo_of_kind_is_reported() {
        let env = |_: &str| None;
        let parse =
            |text: &str| match Config::parse(text, Path::new("c.toml"), Path::new("/"), &env) {
                Err(ConfigError::Invalid { problems, .. }) => problems
                    .into_iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            };
        let target = "[target]\nregion = \"us-east-1\"\nprefix = \"p\"\n";
        let p = parse(&format!(
            "[source]\nknd = \"vault\"\naddress = \"http://v\"\nmount = \"kv\"\n{target}"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.knd: unknown key; did you mean `kind`? `kind` is missing; expected \"vault\""),
            "{p:?}"
        );
        let p = parse(&format!(
            "[source]\nkind = \"s3\"\nbucket = \"b\"\n{target}"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("source.kind: \"s3\" is not a source kind"),
            "{p:?}"
        );
    }

    #[test]
    fn a_typo_of_a_missing_key_is_one_problem() {
        let mut t = toml::Table::new();
        t.insert("addres".into(), toml::Value::String("http://v".into()));
        let mut s = Section::new("source", t);
        let _: Option<String> = s.req("address", "the Vault URL");
        let _: Option<String> = s.opt("mount", "a mount");
        let problems = s.finish();
        assert_eq!(
            problems,
            vec![Problem {
                key: "source.addres".into(),
                message: "unknown key; did you mean `address`? `address` is missing; expected the Vault URL".into(),
            }]
        );
    }

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
