//! Seeds a Vault / OpenBao KV v2 mount with many secrets quickly (for `scripts/bench-vault-source`).
//!
//! ```text
//! VAULT_TOKEN=root cargo run --release --example seed_vault -- \
//!     --address http://127.0.0.1:8200 [--mount secret] [--prefix bench] [--count 5000] [--concurrency 64]
//! ```
//! Layout: `<prefix>/team-<i % 10>/svc-<(i / 10) % 50>/s-<i>`: 10 + 500 folders, 10 secrets per
//! leaf folder at 5,000 secrets.

use std::time::Instant;

use futures::stream::{self, StreamExt};

/// Seeds a KV v2 mount with `count` secrets under `prefix` (token from VAULT_TOKEN).
#[derive(clap::Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8200")]
    address: String,
    #[arg(long, default_value = "secret")]
    mount: String,
    #[arg(long, default_value = "bench")]
    prefix: String,
    #[arg(long, default_value_t = 5000)]
    count: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[tokio::main]
async fn main() {
    let Args {
        address,
        mount,
        prefix,
        count,
        concurrency,
    } = clap::Parser::parse();
    let token = std::env::var("VAULT_TOKEN").expect("VAULT_TOKEN");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    let failures: usize = stream::iter(0..count)
        .map(|i| {
            let http = &http;
            let url = format!(
                "{address}/v1/{mount}/data/{prefix}/team-{}/svc-{}/s-{i}",
                i % 10,
                (i / 10) % 50
            );
            let body = format!(
                r#"{{"data":{{"user":"u{i}","password":"p-{i}-x","port":{}}}}}"#,
                1000 + i
            );
            let token = &token;
            async move {
                for _ in 0..5 {
                    let r = http
                        .post(&url)
                        .header("X-Vault-Token", token.as_str())
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if matches!(&r, Ok(r) if r.status().is_success()) {
                        return 0;
                    }
                }
                eprintln!("failed to write {url}");
                1
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |a, b| async move { a + b })
        .await;
    println!(
        "seeded {} secrets under {mount}/{prefix} in {:.2?}",
        count - failures,
        started.elapsed()
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
