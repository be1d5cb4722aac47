//! Times the Vault source alone: connect, list the subtree, fetch every value at the executor's
//! concurrency (32). For `scripts/bench-vault-source`.
//!
//! ```text
//! VAULT_TOKEN=root cargo run --release --example vault_walk -- \
//!     --address http://127.0.0.1:8200 [--mount secret] [--path bench] [--parallelism 16] \
//!     [--fetch-concurrency 32] [--repeat 1] [--rtt-ms 0]
//! ```
//! `--rtt-ms N` puts an in-process TCP proxy in front of the server that holds every chunk for
//! N/2 ms in each direction, so a request costs at least N ms more, as over a real network (on
//! loopback a round trip costs next to nothing and the run is bound by CPU instead).
//! Prints one line per run: `parallelism=16 secrets=5000 connect_ms=.. list_ms=.. fetch_ms=..
//! total_ms=..`; with `--repeat N`, the last line is the fastest run (`best ...`).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use secretport::config::{Config, SourceConfig};
use secretport::source::vault::VaultSource;
use secretport::source::{Fetched, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Times the Vault source alone: connect, list, fetch every value (token from VAULT_TOKEN).
#[derive(clap::Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8200")]
    address: String,
    #[arg(long, default_value = "secret")]
    mount: String,
    #[arg(long, default_value = "bench")]
    path: String,
    #[arg(long, default_value_t = 16)]
    parallelism: usize,
    #[arg(long, default_value_t = 32)]
    fetch_concurrency: usize,
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Milliseconds a local proxy adds to every round trip (0 = connect directly).
    #[arg(long, default_value_t = 0)]
    rtt_ms: u64,
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Copies one direction of a connection, holding every chunk for `delay`.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tokio::time::sleep(delay).await;
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// A loopback proxy to `upstream` (`host:port`) adding `rtt` to every round trip; its address.
async fn latency_proxy(upstream: String, rtt: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, rtt / 2));
                pump(sr, cw, rtt / 2).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::main]
async fn main() {
    let Args {
        mut address,
        mount,
        path,
        parallelism,
        fetch_concurrency,
        repeat,
        rtt_ms,
    } = clap::Parser::parse();
    if rtt_ms > 0 {
        let upstream = address
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        address = latency_proxy(upstream, Duration::from_millis(rtt_ms)).await;
    }
    // through the config's own validation, as a run would (VAULT_TOKEN is read there)
    let text = format!(
        "[source]\nkind = \"vault\"\naddress = {address:?}\nmount = {mount:?}\npath = {path:?}\n\
         parallelism = {parallelism}\nauth = {{ method = \"token\", token_env = \"VAULT_TOKEN\" }}\n\
         [target]\nregion = \"us-east-1\"\nprefix = \"bench\"\n"
    );
    let config = Config::parse(&text, Path::new("vault_walk.toml"), Path::new("."), &|k| {
        std::env::var(k).ok()
    })
    .unwrap_or_else(|e| {
        eprintln!("config: {e}");
        std::process::exit(64)
    });
    let Some(SourceConfig::Vault(cfg)) = config.jobs.first().map(|j| &j.source) else {
        unreachable!("a vault source was configured")
    };
    let mut best: Option<(u128, String)> = None;
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        let limits = std::sync::Arc::new(secretport::limits::Limits::new(
            &secretport::config::LimitsConfig::default(),
        ));
        let policy = secretport::retry::RetryPolicy::new(4);
        let timeout = std::time::Duration::from_secs(30);
        let source = VaultSource::connect(cfg, limits, policy, timeout)
            .await
            .unwrap_or_else(|e| {
                eprintln!("connect: {e}");
                std::process::exit(1)
            });
        let t1 = Instant::now();
        let listing = source.list().await.unwrap_or_else(|e| {
            eprintln!("list: {e}");
            std::process::exit(1)
        });
        let t2 = Instant::now();
        let (values, failed) = stream::iter(&listing.refs)
            .map(|r| source.fetch(r))
            .buffer_unordered(fetch_concurrency)
            .fold((0usize, 0usize), |(ok, bad), f| async move {
                match f {
                    Ok(Fetched::Value { .. }) => (ok + 1, bad),
                    _ => (ok, bad + 1),
                }
            })
            .await;
        let t3 = Instant::now();
        let line = format!(
            "parallelism={parallelism} rtt_ms={rtt_ms} secrets={} problems={} values={values} failed={failed} connect_ms={} list_ms={} fetch_ms={} total_ms={}",
            listing.refs.len(),
            listing.problems.len(),
            ms(t1 - t0),
            ms(t2 - t1),
            ms(t3 - t2),
            ms(t3 - t0)
        );
        println!("{line}");
        let total = ms(t3 - t0);
        if !matches!(&best, Some((b, _)) if *b <= total) {
            best = Some((total, line));
        }
    }
    if repeat > 1 {
        println!("best {}", best.unwrap().1);
    }
}
