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

#[cfg(test)]
mod tests {
    use crate::config::testing::{env, has_problem};
    use crate::config::{Config, SourceConfig};

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
            assert!(has_problem(&e, key, words), "{source}: {e}");
        }
    }
}
