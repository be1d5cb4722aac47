//! The shipped deployment (`deploy/`): what the Kubernetes schemas cannot say. The manifests
//! parse; the CronJob runs non-root on a read-only root filesystem with every capability
//! dropped, never retries (`backoffLimit: 0`), never overlaps, and mounts the ConfigMap and
//! ServiceAccount the other files define; the ServiceAccount is annotated for IRSA; the
//! ConfigMap's config uses Vault's kubernetes auth as docs/sources/vault.md documents it; and the container's
//! arguments, with that config, are a secretport invocation that works: run against OpenBao and
//! moto with only the Vault address and login, the AWS endpoint, the Pushgateway and the paths
//! made local (the push of the run's metrics reaches a real Pushgateway).
//! (The schema check itself is `scripts/check-deploy`; the image build cannot run here.)

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::prom::{sample, Pushgateway};
use crate::support::{aws_env, Bao, Moto, TEST_REGION};

fn deploy(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(file),
    )
    .unwrap_or_else(|e| panic!("deploy/{file}: {e}"))
}

fn docs(file: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&deploy(file)).unwrap_or_else(|e| panic!("deploy/{file}: {e}"))
}

fn of_kind(file: &str, kind: &str) -> Yaml {
    docs(file)
        .into_iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("deploy/{file} has no {kind}"))
}

fn strs(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

struct Deployment {
    cronjob: Yaml,
    config_name: String,
    config_key: String,
    config: String,
}

fn load() -> Deployment {
    let cronjob = of_kind("cronjob.yaml", "CronJob");
    let cm = of_kind("configmap.yaml", "ConfigMap");
    let data = cm["data"].as_hash().expect("ConfigMap data");
    assert_eq!(data.len(), 1, "one config file in the ConfigMap");
    let (k, v) = data.iter().next().unwrap();
    Deployment {
        cronjob,
        config_name: cm["metadata"]["name"].as_str().unwrap().to_owned(),
        config_key: k.as_str().unwrap().to_owned(),
        config: v.as_str().unwrap().to_owned(),
    }
}

#[test]
fn cronjob_is_locked_down_and_wired_to_the_other_manifests() {
    let d = load();
    let c = &d.cronjob;
    assert_eq!(c["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(c["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
    let job = &c["spec"]["jobTemplate"]["spec"];
    assert_eq!(
        job["backoffLimit"].as_i64(),
        Some(0),
        "exit codes are not retried"
    );
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let uid = pod["securityContext"]["runAsUser"].as_i64().unwrap();
    assert_ne!(uid, 0);
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let ctr = &containers[0];
    let sc = &ctr["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(ctr["resources"]["requests"]["memory"].as_str().is_some());
    assert!(ctr["resources"]["limits"]["memory"].as_str().is_some());

    // the image runs as the same non-root user, with the binary as its entrypoint
    let dockerfile = deploy("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/secretport\"]"));

    // ServiceAccount: the one the pod uses, annotated for IRSA
    let sa = of_kind("serviceaccount.yaml", "ServiceAccount");
    assert_eq!(
        pod["serviceAccountName"].as_str(),
        sa["metadata"]["name"].as_str()
    );
    let role = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .unwrap();
    assert!(role.starts_with("arn:aws:iam::"), "{role}");
    let ns = sa["metadata"]["namespace"].as_str();
    assert_eq!(c["metadata"]["namespace"].as_str(), ns);

    // volumes: the ConfigMap at the --config path, a writable volume at the --report path
    let mounts = ctr["volumeMounts"].as_vec().unwrap();
    let mount_of = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("no volumeMount {name}"))
            .to_owned()
    };
    let volumes = pod["volumes"].as_vec().unwrap();
    let config_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == Some(d.config_name.as_str()))
        .expect("a volume from the ConfigMap");
    let config_path = format!(
        "{}/{}",
        mount_of(config_volume["name"].as_str().unwrap()),
        d.config_key
    );
    let args = strs(&ctr["args"]);
    assert_eq!(args[0], "reconcile");
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{flag} missing from {args:?}"))
            .clone()
    };
    assert_eq!(after("--config"), config_path);
    assert!(args.contains(&"--prune".to_owned()) && args.contains(&"--yes".to_owned()));
    let report = after("--report");
    assert!(
        report.starts_with(&format!("{}/", mount_of("reports"))),
        "{report}"
    );
    let reports = volumes
        .iter()
        .find(|v| v["name"].as_str() == Some("reports"))
        .unwrap();
    assert!(!reports["persistentVolumeClaim"]["claimName"].is_badvalue());
    // $(JOB_NAME) in the report path is an env var the container defines
    let env: Vec<&str> = ctr["env"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        report.contains("$(JOB_NAME)") && env.contains(&"JOB_NAME"),
        "{report}"
    );
}

#[test]
fn configmap_config_uses_vault_kubernetes_auth_as_documented() {
    let cfg: toml::Table = load()
        .config
        .parse()
        .expect("the ConfigMap's config is TOML");
    let auth = cfg["source"]["auth"].as_table().expect("[source.auth]");
    assert_eq!(auth["method"].as_str(), Some("kubernetes"));
    assert_eq!(auth["role"].as_str(), Some("secretport"));
    // the Vault source's page documents the kubernetes login's defaults
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/sources/vault.md"
    ))
    .unwrap();
    for (key, default) in [
        ("mount", "kubernetes"),
        (
            "jwt_file",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ),
    ] {
        assert!(
            load().config.contains(&format!("# {key} = \"{default}\"")),
            "the ConfigMap shows {key}'s default"
        );
        assert!(
            readme.contains(default),
            "docs/sources/vault.md documents {key} = {default}"
        );
    }
    assert_eq!(
        cfg["target"]["credentials"]["type"].as_str(),
        Some("default"),
        "IRSA comes through the SDK's default chain"
    );
}

fn run(bin: &str, args: &[String], dir: &Path, token: &str) -> (i32, String) {
    let mut c = Command::new(bin);
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("VAULT_TOKEN", token)
        .env_remove("AWS_PROFILE");
    for (k, v) in aws_env(TEST_REGION) {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn cronjob_args_with_the_configmap_config_run_against_openbao_and_moto() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let gateway = Pushgateway::start().await;
    let d = load();
    let mut cfg: toml::Table = d.config.parse().unwrap();
    let path = cfg["source"]["path"].as_str().unwrap().to_owned();
    let mount = cfg["source"]["mount"].as_str().unwrap().to_owned();
    bao.put_kv2(&mount, &format!("{path}/db"), json!({"password": "p1"}))
        .await;
    bao.put_kv2(&mount, &format!("{path}/api"), json!({"key": "k1"}))
        .await;

    // local stand-ins: OpenBao (token login: no Kubernetes API here to review a
    // ServiceAccount token), moto, scratch paths; everything else as shipped
    let source = cfg["source"].as_table_mut().unwrap();
    source.insert("address".into(), bao.addr().into());
    let mut auth = toml::Table::new();
    auth.insert("method".into(), "token".into());
    auth.insert("token_env".into(), "VAULT_TOKEN".into());
    source.insert("auth".into(), auth.into());
    let target = cfg["target"].as_table_mut().unwrap();
    target.insert("endpoint_url".into(), moto.endpoint().into());
    let dir = tempfile::tempdir().unwrap();
    let local = |p: &str| {
        p.replacen("/config/", &format!("{}/config/", dir.path().display()), 1)
            .replacen(
                "/reports/",
                &format!("{}/reports/", dir.path().display()),
                1,
            )
            .replace("$(JOB_NAME)", "secretport-reconcile-29000000")
            .replace(
                "http://prometheus-pushgateway.monitoring.svc:9091",
                gateway.url(),
            )
    };
    cfg["report"]
        .as_table_mut()
        .unwrap()
        .insert("dir".into(), local("/reports/").into());
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config").join(&d.config_key),
        toml::to_string(&cfg).unwrap(),
    )
    .unwrap();

    let ctr = &d.cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = strs(&ctr["args"]).iter().map(|a| local(a)).collect();
    let bin = env!("CARGO_BIN_EXE_secretport");
    let (code, err) = run(bin, &args, dir.path(), bao.token());
    assert_eq!(code, 0, "{args:?}\n{err}");
    assert!(err.contains("create 2"), "{err}");
    let report = dir.path().join("reports/secretport-reconcile-29000000.csv");
    let text = std::fs::read_to_string(&report).unwrap();
    assert_eq!(text.matches(",create,ok,").count(), 2, "{text}");
    let shown = gateway.metrics().await;
    let pushed = [
        "job=\"secretport\"",
        "config=\"secretport\"",
        "command=\"reconcile\"",
    ];
    assert_eq!(
        sample(&shown, "secretport_exit_code", &pushed),
        Some(0.0),
        "{shown}"
    );
    assert!(
        !err.contains("warning: cannot push"),
        "the CronJob's push reaches the gateway: {err}"
    );
    // the next night: in sync, exit 0
    let (code, err) = run(bin, &args, dir.path(), bao.token());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("unchanged 2"), "{err}");
}
