//! Shell integration through the binary: the bash completion script, sourced by a real bash,
//! completes subcommands and flags; every shell's script is generated; the man page renders
//! with Debian's `man -l` (groff with warnings on) without a single warning.

use std::process::Command;

fn secretport(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_secretport"))
        .args(args)
        .output()
        .expect("run secretport");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// What bash's completion function offers for `words` (the last one being completed).
fn bash_complete(script: &std::path::Path, words: &str) -> Vec<String> {
    let n = words.split_whitespace().count();
    let cur = words.split_whitespace().last().unwrap_or("");
    let prev = words.split_whitespace().rev().nth(1).unwrap_or("");
    let program = format!(
        "source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; _secretport secretport {cur} {prev}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        cword = n - 1,
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash (Debian's bash package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("secretport.bash");
    std::fs::write(&script, secretport(&["completions", "bash"])).unwrap();
    assert_eq!(bash_complete(&script, "secretport rec"), ["reconcile"]);
    assert_eq!(bash_complete(&script, "secretport refs s"), ["scan"]);
    let flags = bash_complete(&script, "secretport reconcile --pr");
    assert!(flags.contains(&"--prune".to_owned()), "{flags:?}");
    let all = bash_complete(&script, "secretport ''");
    for cmd in [
        "plan",
        "migrate",
        "reconcile",
        "rollback",
        "refs",
        "completions",
        "man",
    ] {
        assert!(all.contains(&cmd.to_owned()), "{cmd} not offered: {all:?}");
    }
}

#[test]
fn every_shell_gets_a_script_naming_the_commands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let s = secretport(&["completions", shell]);
        for word in ["reconcile", "refs", "--config"] {
            assert!(s.contains(word), "{shell}: no {word}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_secretport"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn man_page_renders_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("secretport.1");
    std::fs::write(&page, secretport(&["man"])).unwrap();
    let out = Command::new("man")
        .args(["-l", "--warnings"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env_remove("MANOPT")
        .output()
        .unwrap_or_else(|e| {
            panic!("`man` not found ({e}): run scripts/setup-servers (installs Debian's man-db and groff-base)")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l failed: {stderr}");
    assert!(stderr.trim().is_empty(), "groff warnings: {stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["NAME", "secretport", "reconcile", "refs", "completions"] {
        assert!(text.contains(word), "rendered page lacks {word}:\n{text}");
    }
}
