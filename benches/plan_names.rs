//! Rename planning of 1,000,000 synthetic Vault-style names, on a 1-thread rayon pool and on
//! the default pool.
//!
//! The names look like `team-NN/app-NNNN/env/secret-NNNNNNN`; 10% need a rename (space,
//! unicode, `#`, `:`), and 1% collide after renaming with a compliant name. Before measuring,
//! the bench checks that both pools give identical plans (and that a reversed input does too),
//! then prints a quick median-of-5 timing of each and the speed-up. Criterion then measures both
//! (`iter_custom`): the 1,000,000 mappings are dropped, and glibc's free lists trimmed, outside
//! the timed section, as a single CLI run never frees a previous plan before planning.
//!
//! In criterion's test mode (`cargo test --benches`, no `--bench` argument) it uses 100,000
//! names, checks the same, skips the median timing and runs each benchmark once.
//!
//! Run: `cargo bench --bench plan_names`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use secretport::naming::{plan_names, Mapping, NamingRules, Overrides, Policy, Reason};

const N: usize = 1_000_000;
const ENVS: [&str; 4] = ["prod", "staging", "dev", "qa"];

fn parts(i: usize) -> String {
    format!(
        "team-{:02}/app-{:04}/{}",
        i % 40,
        (i / 40) % 2500,
        ENVS[(i / 7) % 4]
    )
}

/// Deterministic synthetic names, shuffled deterministically.
pub fn generate(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n)
        .map(|i| {
            let dir = parts(i);
            match (i % 100, i % 10) {
                // Compliant, with an '_' that the next one's rewrite produces.
                (6, _) => format!("{dir}/secret_{i:07}"),
                // Rewrites to the previous name: a collision.
                (7, _) => format!("{}/secret {:07}", parts(i - 1), i - 1),
                (_, 3) => match (i / 10) % 4 {
                    0 => format!("{dir}/secret {i:07}"),
                    1 => format!("{dir}/secrét-{i:07}"),
                    2 => format!("{dir}/db#{i:07}"),
                    _ => format!("{dir}/key:{i:07}"),
                },
                _ => format!("{dir}/secret-{i:07}"),
            }
        })
        .collect();
    // Fisher-Yates with xorshift64*.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        v.swap(i, (r % (i as u64 + 1)) as usize);
    }
    v
}

fn plan(names: &[String], rules: &NamingRules) -> Vec<Mapping> {
    plan_names(
        names,
        rules,
        &Overrides::default(),
        &secretport::naming::NO_STICKY,
    )
    .expect("plan")
}

/// Drops a plan outside the timed section and gives glibc's freed chunks back. Without this,
/// the 3,000,000 small blocks of the previous plan would be consolidated by the allocator
/// inside the next timed plan (a cost a single `secretport rename` run never pays).
fn discard(plan: Vec<Mapping>) {
    drop(plan);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: glibc's malloc_trim only releases free heap memory; no pointers are touched.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Total time of `iters` plans on `pool`, each dropped outside the timed section.
fn timed(pool: &rayon::ThreadPool, names: &[String], rules: &NamingRules, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let out = pool.install(|| plan(names, rules));
        total += start.elapsed();
        discard(out);
    }
    total
}

fn median_ms(pool: &rayon::ThreadPool, names: &[String], rules: &NamingRules) -> f64 {
    let mut t: Vec<f64> = (0..5)
        .map(|_| timed(pool, names, rules, 1).as_secs_f64() * 1e3)
        .collect();
    t.sort_by(f64::total_cmp);
    t[2]
}

fn bench(c: &mut Criterion) {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`, CI's smoke run in a
    // debug build) criterion runs each benchmark once: use 100,000 names there.
    let test_mode = !std::env::args().any(|a| a == "--bench");
    let n = if test_mode { N / 10 } else { N };
    let names = generate(n);
    let rules = NamingRules::new(Some("devops"), Policy::Aws);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("1-thread pool");
    let all = rayon::ThreadPoolBuilder::new()
        .build()
        .expect("default pool");
    let threads = all.current_num_threads();

    // Same plan for any thread count and any input order.
    let a = one.install(|| plan(&names, &rules));
    let b = all.install(|| plan(&names, &rules));
    assert!(a == b, "1-thread and {threads}-thread plans differ");
    let mut reversed = names.clone();
    reversed.reverse();
    assert!(
        all.install(|| plan(&reversed, &rules)) == b,
        "input order changed the plan"
    );
    let renamed = b.iter().filter(|m| m.changed).count();
    let collisions = b.iter().filter(|m| m.has(Reason::Collision)).count();
    eprintln!(
        "plan_names: {} names, {renamed} renamed, {collisions} collisions",
        b.len()
    );
    assert_eq!(b.len(), n);
    assert_eq!(collisions, n / 100);
    drop(reversed);
    discard(a);
    discard(b);

    if !test_mode {
        let t1 = median_ms(&one, &names, &rules);
        let tn = median_ms(&all, &names, &rules);
        eprintln!(
            "plan_names 1M (median of 5): 1 thread {t1:.0} ms, {threads} threads {tn:.0} ms, \
             speed-up {:.2}x",
            t1 / tn
        );
    }

    let mut g = c.benchmark_group("plan_names_1M");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("1_thread", |bch| {
        bch.iter_custom(|iters| timed(&one, &names, &rules, iters))
    });
    g.bench_function(format!("{threads}_threads"), |bch| {
        bch.iter_custom(|iters| timed(&all, &names, &rules, iters))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
