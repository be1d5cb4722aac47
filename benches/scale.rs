//! The engine at a region's scale, in-process: the whole pipeline, the engine's own
//! (`engine::prepare` over a parsed config: a `file` export on disk → list and index →
//! inventory → plan; then `PreparedJob::execute` → CSV report; the phases read at the engine's
//! events) over in-process targets (no quota), for
//! `plan` (a dry run on an empty target), `migrate` and `reconcile` with nothing changed.
//! Prints, per command, wall time, CPU time per secret, peak resident memory (VmHWM), live heap
//! and its peak by phase (a counting allocator; also per secret) and calls by operation.
//!
//! `cargo bench --bench scale --features memory-target` runs 10,000, 100,000 and 500,000 secrets of 1 KiB; each command
//! of each size runs in a process of its own (the bench runs itself again: a process's peak
//! memory cannot be lowered), so each peak is that command's alone. `migrate` writes into a
//! target that answers as AWS does and keeps nothing (AWS holds the secrets, not secretport);
//! `reconcile` lists from a target that keeps no store either ([`Listing`]): it answers the
//! inventory a page at a time, generated on the fly as AWS would answer for an account this
//! bench's migrate filled (secretport's tags, proof and version ids), and refuses every other
//! call, so the figures are secretport's alone (the CPU the fake spends making its pages is
//! printed apart). `SECRETPORT_SCALE_SIZES=100000` picks sizes, `SECRETPORT_SCALE_BYTES` the
//! value size (default 1024). Under `cargo test` it runs 300 secrets through all three in one
//! process as a smoke test, `reconcile` also against the in-memory store a migrate filled.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use secretport::config::Config;
use secretport::engine::{self, Event, Events, JobInput};
use secretport::identity::token::TokenDeriver;
use secretport::identity::{Scope, OWNER_TAG};
use secretport::limits::{Limits, Op};
use secretport::naming::{NamingRules, Policy};
use secretport::plan;
use secretport::policy::Mode;
use secretport::report::{Report, Sink};
use secretport::secret::SecretValue;
use secretport::shutdown::Shutdown;
use secretport::source::file::FileSource;
use secretport::source::Source;
use secretport::target::memory::MemoryTarget;
use secretport::target::{
    BatchRead, CallError, Caller, CurrentValue, ErrorClass, NewSecret, Outcome, Replica,
    ReplicaRegion, Target, TargetSecret, Written,
};

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

/// Live heap now and the peak since the last call, in bytes; resets the peak to now.
fn heap() -> (usize, usize) {
    let live = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.swap(live, Ordering::Relaxed);
    (live, peak)
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

/// The path of secret `i` of the export.
fn path_of(i: usize) -> String {
    format!("team-{}/svc-{}/secret-{i}", i % 20, i / 100)
}

/// The `bytes`-long value of secret `i` (`filler`: `bytes` times `x`).
fn value_of<'f>(i: usize, filler: &'f str, bytes: usize) -> std::borrow::Cow<'f, str> {
    let value = format!("{i}-{filler}");
    value[..bytes.min(value.len())].to_owned().into()
}

/// Writes an export of `n` secrets with distinct `bytes`-long string values, a line at a time.
fn write_export(file: &Path, n: usize, bytes: usize) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    let filler = "x".repeat(bytes);
    for i in 0..n {
        writeln!(
            w,
            "{{\"path\":\"{}\",\"value\":\"{}\"}}",
            path_of(i),
            value_of(i, &filler, bytes)
        )
        .unwrap();
    }
    w.flush().unwrap();
}

/// A target that keeps no store: it answers the inventory of the export's `n` secrets as AWS
/// would for the account this bench's migrate filled (secretport's tags and proof, an ARN with
/// AWS's 6-character suffix, the token of the value as the `AWSCURRENT` version), a
/// `ListSecrets` page of 100 at a time made when asked, and refuses every other call. The
/// figures of a reconcile over it are the engine's alone, not a fake store's.
struct Listing {
    n: usize,
    bytes: usize,
    scope: Scope,
    rules: NamingRules,
    calls: std::sync::Mutex<BTreeMap<&'static str, u64>>,
    /// Time spent making pages (on one thread, busy: the fake's CPU, not the engine's).
    making: std::sync::Mutex<Duration>,
}

impl Listing {
    fn new(n: usize, bytes: usize, scope: Scope) -> Self {
        Listing {
            n,
            bytes,
            scope,
            rules: NamingRules::new(Some("scale"), Policy::Aws),
            calls: Default::default(),
            making: Default::default(),
        }
    }

    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }

    /// Secret `i` as ListSecrets shows it.
    fn secret(&self, i: usize, filler: &str) -> TargetSecret {
        let path = path_of(i);
        // the name the rules give it (no two of the export's paths collide)
        let name = secretport::naming::rewrite(&path, &self.rules).target;
        let id = self.scope.identity(&path);
        let value = SecretValue::text(value_of(i, filler, self.bytes).into_owned());
        let mut tags = plan::expected_tags(&BTreeMap::new(), &BTreeMap::new(), &id, "scale");
        tags.insert(
            OWNER_TAG.to_owned(),
            key().ownership_proof(&name, &self.scope, "scale"),
        );
        TargetSecret {
            arn: format!(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-{:06x}",
                (i * 2_654_435_761) % 0xff_ffff
            ),
            name,
            tags: tags.into(),
            description: Some(id.description()),
            current_version: Some(key().token(&id, &value, None)),
            ..TargetSecret::default()
        }
    }

    fn refused<T>(&self, op: Op, name: &'static str) -> Result<T, CallError> {
        self.count(name);
        Err(CallError {
            op,
            name: String::new(),
            class: ErrorClass::Other,
            message: "a listing-only target answers ListSecrets alone".into(),
            attempts: 1,
        })
    }
}

impl Target for Listing {
    fn region(&self) -> &str {
        "us-east-1"
    }

    fn caller(&self) -> BoxFuture<'_, Result<Caller, CallError>> {
        Box::pin(async {
            Ok(Caller {
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:user/bench".into(),
            })
        })
    }

    fn inventory<'a>(
        &'a self,
        _prefix: &'a str,
        page: &'a mut (dyn FnMut(Vec<TargetSecret>) + Send),
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let filler = "x".repeat(self.bytes);
            for start in (0..self.n).step_by(100) {
                self.count("ListSecrets");
                let t0 = Instant::now();
                let secrets = (start..self.n.min(start + 100))
                    .map(|i| self.secret(i, &filler))
                    .collect();
                *self.making.lock().unwrap() += t0.elapsed();
                page(secrets);
            }
            Ok(())
        })
    }

    fn batch_get<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<BatchRead, CallError>> {
        Box::pin(async { self.refused(Op::BatchGetSecretValue, "BatchGetSecretValue") })
    }

    fn get_value<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Outcome<Option<CurrentValue>>> {
        Box::pin(async { self.refused(Op::GetSecretValue, "GetSecretValue") })
    }

    fn describe<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Outcome<TargetSecret>> {
        Box::pin(async { self.refused(Op::DescribeSecret, "DescribeSecret") })
    }

    fn create<'a>(&'a self, _: &'a NewSecret<'a>) -> BoxFuture<'a, Outcome<(String, String)>> {
        Box::pin(async { self.refused(Op::CreateSecret, "CreateSecret") })
    }

    fn put_value<'a>(
        &'a self,
        _: &'a str,
        _: &'a SecretValue,
        _: String,
    ) -> BoxFuture<'a, Outcome<Written>> {
        Box::pin(async { self.refused(Op::PutSecretValue, "PutSecretValue") })
    }

    fn tag<'a>(
        &'a self,
        _: &'a str,
        _: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async { self.refused(Op::TagResource, "TagResource") })
    }

    fn replicate<'a>(
        &'a self,
        _: &'a str,
        _: &'a [ReplicaRegion],
    ) -> BoxFuture<'a, Outcome<Vec<Replica>>> {
        Box::pin(async { self.refused(Op::ReplicateSecretToRegions, "ReplicateSecretToRegions") })
    }

    fn restore<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async { self.refused(Op::RestoreSecret, "RestoreSecret") })
    }

    fn schedule_deletion<'a>(&'a self, _: &'a str, _: i64) -> BoxFuture<'a, Outcome<String>> {
        Box::pin(async { self.refused(Op::DeleteSecret, "DeleteSecret") })
    }

    fn move_current<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Outcome<()>> {
        Box::pin(async { self.refused(Op::UpdateSecretVersionStage, "UpdateSecretVersionStage") })
    }
}

/// What the bench asks of a fake target besides the [`Target`] calls.
trait Fake {
    fn target(&self) -> &dyn Target;
    fn calls(&self) -> BTreeMap<&'static str, u64>;
    fn reset_calls(&self);
    /// What the fake itself holds or spends: (store MiB, CPU making answers).
    fn own(&self) -> (f64, Duration);
}

impl Fake for MemoryTarget {
    fn target(&self) -> &dyn Target {
        self
    }
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        MemoryTarget::calls(self)
    }
    fn reset_calls(&self) {
        MemoryTarget::reset_calls(self)
    }
    fn own(&self) -> (f64, Duration) {
        (
            self.approx_bytes() as f64 / (1024.0 * 1024.0),
            Duration::ZERO,
        )
    }
}

impl Fake for Listing {
    fn target(&self) -> &dyn Target {
        self
    }
    fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap().clone()
    }
    fn reset_calls(&self) {
        self.calls.lock().unwrap().clear();
    }
    fn own(&self) -> (f64, Duration) {
        (0.0, *self.making.lock().unwrap())
    }
}

/// A phase's name, the live heap and its peak then (bytes), and the process's peak RSS so far
/// (MiB).
type Mark = (&'static str, (usize, usize), f64);

/// The live heap at each of the engine's phases (the events it sends as it prepares a job),
/// and when planning ended.
struct Phases {
    start: Instant,
    marks: Mutex<Vec<Mark>>,
    planned: Mutex<Duration>,
}

impl Phases {
    fn mark(&self, name: &'static str) {
        let h = heap();
        let (_, hwm) = rss_mib();
        if let Ok(mut m) = self.marks.lock() {
            m.push((name, h, hwm));
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
async fn pass(label: &str, mode: Mode, fake: &dyn Fake, dir: &Path) {
    fake.reset_calls();
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
        target: fake.target(),
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
    let (store, making) = fake.own();
    let calls: Vec<String> = fake
        .calls()
        .iter()
        .map(|(op, c)| format!("{op} {c}"))
        .collect();
    let counts: Vec<String> = ended
        .counts
        .iter()
        .map(|(a, s, c)| format!("{}/{} {c}", a.as_str(), s.as_str()))
        .collect();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / n;
    println!(
        "  {label:<9} {:>7} secrets: wall {:>6.2} s (plan {:.2} s), CPU {:>5.1} µs/secret (+{:.1} the fake's answers), peak RSS {peak:>4.0} MiB, fake store ≈{store:.0} MiB; rows {}; calls: {}",
        listed,
        wall.as_secs_f64(),
        planned.as_secs_f64(),
        us(cpu_used.saturating_sub(making)),
        us(making),
        counts.join(", "),
        if calls.is_empty() { "none".to_owned() } else { calls.join(", ") }
    );
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let marks = phases.marks.lock().unwrap();
    // per secret: what this pass added since its start (an earlier pass's leftovers apart)
    let base = marks.first().map_or(0, |(_, (live, _), _)| *live);
    let per = |b: usize| b.saturating_sub(base) as f64 / n;
    let shown: Vec<String> = marks
        .iter()
        .map(|(name, (live, peak), hwm)| {
            format!(
                "{name} {:.0}/{:.0} ({:.0}/{:.0}; RSS peak {hwm:.0})",
                mib(*live),
                mib(*peak),
                per(*live),
                per(*peak)
            )
        })
        .collect();
    println!(
        "            heap MiB live/peak by phase (in brackets: bytes per secret added by this pass, and the process's peak RSS so far): {}",
        shown.join(", ")
    );
    assert_eq!(ended.counts.failed(), 0, "{counts:?}");
}

/// Runs one command for `n` secrets of `bytes` bytes, in a process of its own (so the peak is
/// that command's): `plan` (a dry run on an empty target), `migrate` (into a target that keeps
/// nothing, as AWS keeps the secrets, not this process), `reconcile` with nothing changed
/// (against a listing-only target, [`Listing`]: no store in the figure). `all` runs the three
/// in one process (the smoke run under `cargo test`), the reconcile also against the in-memory
/// store a migrate filled.
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
    let unchanged = |calls: BTreeMap<&'static str, u64>, writes: u64| {
        let reads = calls.get("GetSecretValue").copied().unwrap_or(0)
            + calls.get("BatchGetSecretValue").copied().unwrap_or(0);
        assert_eq!(reads, 0, "reconcile with nothing changed reads no value");
        assert_eq!(writes, 0, "and writes nothing");
    };
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
            let scope = FileSource::open(&export, "export.jsonl").unwrap().scope();
            let target = Listing::new(n, bytes, scope);
            pass("reconcile", RECONCILE, &target, dir.path()).await;
            let calls = Fake::calls(&target);
            let refused: u64 = calls
                .iter()
                .filter(|(op, _)| **op != "ListSecrets")
                .map(|(_, c)| c)
                .sum();
            unchanged(calls, refused);
        }
        if command == "all" {
            // the listing-only target answers as the in-memory store a migrate filled does
            let target = MemoryTarget::new(false);
            pass("(fill)", MIGRATE, &target, dir.path()).await;
            assert_eq!(target.len(), n);
            pass("reconcile", RECONCILE, &target, dir.path()).await;
            unchanged(target.calls(), target.writes());
        }
    });
}

/// `migrate --yes`.
const MIGRATE: Mode = Mode::Migrate {
    yes: true,
    restore_deleted: false,
};

/// `reconcile --yes`.
const RECONCILE: Mode = Mode::Reconcile {
    check: false,
    prune: false,
    force_prune: false,
    restore_deleted: false,
    adopt: false,
    yes: true,
};

/// The token key every command of the bench writes and verifies with.
fn key() -> TokenDeriver {
    TokenDeriver::keyed(zeroize::Zeroizing::new(
        b"scale-bench-key-0123456789".to_vec(),
    ))
}

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
