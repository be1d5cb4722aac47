//! The `ssm` source end to end: parameters written to moto's SSM through the AWS SDK
//! (SecureString, String, StringList; nested paths; more than one `DescribeParameters` page and
//! `GetParameters` batch; several versions; tags), `secretport migrate` moves the subtree into
//! moto's Secrets Manager, and each value read back equals what `GetParameter
//! --with-decryption` gives. A parameter under a disabled KMS key fails alone, with its name and
//! key: moto does not check SecureString keys, so the test's proxy answers a decrypting read
//! that would return that parameter with SSM's `AccessDeniedException`, as AWS does for the
//! whole `GetParameters` batch that holds it; the batch is then read one by one.

use crate::cli::Workspace;
use crate::support::{Moto, ThrottleProxy};
use aws_sdk_ssm::types::{ParameterType, Tag};

const MARKERS: [&str; 3] = [
    "ssm-PLANTED-pw-1b7c",
    "ssm-PLANTED-deep-e4a9",
    "ssm-PLANTED-denied-60f2",
];
const DENIED: &str = "/prod/app/denied/token";

fn config(endpoint: &str, prefix: &str, types: &str) -> String {
    format!(
        r#"[source]
kind = "ssm"
path = "/prod/app/"
{types}
copy_tags = true

[target]
region = "us-east-1"
prefix = "{prefix}"
endpoint_url = "{endpoint}"
"#
    )
}

async fn put(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    t: ParameterType,
    key: Option<&str>,
) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(t)
        .set_key_id(key.map(str::to_owned))
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_migrate_equal_to_get_parameter_and_a_denied_key_fails_alone() {
    let moto = Moto::start().await;
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    kms.disable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("DisableKey");

    use ParameterType::{SecureString as Sec, String as Str, StringList as List};
    for i in 0..25 {
        put(
            &ssm,
            &format!("/prod/app/bulk/p{i:02}"),
            &format!("bulk-{i}"),
            Sec,
            None,
        )
        .await;
    }
    put(&ssm, "/prod/app/db/password", MARKERS[0], Sec, None).await;
    put(
        &ssm,
        "/prod/app/db/url",
        "postgres://db.example:5432/app",
        Str,
        None,
    )
    .await;
    put(
        &ssm,
        "/prod/app/hosts",
        "a.example,b.example,c.example",
        List,
        None,
    )
    .await;
    put(
        &ssm,
        "/prod/app/nested/deep/very/secret",
        &format!("{} ✓ ünïcode", MARKERS[1]),
        Sec,
        Some("alias/aws/ssm"),
    )
    .await;
    put(&ssm, "/prod/app/multi", "line one\nline two\n", Sec, None).await;
    for v in ["v1", "v2", "v3"] {
        put(&ssm, "/prod/app/versioned", v, Sec, None).await;
    }
    put(&ssm, DENIED, MARKERS[2], Sec, Some(&key_id)).await;
    put(&ssm, "/prod/other/outside", "not in the subtree", Sec, None).await;
    ssm.add_tags_to_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/prod/app/db/password")
        .tags(
            Tag::builder()
                .key("team")
                .value("payments")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("AddTagsToResource");
    proxy.refuse_answers(
        "\"WithDecryption\":true",
        DENIED,
        400,
        "AccessDeniedException",
        "The ciphertext refers to a customer master key that does not exist, does not exist in \
         this region, or you are not allowed to access. (Service: AWSKMS; Status Code: 400; \
         Error Code: DisabledException)",
    );

    let ws = Workspace::new();
    ws.write(
        "cfg.toml",
        &config(
            proxy.endpoint(),
            "ssm",
            r#"types = ["SecureString", "String", "StringList"]"#,
        ),
    );
    let run = ws
        .run_with(
            &["migrate", "-c", "cfg.toml", "--yes"],
            &[("RUST_LOG", "trace")],
        )
        .await;
    run.expect_code(1);
    assert_eq!(run.count("create", "ok"), 31, "{:#?}", run.rows);
    let failed = run.failed();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let denied = run.row("denied/token");
    assert!(
        denied["error"].contains(DENIED) && denied["error"].contains(&key_id),
        "{denied:?}"
    );
    assert_eq!(run.row("versioned")["source_version"], "3");
    assert_eq!(proxy.forwarded("GetParametersByPath"), 0);
    assert!(
        proxy.forwarded("DescribeParameters") >= 2,
        "more than one page per listing"
    );
    assert_eq!(
        proxy.forwarded("GetParameters"),
        4,
        "32 values in batches of 10: {:?}",
        proxy.snapshot()
    );
    // the refused batch, read one by one: at most its 10 names (the denied one's key comes from
    // the listing, no DescribeParameters of its own)
    let one_by_one = proxy.forwarded("GetParameter");
    assert!((2..=10).contains(&one_by_one), "{:?}", proxy.snapshot());

    let sm = moto.sm_client("us-east-1");
    let mut names: Vec<String> = (0..25).map(|i| format!("bulk/p{i:02}")).collect();
    names.extend(
        [
            "db/password",
            "db/url",
            "hosts",
            "nested/deep/very/secret",
            "multi",
            "versioned",
        ]
        .map(String::from),
    );
    for rel in &names {
        let want = ssm
            .get_parameter()
            .name(format!("/prod/app/{rel}"))
            .with_decryption(true)
            .send()
            .await
            .expect("GetParameter")
            .parameter
            .unwrap()
            .value
            .unwrap();
        let got = sm
            .get_secret_value()
            .secret_id(format!("ssm/{rel}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetSecretValue ssm/{rel}: {e:?}"));
        assert_eq!(got.secret_string(), Some(want.as_str()), "{rel}");
    }
    let pw = sm
        .describe_secret()
        .secret_id("ssm/db/password")
        .send()
        .await
        .expect("DescribeSecret");
    let tag = |k: &str| {
        pw.tags()
            .iter()
            .find(|t| t.key() == Some(k))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag("team").as_deref(), Some("payments"), "copy_tags");
    let source = tag("secretport:source").unwrap();
    assert!(
        source == format!("ssm:us-east-1@{} prod/app/db/password", proxy.endpoint()),
        "{source}"
    );
    for gone in ["ssm/denied/token", "ssm/outside", "ssm/other/outside"] {
        assert!(
            sm.describe_secret().secret_id(gone).send().await.is_err(),
            "{gone}"
        );
    }
    let all = run.all_output();
    for m in MARKERS {
        assert!(!all.contains(m), "{m} leaked:\n{all}");
    }

    // rename --config lists names only: no value is decrypted, so the denied key is no obstacle
    let gets = proxy.forwarded("GetParameter");
    let batches = proxy.forwarded("GetParameters");
    let pages = proxy.forwarded("DescribeParameters");
    let names = ws.run(&["rename", "--config", "cfg.toml"]).await;
    names.expect_code(0);
    assert_eq!(names.stdout.lines().count(), 1 + 32, "{}", names.stdout);
    assert!(
        names.stdout.contains("denied/token,ssm/denied/token"),
        "{}",
        names.stdout
    );
    assert_eq!(
        proxy.forwarded("GetParameter"),
        gets,
        "no per-parameter reads"
    );
    assert_eq!(proxy.forwarded("GetParameters"), batches, "no value read");
    assert!(
        proxy.forwarded("DescribeParameters") > pages,
        "names listed"
    );
    for m in MARKERS {
        assert!(!names.stdout.contains(m) && !names.stderr.contains(m));
    }

    // default types: SecureString only
    ws.write("default.toml", &config(proxy.endpoint(), "def", ""));
    let plan = ws.run(&["plan", "-c", "default.toml"]).await;
    let planned = plan
        .rows
        .iter()
        .filter(|r| r["action"] == "create" && r["source_path"] != "denied/token")
        .count();
    assert_eq!(planned, 29, "{:#?}", plan.rows);
    assert!(plan
        .rows
        .iter()
        .all(|r| r["source_path"] != "hosts" && r["source_path"] != "db/url"));

    // a rerun writes nothing
    let rerun = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    rerun.expect_code(1);
    assert_eq!(rerun.count("unchanged", "ok"), 31, "{:#?}", rerun.rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_listing_slows_down_retries_and_completes() {
    let moto = Moto::start().await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    for i in 0..35 {
        put(
            &ssm,
            &format!("/prod/app/t/p{i:02}"),
            &format!("v-{i}"),
            ParameterType::SecureString,
            None,
        )
        .await;
    }
    // SSM allows 2 GetParameters and 5 DescribeParameters per second; the config claims 40 and
    // 10 (the default)
    let proxy = ThrottleProxy::start(
        moto.endpoint(),
        vec![
            crate::support::Quota::per_op("GetParameters", 2.0, 1),
            crate::support::Quota::per_op("DescribeParameters", 5.0, 1),
        ],
    )
    .await;
    let ws = Workspace::new();
    ws.write(
        "cfg.toml",
        &(config(proxy.endpoint(), "thr", "") + "\n[limits]\nssm_per_second = 40\n"),
    );
    let plan = ws.run(&["plan", "-c", "cfg.toml"]).await;
    plan.expect_code(0);
    assert_eq!(plan.count("create", "planned"), 35, "{:#?}", plan.rows);
    assert!(
        proxy.throttled("GetParameters") > 0 && proxy.throttled("DescribeParameters") > 0,
        "both limits were hit: {:?}",
        proxy.snapshot()
    );
    assert_eq!(
        proxy.forwarded("GetParameters"),
        4,
        "35 values in 4 batches, each read once, throttled calls retried"
    );
    // moto pages DescribeParameters by 10 (AWS by up to 50)
    assert_eq!(
        proxy.forwarded("DescribeParameters"),
        4,
        "every page listed once"
    );
}

/// A parameter deleted between its `DescribeParameters` page and its `GetParameters` batch comes
/// back in `InvalidParameters`: it stays in the listing and its fetch fails naming it (never
/// dropped silently), while the rest of its batch is read.
#[tokio::test(flavor = "multi_thread")]
async fn a_parameter_deleted_while_listing_fails_alone_by_name() {
    use secretport::config::{AwsAccess, LimitsConfig, SsmConfig};
    use secretport::source::ssm::SsmSource;
    use secretport::source::{Fetched, Source, SourceErrorKind};
    use std::time::Duration;

    let moto = Moto::start().await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    for i in 0..5 {
        put(
            &ssm,
            &format!("/prod/app/p{i}"),
            &format!("v-{i}"),
            ParameterType::SecureString,
            None,
        )
        .await;
    }
    // every call reaches moto 300 ms after the proxy counts it: the delete below lands after
    // DescribeParameters was answered and before GetParameters is
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    proxy.set_delay(Duration::from_millis(300));
    let source = SsmSource::new(
        &SsmConfig {
            path: "/prod/app".into(),
            types: vec!["SecureString".into()],
            copy_tags: false,
            aws: AwsAccess::default(),
        },
        "us-east-1".into(),
        Some(proxy.endpoint().into()),
        aws_sdk_ssm::Client::new(&crate::support::aws_sdk_config_with_retry(
            proxy.endpoint(),
            "us-east-1",
            aws_config::retry::RetryConfig::disabled(),
        )),
        std::sync::Arc::new(secretport::limits::Limits::new(&LimitsConfig::default())),
        secretport::retry::RetryPolicy::new(3),
    );
    let delete = async {
        while proxy.forwarded("GetParameters") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ssm.delete_parameter()
            .name("/prod/app/p3")
            .send()
            .await
            .expect("DeleteParameter");
    };
    let (listing, ()) = tokio::join!(source.list(), delete);
    let listing = listing.expect("list");
    let paths: Vec<&str> = listing.refs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(proxy.forwarded("GetParameters"), 1, "one batch");
    let gets = proxy.forwarded("GetParameter");
    for r in &listing.refs {
        match source.fetch(r).await {
            Ok(Fetched::Value { value, .. }) => {
                assert_ne!(r.path, "p3");
                assert_eq!(
                    value.expose_str(),
                    Some(format!("v-{}", &r.path[1..]).as_str())
                );
            }
            Err(e) => {
                assert_eq!(r.path, "p3", "{e:?}");
                assert_eq!(e.kind, SourceErrorKind::NotFound, "{e:?}");
                assert!(e.message.contains("/prod/app/p3"), "{e:?}");
            }
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        proxy.forwarded("GetParameter") - gets,
        1,
        "only the deleted one is read again"
    );
}

/// A parameter's `Description` becomes its secret's description; where the identity is too
/// long for the source tag (the tag holds its hash, the description must hold the identity that
/// proves it), the parameter's description is left out, the row says so, and the secret stays
/// the job's: a rerun changes nothing and a pruning reconcile deletes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_parameters_description_becomes_the_secrets_unless_it_must_hold_the_identity() {
    let moto = Moto::start().await;
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config("us-east-1"));
    let described = "Payments DB password — rotated monthly";
    let long = format!("/prod/app/long/{}", "n".repeat(240));
    for (name, description) in [
        ("/prod/app/described", Some(described)),
        ("/prod/app/plain", None),
        (long.as_str(), Some("too long to keep")),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(format!("value of {name}"))
            .r#type(ParameterType::SecureString)
            .set_description(description.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutParameter {name}: {e:?}"));
    }
    let ws = Workspace::new();
    ws.write(
        "cfg.toml",
        &config(moto.endpoint(), "sd", r#"types = ["SecureString"]"#),
    );
    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    run.expect_code(0);
    assert_eq!(run.count("create", "ok"), 3, "{:#?}", run.rows);

    let sm = moto.sm_client("us-east-1");
    let description = |id: String| {
        let sm = sm.clone();
        async move {
            sm.describe_secret()
                .secret_id(&id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeSecret {id}: {e:?}"))
                .description
                .unwrap_or_default()
        }
    };
    assert_eq!(description("sd/described".into()).await, described);
    assert!(
        description("sd/plain".into())
            .await
            .starts_with("Migrated by secretport from ssm:"),
        "no description of its own: the identity's"
    );
    let long_rel = long.trim_start_matches("/prod/app/");
    let kept = description(format!("sd/{long_rel}")).await;
    assert!(
        kept.starts_with("Migrated by secretport from ssm:") && kept.ends_with(long_rel),
        "{kept}"
    );
    let row = run.row(long_rel);
    assert!(
        row["error"].contains("description was left out"),
        "named in the row: {row:?}"
    );
    assert!(
        !run.row("described")["error"].contains("left out"),
        "{:?}",
        run.row("described")
    );

    // the secrets are the job's, the long one proven by its description: nothing to do, and a
    // pruning reconcile deletes nothing
    let again = ws
        .run(&["reconcile", "-c", "cfg.toml", "--prune", "--yes"])
        .await;
    again.expect_code(0);
    assert_eq!(again.count("unchanged", "ok"), 3, "{:#?}", again.rows);
    assert_eq!(again.count("delete", "ok"), 0, "{:#?}", again.rows);
}
