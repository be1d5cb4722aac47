//! What a newcomer reads, through the binary: every source kind's "0 secrets" and "not found"
//! messages speak of that kind and name what to check (never Vault's mount advice for a file),
//! and the summary line of `plan` and `migrate` shows the counts that are not zero, failures and
//! conflicts first, as docs/guide.md's example shows them. Each case is small: a few secrets, one server at most per test. Where the
//! run never reaches AWS, the endpoint is a closed port.

use crate::cli::{Run, Workspace};
use crate::support::{tool_ok, Bao, Moto, ThrottleProxy};
use serde_json::json;

/// Nothing listens there: a run that got as far as AWS would fail differently.
const CLOSED: &str = "http://127.0.0.1:9";

fn config(source: &str, endpoint: &str) -> String {
    format!(
        "[source]\n{source}\n\n[target]\nregion = \"us-east-1\"\nprefix = \"msg\"\nendpoint_url = \"{endpoint}\"\n"
    )
}

/// `plan -c cfg.toml` with `source` as the [source] table; asserts the exit code and that
/// stderr says each of `want` and none of `never`.
async fn plan(
    ws: &Workspace,
    source: &str,
    endpoint: &str,
    code: i32,
    want: &[&str],
    never: &[&str],
) -> Run {
    ws.write("cfg.toml", &config(source, endpoint));
    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    assert_eq!(run.code, code, "{source}\n{}", run.stderr);
    for w in want {
        assert!(
            run.stderr.contains(w),
            "{source}: wanted {w:?} in\n{}",
            run.stderr
        );
    }
    for n in never {
        assert!(
            !run.stderr.contains(n),
            "{source}: {n:?} in\n{}",
            run.stderr
        );
    }
    run
}

/// Advice that belongs to Vault alone.
const VAULT_ADVICE: &[&str] = &["check mount", "KV v2"];

#[tokio::test(flavor = "multi_thread")]
async fn file_source_empty_and_missing_name_the_export_file() {
    let ws = Workspace::new();
    ws.write("export.jsonl", "");
    plan(
        &ws,
        "kind = \"file\"\nfile = \"export.jsonl\"",
        CLOSED,
        1,
        &[
            "0 secrets found at export file",
            "the export file has no records",
            "check that the export finished and that [source] file names it",
            "set allow_empty = true in [source]",
        ],
        VAULT_ADVICE,
    )
    .await;
    plan(
        &ws,
        "kind = \"file\"\nfile = \"exprot.jsonl\"",
        CLOSED,
        64,
        &[
            "source.file: the export file",
            "exprot.jsonl does not exist; check [source] file (a relative path is read from the config file's folder)",
        ],
        VAULT_ADVICE,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_source_empty_and_missing_name_the_kms_export_file() {
    let ws = Workspace::new();
    ws.write("kms.jsonl", "\n");
    plan(
        &ws,
        "kind = \"kms\"\nfile = \"kms.jsonl\"",
        CLOSED,
        1,
        &[
            "0 secrets found at export file",
            "the KMS export file has no records",
            "secretport kms-export",
            "set allow_empty = true in [source]",
        ],
        VAULT_ADVICE,
    )
    .await;
    let abs = ws.path().join("gone.jsonl");
    plan(
        &ws,
        &format!("kind = \"kms\"\nfile = \"{}\"", abs.display()),
        CLOSED,
        64,
        &[&format!(
            "source.file: the KMS export file {} does not exist; check [source] file",
            abs.display()
        )],
        &["check mount", "relative path"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ssm_source_empty_path_and_denied_path_name_the_path_and_types() {
    let moto = Moto::start().await;
    // moto enforces no IAM: the proxy answers the listing of /denied as AWS does a caller
    // without ssm:DescribeParameters there
    let proxy = ThrottleProxy::start(moto.endpoint(), vec![]).await;
    proxy.refuse_answers(
        "\"/denied\"",
        "Parameters",
        400,
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/x is not authorized to perform: ssm:DescribeParameters",
    );
    let ws = Workspace::new();
    plan(
        &ws,
        "kind = \"ssm\"\npath = \"/nothing/\"\ntypes = [\"SecureString\", \"String\"]",
        proxy.endpoint(),
        1,
        &[
            "0 secrets found at SSM path /nothing",
            "no parameter of type SecureString or String under that SSM path",
            "check [source] path",
            "types and region",
            "set allow_empty = true in [source]",
        ],
        VAULT_ADVICE,
    )
    .await;
    plan(
        &ws,
        "kind = \"ssm\"\npath = \"/denied\"",
        proxy.endpoint(),
        1,
        &[
            "listing the SSM path was denied",
            "the caller needs ssm:DescribeParameters on the parameters under /denied in us-east-1",
            "AccessDeniedException",
        ],
        &["0 secrets found", "check mount"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sops_source_unmatched_globs_and_keyless_files_say_so() {
    let moto = Moto::start().await;
    let ep = moto.endpoint().to_owned();
    let kms = moto.kms_client("us-east-1");
    let key = kms.create_key().send().await.expect("CreateKey");
    let arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path().join("secrets")).unwrap();
    ws.write("plain.json", "{}\n");
    let enc = tool_ok(
        "sops",
        ws.path(),
        &ep,
        &["--encrypt", "--kms", &arn, "plain.json"],
    );
    ws.write("secrets/empty.json", std::str::from_utf8(&enc).unwrap());

    // a glob that matches nothing: the listing is incomplete (exit 1), the row says which glob
    let run = plan(
        &ws,
        "kind = \"sops\"\nfiles = [\"secrets/*.yaml\"]",
        &ep,
        1,
        &[
            "no file matches the SOPS glob \"secrets/*.yaml\" in",
            "check [source] files",
        ],
        VAULT_ADVICE,
    )
    .await;
    assert_eq!(run.count("skip", "failed"), 1, "{}", run.stderr);
    // the files match but hold no key to make a secret of
    plan(
        &ws,
        "kind = \"sops\"\nfiles = [\"secrets/*.json\"]\nsplit = \"keys\"",
        &ep,
        1,
        &[
            "0 secrets found at files secrets/*.json",
            "the matched SOPS files hold no keys",
            "check [source] files and split",
            "set allow_empty = true in [source]",
        ],
        VAULT_ADVICE,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn credstash_source_empty_and_missing_tables_name_the_table() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    tool_ok(
        "credstash",
        ws.path(),
        moto.endpoint(),
        &["-t", "empty-store", "setup"],
    );
    plan(
        &ws,
        "kind = \"credstash\"\ntable = \"empty-store\"",
        moto.endpoint(),
        1,
        &[
            "0 secrets found at credstash table empty-store in us-east-1",
            "the credstash table is empty; check [source] table",
            "set allow_empty = true in [source]",
        ],
        VAULT_ADVICE,
    )
    .await;
    plan(
        &ws,
        "kind = \"credstash\"\ntable = \"no-such-store\"",
        moto.endpoint(),
        1,
        &[
            "credstash table no-such-store does not exist in us-east-1; check [source] table (credstash's -t, default credential-store) and region",
            "ResourceNotFoundException",
        ],
        &["0 secrets found", "check mount"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_source_empty_path_and_missing_mount_keep_the_vault_advice() {
    let bao = Bao::start().await;
    bao.mount_kv("kv", 2).await;
    bao.put_kv2("kv", "apps/x", json!({"v": "1"})).await;
    let mut ws = Workspace::new();
    ws.env("TEST_VAULT_TOKEN", bao.token());
    let vault = |mount: &str, path: &str| {
        format!(
            "kind = \"vault\"\naddress = \"{}\"\nmount = \"{mount}\"\npath = \"{path}\"\n\
             auth = {{ method = \"token\", token_env = \"TEST_VAULT_TOKEN\" }}",
            bao.addr()
        )
    };
    plan(
        &ws,
        &vault("kv", "nothing"),
        CLOSED,
        1,
        &[
            "0 secrets found at mount kv, path \"nothing/\"",
            "check mount and path (on KV v2, path is the secret path without data/)",
            "set allow_empty = true in [source]",
        ],
        &["export file"],
    )
    .await;
    plan(
        &ws,
        &vault("nomount", "apps"),
        CLOSED,
        1,
        &[
            "mount \"nomount\"",
            "Either the mount does not exist",
            "check `mount`",
        ],
        &["0 secrets found"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_and_migrate_summaries_show_the_counts_that_matter() {
    let moto = Moto::start().await;
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        "{\"path\":\"a\",\"value\":\"1\"}\n{\"path\":\"b\",\"value\":\"2\"}\n{\"path\":\"c\",\"value\":\"\"}\n",
    );
    ws.write(
        "cfg.toml",
        &config("kind = \"file\"\nfile = \"export.jsonl\"", moto.endpoint()),
    );
    // an empty value fails (AWS takes none), and one name is already taken by a secret that is
    // not this job's: a conflict
    moto.sm_client("us-east-1")
        .create_secret()
        .name("msg/b")
        .secret_string("someone else's")
        .send()
        .await
        .expect("CreateSecret");
    let summary = |run: &Run, command: &str| -> String {
        run.stderr
            .lines()
            .find(|l| l.starts_with(&format!("{command}: 3 secrets: ")))
            .unwrap_or_else(|| panic!("no summary line in\n{}", run.stderr))
            .to_owned()
    };

    let run = ws.run(&["plan", "-c", "cfg.toml"]).await;
    let line = summary(&run, "plan");
    assert!(
        line.starts_with("plan: 3 secrets: failed 1, conflicts 1, would create 1; "),
        "{line}"
    );
    assert!(!line.contains(" 0,") && !line.contains(" 0;"), "{line}");
    assert!(line.contains("s; report "), "{line}");
    // the full table stays on stdout, zeros and all
    assert!(run.stdout.contains("conflict"), "{}", run.stdout);

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    let line = summary(&run, "migrate");
    assert!(
        line.starts_with("migrate: 3 secrets: failed 1, conflicts 1, create 1; "),
        "{line}"
    );
    assert!(!line.contains(" 0,") && !line.contains(" 0;"), "{line}");
    assert!(
        line.contains("1 writes at") && line.contains("; report "),
        "{line}"
    );

    let run = ws.run(&["migrate", "-c", "cfg.toml", "--yes"]).await;
    let line = summary(&run, "migrate");
    assert!(
        line.starts_with("migrate: 3 secrets: failed 1, conflicts 1, unchanged 1; "),
        "{line}"
    );

    // the guide's plan -> migrate example shows the lines its export gives (time, rate and
    // report path aside)
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    let shown: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(shape)
        .collect();
    let ws = Workspace::new();
    ws.write(
        "export.jsonl",
        "{\"path\":\"app/db\",\"value\":{\"user\":\"app\",\"password\":\"s3cr3t\"}}\n\
         {\"path\":\"app/api key\",\"value\":\"k-123\"}\n",
    );
    ws.write(
        "cfg.toml",
        &config("kind = \"file\"\nfile = \"export.jsonl\"", moto.endpoint())
            .replace("prefix = \"msg\"", "prefix = \"devops\""),
    );
    for (args, command) in [
        (&["plan", "-c", "cfg.toml"][..], "plan"),
        (&["migrate", "-c", "cfg.toml", "--yes"][..], "migrate"),
        (&["migrate", "-c", "cfg.toml", "--yes"][..], "migrate"),
    ] {
        let run = ws.run(args).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("{command}: 2 secrets: ")))
            .unwrap_or_else(|| panic!("no summary line in\n{}", run.stderr));
        assert!(
            shown.contains(&shape(line)),
            "docs/guide.md does not show {line:?} (as {:?})",
            shape(line)
        );
    }
}

/// A summary line with its time, write rate and report path blanked.
fn shape(line: &str) -> String {
    let numbers = regex::Regex::new(r"\d+\.\d+(s|/s)").unwrap();
    let line = numbers.replace_all(line, "N$1");
    let report = regex::Regex::new(r"report \S+$").unwrap();
    report.replace_all(&line, "report R").into_owned()
}
