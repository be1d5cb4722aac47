//! The fleet figure: two jobs writing to two regions (moto regions stand in for two accounts),
//! each behind its own throttling proxy at 50 writes/s, N secrets each, in one `migrate`.
//! Prints wall ÷ (N / 50 s) — the regions run in parallel, so the target is ≤ 1.05 — and
//! throttled calls per region (target 0): jobs of different regions must each get their
//! region's full quota, not share one limiter.
//!
//! `cargo bench --bench fleet_e2e` runs 2,000 secrets per region. Under `cargo test` (no
//! `--bench` argument) it runs a 50-per-region smoke version. `SECRETPORT_BENCH_N` overrides N.

#[path = "../tests/suite/cli/mod.rs"]
mod cli;
#[path = "../tests/suite/support/mod.rs"]
mod support;

use std::time::Instant;

use support::{Moto, Quota, ThrottleProxy, WRITE_OPS};

const RATE: f64 = 50.0;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SECRETPORT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 2000 } else { 50 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(scenario(n, full));
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

async fn scenario(n: usize, full: bool) {
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
        "fleet_e2e ({mode}): 2 jobs x {n} secrets, two regions, each behind a proxy at {RATE} writes/s"
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
