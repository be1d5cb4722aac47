//! End-to-end Vault → Secrets Manager figures: N secrets seeded into a real OpenBao, migrated by
//! the `secretport` binary through the throttling proxy at 50 writes/s into moto. Prints wall
//! time ÷ the quota floor (N / 50 s) and the throttled calls.
//!
//! `cargo bench --bench vault_e2e` runs N = 5,000; under `cargo test` (no `--bench`) a 100-secret
//! smoke run keeps the scenario working. `SECRETPORT_BENCH_N` overrides N.

#[path = "../tests/suite/cli/mod.rs"]
mod cli;
#[path = "../tests/suite/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use support::{Bao, Moto, Quota, ThrottleProxy, WRITE_OPS};

const RATE: f64 = 50.0;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SECRETPORT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 5000 } else { 100 });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(scenario(n, full));
}

async fn scenario(n: usize, full: bool) {
    let bao = Bao::start().await;
    let moto = Moto::start().await;
    let t = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let bao = &bao;
            async move {
                bao.put_kv2(
                    "secret",
                    &format!("bench/team-{}/app-{}/secret {i}", i % 10, i / 100),
                    serde_json::json!({"user": format!("u{i}"), "password": format!("pw-{i}")}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let seed = t.elapsed();
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![Quota::new(WRITE_OPS, RATE, 50)]).await;
    let mut ws = cli::Workspace::new();
    ws.env("BENCH_VAULT_TOKEN", bao.token());
    ws.write(
        "cfg.toml",
        &format!(
            r#"[source]
kind = "vault"
address = "{}"
mount = "secret"
path = "bench"
auth = {{ method = "token", token_env = "BENCH_VAULT_TOKEN" }}

[target]
region = "us-east-1"
prefix = "vb"
endpoint_url = "{}"

[limits]
write_per_second = 50
"#,
            bao.addr(),
            proxy.endpoint()
        ),
    );
    let t = Instant::now();
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    let wall = t.elapsed();
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), n);
    let floor = n as f64 / RATE;
    let mode = if full { "bench" } else { "smoke" };
    println!(
        "vault_e2e ({mode}): {n} secrets from OpenBao KV v2 (seeded in {:.1} s)",
        seed.as_secs_f64()
    );
    println!(
        "  migrate through the throttling proxy at {RATE} writes/s: {:.2} s, floor {floor:.1} s, ratio {:.3}x; {} throttled; peak {} writes in any 1 s",
        wall.as_secs_f64(),
        wall.as_secs_f64() / floor,
        proxy.total_throttled(),
        proxy.peak_rate(WRITE_OPS, Duration::from_secs(1))
    );
}
