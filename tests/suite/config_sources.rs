//! Config validation of the `ssm`, `sops` and `credstash` sources: defaults, every problem
//! reported with its key path, unknown keys rejected, and the new `[limits]` groups.

use std::path::Path;

use secretport::config::{Config, ConfigError, SopsSplit, SourceConfig};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("t.toml"), Path::new("."), &|_| None)
}

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("invalid")
        .problems()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

const TARGET: &str = "\n[target]\nregion = \"us-east-1\"\nprefix = \"x\"\n";

#[test]
fn ssm_defaults_and_problems() {
    let c = parse(&format!(
        "[source]\nkind = \"ssm\"\npath = \"/prod/app/\"\n{TARGET}"
    ))
    .unwrap();
    let SourceConfig::Ssm(s) = &c.jobs[0].source else {
        panic!("ssm")
    };
    assert_eq!(s.path, "/prod/app");
    assert_eq!(s.types, ["SecureString"]);
    assert!(!s.copy_tags && !c.jobs[0].source.copy_metadata());
    assert_eq!(c.limits.ssm_per_second, 40);
    assert_eq!(c.limits.ssm_describe_per_second, 10);

    let p = problems(&format!(
        "[source]\nkind = \"ssm\"\npath = \"/a b/\"\ntypes = [\"Secure\"]\nregion = \"nowhere\"\nwith_decryption = true\n{TARGET}[limits]\nssm_per_second = 0\nssm_describe_per_second = 1001\n"
    ));
    for want in [
        "source.path: \"/a b\" is not a parameter path",
        "source.types: \"Secure\" is not a parameter type",
        "source.region: \"nowhere\" is not an AWS region",
        "source.with_decryption: unknown key",
        "limits.ssm_per_second: must be 1..=10000, got 0",
        "limits.ssm_describe_per_second: must be 1..=1000, got 1001",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(want)),
            "{want} not in {p:#?}"
        );
    }
}

#[test]
fn sops_defaults_and_problems() {
    let c = parse(&format!(
        "[source]\nkind = \"sops\"\nfiles = [\"secrets/*.yaml\"]\n{TARGET}"
    ))
    .unwrap();
    let SourceConfig::Sops(s) = &c.jobs[0].source else {
        panic!("sops")
    };
    assert_eq!(s.split, SopsSplit::File);
    assert!(s.dir.is_absolute(), "{}", s.dir.display());

    let p = problems(&format!(
        "[source]\nkind = \"sops\"\nfiles = [\"[\", \"/etc/*.yaml\", \"../x.yaml\"]\nsplit = \"lines\"\nage_key = \"k\"\n{TARGET}"
    ));
    for want in [
        "source.files[0]: \"[\" is not a glob pattern",
        "source.files[1]: \"/etc/*.yaml\" must be relative",
        "source.files[2]: \"../x.yaml\" must be relative",
        "source.split: expected \"file\" or \"keys\"",
        "source.age_key: unknown key",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(want)),
            "{want} not in {p:#?}"
        );
    }
    let p = problems(&format!("[source]\nkind = \"sops\"\n{TARGET}"));
    assert!(
        p.iter().any(|x| x.starts_with("source.files: missing")),
        "{p:#?}"
    );
}

#[test]
fn credstash_defaults_and_problems() {
    let c = parse(&format!(
        "[source]\nkind = \"credstash\"\ncontext = {{ env = \"prod\" }}\n{TARGET}[limits]\ndynamodb_per_second = 5\n"
    ))
    .unwrap();
    let SourceConfig::Credstash(s) = &c.jobs[0].source else {
        panic!("credstash")
    };
    assert_eq!(s.table, "credential-store");
    assert_eq!(s.context["env"], "prod");
    assert_eq!(c.limits.dynamodb_per_second, 5);

    let p = problems(&format!(
        "[source]\nkind = \"credstash\"\ntable = \"a\"\ncontext = {{ env = 1 }}\nversion = 3\n{TARGET}"
    ));
    for want in [
        "source.table: \"a\" is not a DynamoDB table name",
        "source.context: expected a table of strings",
        "source.version: unknown key",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(want)),
            "{want} not in {p:#?}"
        );
    }
    let p = problems(&format!("[source]\nkind = \"etcd\"\n{TARGET}"));
    assert!(
        p.iter().any(|x| x
            .contains("expected \"vault\", \"kms\", \"file\", \"ssm\", \"sops\" or \"credstash\"")),
        "{p:#?}"
    );
}
