//! Throughput of the `sops`, `credstash` and `ssm` sources against moto, with data written by the
//! real tools. Ignored by default (each takes a minute or so to seed); run with
//!
//! ```sh
//! cargo test --test suite stores_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - SOPS: 1,000 files (20 encrypted by `sops`, each copied 50 times: every copy is its own file
//!   with its own cached data key), listed and every file decrypted + MAC-verified, 32 at a time:
//!   files/s and KMS calls (one per file expected).
//! - credstash: 5,000 items written by the credstash library itself (`credstash.putSecret`,
//!   through a python one-liner: running the CLI 5,000 times would take most of an hour),
//!   scanned and decrypted, 32 at a time: items/s and KMS calls.
//! - SSM: 2,000 SecureStrings listed and read through the throttling proxy at SSM's throughput
//!   quota of 40/s (GetParameter, GetParameters and GetParametersByPath share it): wall time
//!   against the floor N/10/40 s (10 values per quota call), throttled calls (target 0), and the
//!   names-only listing (`DescribeParameters`, outside that quota) on its own. moto pages
//!   `DescribeParameters` by 10 whatever `MaxResults` asks (AWS: up to 50), so the bench gives
//!   that call 5 times the default rate (50 pages/s, limiter and proxy alike): names then arrive
//!   at the 500/s that AWS's 10 pages/s of 50 give. `SECRETPORT_BENCH_SSM_DESCRIBE_RATE`
//!   overrides that rate, `SECRETPORT_BENCH_SSM_N` the number of parameters. moto answers one
//!   request at a time and scans every parameter for each `DescribeParameters` page (and each
//!   `GetParametersByPath` page), so its listing costs grow with N: the names-only figure shows
//!   how much of the wall time is moto's listing.

use std::sync::Arc;
use std::time::Instant;

use crate::support::{run_tool, tool_ok, Moto, Quota, ThrottleProxy, TEST_REGION};
use futures::stream::{self, StreamExt};
use secretport::config::{AwsAccess, LimitsConfig, SopsConfig, SopsSplit, SsmConfig};
use secretport::limits::Limits;
use secretport::retry::RetryPolicy;
use secretport::source::credstash::CredstashSource;
use secretport::source::sops::SopsSource;
use secretport::source::ssm::SsmSource;
use secretport::source::{Fetched, Source};

const CONCURRENCY: usize = 32;

async fn fetch_all(source: &dyn Source) -> (usize, usize, f64) {
    let start = Instant::now();
    let listing = source.list().await.expect("list");
    let listed = listing.refs.len();
    let ok = stream::iter(listing.refs.iter())
        .map(|r| async move { matches!(source.fetch(r).await, Ok(Fetched::Value { .. })) })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    (listed, ok, start.elapsed().as_secs_f64())
}

fn limits() -> Arc<Limits> {
    Arc::new(Limits::new(&LimitsConfig::default()))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_sops_1000_files() {
    let moto = Moto::start().await;
    let kms = moto.kms_client(TEST_REGION);
    let arn = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    let seed = Instant::now();
    for i in 0..20 {
        let plain = format!(
            "db:\n  user: app{i}\n  password: pw-{i}\n  port: {}\nlist: [a, b, {i}]\nflag: true\nmulti: |\n  one\n  two\n",
            5000 + i
        );
        std::fs::write(dir.path().join("plain.yaml"), plain).unwrap();
        let enc = tool_ok(
            "sops",
            dir.path(),
            moto.endpoint(),
            &["--encrypt", "--kms", &arn, "plain.yaml"],
        );
        for j in 0..50 {
            std::fs::write(
                dir.path().join(format!("secrets/f{i:02}-{j:02}.yaml")),
                &enc,
            )
            .unwrap();
        }
    }
    eprintln!(
        "sops: seeded 1000 files in {:.1}s",
        seed.elapsed().as_secs_f64()
    );
    let source = SopsSource::new(
        &SopsConfig {
            dir: dir.path().canonicalize().unwrap(),
            files: vec!["secrets/*.yaml".into()],
            instance: "secrets/*.yaml".into(),
            split: SopsSplit::File,
            aws: AwsAccess::default(),
        },
        moto.sdk_config(TEST_REGION),
        limits(),
        RetryPolicy::new(8),
    );
    let (listed, ok, secs) = fetch_all(&source).await;
    assert_eq!((listed, ok), (1000, 1000));
    println!(
        "BENCH sops: {ok} files listed, decrypted and MAC-verified in {secs:.2}s = {:.0} files/s, {} KMS calls",
        ok as f64 / secs,
        source.kms_calls()
    );
    assert_eq!(source.kms_calls(), 1000, "one Decrypt per file");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_credstash_5000_items() {
    let moto = Moto::start().await;
    let kms = moto.kms_client(TEST_REGION);
    let arn = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    tool_ok("credstash", dir.path(), moto.endpoint(), &["setup"]);
    let seed = Instant::now();
    let script = format!(
        "import boto3, credstash\n\
         s = boto3.session.Session()\n\
         kms, ddb = s.client('kms'), s.resource('dynamodb')\n\
         for i in range(5000):\n    \
             credstash.putSecret('bench.%05d' % i, 'value-%d' % i, version='1', kms_key='{arn}', context={{'app': 'bench'}}, kms=kms, dynamodb=ddb)\n"
    );
    let out = run_tool("python", dir.path(), moto.endpoint(), &["-c", &script], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "credstash: seeded 5000 items in {:.1}s",
        seed.elapsed().as_secs_f64()
    );
    let conf = moto.sdk_config(TEST_REGION);
    let source = CredstashSource::new(
        "credential-store".into(),
        TEST_REGION.into(),
        [("app".to_owned(), "bench".to_owned())].into(),
        aws_sdk_dynamodb::Client::new(&conf),
        aws_sdk_kms::Client::new(&conf),
        limits(),
        RetryPolicy::new(8),
    );
    let (listed, ok, secs) = fetch_all(&source).await;
    assert_eq!((listed, ok), (5000, 5000));
    println!(
        "BENCH credstash: {ok} items scanned ({} Scan calls), HMAC-verified and decrypted in {secs:.2}s = {:.0} items/s, {} KMS calls",
        source.scan_calls(),
        ok as f64 / secs,
        source.kms_calls()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_ssm_2000_parameters_at_40_per_second() {
    let moto = Moto::start().await;
    let n: usize = std::env::var("SECRETPORT_BENCH_SSM_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config(TEST_REGION));
    let seed = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let ssm = ssm.clone();
            async move {
                ssm.put_parameter()
                    .name(format!("/bench/app-{}/p{i:04}", i / 100))
                    .value(format!("value-{i}"))
                    .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                    .send()
                    .await
                    .expect("PutParameter");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "ssm: seeded {n} parameters in {:.1}s",
        seed.elapsed().as_secs_f64()
    );
    let describe_rate: u32 = std::env::var("SECRETPORT_BENCH_SSM_DESCRIBE_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let quota_ops = ["GetParametersByPath", "GetParameter", "GetParameters"];
    let proxy = ThrottleProxy::start(
        moto.endpoint(),
        vec![
            Quota::new(&quota_ops, 40.0, 40),
            Quota::new(
                &["DescribeParameters", "ListTagsForResource"],
                f64::from(describe_rate),
                describe_rate,
            ),
        ],
    )
    .await;
    let mut limits_config = LimitsConfig::default();
    limits_config.ssm_describe_per_second = describe_rate;
    let source = || {
        SsmSource::new(
            &SsmConfig {
                path: "/bench".into(),
                types: vec!["SecureString".into()],
                copy_tags: false,
                aws: AwsAccess::default(),
            },
            TEST_REGION.into(),
            Some(proxy.endpoint().into()),
            aws_sdk_ssm::Client::new(&crate::support::aws_sdk_config_with_retry(
                proxy.endpoint(),
                TEST_REGION,
                aws_config::retry::RetryConfig::disabled(),
            )),
            Arc::new(Limits::new(&limits_config)),
            RetryPolicy::new(8),
        )
    };
    let names_only = source();
    let start = Instant::now();
    let names = names_only.list_names().await.expect("list names");
    let names_secs = start.elapsed().as_secs_f64();
    assert_eq!(names.refs.len(), n);
    let describe_pages = proxy.forwarded("DescribeParameters");
    proxy.reset_counters();
    let source = source();
    let (listed, ok, secs) = fetch_all(&source).await;
    assert_eq!((listed, ok), (n, n));
    let floor = n as f64 / 10.0 / 40.0;
    let quota_calls: u64 = quota_ops.iter().map(|op| proxy.forwarded(op)).sum();
    println!(
        "BENCH ssm: {ok} parameters listed and read in {secs:.2}s; floor {floor:.2}s (N/10/40) \
         wall/floor {:.2}; {} throttled; {quota_calls} calls of the 40/s quota \
         ({} GetParameters, {} GetParameter, {} GetParametersByPath), {} DescribeParameters \
         at {describe_rate}/s; names only: {names_secs:.2}s for {describe_pages} pages ({:.0} ms a page); \
         wall / max(floor, names only) {:.2}",
        secs / floor,
        proxy.total_throttled(),
        proxy.forwarded("GetParameters"),
        proxy.forwarded("GetParameter"),
        proxy.forwarded("GetParametersByPath"),
        proxy.forwarded("DescribeParameters"),
        1000.0 * names_secs / describe_pages.max(1) as f64,
        secs / floor.max(names_secs),
    );
    assert_eq!(
        proxy.total_throttled(),
        0,
        "no throttles at the configured rate"
    );
}
