//! `[target] replica_regions` against real moto: secrets are created with AWS-native replicas,
//! `reconcile` adds a replica region a managed secret lacks and reports a replica AWS could
//! not make, `plan` and `reconcile --check` replicate nothing, and a secret that is not this
//! run's (unmanaged, or another scope's) is never replicated.

use crate::cli::{file_config, string_export as export, Workspace};
use crate::support::{Moto, ThrottleProxy};

const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";

async fn replication(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Vec<(String, String)> {
    sm.describe_secret()
        .secret_id(name)
        .send()
        .await
        .unwrap()
        .replication_status()
        .iter()
        .map(|r| {
            (
                r.region().unwrap_or_default().to_owned(),
                r.status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn replica_value(sm: &aws_sdk_secretsmanager::Client, name: &str) -> Option<String> {
    sm.get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()
        .and_then(|v| v.secret_string().map(str::to_owned))
}

fn config(endpoint: &str, file: &str, replicas: bool, extra: &str) -> String {
    let replicas = if replicas {
        format!("replica_regions = [\"{REPLICA}\"]\n")
    } else {
        String::new()
    };
    file_config(endpoint, "r", &format!("{replicas}{extra}"), "").replace("export.jsonl", file)
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_created_added_by_reconcile_reported_when_failed_and_never_for_others() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let sm = moto.sm_client(PRIMARY);
    let eu = moto.sm_client(REPLICA);
    let ws = Workspace::new();

    // "old" was migrated before replicas were configured; "other" belongs to another source
    // (another scope under the same prefix); "squat" is someone else's, unmanaged; a secret
    // named "r/taken" already exists in the replica region
    ws.write("export.jsonl", &export(&[("old", "o")]));
    ws.write("other.jsonl", &export(&[("other", "x")]));
    ws.write(
        "plain.toml",
        &config(proxy.endpoint(), "export.jsonl", false, ""),
    );
    ws.write(
        "other.toml",
        &config(proxy.endpoint(), "other.jsonl", false, ""),
    );
    ws.run(&["migrate", "-c", "plain.toml", "--yes"])
        .await
        .expect_code(0);
    ws.run(&["migrate", "-c", "other.toml", "--yes"])
        .await
        .expect_code(0);
    sm.create_secret()
        .name("r/squat")
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    eu.create_secret()
        .name("r/taken")
        .secret_string("eu's own")
        .send()
        .await
        .unwrap();

    ws.write(
        "export.jsonl",
        &export(&[
            ("old", "o"),
            ("new", "n"),
            ("other", "mine"),
            ("squat", "theirs"),
            ("taken", "t"),
        ]),
    );
    ws.write(
        "cfg.toml",
        &config(
            proxy.endpoint(),
            "export.jsonl",
            true,
            "on_conflict = \"adopt\"",
        ),
    );

    // plan: shows the replication to come, replicates nothing
    proxy.reset_counters();
    let plan = ws.run(&["plan", "-c", "cfg.toml"]).await;
    plan.expect_code(0);
    assert_eq!(proxy.writes_forwarded(), 0, "{:?}", proxy.snapshot());
    let old = plan
        .rows
        .iter()
        .find(|r| r["source_path"] == "old" && r["action"] == "replicate")
        .unwrap_or_else(|| panic!("{:#?}", plan.rows));
    assert_eq!(old["status"], "planned");
    assert!(old["error"].contains(REPLICA), "{old:?}");
    assert!(plan.row("new")["error"].contains(&format!("replicas: {REPLICA}")));
    assert!(replication(&sm, "r/old").await.is_empty());
    assert_eq!(replica_value(&eu, "r/old").await, None);

    // reconcile --check: the missing replica is drift
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(2);
    assert_eq!(proxy.writes_forwarded(), 0, "{:?}", proxy.snapshot());

    // reconcile: creates with replicas, adds the missing replica, leaves the others alone
    let fix = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    let actions = |p: &str| -> Vec<String> {
        fix.rows
            .iter()
            .filter(|r| r["source_path"] == p)
            .map(|r| format!("{}/{}", r["action"], r["status"]))
            .collect()
    };
    assert_eq!(actions("new"), ["create/ok"], "{:#?}", fix.rows);
    assert_eq!(actions("old"), ["unchanged/ok", "replicate/ok"]);
    let added = fix
        .rows
        .iter()
        .find(|r| r["source_path"] == "old" && r["action"] == "replicate")
        .unwrap();
    assert_eq!(added["error"], format!("replica added: {REPLICA}"));
    assert_eq!(actions("other"), ["conflict/skipped"]);
    assert_eq!(actions("squat"), ["retag/ok"]); // adopted this run; replicated from the next on

    for name in ["r/new", "r/old"] {
        assert_eq!(
            replication(&sm, name).await,
            [(REPLICA.to_owned(), "InSync".to_owned())],
            "{name}"
        );
    }
    // the replica holds the same value, in the other region
    assert_eq!(replica_value(&eu, "r/new").await.as_deref(), Some("n"));
    assert_eq!(replica_value(&eu, "r/old").await.as_deref(), Some("o"));
    // another scope's secret and an unmanaged one were not replicated
    assert!(replication(&sm, "r/other").await.is_empty());
    assert_eq!(replica_value(&eu, "r/other").await, None);
    assert_eq!(replica_value(&eu, "r/squat").await, None);

    // "taken": AWS could not replicate it (the name exists in eu-west-1): reported with AWS's
    // message, drift left unrepaired (exit 2), eu-west-1's own secret untouched
    assert_eq!(
        replication(&sm, "r/taken").await,
        [(REPLICA.to_owned(), "Failed".to_owned())]
    );
    fix.expect_code(2);
    let again = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    again.expect_code(2);
    let failed = again
        .rows
        .iter()
        .find(|r| r["source_path"] == "taken" && r["action"] == "replicate")
        .unwrap_or_else(|| panic!("{:#?}", again.rows));
    assert_eq!(failed["status"], "skipped");
    assert!(
        failed["error"].contains("Failed") && failed["error"].contains("already exists"),
        "{failed:?}"
    );
    assert!(
        again.stderr.contains("failed replicas 1"),
        "{}",
        again.stderr
    );
    assert_eq!(
        replica_value(&eu, "r/taken").await.as_deref(),
        Some("eu's own")
    );
    // the adopted secret is ours now, so it gets its replica
    assert_eq!(
        replication(&sm, "r/squat").await,
        [(REPLICA.to_owned(), "InSync".to_owned())]
    );

    // without the foreign conflict, the failed replica alone makes the exit code 2
    ws.write(
        "export.jsonl",
        &export(&[
            ("old", "o"),
            ("new", "n"),
            ("squat", "theirs"),
            ("taken", "t"),
        ]),
    );
    let check = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    check.expect_code(2);
    let drift: Vec<_> = check
        .rows
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .map(|r| format!("{}:{}", r["source_path"], r["action"]))
        .collect();
    assert_eq!(drift, ["taken:replicate"], "{:#?}", check.rows);
    ws.run(&["reconcile", "-c", "cfg.toml", "--yes"])
        .await
        .expect_code(2);

    // the repair the report suggests: resolve the cause, remove the failed replica; the next
    // reconcile adds it again and all is in sync
    eu.delete_secret()
        .secret_id("r/taken")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    sm.remove_regions_from_replication()
        .secret_id("r/taken")
        .remove_replica_regions(REPLICA)
        .send()
        .await
        .unwrap();
    let repair = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    repair.expect_code(0);
    assert_eq!(replica_value(&eu, "r/taken").await.as_deref(), Some("t"));
    let in_sync = ws.run(&["reconcile", "-c", "cfg.toml", "--check"]).await;
    in_sync.expect_code(0);
    assert!(in_sync.stderr.contains("in sync"), "{}", in_sync.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn replica_regions_are_validated_before_anything_is_contacted() {
    let ws = Workspace::new();
    ws.write("export.jsonl", &export(&[("a", "1")]));
    ws.write(
        "cfg.toml",
        &file_config(
            "http://127.0.0.1:9",
            "r",
            "replica_regions = [\"eu-west-1\", \"us-east-1\", \"Europe\", \"eu-west-1\"]\nreplica_kms_key_ids = { \"ap-south-1\" = \"alias/x\" }",
            "",
        ),
    );
    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    run.expect_code(64);
    for want in [
        "target.replica_regions[1]: \"us-east-1\" is the target's own region",
        "target.replica_regions[2]: \"Europe\" is not an AWS region",
        "target.replica_regions[3]: \"eu-west-1\" is listed twice",
        "target.replica_kms_key_ids.ap-south-1: \"ap-south-1\" is not in replica_regions",
    ] {
        assert!(run.stderr.contains(want), "{want}\n{}", run.stderr);
    }

    // a region from the environment is checked when the run starts, before any request
    ws.write(
        "env.toml",
        &file_config(
            "http://127.0.0.1:9",
            "r",
            "replica_regions = [\"eu-west-1\"]",
            "",
        )
        .replace("region = \"us-east-1\"\n", ""),
    );
    let run = ws
        .run_with(&["plan", "-c", "env.toml"], &[("AWS_REGION", "eu-west-1")])
        .await;
    run.expect_code(64);
    assert!(
        run.stderr
            .contains("target.replica_regions: \"eu-west-1\" is the target's own region"),
        "{}",
        run.stderr
    );
}
