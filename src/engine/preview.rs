//! `rename --config`'s pipeline: every job's source listed by name only (no value read, the
//! target never contacted), filtered, and its names planned (`naming::preview`). The face
//! (`commands::rename`) writes the CSV and the summaries.

use std::sync::Arc;

use super::{open_source, RunError};
use crate::config::Config;
use crate::limits::Limits;
use crate::naming::preview::{run_rename, RenameOutput};
use crate::retry::RetryPolicy;

/// A preview of one job's names.
pub struct ConfigPreview {
    /// The job.
    pub job: String,
    /// The planned names, in listing order (after the job's include/exclude filter).
    pub output: RenameOutput,
    /// Entries the listing could not produce (each also makes the exit code 1).
    pub problems: Vec<String>,
}

/// `rename --config`: lists every job's source (references only: no value is read, and the
/// target is never contacted, so no AWS credentials are needed for a Vault or file source),
/// applies the job's filter and plans its names with its prefix, policy and overrides.
pub async fn preview_config(cfg: &Config) -> Result<Vec<ConfigPreview>, RunError> {
    let limits = Arc::new(Limits::new(&cfg.limits));
    let policy = RetryPolicy::new(cfg.limits.max_attempts);
    let mut out = Vec::with_capacity(cfg.jobs.len());
    for job in &cfg.jobs {
        let source = open_source(job, &cfg.limits, &limits, policy).await?;
        let listing = source.list_names().await?;
        let names: Vec<String> = listing
            .refs
            .iter()
            .filter(|r| job.filter.admits(&r.path))
            .map(|r| r.path.clone())
            .collect();
        let output = run_rename(&names, &job.naming_rules(), &job.naming.overrides)?;
        let problems = listing.problems.iter().map(|p| {
            let line = p.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            format!("{line}{}: {}", p.path, p.error)
        });
        out.push(ConfigPreview {
            job: job.name.clone(),
            output,
            problems: problems.collect(),
        });
    }
    Ok(out)
}
