//! Golden tests of the `rename` CSV: each input under `fixtures/names/*.txt` is planned with
//! the library (`read_names` -> `run_rename` -> `write_csv`) and compared byte for byte with the
//! checked-in `fixtures/names/<input>.<policy>.expected.csv`.
//!
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test rename_golden`,
//! then review the diff by eye (`git diff fixtures/names`) before committing.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use secretport::commands::rename::{read_names, run_rename, summary_line, write_csv};
use secretport::naming::{is_valid_target, NamingRules, Overrides, Policy, Reason};

struct Case {
    input: &'static str,
    prefix: Option<&'static str>,
    policy: Policy,
    overrides: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        input: "spaces.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "spaces.txt",
        prefix: None,
        policy: Policy::Alphanumeric,
        overrides: None,
    },
    Case {
        input: "unicode.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "unicode.txt",
        prefix: Some("devops"),
        policy: Policy::Alphanumeric,
        overrides: None,
    },
    Case {
        input: "collisions.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "collisions.txt",
        prefix: Some("devops"),
        policy: Policy::Alphanumeric,
        overrides: None,
    },
    Case {
        input: "long.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "long.txt",
        prefix: None,
        policy: Policy::Alphanumeric,
        overrides: None,
    },
    Case {
        input: "arn.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "arn.txt",
        prefix: None,
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "specials.txt",
        prefix: None,
        policy: Policy::Aws,
        overrides: None,
    },
    Case {
        input: "overrides.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: Some("overrides.csv"),
    },
    Case {
        input: "demo-names.txt",
        prefix: Some("devops"),
        policy: Policy::Aws,
        overrides: None,
    },
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/names")
}

fn expected_path(c: &Case) -> PathBuf {
    let stem = c.input.trim_end_matches(".txt");
    let prefix = if c.prefix.is_some() { "" } else { ".noprefix" };
    dir().join(format!("{stem}{prefix}.{}.expected.csv", c.policy))
}

fn render(c: &Case) -> (String, String) {
    let rules = NamingRules::new(c.prefix, c.policy);
    let overrides = match c.overrides {
        Some(f) => {
            let text = fs::read_to_string(dir().join(f)).expect("overrides fixture");
            Overrides::parse(&text, &rules).expect("overrides parse")
        }
        None => Overrides::default(),
    };
    let bytes = fs::read(dir().join(c.input)).expect("input fixture");
    let names = read_names(&bytes).expect("names");
    let out = run_rename(&names, &rules, &overrides).expect("rename");

    // Invariants, whatever the expected file says.
    let mut seen = HashSet::new();
    for m in &out.rows {
        let overridden = m.has(Reason::Override);
        assert!(
            overridden || is_valid_target(&m.target, c.policy),
            "{}: {:?}",
            c.input,
            m
        );
        assert!(
            seen.insert(m.target.clone()),
            "duplicate target {:?}",
            m.target
        );
        if let (Some(p), false) = (c.prefix, overridden) {
            assert!(m.target.starts_with(&format!("{p}/")), "{m:?}");
        }
    }
    // Rows follow first occurrence; the mapping does not depend on input order.
    let mut reversed = names.clone();
    reversed.reverse();
    let rev = run_rename(&reversed, &rules, &overrides).expect("rename reversed");
    let mut a = out.rows.clone();
    let mut b = rev.rows.clone();
    a.sort_by(|x, y| x.source.cmp(&y.source));
    b.sort_by(|x, y| x.source.cmp(&y.source));
    assert_eq!(a, b, "{}: input order changed a mapping", c.input);

    let mut buf = Vec::new();
    write_csv(&out, &mut buf).expect("write csv");
    let csv = String::from_utf8(buf).expect("utf-8 csv");

    // The CSV reads back as an overrides file that reproduces every mapping.
    let back = Overrides::parse(&csv, &rules).expect("rename CSV as overrides");
    assert_eq!(back.len(), out.rows.len());
    let again = run_rename(&names, &rules, &back).expect("rename with its own output");
    for (a, b) in out.rows.iter().zip(&again.rows) {
        assert_eq!((&a.source, &a.target), (&b.source, &b.target));
        assert_eq!(b.reasons.to_vec(), vec![Reason::Override]);
    }

    (csv, summary_line(&out))
}

/// Compares `want` with the file at `path` (CRLF-tolerant), or writes it when updating.
fn check(path: &Path, want: &str, update: bool, failures: &mut Vec<String>) {
    if update {
        fs::write(path, want).expect("write golden");
        return;
    }
    match fs::read_to_string(path) {
        Ok(have) if have.replace("\r\n", "\n") == want => {}
        Ok(have) => failures.push(format!(
            "{} differs\n--- expected\n{have}--- actual\n{want}",
            path.display()
        )),
        Err(e) => failures.push(format!("{}: {e}", path.display())),
    }
}

#[test]
fn golden_rename_csv() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut summaries = String::new();
    for c in CASES {
        let (csv, summary) = render(c);
        let path = expected_path(c);
        check(&path, &csv, update, &mut failures);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        summaries.push_str(&format!("{file}: {summary}\n"));
    }
    let path = dir().join("summaries.expected.txt");
    check(&path, &summaries, update, &mut failures);
    assert!(
        failures.is_empty(),
        "{}\n(UPDATE_GOLDEN=1 regenerates; review the diff)",
        failures.join("\n")
    );
}

#[test]
fn every_fixture_has_a_case() {
    let covered: HashSet<&str> = CASES.iter().map(|c| c.input).collect();
    for entry in fs::read_dir(dir()).expect("fixtures/names") {
        let name = entry
            .expect("entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if name.ends_with(".txt") && !name.contains(".expected.") {
            assert!(covered.contains(name.as_str()), "{name} has no golden case");
        }
    }
}

/// A few rows checked by hand, independent of the golden files.
#[test]
fn hand_checked_rows() {
    let rules = NamingRules::new(Some("devops"), Policy::Aws);
    let names: Vec<String> = [
        "app/db password",
        "app/db_password",
        "café",
        "app/db-abcdef",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_rename(&names, &rules, &Overrides::default()).unwrap();
    let mut buf = Vec::new();
    write_csv(&out, &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "source,target,changed,reasons");
    // The compliant twin keeps the clean name; the other gets `_` + 8 hex.
    assert!(
        lines[1].starts_with("app/db password,devops/app/db_password_"),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",true,prefix;charset;collision"));
    assert_eq!(
        lines[2],
        "app/db_password,devops/app/db_password,false,prefix"
    );
    assert_eq!(lines[3], "café,devops/cafe,true,prefix;transliterated");
    assert_eq!(
        lines[4],
        "app/db-abcdef,devops/app/db_abcdef,true,prefix;arn-suffix"
    );
    assert_eq!(summary_line(&out), "4 names, 3 renamed, 1 collisions");
}
