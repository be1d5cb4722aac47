//! The engine at a region's scale, in-process: the whole pipeline (a `file` export on disk →
//! list and index → plan → execute → CSV report) over the in-memory target (`target::memory`,
//! no quota, compact: no values, no version history), for `plan` (a dry run on an empty
//! target), `migrate`, then `reconcile` with nothing changed. Prints, per command, wall time,
//! CPU time per secret, peak resident memory (VmHWM) and calls by operation.
//!
//! `cargo bench --bench scale` runs 10,000, 100,000 and 500,000 secrets of 1 KiB, each size in
//! its own process (the bench runs itself again per size: a process's peak memory cannot be
//! reset), so each peak is that size's alone. `SECRETPORT_SCALE_SIZES=100000` picks sizes,
//! `SECRETPORT_SCALE_BYTES` the value size (default 1024). Within one process the three commands
//! run in order and VmHWM never goes down: the `migrate` and `reconcile` peaks are peaks of the
//! process so far, and include the fake target's own store (printed as its estimated size).
//! Under `cargo test` it runs 300 secrets in-process as a smoke test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use secretport::config::OnConflict;
use secretport::decide::Rules;
use secretport::executor::{Executor, Settings, Sink};
use secretport::identity::token::TokenDeriver;
use secretport::naming::{NamingRules, Overrides, Policy};
use secretport::plan::{self, PlanInput};
use secretport::progress::Progress;
use secretport::report::{Report, Status};
use secretport::shutdown::Shutdown;
use secretport::source::file::FileSource;
use secretport::source::Source;
use secretport::target::dry::DryRun;
use secretport::target::memory::MemoryTarget;
use secretport::target::Target;

const CHILD: &str = "SECRETPORT_SCALE_CHILD";

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

/// Writes an export of `n` secrets with distinct `bytes`-long string values, a line at a time.
fn write_export(file: &Path, n: usize, bytes: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    let filler = "x".repeat(bytes);
    for i in 0..n {
        let path = format!("team-{}/svc-{}/secret-{i}", i % 20, i / 100);
        let value = format!("{i}-{filler}");
        writeln!(
            w,
            "{{\"path\":\"{path}\",\"value\":\"{}\"}}",
            &value[..bytes.min(value.len())]
        )
        .unwrap();
    }
    w.flush().unwrap();
}

/// One command over the whole pipeline: open (list and index) the export, take the inventory,
/// plan, execute, write the report. `dry`: a `plan` (dry run).
async fn pass(label: &str, export: &Path, target: &MemoryTarget, dir: &Path, dry: bool) {
    target.reset_calls();
    let (start, cpu0) = (Instant::now(), cpu());
    let source = FileSource::open(export).unwrap();
    let listing = source.list().await.unwrap();
    let dry_target = DryRun::new(target);
    let t: &dyn Target = if dry { &dry_target } else { target };
    let rules = NamingRules::new(Some("scale"), Policy::Aws);
    let inventory: Vec<_> = t
        .inventory("scale")
        .await
        .unwrap()
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
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
    // as `commands::run` does: the items hold what they need of the listing
    let listed = listing.refs.len();
    drop(listing);
    let planned = start.elapsed();
    let report = Report::create(dir, label, None).unwrap();
    let sink = Sink::new(report, dry, "scale");
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
    let exec = Executor::new(t, &source, &settings, &sink, &shutdown, &progress);
    exec.run_all(&plan.items).await;
    progress.finish();
    let (wall, cpu_used) = (start.elapsed(), cpu() - cpu0);
    let (_, peak) = rss_mib();
    let n = listed as f64;
    let calls: Vec<String> = target
        .calls()
        .iter()
        .map(|(op, c)| format!("{op} {c}"))
        .collect();
    let counts: Vec<String> = sink
        .counts()
        .iter()
        .map(|((a, s), c)| format!("{}/{} {c}", a.as_str(), s.as_str()))
        .collect();
    println!(
        "  {label:<9} {:>7} secrets: wall {:>6.2} s (plan {:.2} s), CPU {:>5.1} µs/secret, peak RSS {peak:>4.0} MiB, fake store ≈{:.0} MiB; rows {}; calls: {}",
        listed,
        wall.as_secs_f64(),
        planned.as_secs_f64(),
        cpu_used.as_secs_f64() * 1e6 / n,
        target.approx_bytes() as f64 / (1024.0 * 1024.0),
        counts.join(", "),
        if calls.is_empty() { "none".to_owned() } else { calls.join(", ") }
    );
    assert_eq!(
        sink.counts()
            .iter()
            .filter(|((_, s), _)| *s == Status::Failed)
            .count(),
        0,
        "{counts:?}"
    );
}

/// Runs plan, migrate and reconcile (nothing changed) for `n` secrets of `bytes` bytes.
fn one_size(n: usize, bytes: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.jsonl");
    write_export(&export, n, bytes);
    let (rss0, hwm0) = rss_mib();
    println!(
        "scale: {n} secrets of {bytes} bytes ({:.0} MiB export on disk); at start RSS {rss0:.0} MiB (peak {hwm0:.0})",
        std::fs::metadata(&export).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
    let target = MemoryTarget::new(false);
    rt.block_on(async {
        pass("plan", &export, &target, dir.path(), true).await;
        assert_eq!(target.writes(), 0, "a plan writes nothing");
        pass("migrate", &export, &target, dir.path(), false).await;
        assert_eq!(target.len(), n);
        pass("reconcile", &export, &target, dir.path(), false).await;
    });
    let calls = target.calls();
    let reads = calls.get("GetSecretValue").copied().unwrap_or(0)
        + calls.get("BatchGetSecretValue").copied().unwrap_or(0);
    assert_eq!(reads, 0, "reconcile with nothing changed reads no value");
    assert_eq!(target.writes(), 0, "and writes nothing");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str| std::env::var(k).ok();
    let bytes = env("SECRETPORT_SCALE_BYTES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if let Some(n) = env(CHILD).and_then(|v| v.parse().ok()) {
        one_size(n, bytes);
        return;
    }
    if !full {
        println!("scale (smoke, under cargo test):");
        one_size(300, bytes);
        return;
    }
    let sizes = env("SECRETPORT_SCALE_SIZES").unwrap_or_else(|| "10000,100000,500000".into());
    let me = std::env::current_exe().unwrap();
    for n in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status = std::process::Command::new(&me)
            .arg("--bench")
            .env(CHILD, n)
            .status()
            .unwrap();
        assert!(status.success(), "size {n}: {status}");
    }
}
