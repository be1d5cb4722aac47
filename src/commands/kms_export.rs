//! `secretport kms-export`: encrypts a plaintext export (the `file` format) into the `kms`
//! format, so KMS-encrypted stores can be produced (and tested) with secretport itself.
//!
//! The input is read with the `file` source, so every value (JSON objects included) is exactly
//! the bytes a `file` migration would store, and decrypting the output gives them back byte for
//! byte. Two modes:
//! - **direct**: each value is encrypted with `kms:Encrypt` (values must be 1..=4096 bytes, KMS's
//!   limit); many KMS calls, run `concurrency` at a time.
//! - **envelope**: a data key from `kms:GenerateDataKey` (AES_256) every `records_per_data_key`
//!   records, each value sealed with AES-256-GCM under a fresh random 12-byte IV, with the
//!   encryption context as associated data, exactly as [`crate::source::kms`] documents.
//!
//! Every record carries the encryption context given (if any) and, as `key_id`, the key ARN KMS
//! reported, which pins the key on decryption. The whole input is validated first: a bad line
//! (or a value too large for direct mode) fails the export with every such line listed, and
//! nothing is written. The output is written to a temporary file next to it and renamed into
//! place, so a failed export never leaves a partial file. Plaintext data keys are kept only in
//! zeroizing buffers and dropped as soon as their records are sealed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use futures::{StreamExt, TryStreamExt};
use zeroize::Zeroizing;

use crate::aws::client::{sdk_config, ClientError, Endpoint};
use crate::config::Credentials;
use crate::exit;
use crate::limits::{Limits, Op};
use crate::retry::RetryPolicy;
use crate::secret::SecretValue;
use crate::source::file::FileSource;
use crate::source::kms::call::{self, context_map, missing, KmsFailure};
use crate::source::kms::envelope::{self, DataKey};
use crate::source::kms::record;
use crate::source::{Fetched, ListProblem, Source, SourceErrorKind};

/// Largest plaintext `kms:Encrypt` accepts.
pub const MAX_DIRECT_BYTES: usize = crate::target::limits::KMS_ENCRYPT_MAX_BYTES;

/// How values are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportMode {
    /// `kms:Encrypt` per value (≤ 4 KiB).
    Direct,
    /// AES-256-GCM under KMS data keys.
    Envelope,
}

impl FromStr for ExportMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(ExportMode::Direct),
            "envelope" => Ok(ExportMode::Envelope),
            other => Err(format!(
                "{other:?} is not an export mode; expected \"direct\" or \"envelope\""
            )),
        }
    }
}

impl fmt::Display for ExportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExportMode::Direct => "direct",
            ExportMode::Envelope => "envelope",
        })
    }
}

/// What to encrypt with, and how.
#[derive(Debug, Clone)]
pub struct KmsExportOptions {
    /// KMS key: key id, key ARN, alias name (`alias/x`) or alias ARN.
    pub key_id: String,
    /// Direct or envelope.
    pub mode: ExportMode,
    /// Encryption context for every record (empty = none).
    pub context: BTreeMap<String, String>,
    /// Envelope mode: records sealed under one data key before a new one is generated (≥ 1).
    pub records_per_data_key: usize,
    /// Direct mode: `kms:Encrypt` calls in flight at once (≥ 1).
    pub concurrency: usize,
}

impl KmsExportOptions {
    /// Defaults: no context, 1,000 records per data key, 16 calls in flight.
    pub fn new(key_id: impl Into<String>, mode: ExportMode) -> Self {
        KmsExportOptions {
            key_id: key_id.into(),
            mode,
            context: BTreeMap::new(),
            records_per_data_key: 1000,
            concurrency: 16,
        }
    }
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// Records written.
    pub records: usize,
    /// The mode used.
    pub mode: ExportMode,
    /// Data keys generated (envelope mode).
    pub data_keys: usize,
    /// KMS requests sent (every attempt counts).
    pub kms_calls: u64,
    /// The key ARN KMS reported (written as `key_id`), when any record was written.
    pub key_arn: Option<String>,
    /// `(line, path)` of binary (`value_base64`) values whose bytes are valid UTF-8: the `kms`
    /// source cannot tell them from text and will import them as `SecretString`.
    pub binary_as_text: Vec<(usize, String)>,
}

impl ExportSummary {
    /// The one-line summary the command ends with.
    pub fn summary_line(&self) -> String {
        let mut s = format!(
            "kms-export: {} record(s) encrypted ({} mode",
            self.records, self.mode
        );
        if self.mode == ExportMode::Envelope {
            s.push_str(&format!(", {} data key(s)", self.data_keys));
        }
        s.push_str(&format!(", {} KMS call(s))", self.kms_calls));
        if !self.binary_as_text.is_empty() {
            s.push_str(&format!(
                "; warning: {} binary value(s) are valid UTF-8 and will be imported as text (lines {})",
                self.binary_as_text.len(),
                self.binary_as_text
                    .iter()
                    .map(|(l, _)| l.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        s
    }
}

/// Why an export failed. Never holds a value or key material.
#[derive(Debug, thiserror::Error)]
pub enum KmsExportError {
    /// Bad options (empty key id, zero records per data key...).
    #[error("kms-export: {0}")]
    Options(String),
    /// The input cannot be read.
    #[error("kms-export: input {path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Records that cannot be exported; nothing was written.
    #[error("kms-export: {} record(s) cannot be exported, nothing written: {}", .0.len(), describe_problems(.0))]
    Records(Vec<ListProblem>),
    /// A KMS call failed; nothing was written.
    #[error("kms-export: line {line}: {path}: {message}; nothing written", message = .failure.message)]
    Kms {
        /// Input line of the record being encrypted (the first record of the data key's batch
        /// for `GenerateDataKey`).
        line: usize,
        /// Its path.
        path: String,
        /// The failure.
        failure: KmsFailure,
    },
    /// The output cannot be written.
    #[error("kms-export: cannot write {path}: {source}")]
    Output {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn describe_problems(problems: &[ListProblem]) -> String {
    problems
        .iter()
        .map(|p| match p.line {
            Some(l) if p.path == format!("line {l}") => format!("line {l}: {}", p.error),
            Some(l) => format!("line {l}: {}: {}", p.path, p.error),
            None => format!("{}: {}", p.path, p.error),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl KmsExportError {
    /// The process exit code: 64 for bad options or an unreadable input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            KmsExportError::Options(_) | KmsExportError::Input { .. } => exit::USAGE,
            _ => exit::FAILED,
        }
    }
}

/// Parses `key=value` pairs (from repeated `--context` flags) into an encryption context.
pub fn parse_context<S: AsRef<str>>(pairs: &[S]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let pair = pair.as_ref();
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("--context {pair:?}: expected key=value"));
        };
        if k.is_empty() {
            return Err(format!("--context {pair:?}: empty key"));
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(format!("--context: key {k:?} given twice"));
        }
    }
    Ok(out)
}

/// A KMS client from the SDK's usual sources (`AWS_REGION`, `AWS_ENDPOINT_URL`, the default
/// credential chain), with `region` / `endpoint_url` overriding them, and the SDK's own retries
/// off (the retry policy owns retrying).
pub async fn kms_client(
    region: Option<&str>,
    endpoint_url: Option<&str>,
) -> Result<aws_sdk_kms::Client, ClientError> {
    let conf = sdk_config(&Endpoint {
        region,
        endpoint_url,
        credentials: &Credentials::Default,
        key: "credentials",
        timeout: std::time::Duration::from_secs(
            crate::config::LimitsConfig::default().timeout_seconds,
        ),
    })
    .await?;
    Ok(aws_sdk_kms::Client::new(&conf))
}

/// One input record.
struct Plain {
    line: usize,
    path: String,
    value: SecretValue,
}

/// Encrypts the plaintext export `input` into the `kms` export `output` (see the module docs).
pub async fn kms_export(
    input: &Path,
    output: &Path,
    client: aws_sdk_kms::Client,
    options: &KmsExportOptions,
    limits: Arc<Limits>,
    policy: RetryPolicy,
) -> Result<ExportSummary, KmsExportError> {
    if options.key_id.trim().is_empty() {
        return Err(KmsExportError::Options("the key id is empty".into()));
    }
    if options.records_per_data_key == 0 {
        return Err(KmsExportError::Options(
            "records per data key must be at least 1".into(),
        ));
    }
    let (records, binary_as_text) = read_input(input, options.mode).await?;
    let calls = AtomicU64::new(0);
    let ctx = Kms {
        client: &client,
        limits: &limits,
        policy: &policy,
        calls: &calls,
        options,
    };
    let (lines, data_keys, key_arn) = match options.mode {
        ExportMode::Direct => {
            let (lines, arn) = ctx.direct(&records).await?;
            (lines, 0, arn)
        }
        ExportMode::Envelope => ctx.envelope(&records).await?,
    };
    write_atomically(output, &lines).map_err(|source| KmsExportError::Output {
        path: output.to_owned(),
        source,
    })?;
    Ok(ExportSummary {
        records: lines.len(),
        mode: options.mode,
        data_keys,
        kms_calls: calls.load(Ordering::Relaxed),
        key_arn,
        binary_as_text,
    })
}

/// Reads and checks the whole input: every record in input order, or every problem.
async fn read_input(
    input: &Path,
    mode: ExportMode,
) -> Result<(Vec<Plain>, Vec<(usize, String)>), KmsExportError> {
    // the error's own path is `input`: only its message, or the path would show twice
    // read only (no identity is made from it): the instance is never used
    let source =
        FileSource::open(input, "kms-export-input").map_err(|e| KmsExportError::Input {
            path: input.to_owned(),
            message: e.message,
        })?;
    let listing = source.list().await.map_err(|e| KmsExportError::Input {
        path: input.to_owned(),
        message: e.to_string(),
    })?;
    let mut problems = listing.problems;
    let mut refs = listing.refs;
    refs.sort_by_key(|r| r.line);
    let mut records = Vec::with_capacity(refs.len());
    let mut binary_as_text = Vec::new();
    for r in refs {
        let line = r.line.unwrap_or(0);
        let problem = |error: String| ListProblem {
            path: r.path.clone(),
            line: r.line,
            error,
        };
        let value = match source.fetch(&r).await {
            Ok(Fetched::Value { value, .. }) => value,
            Ok(Fetched::Gone { reason, .. }) => {
                problems.push(problem(reason));
                continue;
            }
            Err(e) => {
                problems.push(problem(e.message));
                continue;
            }
        };
        if mode == ExportMode::Direct && (value.is_empty() || value.len() > MAX_DIRECT_BYTES) {
            problems.push(problem(format!(
                "value is {} bytes; direct mode (kms:Encrypt) takes 1..={MAX_DIRECT_BYTES} bytes: \
                 use envelope mode",
                value.len()
            )));
            continue;
        }
        if value.is_binary() && std::str::from_utf8(value.expose_bytes()).is_ok() {
            binary_as_text.push((line, r.path.clone()));
        }
        records.push(Plain {
            line,
            path: r.path,
            value,
        });
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(KmsExportError::Records(problems));
    }
    Ok((records, binary_as_text))
}

/// The KMS side of one export.
struct Kms<'a> {
    client: &'a aws_sdk_kms::Client,
    limits: &'a Limits,
    policy: &'a RetryPolicy,
    calls: &'a AtomicU64,
    options: &'a KmsExportOptions,
}

fn kms_error(rec: &Plain, failure: KmsFailure) -> KmsExportError {
    KmsExportError::Kms {
        line: rec.line,
        path: rec.path.clone(),
        failure,
    }
}

impl Kms<'_> {
    async fn encrypt_one(&self, rec: &Plain) -> Result<(String, String), KmsExportError> {
        let context = context_map(&self.options.context);
        let out = call::send(self.limits, self.policy, self.calls, Op::Encrypt, || {
            self.client
                .encrypt()
                .key_id(&self.options.key_id)
                .plaintext(Blob::new(rec.value.expose_bytes().to_vec()))
                .set_encryption_context(context.clone())
                .send()
        })
        .await
        .map_err(|mut f| {
            // the request carried the plaintext: an echoing proxy must not put it in the error
            f.message = crate::error_text::scrub(&f.message, &rec.value);
            kms_error(rec, f)
        })?;
        let blob = out
            .ciphertext_blob
            .ok_or_else(|| kms_error(rec, missing(Op::Encrypt, "a CiphertextBlob")))?;
        let arn = out.key_id.unwrap_or_else(|| self.options.key_id.clone());
        let line = record::direct_line(&rec.path, blob.as_ref(), &self.options.context, &arn);
        Ok((line, arn))
    }

    async fn direct(
        &self,
        records: &[Plain],
    ) -> Result<(Vec<String>, Option<String>), KmsExportError> {
        let done: Vec<(String, String)> = futures::stream::iter(records)
            .map(|rec| self.encrypt_one(rec))
            .buffered(self.options.concurrency.max(1))
            .try_collect()
            .await?;
        let arn = done.first().map(|(_, a)| a.clone());
        Ok((done.into_iter().map(|(l, _)| l).collect(), arn))
    }

    async fn data_key(&self, first: &Plain) -> Result<(DataKey, Vec<u8>, String), KmsExportError> {
        let context = context_map(&self.options.context);
        let out = call::send(
            self.limits,
            self.policy,
            self.calls,
            Op::GenerateDataKey,
            || {
                self.client
                    .generate_data_key()
                    .key_id(&self.options.key_id)
                    .key_spec(DataKeySpec::Aes256)
                    .set_encryption_context(context.clone())
                    .send()
            },
        )
        .await
        .map_err(|f| kms_error(first, f))?;
        let plain = Zeroizing::new(
            out.plaintext
                .ok_or_else(|| kms_error(first, missing(Op::GenerateDataKey, "a Plaintext")))?
                .into_inner(),
        );
        let key = DataKey::from_slice(&plain).map_err(|n| {
            kms_error(
                first,
                KmsFailure {
                    kind: SourceErrorKind::Other,
                    failure: crate::aws::classify::Failure::Unknown,
                    message: format!("kms:GenerateDataKey returned a {n}-byte key, not 32"),
                    transient: false,
                },
            )
        })?;
        let encrypted = out
            .ciphertext_blob
            .ok_or_else(|| kms_error(first, missing(Op::GenerateDataKey, "a CiphertextBlob")))?
            .into_inner();
        let arn = out.key_id.unwrap_or_else(|| self.options.key_id.clone());
        Ok((key, encrypted, arn))
    }

    async fn envelope(
        &self,
        records: &[Plain],
    ) -> Result<(Vec<String>, usize, Option<String>), KmsExportError> {
        let aad = envelope::associated_data(&self.options.context);
        let mut lines = Vec::with_capacity(records.len());
        let mut keys = 0;
        let mut arn = None;
        for batch in records.chunks(self.options.records_per_data_key) {
            let (key, encrypted, key_arn) = self.data_key(&batch[0]).await?;
            keys += 1;
            for rec in batch {
                let iv = envelope::random_iv();
                let ct = envelope::seal(&key, &iv, rec.value.expose_bytes(), &aad);
                lines.push(record::envelope_line(
                    &rec.path,
                    &encrypted,
                    &iv,
                    &ct,
                    &self.options.context,
                    &key_arn,
                ));
            }
            arn.get_or_insert(key_arn);
        }
        Ok((lines, keys, arn))
    }
}

/// Writes `lines` to a temporary file beside `output`, then renames it into place.
fn write_atomically(output: &Path, lines: &[String]) -> std::io::Result<()> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kms-export".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for l in lines {
            w.write_all(l.as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, output)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_context() {
        assert_eq!("direct".parse::<ExportMode>(), Ok(ExportMode::Direct));
        assert_eq!("envelope".parse::<ExportMode>(), Ok(ExportMode::Envelope));
        assert!("x".parse::<ExportMode>().is_err());
        assert_eq!(ExportMode::Envelope.to_string(), "envelope");
        let c = parse_context(&["app=db", "env=a=b"]).unwrap();
        assert_eq!(c["env"], "a=b");
        assert!(parse_context(&["novalue"]).is_err());
        assert!(parse_context(&["=x"]).is_err());
        assert!(parse_context(&["a=1", "a=2"]).is_err());
    }

    #[tokio::test]
    async fn bad_input_is_reported_per_line_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        let output = dir.path().join("out.jsonl");
        let big = "x".repeat(MAX_DIRECT_BYTES + 1);
        std::fs::write(
            &input,
            format!(
                "{{\"path\":\"ok\",\"value\":\"s3cr3t-planted\"}}\n\
                 {{\"path\":\"big\",\"value\":\"{big}\"}}\n\
                 not json\n\
                 {{\"path\":\"empty\",\"value\":\"\"}}\n"
            ),
        )
        .unwrap();
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let err = kms_export(
            &input,
            &output,
            aws_sdk_kms::Client::from_conf(conf),
            &KmsExportOptions::new("alias/x", ExportMode::Direct),
            Arc::new(Limits::new(&crate::config::LimitsConfig::default())),
            RetryPolicy::new(1),
        )
        .await
        .unwrap_err();
        let KmsExportError::Records(p) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            p.iter().map(|p| p.line.unwrap()).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        let msg = err.to_string();
        assert!(msg.contains("line 2: big: value is 4097 bytes"), "{msg}");
        assert!(!msg.contains("s3cr3t") && !msg.contains("xxxx"), "{msg}");
        assert_eq!(err.exit_code(), exit::FAILED);
        assert!(!output.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
