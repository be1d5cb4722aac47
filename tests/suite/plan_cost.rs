//! The monthly cost of a plan's new secrets through the binary: `plan` of a file source with
//! `replica_regions` shows what the new secrets and their replicas add (at AWS's list price, or
//! `[cost] price_per_secret_month`) in its summary line and in the `--json` summary; a bad price
//! is a config error naming the key.

use crate::cli::{file_config, string_export as export, Workspace};
use crate::support::Moto;

fn json_summary(stdout: &str) -> serde_json::Value {
    let last = stdout.lines().last().expect("a summary line");
    let v: serde_json::Value = serde_json::from_str(last).expect("JSON");
    v["summary"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_shows_what_new_secrets_and_replicas_add_per_month() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        &export(&[("db", "p1"), ("api", "k1"), ("web", "w1")]),
    );
    let replicas = "replica_regions = [\"eu-west-1\"]";
    ws.write(
        "c.toml",
        &file_config(moto.endpoint(), "cost", replicas, ""),
    );

    let run = ws.run(&["plan", "-c", "c.toml"]).await;
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("; would add $2.40/month (3 new secrets + 3 replicas at $0.40 each)"),
        "{}",
        run.stderr
    );

    let run = ws.run(&["plan", "-c", "c.toml", "--json"]).await;
    run.expect_code(0);
    let summary = json_summary(&run.stdout);
    let want = serde_json::json!({"new_secrets": 3, "replicas": 3, "billed_secrets": 6,
        "price_per_secret_month": 0.40, "monthly": 2.40});
    assert_eq!(summary["cost"], want, "{summary:#}");
    assert_eq!(summary["jobs"]["default"]["cost"], want, "{summary:#}");
    // the fields that were there are still there
    for k in [
        "run_id",
        "command",
        "counts",
        "drift",
        "exit_code",
        "text",
        "jobs",
    ] {
        assert!(!summary[k].is_null(), "{k} missing: {summary:#}");
    }

    // a price of one's own
    ws.write(
        "c.toml",
        &file_config(
            moto.endpoint(),
            "cost",
            replicas,
            "[cost]\nprice_per_secret_month = 0.5",
        ),
    );
    let run = ws.run(&["plan", "-c", "c.toml", "--json"]).await;
    run.expect_code(0);
    assert_eq!(json_summary(&run.stdout)["cost"]["monthly"], 3.0);

    // once migrated, nothing new: no cost in the plan
    ws.run(&["migrate", "-c", "c.toml", "--yes"])
        .await
        .expect_code(0);
    let run = ws.run(&["plan", "-c", "c.toml", "--json"]).await;
    run.expect_code(0);
    let summary = json_summary(&run.stdout);
    assert_eq!(summary["cost"]["billed_secrets"], 0, "{summary:#}");
    assert!(!run.stderr.contains("/month"), "{}", run.stderr);

    // a price that is not one is a config error naming the key
    ws.write(
        "c.toml",
        &file_config(
            moto.endpoint(),
            "cost",
            replicas,
            "[cost]\nprice_per_secret_month = -1",
        ),
    );
    let run = ws.run(&["plan", "-c", "c.toml"]).await;
    run.expect_code(64);
    assert!(
        run.stderr.contains("cost.price_per_secret_month"),
        "{}",
        run.stderr
    );
}
