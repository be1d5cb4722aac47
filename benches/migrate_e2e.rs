//! End-to-end migrate figures through the throttling proxy (issue: "within AWS's request
//! quotas"): N secrets at 50 writes/s against moto, printing wall time ÷ the quota floor
//! (N / 50 s), throttled calls, the rerun time with nothing changed, a reconcile of the unchanged
//! set with its AWS calls by operation, and peak RSS.
//!
//! Then the fleet figure: two jobs writing to two regions (moto regions stand in for two
//! accounts), each behind its own throttling proxy at 50 writes/s, N secrets each, in one
//! `migrate`: wall ÷ (N / 50 s) — the regions run in parallel, so the target is ≤ 1.05 — and
//! throttled calls per region (target 0): jobs of different regions must each get their
//! region's full quota, not share one limiter.
//!
//! `cargo bench --bench migrate_e2e` runs the full 2,000-secret scenarios. Under `cargo test`
//! (no `--bench` argument) it runs 100-secret smoke versions so the scenarios themselves are
//! kept working by CI. `SECRETPORT_BENCH_N` overrides N; `SECRETPORT_BENCH_ONLY=single|fleet`
//! runs one of the two.

#[path = "../tests/suite/cli/mod.rs"]
mod cli;
#[path = "../tests/suite/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Moto, Quota, ThrottleProxy, WRITE_OPS};

const RATE: f64 = 50.0;

fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SECRETPORT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 2000 } else { 100 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let only = std::env::var("SECRETPORT_BENCH_ONLY").unwrap_or_default();
    if only != "fleet" {
        rt.block_on(scenario(n, full));
    }
    if only != "single" {
        rt.block_on(fleet(n, full));
    }
}

async fn scenario(n: usize, full: bool) {
    let moto = Moto::start().await;
    // AWS-like quota: 50/s per API group, a bucket that holds one second's worth
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![Quota::new(WRITE_OPS, RATE, 50)]).await;
    let ws = cli::Workspace::new();
    ws.write("export.jsonl", &cli::bulk_export(n, "bench"));
    ws.write(
        "cfg.toml",
        &cli::file_config(
            proxy.endpoint(),
            "bench",
            "",
            "[limits]\nwrite_per_second = 50\n",
        ),
    );

    let t = Instant::now();
    let first = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    let wall = t.elapsed();
    first.expect_code(0);
    assert_eq!(first.count("create", "ok"), n, "every secret created");
    let writes = proxy.writes_forwarded();
    let throttled = proxy.total_throttled();
    let peak = proxy.peak_rate(WRITE_OPS, Duration::from_secs(1));

    proxy.reset_counters();
    let t = Instant::now();
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    let rerun_wall = t.elapsed();
    rerun.expect_code(0);
    assert_eq!(rerun.count("unchanged", "ok"), n);
    assert_eq!(proxy.writes_forwarded(), 0, "rerun writes nothing");
    let batch_gets = proxy.forwarded("BatchGetSecretValue");

    proxy.reset_counters();
    let t = Instant::now();
    let rec = ws.run(&["reconcile", "-c", "cfg.toml", "--yes"]).await;
    let rec_wall = t.elapsed();
    rec.expect_code(0);
    assert_eq!(rec.count("unchanged", "ok"), n);
    let rec_calls = proxy.snapshot();

    let floor = n as f64 / RATE;
    let ratio = wall.as_secs_f64() / floor;
    let mode = if full { "bench" } else { "smoke" };
    println!("migrate_e2e ({mode}): {n} secrets through the throttling proxy at {RATE} writes/s");
    println!(
        "  first run: {:.2} s, floor {floor:.1} s, ratio {ratio:.3}x; {writes} writes forwarded, {throttled} throttled ({:.2}% of writes), peak {peak} writes in any 1 s",
        wall.as_secs_f64(),
        100.0 * throttled as f64 / writes.max(1) as f64
    );
    println!(
        "  rerun (nothing changed): {:.2} s, 0 writes, {batch_gets} BatchGetSecretValue calls",
        rerun_wall.as_secs_f64()
    );
    let calls: Vec<String> = rec_calls
        .iter()
        .map(|(op, c)| format!("{op} {}", c.forwarded))
        .collect();
    println!(
        "  reconcile of {n} unchanged secrets: {:.2} s; AWS calls by operation: {}",
        rec_wall.as_secs_f64(),
        calls.join(", ")
    );
    println!(
        "  peak RSS of the secretport process: {:.1} MiB",
        children_peak_rss_kib() as f64 / 1024.0
    );
}

fn job(name: &str, export: &str, region: &str, endpoint: &str) -> String {
    format!(
        r#"
[[jobs]]
name = "{name}"
[jobs.source]
kind = "file"
file = "{export}"
[jobs.target]
region = "{region}"
prefix = "fleet"
endpoint_url = "{endpoint}"
"#
    )
}

async fn fleet(n: usize, full: bool) {
    let moto = Moto::start().await;
    let quota = || vec![Quota::new(WRITE_OPS, RATE, 50)];
    let east = ThrottleProxy::start(moto.endpoint(), quota()).await;
    let west = ThrottleProxy::start(moto.endpoint(), quota()).await;
    let ws = cli::Workspace::new();
    ws.write("east.jsonl", &cli::bulk_export(n, "east"));
    ws.write("west.jsonl", &cli::bulk_export(n, "west"));
    ws.write(
        "fleet.toml",
        &format!(
            "[limits]\nwrite_per_second = 50\n{}{}",
            job("east", "east.jsonl", "us-east-1", east.endpoint()),
            job("west", "west.jsonl", "eu-west-1", west.endpoint()),
        ),
    );

    let t = Instant::now();
    let run = ws.run(&["migrate", "-c", "fleet.toml", "--yes"]).await;
    let wall = t.elapsed().as_secs_f64();
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 2 * n, "every secret created");
    let floor = n as f64 / RATE;
    let mode = if full { "bench" } else { "smoke" };
    println!(
        "migrate_e2e fleet ({mode}): 2 jobs x {n} secrets, two regions, each behind a proxy at {RATE} writes/s"
    );
    println!(
        "  wall {wall:.2} s, per-region floor {floor:.1} s, ratio {:.3}x (target <= 1.05)",
        wall / floor
    );
    for (region, proxy) in [("us-east-1", &east), ("eu-west-1", &west)] {
        let calls: Vec<String> = proxy
            .snapshot()
            .iter()
            .map(|(op, c)| format!("{op} {}", c.forwarded))
            .collect();
        println!(
            "  {region}: {} writes forwarded, {} throttled; calls: {}",
            proxy.writes_forwarded(),
            proxy.total_throttled(),
            calls.join(", ")
        );
    }
}
