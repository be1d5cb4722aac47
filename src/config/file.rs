//! `[source] kind = "file"`, and what every file-based source (`file`, `kms`, `sops`) shares:
//! its `[source] instance`, and an export file's path checked to exist, read from the config
//! file's folder when relative.

use std::path::{Path, PathBuf};

use super::validate::{Section, Validator};

/// `[source] kind = "file"`.
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// The export file.
    pub file: PathBuf,
    /// The identity's instance: `[source] instance`, else `file` relative to the config
    /// folder (`source::instance`), so a moved checkout is the same source.
    pub instance: String,
}

impl Validator<'_> {
    /// `[source] kind = "file"`.
    pub(super) fn file_source(&mut self, s: &mut Section) -> Option<FileConfig> {
        self.export_file(s, "export file")
            .map(|(file, instance)| FileConfig { file, instance })
    }

    /// `[source] instance` of a file-based source (`file`, `kms`, `sops`): optional, and when
    /// given a non-empty name without surrounding whitespace; `Err(())` when given and bad
    /// (the problem is recorded).
    pub(super) fn instance(&mut self, s: &mut Section) -> Result<Option<String>, ()> {
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
    pub(super) fn export_file(&mut self, s: &mut Section, what: &str) -> Option<(PathBuf, String)> {
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
}
