//! The engine at a region's scale, in-process: the whole pipeline, the engine's own
//! (`engine::prepare` over a parsed config: a `file` export on disk → list and index →
//! inventory → plan; then `PreparedJob::execute` → CSV report), over the in-memory target
//! (`target::memory`, no quota), for `plan` (a dry run on an empty target), `migrate` and
//! `reconcile` with nothing changed. Prints, per command, wall time, CPU time per secret, peak
//! resident memory (VmHWM), live heap by phase (a counting allocator, read at the engine's
//! events) and calls by operation.
//!
//! `cargo bench --bench scale` runs 10,000, 100,000 and 500,000 secrets of 1 KiB; each command
//! of each size runs in a process of its own (the bench runs itself again: a process's peak
//! memory cannot be lowered), so each peak is that command's alone. `migrate` writes into a
//! target that answers as AWS does and keeps nothing (AWS holds the secrets, not secretport);
//! `reconcile` runs against the in-memory store filled by a migrate in the same process, so its
//! peak includes that store (printed as its estimated size). `SECRETPORT_SCALE_SIZES=100000`
//! picks sizes, `SECRETPORT_SCALE_BYTES` the value size (default 1024). Under `cargo test` it
//! runs 300 secrets through all three in one process as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secretport::config::Config;
use secretport::engine::{self, Event, Events, JobInput};
use secretport::limits::Limits;
use secretport::policy::Mode;
use secretport::report::{Report, Sink};
use secretport::shutdown::Shutdown;
use secretport::target::memory::MemoryTarget;

const CHILD: &str = "SECRETPORT_SCALE_CHILD";

/// Counts live heap bytes and their peak, so the bench can say where memory goes (which phase
/// holds what), beside the process's resident figures.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; this only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap now and the peak since the last call, in MiB; resets the peak to now.
fn heap_mib() -> (f64, f64) {
    let live = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.swap(live, Ordering::Relaxed);
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    (mib(live), mib(peak))
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

/// The live heap at each of the engine's phases (the events it sends as it prepares a job),
/// and when planning ended.
struct Phases {
    start: Instant,
    marks: Mutex<Vec<String>>,
    planned: Mutex<Duration>,
}

impl Phases {
    fn mark(&self, name: &str) {
        let (live, peak) = heap_mib();
        if let Ok(mut m) = self.marks.lock() {
            m.push(format!("{name} {live:.0}/{peak:.0}"));
        }
    }
}

impl Events for Phases {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Listing { .. } => self.mark("index"),
            Event::Listed { .. } => self.mark("list"),
            Event::Inventory { .. } => self.mark("inventory"),
            Event::Planned { .. } => {
                self.mark("plan");
                if let Ok(mut p) = self.planned.lock() {
                    *p = self.start.elapsed();
                }
            }
            _ => {}
        }
    }
}

/// The bench's config: one job over the `file` export in `dir`, prefix `scale`, the bench's
/// token key, 32 secrets in flight.
fn bench_config(dir: &Path) -> Config {
    let text = "[source]\nkind = \"file\"\nfile = \"export.jsonl\"\n[target]\nprefix = \"scale\"\ntoken_key_env = \"SCALE_KEY\"\n[limits]\nconcurrency = 32\n";
    let env = |k: &str| (k == "SCALE_KEY").then(|| "scale-bench-key-0123456789".to_owned());
    Config::parse(text, &dir.join("scale.toml"), dir, &env).unwrap()
}

/// One command over the whole pipeline, the engine's own: open (list and index) the export,
/// take the inventory, plan, execute, write the report.
async fn pass(label: &str, mode: Mode, target: &MemoryTarget, dir: &Path) {
    target.reset_calls();
    let (start, cpu0) = (Instant::now(), cpu());
    let phases = Phases {
        start,
        marks: Mutex::new(Vec::new()),
        planned: Mutex::new(Duration::ZERO),
    };
    phases.mark("start");
    let cfg = bench_config(dir);
    let report = Report::create(dir, label, None).unwrap();
    let sink = Sink::new(report, mode.dry_run(), "scale");
    let input = JobInput {
        cfg: &cfg,
        job: &cfg.jobs[0],
        target,
        limits: Arc::new(Limits::new(&cfg.limits)),
        caller: None,
    };
    let job = engine::prepare(input, sink, mode, &phases).await.unwrap();
    let ended = job.execute(mode, &Shutdown::new(), &phases).await;
    phases.mark("execute");
    drop(job);
    let planned = *phases.planned.lock().unwrap();
    let (wall, cpu_used) = (start.elapsed(), cpu() - cpu0);
    let (_, peak) = rss_mib();
    let listed = ended.secrets;
    let n = listed as f64;
    let calls: Vec<String> = target
        .calls()
        .iter()
        .map(|(op, c)| format!("{op} {c}"))
        .collect();
    let counts: Vec<String> = ended
        .counts
        .iter()
        .map(|(a, s, c)| format!("{}/{} {c}", a.as_str(), s.as_str()))
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
    println!(
        "            heap MiB live/peak by phase: {}",
        phases.marks.lock().unwrap().join(", ")
    );
    assert_eq!(ended.counts.failed(), 0, "{counts:?}");
}

/// Runs one command for `n` secrets of `bytes` bytes, in a process of its own (so the peak is
/// that command's): `plan` (a dry run on an empty target), `migrate` (into a target that keeps
/// nothing, as AWS keeps the secrets, not this process), `reconcile` with nothing changed
/// (against the in-memory store filled by a migrate first: its peak includes the store, whose
/// size is printed). `all` runs the three in one process (the smoke run under `cargo test`).
fn one_size(n: usize, bytes: usize, command: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export.jsonl");
    write_export(&export, n, bytes);
    let (rss0, hwm0) = rss_mib();
    println!(
        "scale {command}: {n} secrets of {bytes} bytes ({:.0} MiB export on disk); at start RSS {rss0:.0} MiB (peak {hwm0:.0})",
        std::fs::metadata(&export).map(|m| m.len()).unwrap_or(0) as f64 / (1024.0 * 1024.0)
    );
    rt.block_on(async {
        if matches!(command, "plan" | "all") {
            let target = MemoryTarget::new(false);
            let plan = Mode::Plan {
                detailed_exitcode: false,
            };
            pass("plan", plan, &target, dir.path()).await;
            assert_eq!(target.writes(), 0, "a plan writes nothing");
        }
        if matches!(command, "migrate" | "all") {
            let target = MemoryTarget::forgetful();
            pass("migrate", MIGRATE, &target, dir.path()).await;
            assert_eq!(target.calls().get("CreateSecret").copied(), Some(n as u64));
        }
        if matches!(command, "reconcile" | "all") {
            let target = MemoryTarget::new(false);
            pass("(fill)", MIGRATE, &target, dir.path()).await;
            assert_eq!(target.len(), n);
            let reconcile = Mode::Reconcile {
                check: false,
                prune: false,
                force_prune: false,
                restore_deleted: false,
                adopt: false,
                yes: true,
            };
            pass("reconcile", reconcile, &target, dir.path()).await;
            let calls = target.calls();
            let reads = calls.get("GetSecretValue").copied().unwrap_or(0)
                + calls.get("BatchGetSecretValue").copied().unwrap_or(0);
            assert_eq!(reads, 0, "reconcile with nothing changed reads no value");
            assert_eq!(target.writes(), 0, "and writes nothing");
        }
    });
}

/// `migrate --yes`.
const MIGRATE: Mode = Mode::Migrate {
    yes: true,
    restore_deleted: false,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |k: &str| std::env::var(k).ok();
    let bytes = env("SECRETPORT_SCALE_BYTES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if let Some(child) = env(CHILD) {
        let (n, command) = child.split_once(':').unwrap();
        one_size(n.parse().unwrap(), bytes, command);
        return;
    }
    if !full {
        println!("scale (smoke, under cargo test):");
        one_size(300, bytes, "all");
        return;
    }
    let sizes = env("SECRETPORT_SCALE_SIZES").unwrap_or_else(|| "10000,100000,500000".into());
    let me = std::env::current_exe().unwrap();
    for n in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for command in ["plan", "migrate", "reconcile"] {
            let status = std::process::Command::new(&me)
                .arg("--bench")
                .env(CHILD, format!("{n}:{command}"))
                .status()
                .unwrap();
            assert!(status.success(), "size {n}, {command}: {status}");
        }
    }
}
