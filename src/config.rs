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
//! Where things are: this file holds the whole [`Config`], its loading and the run-wide
//! [`EnvSecret`]; the validator engine (key paths, unknown keys, "did you mean") is in
//! `config/validate.rs`; the jobs (the single form and `[[jobs]]`) in `config/jobs.rs`;
//! `[target]` (with the tag rules and replica regions) in `config/target.rs`; `[naming]` in
//! `config/naming.rs`; `[limits]`, `[report]`, `[reconcile]` and `[cost]` each in the file named
//! after it; `[source]` and its kinds in `config/source.rs` and one file per kind (`vault.rs`
//! with `vault_auth.rs`, `file.rs`, `kms.rs`, `ssm.rs`, `sops.rs`, `credstash.rs`); the AWS
//! access (`region`, `endpoint_url`, `credentials`) the target and the AWS-hosted sources share
//! in `config/aws.rs`.
//!
//! **Only validated configs run.** [`Config`], [`JobConfig`] and the run-wide settings
//! (target, naming, limits, report, reconcile, [`EnvSecret`]) are `#[non_exhaustive]`: outside
//! this crate they can be read but not built, so what `commands` executes always came through
//! [`Config::load`] / [`Config::parse`]. The per-source settings (`VaultConfig`, `SsmConfig`, ...)
//! stay constructible, to drive one source on its own (its tests, the bench tools).

use std::fmt;
use std::path::{Path, PathBuf};

use self::validate::{syntax_message, Section, Validator};

mod aws;
mod cost;
mod credstash;
mod file;
mod jobs;
mod kms;
mod limits;
mod naming;
mod reconcile;
mod report;
mod sops;
mod source;
mod ssm;
mod target;
#[cfg(test)]
mod testing;
mod validate;
mod vault;
mod vault_auth;

pub use self::aws::{AwsAccess, Credentials};
pub use self::cost::CostConfig;
pub(crate) use self::credstash::CredstashConfig;
pub(crate) use self::file::FileConfig;
pub use self::jobs::JobConfig;
pub(crate) use self::kms::KmsConfig;
pub use self::limits::LimitsConfig;
pub use self::naming::NamingConfig;
pub use self::reconcile::ReconcileConfig;
pub use self::report::ReportConfig;
pub use self::sops::{SopsConfig, SopsSplit};
pub use self::source::{SourceConfig, Split};
pub use self::ssm::SsmConfig;
pub use self::target::{OnConflict, TargetConfig};
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
        let jobs = v.jobs(&mut root);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::testing::{parse, GOOD};
    use super::*;

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
