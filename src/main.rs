//! The `secretport` command line: argument parsing, logging, the terminal (confirmation prompt,
//! Ctrl-C and SIGTERM), and mapping outcomes to the exit codes scripts rely on (0 ok, 1
//! failures, 2 drift, 64 bad usage or config, 130 after a second interrupt). All work happens in
//! the library, which takes the prompt and the shutdown signal as parameters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use secretport::commands::run::{self, Confirm, Confirmation};
use secretport::commands::{refs, rename, rollback};
use secretport::config::Config;
use secretport::exit;
use secretport::kms_export;
use secretport::metrics;
use secretport::naming::{NamingRules, Overrides, Policy};
use secretport::policy::Mode;
use secretport::shutdown::Shutdown;

#[derive(Parser)]
#[command(
    name = "secretport",
    version,
    about = "Move secrets from Vault/OpenBao (KV v1/v2), SSM Parameter Store, SOPS files, credstash \
tables, KMS-encrypted exports and plaintext exports into AWS Secrets Manager",
    long_about = "Move secrets into AWS Secrets Manager from HashiCorp Vault / OpenBao (KV v1 and v2), \
AWS SSM Parameter Store, SOPS files, credstash tables, KMS-encrypted exports and plaintext (JSON \
Lines) exports: compliant names planned up front, writes kept within AWS request quotas, every \
action recorded in a CSV audit report.\n\n\
Exit codes: 0 success / in sync, 1 a secret failed or a fatal error, 2 drift (found by \
`reconcile --check` or `plan --detailed-exitcode`, or left unrepaired by `reconcile`: conflicts, \
orphans not deleted; or secrets left unmigrated by `migrate`: conflicts, secrets skipped for \
safety), 64 bad usage or bad config, overlapping jobs, or a write refused because stdin is not a \
terminal and --yes was not given, 130 after a second Ctrl-C.\n\n\
Writing commands ask for confirmation on a terminal (showing account, region, prefix and counts); \
without a terminal they refuse unless --yes is given. Ctrl-C or SIGTERM stops starting new \
secrets and writes the report; a second one exits at once.\n\n\
Logging: RUST_LOG (e.g. RUST_LOG=secretport=debug) to stderr; secret values are never logged."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preview target names: reads names (one per line) and prints source,target,changed,reasons
    /// as CSV. Needs no credentials at all.
    Rename {
        /// Name prefix ("devops" + "app/db" -> "devops/app/db").
        #[arg(long)]
        prefix: Option<String>,
        /// Character policy: aws keeps A-Za-z0-9/_+=.@- ; alphanumeric keeps A-Za-z0-9 and /.
        #[arg(long, value_enum, default_value_t = PolicyArg::Aws)]
        policy: PolicyArg,
        /// File with one name per line (default: stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        /// CSV of explicit source,target renames; they win over the rules.
        #[arg(long)]
        overrides: Option<PathBuf>,
        /// Preview the configured source's own names instead: lists the source (list
        /// permission only, no value read, no AWS credentials needed) and applies the config's
        /// prefix, policy and overrides; of every job (filters applied), with a `job` column.
        #[arg(long, short = 'c', conflicts_with_all = ["prefix", "input", "overrides"])]
        config: Option<PathBuf>,
        /// With --config: only this job (repeatable).
        #[arg(long = "job", value_name = "NAME", requires = "config")]
        jobs: Vec<String>,
    },
    /// Dry run: list the source, read the target, and report what migrate would do.
    /// Never writes to AWS.
    Plan {
        #[command(flatten)]
        run: RunArgs,
        /// Exit 2 when anything would change (for CI gates), 0 when nothing would.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create missing secrets and update changed ones, within the configured request rates.
    Migrate {
        #[command(flatten)]
        run: RunArgs,
        /// Don't ask for confirmation. Without a terminal on stdin, required to write at all.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Restore secrets of ours that are scheduled for deletion, then update them.
        #[arg(long)]
        restore_deleted: bool,
    },
    /// Bring the target in step with the source: create, update, retag, and report (or with
    /// --prune schedule the deletion of) orphans.
    Reconcile {
        #[command(flatten)]
        run: RunArgs,
        /// Read only: report drift and exit 2 if there is any, 0 if in sync.
        #[arg(long)]
        check: bool,
        /// Schedule orphans for deletion (with the recovery window; never forced).
        #[arg(long, conflicts_with = "check")]
        prune: bool,
        /// Prune even more than [reconcile] max_prune_fraction of the managed secrets.
        #[arg(long, requires = "prune")]
        force_prune: bool,
        /// Restore secrets of ours that are scheduled for deletion, then update them.
        #[arg(long)]
        restore_deleted: bool,
        /// Take over secrets whose tags name this job's exact source and prefix but whose
        /// ownership proof is missing or does not verify (written before ownership proofs, a
        /// re-keyed account, a moved base path or checkout): compare and update them and write
        /// the proof. Only secrets at the names their sources map to are adopted; a run that
        /// adopts deletes nothing (a --prune in it is refused). With --check, shows what would
        /// be adopted.
        #[arg(long)]
        adopt: bool,
        /// Don't ask for confirmation. Without a terminal on stdin, required to write at all.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Undo what one migrate or reconcile run wrote, from its report: created secrets are
    /// scheduled for deletion (recovery window), updated ones get AWSCURRENT moved back to the
    /// version they replaced, pruned ones are restored. Only secrets the config's job provably
    /// owns (ownership proof, exact scope, its account and region) are touched; a secret
    /// changed since that run, or not the job's, is left alone, with the reason. Writes its own
    /// report (action `rollback`).
    Rollback {
        /// The report of the run to undo.
        #[arg(long)]
        report: PathBuf,
        /// The config of that run (required): the job whose writes are undone, its target's
        /// region, endpoint and credentials. A report naming another account or region is
        /// refused as a whole.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Undo only this job's rows, with its target settings (required with a --config of
        /// several jobs: they may write to different accounts and regions).
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
        /// Where this rollback's own report goes (default: beside the one undone).
        #[arg(long)]
        rollback_report: Option<PathBuf>,
        /// Recovery window for created secrets scheduled for deletion, 7..=30 days.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(7..=30))]
        recovery_window_days: i64,
        /// Don't ask for confirmation. Without a terminal on stdin, required to write at all.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Encrypt a plaintext export (the `file` source's JSON Lines) into the `kms` export format
    /// through AWS KMS, so a KMS-encrypted store can be produced or re-keyed. Credentials,
    /// region and endpoint come from the usual AWS sources (AWS_PROFILE, AWS_REGION,
    /// AWS_ENDPOINT_URL, ...) unless given here.
    KmsExport {
        /// Plaintext export: one {"path": ..., "value": ...} (or "value_base64") per line.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the encrypted export (written whole, then renamed into place).
        #[arg(long)]
        output: PathBuf,
        /// KMS key: key id, key ARN, alias name (alias/x) or alias ARN.
        #[arg(long)]
        key_id: String,
        /// direct: one kms:Encrypt per value (<= 4096 bytes); envelope: AES-256-GCM under data
        /// keys from kms:GenerateDataKey (any size, far fewer KMS calls).
        #[arg(long, default_value = "envelope")]
        mode: String,
        /// Encryption context pair key=value (repeatable); needed again to decrypt.
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
        /// Envelope mode: records sealed under one data key before a new one is generated.
        #[arg(long, default_value_t = 1000)]
        records_per_data_key: usize,
        /// KMS requests per second at most.
        #[arg(long, default_value_t = 50)]
        kms_per_second: u32,
        /// AWS region (default: the SDK's usual sources).
        #[arg(long)]
        region: Option<String>,
        /// KMS endpoint URL, e.g. a local test server (default: AWS_ENDPOINT_URL or AWS's own).
        #[arg(long)]
        endpoint_url: Option<String>,
    },
    /// Cutover: each migrated secret's old reference beside its AWS name and ARN; `refs scan`
    /// finds consumers still naming the old store.
    ///
    /// From a migrate or reconcile report and its config: the old reference as consumers write
    /// it (Vault mount/path and the KV v2 API path mount/data/path, the SSM parameter name, SOPS
    /// file#key, the credstash name), the AWS name and ARN, and the JSON-key form ARN:KEY::.
    /// `--format external-secrets --store NAME` writes one ExternalSecret
    /// (external-secrets.io/v1) per secret instead. Read-only: no network call, no credential.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Refs {
        #[command(subcommand)]
        scan: Option<RefsCommand>,
        #[command(flatten)]
        input: RefsInput,
        /// csv (header row), json (JSON Lines) or external-secrets (YAML manifests; needs
        /// --store).
        #[arg(long, value_enum, default_value_t = RefsFormat::Csv)]
        format: RefsFormat,
        /// The AWS Secrets Manager SecretStore the manifests read from.
        #[arg(
            long,
            value_name = "NAME",
            required_if_eq("format", "external-secrets")
        )]
        store: Option<String>,
        /// The kind of --store.
        #[arg(long, value_enum, default_value_t = StoreKindArg::SecretStore, requires = "store")]
        store_kind: StoreKindArg,
    },
    /// Print a shell completion script (bash, zsh, fish, powershell) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `secretport man | man -l -`.
    Man,
}

#[derive(Subcommand)]
enum RefsCommand {
    /// Find consumers that still name migrated secrets by their old reference; exit 2 while any
    /// remain.
    ///
    /// Looks in DIR... for ExternalSecret / ClusterExternalSecret keys, Vault Agent templates
    /// and injector annotations, `vault kv get|put` and `vault read`, CloudFormation
    /// {{resolve:ssm-secure:...}} and ECS valueFrom SSM ARNs, and prints file:line, the old
    /// reference and the new name (ARN). .gitignore'd and binary files are skipped, as are
    /// commented-out lines. Exit 2 while any remain, 0 when none (a cutover gate for CI), 1
    /// when a file could not be read.
    Scan {
        #[command(flatten)]
        input: RefsInput,
        /// JSON Lines on stdout: one object per reference found, then {"summary": ...}.
        #[arg(long)]
        json: bool,
        /// Folders (or files) to scan.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct RefsInput {
    /// The report of the run that migrated the secrets (migrate or reconcile).
    #[arg(long, required = true)]
    report: Option<PathBuf>,
    /// The config of that run: only its [source] location keys are read (kind, Vault mount and
    /// path, SSM path, ...), which the report does not record; no credential is needed.
    #[arg(long, short = 'c', required = true)]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RefsFormat {
    Csv,
    Json,
    ExternalSecrets,
}

#[derive(Clone, Copy, ValueEnum)]
enum StoreKindArg {
    #[value(name = "SecretStore")]
    SecretStore,
    #[value(name = "ClusterSecretStore")]
    ClusterSecretStore,
}

#[derive(Args)]
struct RunArgs {
    /// The migration config (TOML).
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Run only this job of the config (repeatable; default: every job).
    #[arg(long = "job", value_name = "NAME")]
    jobs: Vec<String>,
    /// Report path (default: <report dir>/<command>-<UTC timestamp>.csv); `-` writes the CSV
    /// to stdout instead of a file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Machine-readable output: each report row as a JSON object on stdout, then a final
    /// {"summary": ...} object (JSON Lines). Human text stays on stderr.
    #[arg(long)]
    json: bool,
    /// Write the run's metrics (last run and last success timestamps, duration, exit code,
    /// secrets by job/action/status, drift, throttled and retried calls) in the Prometheus
    /// text format to PATH, atomically, for node_exporter's textfile collector; also when the
    /// run fails. A failing write is a warning on stderr and does not change the exit code.
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// Push the same metrics to the Prometheus Pushgateway at URL when the run ends (grouping
    /// labels job="secretport", config=<config file name>, command). A failing push is a
    /// warning on stderr and does not change the exit code.
    #[arg(long, value_name = "URL", value_parser = gateway_url)]
    pushgateway: Option<String>,
}

/// `--pushgateway`: an http(s) URL.
fn gateway_url(s: &str) -> Result<String, String> {
    let ok = (s.starts_with("http://") || s.starts_with("https://"))
        && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "expected the Pushgateway's http:// or https:// URL (e.g. http://pushgateway:9091), got {s:?}"
        ))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    Aws,
    Alphanumeric,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Aws => Policy::Aws,
            PolicyArg::Alphanumeric => Policy::Alphanumeric,
        }
    }
}

/// A failure with its exit code.
struct Fail(i32, anyhow::Error);

fn usage(e: impl Into<anyhow::Error>) -> Fail {
    Fail(exit::USAGE, e.into())
}

fn failed(e: impl Into<anyhow::Error>) -> Fail {
    Fail(exit::FAILED, e.into())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(secretport::log_filter::log_filter(
            std::env::var("RUST_LOG").ok().as_deref(),
        ))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(Fail(code, e)) => {
            let text = secretport::error_text::join(e.chain().map(|c| c.to_string()));
            eprintln!("error: {text}");
            code
        }
    };
    ExitCode::from(code as u8)
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(failed)
}

/// Confirmation on the terminal: asks on stderr, reads stdin; without a terminal on stdin it
/// cannot ask (and the library refuses to write).
struct Terminal;

impl Confirm for Terminal {
    fn confirm(&self, question: &str) -> Confirmation {
        use std::io::{BufRead, IsTerminal};
        if !std::io::stdin().is_terminal() {
            return Confirmation::NoTerminal;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() {
            return Confirmation::No;
        }
        match line.trim() {
            "y" | "Y" | "yes" | "YES" | "Yes" => Confirmation::Yes,
            _ => Confirmation::No,
        }
    }
}

/// Ctrl-C and SIGTERM (a CronJob's stop) trigger the run's shutdown: no new secret starts, the
/// report is written. A second signal exits at once with 130; every report row is already
/// flushed (rows are written and flushed one by one).
fn signals(rt: &tokio::runtime::Runtime) -> Shutdown {
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    rt.spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut seen = 0;
        loop {
            #[cfg(unix)]
            let got = match term.as_mut() {
                Some(t) => tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    r = t.recv() => r.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            #[cfg(not(unix))]
            let got = tokio::signal::ctrl_c().await.is_ok();
            if !got {
                return;
            }
            seen += 1;
            if seen == 1 {
                eprintln!("interrupted: starting no new secret; finishing requests in flight, then writing the report (interrupt again to exit at once)");
                s.trigger();
            } else {
                eprintln!("interrupted twice: exiting now; the report holds every row written so far");
                std::process::exit(130);
            }
        }
    });
    shutdown
}

fn load(path: &std::path::Path) -> Result<Config, Fail> {
    Config::load(path).map_err(usage)
}

fn dispatch(cli: Cli) -> Result<i32, Fail> {
    let (run_args, mode) = match cli.command {
        Command::Refs {
            scan,
            input,
            format,
            store,
            store_kind,
        } => return refs_cmd(scan, input, format, store, store_kind),
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "secretport", &mut out);
            return Ok(exit::OK);
        }
        Command::Man => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("writing the man page to stdout")
                .map_err(failed)?;
            return Ok(exit::OK);
        }
        Command::Rename {
            config: Some(config),
            jobs,
            ..
        } => {
            let mut cfg = load(&config)?;
            cfg.select(&jobs).map_err(|e| usage(anyhow::anyhow!(e)))?;
            let rt = runtime()?;
            let previews = rt
                .block_on(rename::preview_config(&cfg))
                .map_err(|e| Fail(e.exit_code(), e.into()))?;
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            rename::write_csv_with_job(&previews, &mut lock)
                .and_then(|_| lock.flush())
                .context("writing CSV to stdout")
                .map_err(failed)?;
            let mut problems = 0;
            for p in &previews {
                for problem in &p.problems {
                    eprintln!("warning: job {}: not listed: {problem}", p.job);
                }
                problems += p.problems.len();
                let label = if previews.len() > 1 {
                    format!("job {}: ", p.job)
                } else {
                    String::new()
                };
                eprintln!("{label}{}", rename::summary_line(&p.output));
            }
            return Ok(if problems == 0 {
                exit::OK
            } else {
                exit::FAILED
            });
        }
        Command::Rename {
            prefix,
            policy,
            input,
            overrides,
            config: None,
            ..
        } => return rename_cmd(prefix, policy.into(), input, overrides),
        Command::KmsExport {
            input,
            output,
            key_id,
            mode,
            context,
            records_per_data_key,
            kms_per_second,
            region,
            endpoint_url,
        } => {
            let mode = mode
                .parse::<kms_export::ExportMode>()
                .map_err(|e| usage(anyhow::anyhow!("--mode: {e}")))?;
            let mut opts = kms_export::KmsExportOptions::new(key_id, mode);
            opts.context =
                kms_export::parse_context(&context).map_err(|e| usage(anyhow::anyhow!(e)))?;
            opts.records_per_data_key = records_per_data_key;
            if kms_per_second == 0 {
                return Err(usage(anyhow::anyhow!(
                    "--kms-per-second: must be at least 1"
                )));
            }
            let mut limits_cfg = secretport::config::LimitsConfig::default();
            limits_cfg.kms_per_second = kms_per_second;
            let policy = secretport::retry::RetryPolicy::new(limits_cfg.max_attempts);
            let limits = std::sync::Arc::new(secretport::limits::Limits::new(&limits_cfg));
            let rt = runtime()?;
            return rt.block_on(async {
                let client = kms_export::kms_client(region.as_deref(), endpoint_url.as_deref())
                    .await
                    .map_err(usage)?;
                match kms_export::kms_export(&input, &output, client, &opts, limits, policy).await {
                    Ok(summary) => {
                        eprintln!("{}", summary.summary_line());
                        Ok(exit::OK)
                    }
                    Err(e) => Err(Fail(e.exit_code(), e.into())),
                }
            });
        }
        Command::Plan {
            run,
            detailed_exitcode,
        } => (run, Mode::Plan { detailed_exitcode }),
        Command::Rollback {
            report,
            config,
            job,
            rollback_report,
            recovery_window_days,
            yes,
        } => {
            let Some(config) = config else {
                return Err(usage(anyhow::anyhow!(
                    "rollback needs --config: the config of the run that wrote {}; a report is a file anyone can edit, so rollback undoes only what that config's job provably owns",
                    report.display()
                )));
            };
            let cfg = load(&config)?;
            let job_cfg = match job.as_deref() {
                Some(name) => cfg.job(name).ok_or_else(|| {
                    usage(anyhow::anyhow!(
                        "--job {name}: no such job in the config; its jobs are: {}",
                        cfg.jobs
                            .iter()
                            .map(|j| j.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
                None => cfg.single().map_err(|e| usage(anyhow::anyhow!(e)))?,
            };
            let rt = runtime()?;
            let shutdown = signals(&rt);
            let opts = rollback::Options {
                report: &report,
                config: (job_cfg, &cfg.limits),
                job: job.as_deref(),
                own_report: rollback_report.as_deref(),
                recovery_window_days,
                yes,
            };
            let outcome = rt
                .block_on(rollback::rollback(&opts, shutdown, &Terminal))
                .map_err(|e| Fail(e.exit_code(), e.into()))?;
            eprintln!("{}", outcome.summary);
            return Ok(outcome.exit_code);
        }
        Command::Migrate {
            run,
            yes,
            restore_deleted,
        } => (
            run,
            Mode::Migrate {
                yes,
                restore_deleted,
            },
        ),
        Command::Reconcile {
            run,
            check,
            prune,
            force_prune,
            restore_deleted,
            adopt,
            yes,
        } => (
            run,
            Mode::Reconcile {
                check,
                prune,
                force_prune,
                restore_deleted,
                adopt,
                yes,
            },
        ),
    };
    run_with_metrics(run_args, mode)
}

/// Runs plan/migrate/reconcile, then writes and pushes its metrics when asked (whatever the
/// outcome; a failure to do so is a warning and leaves the exit code alone).
fn run_with_metrics(run_args: RunArgs, mode: Mode) -> Result<i32, Fail> {
    let started = std::time::Instant::now();
    let mut ran = Ran::default();
    let result = run_command(&run_args, mode, &mut ran);
    if run_args.metrics_file.is_none() && run_args.pushgateway.is_none() {
        return result;
    }
    let exit_code = match &result {
        Ok(code) => *code,
        Err(Fail(code, _)) => *code,
    };
    let config = metrics::config_label(&run_args.config, ran.digest.as_deref());
    let stats = ran.stats.unwrap_or_default();
    let facts = metrics::RunFacts {
        command: mode.command(),
        config: &config,
        finished: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        duration: started.elapsed(),
        exit_code,
        stats: &stats,
    };
    if let Some(path) = &run_args.metrics_file {
        if let Err(e) = metrics::write_file(path, &facts) {
            eprintln!("warning: {e} (the exit code is the run's)");
        }
    }
    if let Some(url) = &run_args.pushgateway {
        let pushed = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| metrics::MetricsError::Push {
                url: url.clone(),
                message: e.to_string(),
            })
            .and_then(|rt| {
                let pushed = rt.block_on(metrics::push(url, &facts));
                // a name lookup still running after the push timed out is not waited for
                rt.shutdown_timeout(std::time::Duration::from_secs(1));
                pushed
            });
        if let Err(e) = pushed {
            eprintln!("warning: {e} (the exit code is the run's)");
        }
    }
    result
}

/// What a run leaves for its metrics.
#[derive(Default)]
struct Ran {
    /// The config's digest, once it loaded.
    digest: Option<String>,
    /// The engine's counts, once the run ended.
    stats: Option<metrics::RunStats>,
}

fn run_command(run_args: &RunArgs, mode: Mode, ran: &mut Ran) -> Result<i32, Fail> {
    let report_to_stdout = run_args
        .report
        .as_ref()
        .is_some_and(|p| p.as_os_str() == secretport::report::STDOUT);
    if run_args.json && report_to_stdout {
        return Err(usage(anyhow::anyhow!(
            "--json and --report - both write to stdout; give --report a file"
        )));
    }
    let mut cfg = load(&run_args.config)?;
    ran.digest = Some(cfg.digest.clone());
    cfg.select(&run_args.jobs)
        .map_err(|e| usage(anyhow::anyhow!(e)))?;
    let rt = runtime()?;
    let shutdown = signals(&rt);
    let outcome = rt
        .block_on(run::run(
            &cfg,
            mode,
            run_args.report.as_deref(),
            run_args.json,
            shutdown,
            &Terminal,
        ))
        .map_err(|e| Fail(e.exit_code(), e.into()))?;
    ran.stats = Some(outcome.stats.clone());
    if matches!(mode, Mode::Plan { .. }) && !run_args.json && !report_to_stdout {
        print!("{}", run::table(&outcome.counts));
    }
    eprintln!("{}", outcome.summary);
    Ok(outcome.exit_code)
}

fn refs_cmd(
    scan: Option<RefsCommand>,
    input: RefsInput,
    format: RefsFormat,
    store: Option<String>,
    store_kind: StoreKindArg,
) -> Result<i32, Fail> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if let Some(RefsCommand::Scan { input, json, dirs }) = scan {
        let (Some(report), Some(config)) = (input.report, input.config) else {
            return Err(usage(anyhow::anyhow!(
                "refs scan needs --report and --config"
            )));
        };
        let outcome = refs::scan_tree(&report, &config, &dirs).map_err(usage)?;
        for e in &outcome.errors {
            eprintln!("warning: not scanned: {e}");
        }
        refs::render_scan(&outcome, json, &mut out)
            .and_then(|_| out.flush())
            .context("writing to stdout")
            .map_err(failed)?;
        eprintln!("{}", outcome.summary());
        return Ok(outcome.exit_code());
    }
    let (Some(report), Some(config)) = (input.report, input.config) else {
        return Err(usage(anyhow::anyhow!("refs needs --report and --config")));
    };
    let format = match (format, store) {
        (RefsFormat::Csv, _) => refs::Format::Csv,
        (RefsFormat::Json, _) => refs::Format::Json,
        (RefsFormat::ExternalSecrets, store) => refs::Format::ExternalSecrets {
            store: store.unwrap_or_default(),
            kind: match store_kind {
                StoreKindArg::SecretStore => secretport::refs::eso::StoreKind::SecretStore,
                StoreKindArg::ClusterSecretStore => {
                    secretport::refs::eso::StoreKind::ClusterSecretStore
                }
            },
        },
    };
    let mapped = refs::mapping(&report, &config).map_err(usage)?;
    refs::render(&mapped, &format, &mut out)
        .and_then(|_| out.flush())
        .context("writing to stdout")
        .map_err(failed)?;
    eprintln!("{}", refs::mapping_summary(&mapped));
    Ok(exit::OK)
}

fn rename_cmd(
    prefix: Option<String>,
    policy: Policy,
    input: Option<PathBuf>,
    overrides: Option<PathBuf>,
) -> Result<i32, Fail> {
    let prefix = prefix
        .map(|p| p.trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty());
    if let Some(p) = &prefix {
        secretport::naming::validate_prefix(p, policy)
            .map_err(|m| usage(anyhow::anyhow!("--prefix: {m}")))?;
    }
    let rules = NamingRules { prefix, policy };
    let overrides = match overrides {
        None => Overrides::default(),
        Some(p) => {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("--overrides: cannot read {}", p.display()))
                .map_err(usage)?;
            Overrides::parse(&text, &rules)
                .with_context(|| format!("--overrides {}", p.display()))
                .map_err(usage)?
        }
    };
    let bytes = match &input {
        Some(p) => std::fs::read(p)
            .with_context(|| format!("--input: cannot read {}", p.display()))
            .map_err(usage)?,
        None => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                .context("reading names from stdin")
                .map_err(failed)?;
            b
        }
    };
    let names = rename::read_names(&bytes).map_err(usage)?;
    let out = rename::run_rename(&names, &rules, &overrides).map_err(failed)?;
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::new(stdout.lock());
    rename::write_csv(&out, &mut lock)
        .and_then(|_| lock.flush())
        .context("writing CSV to stdout")
        .map_err(failed)?;
    eprintln!("{}", rename::summary_line(&out));
    Ok(exit::OK)
}
