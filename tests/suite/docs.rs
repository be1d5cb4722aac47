//! The documentation a newcomer navigates stays navigable: README stays a short front page that
//! shows the one test command, every relative link in README.md, CONTRIBUTING.md, CHANGELOG.md
//! and `docs/` points at a file that exists (and, with a `#fragment`, at a heading it has), and
//! `secretport --help` names every kind of source. (The commands the docs show are run by
//! `readme_cron.rs` and `deploy.rs`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README's budget: the rest belongs in `docs/`.
const README_MAX_LINES: usize = 250;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every markdown file the links are checked in.
fn markdown_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.is_file())
        .collect();
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The lines of a markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            out.push(line);
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case; letters, digits, `-` and `_` kept; spaces become
/// `-`; everything else (backticks, dots, colons, parentheses) dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The anchors of a markdown file's headings (a repeated heading gets `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let base = slug(title.trim());
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The targets of the inline links `[text](target)` in a markdown text's prose.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            out.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn readme_is_a_short_front_page_with_the_two_commands() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail to docs/"
    );
    for command in ["scripts/demo", "scripts/test"] {
        assert!(
            readme.contains(&format!("```sh\n{command}\n```")),
            "README shows `{command}` on its own"
        );
    }
    for page in ["docs/architecture.md", "CONTRIBUTING.md"] {
        assert!(
            readme.contains(&format!("]({page})")),
            "README links {page}"
        );
    }
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    let files = markdown_files();
    assert!(files.len() > 3, "found the docs: {files:?}");
    for file in &files {
        let text = read(file);
        let dir = file.parent().unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            let shown = file
                .strip_prefix(ROOT)
                .unwrap_or(file)
                .display()
                .to_string();
            if !resolved.exists() {
                broken.push(format!("{shown}: ({target}): no such file"));
                continue;
            }
            if let Some(fragment) = fragment {
                if resolved.extension().is_some_and(|e| e == "md")
                    && !anchors(&read(&resolved)).contains(fragment)
                {
                    broken.push(format!("{shown}: ({target}): no such heading"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn slugs_follow_github() {
    for (heading, anchor) in [
        ("The `.json` sidecar", "the-json-sidecar"),
        (
            "5. Reconcile: keep AWS in step",
            "5-reconcile-keep-aws-in-step",
        ),
        (
            "Sticky names (plan, migrate, reconcile)",
            "sticky-names-plan-migrate-reconcile",
        ),
        ("on_conflict", "on_conflict"),
    ] {
        assert_eq!(slug(heading), anchor);
    }
    let text = "# A\n```sh\n# not a heading\n```\n## A\n#nope\n";
    assert_eq!(
        anchors(text),
        BTreeSet::from(["a".to_owned(), "a-1".to_owned()])
    );
}

#[test]
fn help_names_every_source() {
    for flag in ["-h", "--help"] {
        let out = Command::new(env!("CARGO_BIN_EXE_secretport"))
            .arg(flag)
            .output()
            .unwrap();
        assert!(out.status.success(), "secretport {flag}");
        let help = String::from_utf8_lossy(&out.stdout);
        for source in [
            "Vault",
            "OpenBao",
            "KV v1",
            "v2",
            "SSM Parameter Store",
            "SOPS files",
            "credstash tables",
            "KMS-encrypted exports",
            "plaintext",
        ] {
            assert!(
                help.contains(source),
                "secretport {flag} names {source}:\n{help}"
            );
        }
    }
}
