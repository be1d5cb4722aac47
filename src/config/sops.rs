//! `[source] kind = "sops"`: the SOPS files (globs relative to the config file), how a file
//! becomes secrets, and the AWS access KMS is called with.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::validate::{Section, Validator};
use super::{AwsAccess, Split};

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

impl Validator<'_> {
    pub(super) fn sops(&mut self, s: &mut Section) -> Option<SopsConfig> {
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
}
