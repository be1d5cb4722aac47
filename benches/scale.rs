//! The engine at a region's scale, in-process: source → plan → execute over the in-memory
//! target (`target::memory`, no quota, values stored as digests), then a reconcile with nothing
//! changed. Prints wall time, CPU time per secret, resident memory and calls by operation.
//!
//! `cargo bench --bench scale` (100,000 secrets; `SECRETPORT_SCALE_N=500000` for a region's
//! maximum, `SECRETPORT_SCALE_BYTES` for the value size, default 1024). Under `cargo test` it
//! runs 2,000 as a smoke test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use secretport::config::OnConflict;
use secretport::decide::Rules;
use secretport::executor::{Executor, Settings, Sink};
use secretport::identity::token::TokenDeriver;
use secretport::identity::Scope;
use secretport::naming::{NamingRules, Overrides, Policy};
use secretport::plan::{self, PlanInput};
use secretport::progress::Progress;
use secretport::report::Report;
use secretport::secret::SecretValue;
use secretport::shutdown::Shutdown;
use secretport::source::{Fetched, Listing, Source, SourceError, SourceRef};
use secretport::target::memory::MemoryTarget;
use secretport::target::Target;

/// `n` secrets whose values are made when fetched (`bytes` long, distinct per secret).
struct Generated {
    n: usize,
    bytes: usize,
}

impl Source for Generated {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn scope(&self) -> Scope {
        Scope::new("file", "/bench/generated.jsonl", "")
    }

    fn location(&self) -> String {
        "generated".into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move {
            Ok(Listing {
                refs: (0..self.n)
                    .map(|i| SourceRef::new(format!("team-{}/svc-{}/secret-{i}", i % 20, i / 100)))
                    .collect(),
                problems: vec![],
            })
        })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let mut v = r.path.clone();
            while v.len() < self.bytes {
                v.push('x');
            }
            v.truncate(self.bytes);
            Ok(Fetched::Value {
                value: SecretValue::text(v),
                version: None,
                metadata: BTreeMap::new(),
            })
        })
    }
}

/// (resident, peak resident) in MiB, from /proc/self/status.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of this process (clock ticks of 1/100 s, Linux's USER_HZ).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // fields 14 and 15 of the whole line are the 12th and 13th after the ")" of the name
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

async fn pass(label: &str, source: &Generated, target: &MemoryTarget, dir: &std::path::Path) {
    target.reset_calls();
    let (start, cpu0) = (Instant::now(), cpu());
    let listing = source.list().await.unwrap();
    let rules = NamingRules::new(Some("scale"), Policy::Aws);
    let inventory = target.inventory("scale").await.unwrap();
    let plan = plan::build(&PlanInput {
        listing: &listing,
        scope: &source.scope(),
        rules: &rules,
        overrides: &Overrides::default(),
        inventory: &inventory,
        on_conflict: OnConflict::Skip,
        filter: &secretport::filter::PathFilter::default(),
    })
    .unwrap();
    drop(inventory);
    let planned = start.elapsed();
    let report = Report::create(dir, label, None).unwrap();
    let sink = Sink::new(report, false, "scale");
    let settings = Settings {
        rules: Rules {
            restore_deleted: false,
            copy_metadata: false,
            config_tags: BTreeMap::new(),
            prefix: "scale".into(),
            replicas: vec![],
        },
        kms_key_id: None,
        concurrency: 32,
        policy: Policy::Aws,
        tokens: Some(TokenDeriver::keyed(zeroize::Zeroizing::new(
            b"scale-bench-key-0123456789".to_vec(),
        ))),
    };
    let shutdown = Shutdown::new();
    let progress = Progress::new(label, plan.items.len() as u64);
    let exec = Executor::new(target, source, &settings, &sink, &shutdown, &progress);
    let pre = exec.prefetch(&plan.items).await;
    exec.run(&plan.items, &pre).await;
    progress.finish();
    let (wall, cpu_used) = (start.elapsed(), cpu() - cpu0);
    let (rss, peak) = rss_mib();
    let n = source.n as f64;
    let calls: Vec<String> = target
        .calls()
        .iter()
        .map(|(op, c)| format!("{op} {c}"))
        .collect();
    println!(
        "  {label}: {} secrets in {:.2} s (plan {:.2} s), CPU {:.1} µs/secret, RSS {rss:.0} MiB (peak so far {peak:.0} MiB); counts {:?}; calls: {}",
        source.n,
        wall.as_secs_f64(),
        planned.as_secs_f64(),
        cpu_used.as_secs_f64() * 1e6 / n,
        sink.counts().iter().map(|((a, s), c)| format!("{}/{} {c}", a.as_str(), s.as_str())).collect::<Vec<_>>(),
        calls.join(", ")
    );
    assert_eq!(sink.failed(), 0);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let n = env("SECRETPORT_SCALE_N", if full { 100_000 } else { 2_000 });
    let bytes = env("SECRETPORT_SCALE_BYTES", 1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = Generated { n, bytes };
    let target = MemoryTarget::new(false);
    println!(
        "scale ({}): {n} secrets of {bytes} bytes, in-memory target (no quota)",
        if full { "bench" } else { "smoke" }
    );
    let (rss0, _) = rss_mib();
    println!("  start: RSS {rss0:.0} MiB");
    rt.block_on(async {
        pass("migrate", &source, &target, dir.path()).await;
        pass("reconcile", &source, &target, dir.path()).await;
    });
    let calls = target.calls();
    let reads = calls.get("GetSecretValue").copied().unwrap_or(0)
        + calls.get("BatchGetSecretValue").copied().unwrap_or(0);
    assert_eq!(reads, 0, "reconcile with nothing changed reads no value");
    assert_eq!(target.writes(), 0, "and writes nothing");
    let (_, peak) = rss_mib();
    println!("  peak RSS {peak:.0} MiB (the in-memory target's own store of {n} secrets with tags included)");
}
