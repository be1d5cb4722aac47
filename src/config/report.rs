//! `[report]`: where the audit reports go.

use std::path::PathBuf;

use super::validate::{Section, Validator};

/// `[report]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReportConfig {
    /// Directory for `<command>-<timestamp>.csv` files: `[report] dir`, default `reports`, both
    /// relative to the config file's folder.
    pub(crate) dir: PathBuf,
}

impl Validator<'_> {
    /// `[report] dir`, relative to the config file; by default `reports` beside the config file
    /// (the same as writing `dir = "reports"`), so a run from any working directory (cron, a
    /// CronJob) puts its reports in one place.
    pub(super) fn report(&mut self, s: Option<Section>) -> ReportConfig {
        let mut dir = self.resolve("reports");
        if let Some(mut s) = s {
            if let Some(d) = s.opt::<String>("dir", "a directory path") {
                dir = self.resolve(&d);
            }
            self.problems.extend(s.finish());
        }
        ReportConfig { dir }
    }
}
