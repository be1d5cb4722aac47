//! Cutover through the binary: a real migration (OpenBao's `secret/` mount and moto's SSM into
//! moto's Secrets Manager, two jobs), then `refs` maps its report and `refs scan` gates a tree
//! of consumers written by the test: one of each syntax (ESO with a Vault store, injector
//! annotation, Agent templates in YAML and HCL, `vault kv get` / `vault read`, CloudFormation
//! `ssm-secure`, an ECS `valueFrom` ARN) and decoys (comments, a path of another mount, a binary
//! file, a .gitignore'd folder, a path that was not migrated). Exit 2 with every real reference
//! at its line and no decoy; after the test rewrites them, exit 0. The `ExternalSecret`s
//! `refs --format external-secrets` writes are parsed back and checked field by field.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::cli::Workspace;
use crate::support::{Bao, Moto};

fn config(bao: &str, moto: &str) -> String {
    format!(
        r#"[[jobs]]
name = "vault"
[jobs.source]
kind = "vault"
address = "{bao}"
mount = "secret"
path = "apps/"
auth = {{ method = "token", token_env = "CUT_TOKEN" }}
[jobs.target]
region = "us-east-1"
prefix = "cut/vault"
endpoint_url = "{moto}"

[[jobs]]
name = "ssm"
[jobs.source]
kind = "ssm"
path = "/prod/"
[jobs.target]
region = "us-east-1"
prefix = "cut/ssm"
endpoint_url = "{moto}"
"#
    )
}

/// (file, content): every consumer the scan must find, and the decoys it must not.
fn tree() -> Vec<(&'static str, Vec<u8>)> {
    let t = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "k8s/external-secret.yaml",
            t(r#"apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: vault-backend
spec:
  provider:
    vault:
      server: "http://vault:8200"
      path: "secret"
      version: "v2"
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: db
spec:
  secretStoreRef:
    name: vault-backend
    kind: SecretStore
  data:
    - secretKey: password
      remoteRef:
        key: apps/db
        property: password
    # - secretKey: legacy
    #   remoteRef:
    #     key: apps/legacy
  dataFrom:
    - extract:
        key: apps/api
"#),
        ),
        (
            "k8s/deployment.yaml",
            t(r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      annotations:
        vault.hashicorp.com/agent-inject: "true"
        vault.hashicorp.com/agent-inject-secret-db: "secret/data/apps/db"
        vault.hashicorp.com/agent-inject-template-api: |
          {{- with secret "secret/data/apps/api" -}}{{ .Data.data.key }}{{- end }}
        # vault.hashicorp.com/agent-inject-secret-old: "secret/data/apps/legacy"
"#),
        ),
        (
            "agent/agent.hcl",
            t(r#"template {
  destination = "/etc/app/legacy.env"
  contents    = "{{ with secret \"secret/data/apps/legacy\" }}PW={{ .Data.data.pw }}{{ end }}"
}
"#),
        ),
        (
            "scripts/deploy.sh",
            t(r#"#!/bin/sh
set -eu
DB_PW=$(vault kv get -field=password secret/apps/db)
# vault kv get secret/apps/legacy
vault read -format=json secret/data/apps/api > api.json
vault kv get -mount=other apps/db
vault kv get secret/apps/never-migrated
"#),
        ),
        (
            "cfn/stack.yaml",
            t(r#"Resources:
  Db:
    Type: AWS::RDS::DBInstance
    Properties:
      MasterUserPassword: '{{resolve:ssm-secure:/prod/db/password:1}}'
      # MasterUsername: '{{resolve:ssm-secure:/prod/api/key}}'
"#),
        ),
        (
            "ecs/task.json",
            t(r#"{
  "containerDefinitions": [
    {
      "secrets": [
        {"name": "API_KEY", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/api/key"},
        {"name": "OTHER", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/dev/api/key"}
      ]
    }
  ]
}
"#),
        ),
        // decoys: a binary file and an ignored folder naming migrated secrets
        (
            "bin/blob.bin",
            b"\x00\x01vault kv get secret/apps/db\n".to_vec(),
        ),
        (".gitignore", t("ignored/\n")),
        ("ignored/old.sh", t("vault kv get secret/apps/db\n")),
    ]
}

/// The references the scan must find: (file, line, syntax, written, target name).
const EXPECTED: [(&str, usize, &str, &str, &str); 9] = [
    (
        "agent/agent.hcl",
        3,
        "vault-template",
        "secret/data/apps/legacy",
        "cut/vault/legacy",
    ),
    (
        "cfn/stack.yaml",
        5,
        "cloudformation",
        "/prod/db/password",
        "cut/ssm/db/password",
    ),
    (
        "ecs/task.json",
        5,
        "value-from",
        "/prod/api/key",
        "cut/ssm/api/key",
    ),
    (
        "k8s/deployment.yaml",
        10,
        "vault-annotation",
        "secret/data/apps/db",
        "cut/vault/db",
    ),
    (
        "k8s/deployment.yaml",
        12,
        "vault-template",
        "secret/data/apps/api",
        "cut/vault/api",
    ),
    (
        "k8s/external-secret.yaml",
        23,
        "external-secret",
        "apps/db",
        "cut/vault/db",
    ),
    (
        "k8s/external-secret.yaml",
        30,
        "external-secret",
        "apps/api",
        "cut/vault/api",
    ),
    (
        "scripts/deploy.sh",
        3,
        "vault-cli",
        "secret/apps/db",
        "cut/vault/db",
    ),
    (
        "scripts/deploy.sh",
        5,
        "vault-cli",
        "secret/data/apps/api",
        "cut/vault/api",
    ),
];

fn write_tree(root: &Path) {
    for (name, content) in tree() {
        let p = root.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Runs secretport in `ws` without the Vault token: `refs` must need no credential.
fn run_refs(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    let mut cmd = ws.command(args, &[]);
    cmd.env_remove("CUT_TOKEN");
    let out = cmd.output().expect("run secretport");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_finds_every_consumer_no_decoy_and_passes_after_the_fix() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    for (p, v) in [
        ("apps/db", json!({"user": "app", "password": "p1"})),
        ("apps/api", json!({"key": "k1"})),
        ("apps/legacy", json!({"pw": "l1"})),
    ] {
        bao.put_kv2("secret", p, v).await;
    }
    bao.mount_kv("other", 2).await;
    bao.put_kv2("other", "apps/db", json!({"password": "not-migrated"}))
        .await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    for (name, value) in [("/prod/db/password", "s1"), ("/prod/api/key", "s2")] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("PutParameter");
    }

    let mut ws = Workspace::new();
    ws.env("CUT_TOKEN", bao.token());
    let cfg = ws.write("cutover.toml", &config(bao.addr(), moto.endpoint()));
    let run = ws
        .run(&["migrate", "--config", cfg.to_str().unwrap(), "--yes"])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 5, "{:#?}", run.rows);
    let report = run.report.clone().unwrap();
    let (r, c) = (report.to_str().unwrap(), cfg.to_str().unwrap());

    // the mapping, as JSON Lines
    let (code, out, err) = run_refs(
        &ws,
        &["refs", "--report", r, "--config", c, "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let refs = json_lines(&out);
    assert_eq!(refs.len(), 5, "{out}");
    let db = refs.iter().find(|v| v["source_path"] == "db").unwrap();
    assert_eq!(db["reference"], "secret/apps/db");
    assert_eq!(db["api_path"], "secret/data/apps/db");
    assert_eq!(db["target_name"], "cut/vault/db");
    let arn = db["target_arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{arn}"
    );
    assert_eq!(db["json_key"], format!("{arn}:<key>::"));
    let pw = refs
        .iter()
        .find(|v| v["job"] == "ssm" && v["source_path"] == "db/password")
        .unwrap();
    assert_eq!(pw["reference"], "/prod/db/password");
    // CSV: a header and one row per migrated secret
    let (code, out, _) = run_refs(&ws, &["refs", "--report", r, "--config", c]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(
            "job,kind,source_path,reference,api_path,target_name,target_arn,json_key\n"
        ),
        "{out}"
    );
    assert_eq!(out.lines().count(), 6, "{out}");

    // the scan gate: every consumer at its line, no decoy, exit 2
    let tree_dir = ws.path().join("repo");
    write_tree(&tree_dir);
    let (code, out, err) = run_refs(
        &ws,
        &[
            "refs", "scan", "--report", r, "--config", c, "--json", "repo",
        ],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let lines = json_lines(&out);
    let (summary, hits) = lines.split_last().unwrap();
    let got: BTreeSet<(String, u64, String, String, String)> = hits
        .iter()
        .map(|h| {
            (
                h["file"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("repo/")
                    .to_owned(),
                h["line"].as_u64().unwrap(),
                h["syntax"].as_str().unwrap().to_owned(),
                h["written"].as_str().unwrap().to_owned(),
                h["target_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeSet<(String, u64, String, String, String)> = EXPECTED
        .iter()
        .map(|(f, l, s, w, t)| {
            (
                f.to_string(),
                *l as u64,
                s.to_string(),
                w.to_string(),
                t.to_string(),
            )
        })
        .collect();
    assert_eq!(got, want, "{out}");
    assert_eq!(hits.len(), want.len(), "each reference once: {out}");
    let s = &summary["summary"];
    assert_eq!(s["references"], 9);
    assert_eq!(s["binary_skipped"], 1, "{s}");
    // `-mount=other apps/db`, `never-migrated`, the dev parameter: found, not ours
    assert_eq!(s["unmatched"], 3, "{s}");
    assert!(!out.contains("ignored/"), "{out}");
    // the human form: file:line, the old reference, the new name and ARN
    let (code, text, _) = run_refs(&ws, &["refs", "scan", "--report", r, "--config", c, "repo"]);
    assert_eq!(code, 2);
    assert!(
        text.contains(&format!(
            "repo/scripts/deploy.sh:3: vault-cli \"secret/apps/db\" -> cut/vault/db ({arn})"
        )),
        "{text}"
    );

    // a gate fed a report with no confirmed migration (a plan's) refuses instead of passing
    let text = std::fs::read_to_string(&report).unwrap();
    let planned = text.replace(",create,ok,", ",create,planned,");
    ws.write("planned.csv", &planned);
    let (code, _, err) = run_refs(
        &ws,
        &[
            "refs",
            "scan",
            "--report",
            "planned.csv",
            "--config",
            c,
            "repo",
        ],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("no confirmed migration"), "{err}");
    // a folder that does not exist is bad usage, not a green gate
    let (code, _, err) = run_refs(&ws, &["refs", "scan", "--report", r, "--config", c, "nope"]);
    assert_eq!(code, 64, "{err}");

    // the fix: every reference replaced by what the scan says, the ESO store switched to AWS
    for h in hits {
        let file = ws.path().join(h["file"].as_str().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        let line = h["line"].as_u64().unwrap() as usize;
        let fixed: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i + 1 == line {
                    l.replace(
                        h["written"].as_str().unwrap(),
                        h["replace_with"].as_str().unwrap(),
                    )
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&file, fixed.join("\n") + "\n").unwrap();
    }
    let eso = tree_dir.join("k8s/external-secret.yaml");
    let text = std::fs::read_to_string(&eso)
        .unwrap()
        .replace("    name: vault-backend\n", "    name: aws-sm\n");
    std::fs::write(&eso, text).unwrap();
    let (code, out, err) = run_refs(&ws, &["refs", "scan", "--report", r, "--config", c, "repo"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("0 reference(s)"), "{err}");
}

/// Every generated `ExternalSecret` parses back as YAML and says what it must.
#[tokio::test(flavor = "multi_thread")]
async fn external_secret_manifests_parse_back_one_per_migrated_secret() {
    use yaml_rust2::{Yaml, YamlLoader};
    let moto = Moto::start().await;
    let ws = Workspace::new();
    let export = crate::cli::string_export(&[("app/db", "x"), ("App/DB", "y"), ("svc/key:1", "z")]);
    ws.write("export.jsonl", &export);
    let cfg = ws.write(
        "c.toml",
        &crate::cli::file_config(moto.endpoint(), "eso", "", ""),
    );
    let run = ws
        .run(&["migrate", "--config", cfg.to_str().unwrap(), "--yes"])
        .await;
    run.expect_code(0);
    let report = run.report.clone().unwrap();
    let (code, out, err) = run_refs(
        &ws,
        &[
            "refs",
            "--report",
            report.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "external-secrets",
            "--store",
            "aws-sm",
            "--store-kind",
            "ClusterSecretStore",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let docs = YamlLoader::load_from_str(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let docs: Vec<&Yaml> = docs.iter().filter(|d| !d.is_null()).collect();
    let migrated: BTreeSet<String> = run
        .rows
        .iter()
        .filter(|r| r["action"] == "create" && r["status"] == "ok")
        .map(|r| r["target_name"].clone())
        .collect();
    assert_eq!(docs.len(), migrated.len(), "{out}");
    let mut names = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for d in docs {
        assert_eq!(d["apiVersion"].as_str(), Some("external-secrets.io/v1"));
        assert_eq!(d["kind"].as_str(), Some("ExternalSecret"));
        let name = d["metadata"]["name"].as_str().unwrap();
        assert!(
            name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.ends_with(|c: char| c.is_ascii_alphanumeric()),
            "{name}"
        );
        assert!(
            names.insert(name.to_owned()),
            "duplicate object name {name}"
        );
        let spec = &d["spec"];
        assert_eq!(spec["secretStoreRef"]["name"].as_str(), Some("aws-sm"));
        assert_eq!(
            spec["secretStoreRef"]["kind"].as_str(),
            Some("ClusterSecretStore")
        );
        assert_eq!(spec["target"]["name"].as_str(), Some(name));
        assert_eq!(spec["target"]["creationPolicy"].as_str(), Some("Owner"));
        let key = spec["dataFrom"][0]["extract"]["key"].as_str().unwrap();
        keys.insert(key.to_owned());
    }
    assert_eq!(keys, migrated);

    // --format external-secrets without --store is a usage error
    let (code, _, err) = run_refs(
        &ws,
        &[
            "refs",
            "--report",
            report.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "external-secrets",
        ],
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--store"), "{err}");
}
