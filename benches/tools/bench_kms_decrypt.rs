//! Decrypt throughput of the `kms` source against a moto server (run it with `scripts/bench-kms`,
//! which starts moto and builds this in release mode).
//!
//! 1. envelope: `--envelope` records (default 10,000) sharing `--keys` data keys (default 10),
//!    fetched `--concurrency` at a time (default 32), cold (the data keys are decrypted on the
//!    way, one `kms:Decrypt` each) and warm (every key cached: the pure CPU part, AES-256-GCM
//!    plus JSON/base64 work already done at open);
//! 2. direct: `--direct` records (default 500), one `kms:Decrypt` each: bound by KMS (here,
//!    moto's single Python process) and by `[limits] kms_per_second` (`--kms-rate`, default
//!    1,000/s).
//!
//! Fixtures are encrypted through moto with `kms_export` first (moto's ciphertext format is its
//! own). Values are JSON objects of about `--value-bytes` bytes (default 256).
//!
//! ```text
//! bench_kms_decrypt --endpoint http://127.0.0.1:PORT [--envelope N] [--keys K] [--direct M]
//!                   [--concurrency C] [--value-bytes B] [--kms-rate R]
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

use secretport::config::LimitsConfig;
use secretport::kms_export::{kms_export, ExportMode, KmsExportOptions};
use secretport::limits::Limits;
use secretport::retry::RetryPolicy;
use secretport::source::kms::KmsSource;
use secretport::source::{Fetched, Source, SourceRef};

struct Args {
    endpoint: String,
    envelope: usize,
    keys: usize,
    direct: usize,
    concurrency: usize,
    value_bytes: usize,
    kms_rate: u32,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "error: {msg}\nusage: bench_kms_decrypt --endpoint URL [--envelope N] [--keys K] \
         [--direct M] [--concurrency C] [--value-bytes B] [--kms-rate R]"
    );
    std::process::exit(64)
}

fn args() -> Args {
    let mut a = Args {
        endpoint: std::env::var("BENCH_KMS_ENDPOINT").unwrap_or_default(),
        envelope: 10_000,
        keys: 10,
        direct: 500,
        concurrency: 32,
        value_bytes: 256,
        kms_rate: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let num = |v: String| -> usize {
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| usage(&format!("{flag}: {v:?} is not a positive number")))
        };
        match flag.as_str() {
            "--endpoint" => a.endpoint = val(),
            "--envelope" => a.envelope = num(val()),
            "--keys" => a.keys = num(val()),
            "--direct" => a.direct = num(val()),
            "--concurrency" => a.concurrency = num(val()),
            "--value-bytes" => a.value_bytes = num(val()),
            "--kms-rate" => a.kms_rate = num(val()) as u32,
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if a.endpoint.is_empty() {
        usage("--endpoint is required (or BENCH_KMS_ENDPOINT)");
    }
    a
}

fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("testing", "testing", None, None, "bench"),
        ))
        .retry_config(RetryConfig::disabled())
        .build()
}

/// A plaintext export of `n` JSON-object values of about `bytes` bytes each.
fn plaintext(n: usize, bytes: usize, prefix: &str) -> (String, usize) {
    let mut text = String::new();
    let mut total = 0;
    for i in 0..n {
        let filler: String = (0..bytes.saturating_sub(60))
            .map(|j| (b'a' + ((i * 7 + j * 13) % 26) as u8) as char)
            .collect();
        let value = format!(r#"{{"user":"svc-{i}","password":"{filler}","port":5432}}"#);
        total += value.len();
        text.push_str(&format!(
            "{{\"path\":\"{prefix}/{i:05}\",\"value\":{value}}}\n"
        ));
    }
    (text, total)
}

/// Fetches every ref with `concurrency` workers; returns (elapsed, bytes decrypted).
async fn fetch_all(
    source: &Arc<KmsSource>,
    refs: &Arc<Vec<SourceRef>>,
    concurrency: usize,
) -> (Duration, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (source, refs, next) = (source.clone(), refs.clone(), next.clone());
        workers.spawn(async move {
            let mut bytes = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = refs.get(i) else { break };
                match source.fetch(r).await {
                    Ok(Fetched::Value { value, .. }) => bytes += value.len(),
                    Ok(Fetched::Gone { reason, .. }) => panic!("{}: gone: {reason}", r.path),
                    Err(e) => panic!("{e}"),
                }
            }
            bytes
        });
    }
    let mut bytes = 0;
    while let Some(b) = workers.join_next().await {
        bytes += b.expect("worker panicked");
    }
    (start.elapsed(), bytes)
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[allow(clippy::too_many_arguments)]
async fn run_case(
    name: &str,
    dir: &Path,
    client: &aws_sdk_kms::Client,
    key: &str,
    mode: ExportMode,
    n: usize,
    per_key: usize,
    a: &Args,
    limits: &Arc<Limits>,
) {
    let policy = RetryPolicy::new(8);
    let (text, total) = plaintext(n, a.value_bytes, name);
    let plain = dir.join(format!("{name}-plain.jsonl"));
    let out = dir.join(format!("{name}-kms.jsonl"));
    std::fs::write(&plain, text).expect("write plaintext fixture");
    let mut opts = KmsExportOptions::new(key, mode);
    opts.records_per_data_key = per_key;
    opts.concurrency = a.concurrency;
    opts.context = [("bench".to_owned(), name.to_owned())]
        .into_iter()
        .collect();
    let t = Instant::now();
    let summary = kms_export(&plain, &out, client.clone(), &opts, limits.clone(), policy)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let export = t.elapsed();

    let t = Instant::now();
    let source = Arc::new(
        KmsSource::open(&out, "kms.jsonl", client.clone(), limits.clone(), policy).expect("open"),
    );
    let listing = source.list().await.expect("list");
    let open = t.elapsed();
    assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    let refs = Arc::new(listing.refs);
    let (cold, bytes) = fetch_all(&source, &refs, a.concurrency).await;
    assert_eq!(bytes, total, "decrypted bytes differ from the plaintext");
    let calls = source.kms_calls();
    let keys = match mode {
        ExportMode::Envelope => format!("{} data key(s)", summary.data_keys),
        ExportMode::Direct => "one kms:Decrypt each".to_owned(),
    };
    println!(
        "{name}: {n} records, {keys}, ~{} B per value, concurrency {}",
        a.value_bytes, a.concurrency
    );
    println!(
        "  kms-export          {:>9.0} records/s  ({:.2} s, {} KMS calls)",
        rate(n, export),
        export.as_secs_f64(),
        summary.kms_calls
    );
    println!(
        "  open + validate     {:>9.0} records/s  ({:.3} s)",
        rate(n, open),
        open.as_secs_f64()
    );
    println!(
        "  fetch, cold         {:>9.0} records/s  ({:.3} s, {} kms:Decrypt)",
        rate(n, cold),
        cold.as_secs_f64(),
        calls
    );
    if mode == ExportMode::Envelope {
        let (warm, _) = fetch_all(&source, &refs, a.concurrency).await;
        println!(
            "  fetch, keys cached  {:>9.0} records/s  ({:.3} s, {:.1} MB/s, {} kms:Decrypt)",
            rate(n, warm),
            warm.as_secs_f64(),
            bytes as f64 / warm.as_secs_f64() / 1e6,
            source.kms_calls() - calls
        );
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    let client = aws_sdk_kms::Client::new(&sdk_config(&a.endpoint));
    let key = client
        .create_key()
        .description("secretport bench")
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateKey at {}: {e:?}", a.endpoint));
    let key = key
        .key_metadata()
        .expect("metadata")
        .arn()
        .expect("arn")
        .to_owned();
    let mut rates = LimitsConfig::default();
    rates.kms_per_second = a.kms_rate;
    let limits = Arc::new(Limits::new(&rates));
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "bench_kms_decrypt: moto at {}, [limits] kms_per_second = {}, {} build",
        a.endpoint,
        a.kms_rate,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let per_key = a.envelope.div_ceil(a.keys);
    run_case(
        "envelope",
        dir.path(),
        &client,
        &key,
        ExportMode::Envelope,
        a.envelope,
        per_key,
        &a,
        &limits,
    )
    .await;
    run_case(
        "direct",
        dir.path(),
        &client,
        &key,
        ExportMode::Direct,
        a.direct,
        1,
        &a,
        &limits,
    )
    .await;
}
