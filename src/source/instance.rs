//! The *instance* part of a file-based source's identity (`file`, `kms`, `sops`), computed
//! from the config as written, never from where the checkout happens to lie.
//!
//! The identity a secret records in AWS is what finds it again on every later run. If it held
//! the config folder's absolute path, the same files run from a copied or moved folder (a CI
//! workspace, a container mount, a colleague's checkout) would be another source, and every
//! secret a conflict. So the instance is, in this order:
//!
//! 1. `[source] instance = "…"` when the config sets it (any non-empty text), else
//! 2. for `file` and `kms`: the configured `file`, relative to the config file's folder,
//!    normalised (`./` and `x/..` resolved, empty segments dropped, `/`-separated). An
//!    absolute `file` inside the config folder is made relative to it; an absolute `file`
//!    outside it stays absolute (it does not move with the checkout);
//! 3. for `sops`: the file set, i.e. the configured globs, each normalised the same way,
//!    sorted, each once, joined with `,` (globs are relative to the config folder by
//!    validation).
//!
//! Secrets written before this rule recorded an absolute path; [`legacy_instance_matches`]
//! recognises such an instance for explicit adoption (never for ownership by itself).

use std::path::{Component, Path};

/// Lexically normalises a relative path: `.` and empty segments dropped, `x/..` resolved
/// (a leading `..` is kept), `/`-separated. `None` for an absolute path.
fn normalise_relative(p: &str) -> Option<String> {
    let path = Path::new(p);
    if path.is_absolute() {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else {
                    out.push("..".into());
                }
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            // not reachable for a relative path on Unix; kept literal rather than dropped
            Component::RootDir | Component::Prefix(_) => {
                out.push(c.as_os_str().to_string_lossy().into_owned())
            }
        }
    }
    Some(out.join("/"))
}

/// The instance of an export file (`file`, `kms` sources) configured as `configured` in a
/// config whose folder is `config_dir` (absolute, canonical, when `configured` is absolute:
/// only then is it looked at). See the module docs for the rule.
pub fn export_instance(config_dir: &Path, configured: &str) -> String {
    if let Some(rel) = normalise_relative(configured) {
        return rel;
    }
    let file = Path::new(configured);
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    let dir = std::fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_owned());
    match canonical.strip_prefix(&dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            normalise_relative(&rel.to_string_lossy()).unwrap_or_default()
        }
        _ => canonical.to_string_lossy().into_owned(),
    }
}

/// The instance of a SOPS file set: its globs (relative to the config folder), normalised,
/// sorted, each once, joined with `,`.
pub fn sops_instance(globs: &[String]) -> String {
    let mut set: Vec<String> = globs
        .iter()
        .map(|g| normalise_relative(g).unwrap_or_else(|| g.clone()))
        .collect();
    set.sort();
    set.dedup();
    set.join(",")
}

/// Whether `recorded`, the instance of an identity written before instances were relative, is
/// the absolute-path form of `new_relative`: an absolute path ending in `/` + `new_relative`
/// (for a SOPS source, whose old instance was the config folder itself, pass the old folder's
/// relative form, which is empty: then any absolute path matches, and the secret's path must
/// decide). For adoption only: a match proves nothing about who wrote the secret.
pub fn legacy_instance_matches(new_relative: &str, recorded: &str) -> bool {
    if !recorded.starts_with('/') || new_relative.starts_with('/') {
        return false;
    }
    if new_relative.is_empty() {
        return true;
    }
    recorded
        .strip_suffix(new_relative)
        .is_some_and(|head| head.ends_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_files_are_normalised_text() {
        let dir = Path::new("/nowhere/config");
        for (configured, instance) in [
            ("export.jsonl", "export.jsonl"),
            ("./export.jsonl", "export.jsonl"),
            ("exports//a/./b.jsonl", "exports/a/b.jsonl"),
            ("exports/x/../b.jsonl", "exports/b.jsonl"),
            ("../shared/b.jsonl", "../shared/b.jsonl"),
            ("a/../../b.jsonl", "../b.jsonl"),
            ("x y/kms.jsonl", "x y/kms.jsonl"),
        ] {
            assert_eq!(export_instance(dir, configured), instance, "{configured}");
        }
    }

    #[test]
    fn absolute_files_are_relative_inside_the_config_folder_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cfg");
        std::fs::create_dir_all(dir.join("exports")).unwrap();
        let inside = dir.join("exports/e.jsonl");
        std::fs::write(&inside, "").unwrap();
        let outside = tmp.path().join("other.jsonl");
        std::fs::write(&outside, "").unwrap();
        assert_eq!(
            export_instance(&dir, &inside.display().to_string()),
            "exports/e.jsonl"
        );
        let abs = std::fs::canonicalize(&outside).unwrap();
        assert_eq!(
            export_instance(&dir, &outside.display().to_string()),
            abs.display().to_string()
        );
        // the same relative instance from any folder: a moved checkout is the same source
        let moved = tmp.path().join("moved");
        assert_eq!(
            export_instance(&moved, "exports/e.jsonl"),
            export_instance(&dir, "./exports/e.jsonl")
        );
    }

    #[test]
    fn sops_file_sets_ignore_order_and_spelling() {
        let s = |g: &[&str]| sops_instance(&g.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["secrets/*.yaml"]), "secrets/*.yaml");
        assert_eq!(
            s(&["./b/*.json", "secrets/*.yaml", "b/*.json"]),
            "b/*.json,secrets/*.yaml"
        );
        assert_ne!(s(&["secrets/*.yaml"]), s(&["secrets/*.json"]));
    }

    #[test]
    fn legacy_absolute_instances_are_recognised() {
        for (new, recorded, matches) in [
            ("export.jsonl", "/srv/ci/work/export.jsonl", true),
            ("exports/e.jsonl", "/home/me/repo/exports/e.jsonl", true),
            ("export.jsonl", "/srv/ci/work/my-export.jsonl", false),
            ("export.jsonl", "export.jsonl", false),
            ("exports/e.jsonl", "/e.jsonl", false),
            ("export.jsonl", "/export.jsonl", true),
            ("/abs/x.jsonl", "/abs/x.jsonl", false),
            ("", "/srv/config", true),
            ("", "relative", false),
        ] {
            assert_eq!(
                legacy_instance_matches(new, recorded),
                matches,
                "{new} vs {recorded}"
            );
        }
    }
}
