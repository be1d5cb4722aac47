//! A fleet config through the binary, against real OpenBao and moto: several `[[jobs]]` (two
//! Vault mounts into two regions, one job with include/exclude globs) in one command, one
//! report with a `job` column, one question for all jobs, `--job`, the per-job and total
//! summary, excluded secrets never read (the token may not read them) and never orphans, and
//! one broken job that does not stop the others.

use std::collections::BTreeSet;

use crate::cli::Workspace;
use crate::support::{Bao, Moto};
use serde_json::json;

/// Live secret names in one moto region (the token key excluded).
async fn names(moto: &Moto, region: &str) -> BTreeSet<String> {
    let sm = moto.sm_client(region);
    let page = sm.list_secrets().max_results(100).send().await.unwrap();
    page.secret_list()
        .iter()
        .filter(|s| s.deleted_date().is_none())
        .filter_map(|s| s.name().map(str::to_owned))
        .filter(|n| n != "secretport/token-key")
        .collect()
}

fn fleet(bao: &Bao, moto: &str, apps_filter: &str, legacy_mount: &str) -> String {
    format!(
        r#"[limits]
write_per_second = 20

[[jobs]]
name = "apps"
{apps_filter}
[jobs.source]
kind = "vault"
address = "{addr}"
mount = "kva"
auth = {{ method = "token", token_env = "FLEET_TOKEN" }}
[jobs.target]
region = "us-east-1"
prefix = "fleet"
endpoint_url = "{moto}"

[[jobs]]
name = "legacy"
[jobs.source]
kind = "vault"
address = "{addr}"
mount = "{legacy_mount}"
auth = {{ method = "token", token_env = "FLEET_TOKEN" }}
[jobs.target]
region = "eu-west-1"
prefix = "fleet"
endpoint_url = "{moto}"
"#,
        addr = bao.addr()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fleet_config_runs_every_job_in_one_command() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    bao.mount_kv("kva", 2).await;
    bao.mount_kv("kvb", 2).await;
    for p in ["apps/db", "apps/api", "apps/tmp/scratch", "web/x"] {
        bao.put_kv2("kva", p, json!({"v": p})).await;
    }
    for p in ["one", "two"] {
        bao.put_kv2("kvb", p, json!({"v": p})).await;
    }
    // the token lists everything but may read only what the filters take: reading an
    // excluded secret would be a 403, i.e. a failed row
    bao.write_policy(
        "fleet",
        r#"
path "kva/metadata/*" { capabilities = ["list", "read"] }
path "kva/data/apps/db" { capabilities = ["read"] }
path "kva/data/apps/api" { capabilities = ["read"] }
path "kvb/metadata/*" { capabilities = ["list", "read"] }
path "kvb/data/*" { capabilities = ["read"] }
"#,
    )
    .await;
    let token = bao.create_token(&["fleet"]).await;
    let mut ws = Workspace::new();
    ws.env("FLEET_TOKEN", &token);
    let filter = "include = [\"apps/**\"]\nexclude = [\"apps/tmp/**\"]";
    ws.write("fleet.toml", &fleet(&bao, moto.endpoint(), filter, "kvb"));

    // plan, machine-readable: rows of both jobs, then a summary per job and in total
    let plan = ws.run(&["plan", "-c", "fleet.toml", "--json"]).await;
    plan.expect_code(0);
    let lines: Vec<serde_json::Value> = plan
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let (summary, rows) = lines.split_last().expect("a summary");
    let planned: BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["job"].as_str().unwrap().to_owned(),
                r["target_name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("apps", "fleet/apps/api"),
        ("apps", "fleet/apps/db"),
        ("legacy", "fleet/one"),
        ("legacy", "fleet/two"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(planned, expected, "{}", plan.stdout);
    let jobs = &summary["summary"]["jobs"];
    assert_eq!(jobs["apps"]["counts"]["create"]["planned"], 2, "{summary}");
    assert_eq!(
        jobs["legacy"]["counts"]["create"]["planned"], 2,
        "{summary}"
    );
    assert_eq!(summary["summary"]["counts"]["create"]["planned"], 4);

    // no terminal, no --yes: refused for all jobs, nothing written anywhere
    let refused = ws.run(&["migrate", "-c", "fleet.toml"]).await;
    refused.expect_code(64);
    assert!(names(&moto, "us-east-1").await.is_empty());
    assert!(names(&moto, "eu-west-1").await.is_empty());

    // one command, both regions; excluded secrets never read (no failed row)
    let run = ws.run(&["migrate", "-c", "fleet.toml", "--yes"]).await;
    run.expect_code(0);
    assert!(run.failed().is_empty(), "{:#?}", run.rows);
    assert_eq!(
        names(&moto, "us-east-1").await,
        BTreeSet::from(["fleet/apps/api".to_owned(), "fleet/apps/db".to_owned()])
    );
    assert_eq!(
        names(&moto, "eu-west-1").await,
        BTreeSet::from(["fleet/one".to_owned(), "fleet/two".to_owned()])
    );
    let by_job = |job: &str| run.rows.iter().filter(|r| r["job"] == job).count();
    assert_eq!(
        (by_job("apps"), by_job("legacy")),
        (2, 2),
        "{:#?}",
        run.rows
    );
    assert!(
        run.stderr.contains("job apps: migrate: 2 secrets"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("job legacy: migrate: 2 secrets"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("total of 2 jobs: create 4"),
        "{}",
        run.stderr
    );
    let sidecar: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.report.as_ref().unwrap().with_extension("json")).unwrap(),
    )
    .unwrap();
    let regions: Vec<&str> = sidecar["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["region"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["us-east-1", "eu-west-1"], "{sidecar:#}");

    // --job selects
    let only = ws
        .run(&["plan", "-c", "fleet.toml", "--job", "legacy"])
        .await;
    only.expect_code(0);
    assert!(
        !only.rows.is_empty() && only.rows.iter().all(|r| r["job"] == "legacy"),
        "{:#?}",
        only.rows
    );
    let unknown = ws.run(&["plan", "-c", "fleet.toml", "--job", "nope"]).await;
    unknown.expect_code(64);
    assert!(
        unknown.stderr.contains("apps, legacy"),
        "{}",
        unknown.stderr
    );

    // narrowing a filter never makes the secrets it stopped taking orphans
    ws.write(
        "fleet.toml",
        &fleet(&bao, moto.endpoint(), "include = [\"apps/db\"]", "kvb"),
    );
    let run = ws
        .run(&[
            "reconcile",
            "-c",
            "fleet.toml",
            "--prune",
            "--force-prune",
            "--yes",
        ])
        .await;
    run.expect_code(0);
    assert_eq!(run.count("delete", "ok") + run.count("orphan", "ok"), 0);
    assert!(names(&moto, "us-east-1").await.contains("fleet/apps/api"));

    // rename --config previews every job, with no AWS credentials at all
    let mut cmd = ws.command(&["rename", "-c", "fleet.toml"], &[]);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let csv = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{csv}");
    assert!(
        csv.starts_with("source,target,changed,reasons,job\n"),
        "{csv}"
    );
    let rows: Vec<(&str, &str, &str)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0], cells[1], cells[cells.len() - 1])
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("apps/db", "fleet/apps/db", "apps"),
            ("one", "fleet/one", "legacy"),
            ("two", "fleet/two", "legacy")
        ],
        "{csv}"
    );
    assert!(!csv.contains("apps/api"), "filtered out: {csv}");

    // a broken job is reported; the others go on; the run fails
    ws.write(
        "fleet.toml",
        &fleet(&bao, moto.endpoint(), filter, "nosuchmount"),
    );
    bao.put_kv2("kva", "apps/new", json!({"v": "n"})).await;
    bao.write_policy(
        "fleet",
        r#"
path "kva/metadata/*" { capabilities = ["list", "read"] }
path "kva/data/apps/*" { capabilities = ["read"] }
path "sys/mounts" { capabilities = ["read"] }
"#,
    )
    .await;
    let run = ws.run(&["migrate", "-c", "fleet.toml", "--yes"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("job legacy"), "{}", run.stderr);
    assert_eq!(run.row("apps/new")["action"], "create", "{:#?}", run.rows);
    assert!(names(&moto, "us-east-1").await.contains("fleet/apps/new"));
}

/// Two jobs of one config: `svc/` and `svc/tiny/` on one mount.
fn nested(
    bao: &Bao,
    moto: &str,
    (outer_prefix, inner_prefix): (&str, &str),
    outer_filter: &str,
) -> String {
    let job = |name: &str, path: &str, prefix: &str, filter: &str| {
        format!(
            r#"
[[jobs]]
name = "{name}"
{filter}
[jobs.source]
kind = "vault"
address = "{addr}"
mount = "kv"
path = "{path}"
auth = {{ method = "token", token_env = "FLEET_TOKEN" }}
[jobs.target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{moto}"
"#,
            addr = bao.addr()
        )
    };
    job("outer", "svc/", outer_prefix, outer_filter) + &job("inner", "svc/tiny/", inner_prefix, "")
}

/// Nested base paths into one prefix would let one job's prune delete the other's live
/// secrets: plan, migrate and reconcile refuse before any write (exit 64) naming both jobs and
/// an example path. Into different prefixes, or with the inner subtree excluded from the
/// outer job, they run.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_jobs_are_refused_before_any_write() {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    bao.mount_kv("kv", 2).await;
    for p in ["svc/a", "svc/tiny/t0", "svc/tiny/t1"] {
        bao.put_kv2("kv", p, json!({"v": p})).await;
    }
    let mut ws = Workspace::new();
    ws.env("FLEET_TOKEN", bao.token());
    ws.write(
        "nested.toml",
        &nested(&bao, moto.endpoint(), ("ov", "ov"), ""),
    );
    for args in [
        &["plan", "-c", "nested.toml"][..],
        &["migrate", "-c", "nested.toml", "--yes"],
        &["reconcile", "-c", "nested.toml", "--prune", "--yes"],
        &["reconcile", "-c", "nested.toml", "--check"],
    ] {
        let run = ws.run(args).await;
        run.expect_code(64);
        let err = run.stderr.lines().last().unwrap_or_default();
        for part in ["\"outer\"", "\"inner\"", "svc/tiny/t0", "prefix ov/"] {
            assert!(err.contains(part), "{args:?}: {part} not in {err}");
        }
        assert!(
            run.rows
                .iter()
                .all(|r| r["status"] == "failed" && r["action"] == "skip"),
            "{args:?}: {:#?}",
            run.rows
        );
        assert!(names(&moto, "us-east-1").await.is_empty(), "{args:?} wrote");
    }

    // the same base paths into different prefixes: no name is claimed twice
    ws.write(
        "nested.toml",
        &nested(&bao, moto.endpoint(), ("ov", "ov-tiny"), ""),
    );
    let run = ws.run(&["migrate", "-c", "nested.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(
        names(&moto, "us-east-1").await,
        BTreeSet::from(
            [
                "ov/a",
                "ov/tiny/t0",
                "ov/tiny/t1",
                "ov-tiny/t0",
                "ov-tiny/t1"
            ]
            .map(str::to_owned)
        )
    );
    // one prefix, the inner subtree excluded from the outer job: disjoint, allowed
    ws.write(
        "nested.toml",
        &nested(
            &bao,
            moto.endpoint(),
            ("dj", "dj"),
            "exclude = [\"tiny/**\"]",
        ),
    );
    let run = ws.run(&["migrate", "-c", "nested.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);
    let all = names(&moto, "us-east-1").await;
    assert!(
        ["dj/a", "dj/t0", "dj/t1"].iter().all(|n| all.contains(*n)),
        "{all:?}"
    );
}
