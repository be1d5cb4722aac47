//! The strings secretport leaves in AWS, pinned: source identity text, `secretport:source` tag
//! value, description, idempotency token and `secretport:owner` proof for fixed inputs. A change to any of them would
//! orphan every managed secret or duplicate versions after a crash, so it must fail here.
//! Regenerate deliberately with `UPDATE_GOLDEN=1 cargo test --test suite identity_golden` and
//! say why in the commit (and in CHANGELOG.md).
//!
//! File-based sources (`file`, `kms`, `sops`) record an instance relative to the config file's
//! folder (the export file, the SOPS globs), never an absolute path: the golden cases use the
//! instances `source::instance` computes, checked below.

use secretport::identity::token::TokenDeriver;
use secretport::identity::{Scope, SourceIdentity};
use secretport::secret::SecretValue;
use serde_json::{json, Value};

const GOLDEN: &str = "fixtures/identity/golden.jsonl";
const KEY: &[u8] = b"golden-token-key-0123456789abcdef";

fn cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    vec![
        (
            "vault",
            "http://127.0.0.1:8200/secret",
            "apps/db/primary",
            "v",
            None,
        ),
        (
            "vault",
            "https://vault.example.com/team-a/secret",
            "café/naïve",
            "{\"a\":1}",
            Some("v1"),
        ),
        (
            "vault",
            "http://v:8200/kv",
            "svc/stripe:live#1 x=y",
            "s3cret\n",
            None,
        ),
        (
            "file",
            "exports/export.jsonl",
            "app/db",
            "",
            Some("00000000-0000-0000-0000-000000000000"),
        ),
        ("kms", "x y/kms.jsonl", "a/b", "x", None),
        ("vault", "http://v/secret", "deep/%s", "long", None),
        ("ssm", "eu-west-1", "prod/db/password", "p", None),
        (
            "ssm",
            "us-east-1@http://127.0.0.1:5000",
            "app/key",
            "k",
            Some("v1"),
        ),
        (
            "sops",
            "secrets/*.yaml",
            "secrets/payments/stripe_key",
            "s",
            None,
        ),
        (
            "credstash",
            "us-east-1/credential-store",
            "db.password",
            "c",
            None,
        ),
    ]
}

fn render() -> String {
    let deriver = TokenDeriver::keyed(zeroize::Zeroizing::new(KEY.to_vec()));
    let mut out = String::new();
    for (kind, instance, path, value, previous) in cases() {
        let path = path.replace("%s", &"segment/".repeat(40));
        let id = Scope::new(kind, instance, "").identity(&path);
        assert_eq!(SourceIdentity::parse(&id.text()).unwrap(), id);
        let line = json!({
            "kind": kind,
            "instance": instance,
            "path": path,
            "value": value,
            "previous": previous,
            "text": id.text(),
            "tag": id.tag_value(),
            "description": id.description(),
            "token": deriver.token(&id, &SecretValue::text(value.to_owned()), previous),
            // the secretport:owner tag of that secret written as p/<path> under prefix "p"
            // by a job reading the whole instance, and by one whose base path is its first
            // segment
            "owner": deriver.ownership_proof(&format!("p/{path}"), &Scope::new(kind, instance, ""), "p"),
            "owner_base": deriver.ownership_proof(
                &format!("p/{path}"),
                &Scope::new(kind, instance, path.split('/').next().unwrap_or("")),
                "p",
            ),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[test]
fn identity_tag_and_token_strings_are_pinned() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let got = render();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (create it with UPDATE_GOLDEN=1)", path.display()));
    for (g, w) in got.lines().zip(want.lines()) {
        let (g, w): (Value, Value) = (
            serde_json::from_str(g).unwrap(),
            serde_json::from_str(w).unwrap(),
        );
        assert_eq!(
            g, w,
            "a pinned string changed: managed secrets would be orphaned or versions duplicated"
        );
    }
    assert_eq!(got.lines().count(), want.lines().count());
}

/// The golden file-based instances are what the config rule yields, from any checkout folder.
#[test]
fn file_based_instances_do_not_depend_on_the_checkout_folder() {
    use secretport::source::instance::{export_instance, legacy_instance_matches, sops_instance};
    use std::path::Path;
    for dir in ["/srv/config", "/builds/ci/job-7/config", "/mnt/checkout"] {
        let dir = Path::new(dir);
        assert_eq!(
            export_instance(dir, "./exports/export.jsonl"),
            "exports/export.jsonl"
        );
        assert_eq!(export_instance(dir, "x y/kms.jsonl"), "x y/kms.jsonl");
    }
    assert_eq!(sops_instance(&["secrets/*.yaml".into()]), "secrets/*.yaml");
    // the instance written before this rule is recognisable, for adoption only
    assert!(legacy_instance_matches(
        "exports/export.jsonl",
        "/srv/config/exports/export.jsonl"
    ));
}
