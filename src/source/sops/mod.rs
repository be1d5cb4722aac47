//! The `sops` source: [SOPS](https://github.com/getsops/sops) files (YAML, JSON, dotenv) whose
//! data key is wrapped by AWS KMS, read as SOPS v3.11 writes them. [`format`] reads a file into
//! an ordered tree and its `sops` metadata; [`crypt`] decrypts values and verifies the MAC.
//!
//! # Behaviour
//!
//! - `files` globs (relative to the config file's folder) select the files. Listing reads and
//!   parses each one, but decrypts nothing: keys are plaintext in SOPS files. A file that is not
//!   SOPS-encrypted, not parseable, or names two sources with the same path, is a listing
//!   problem (a failed row; the listing is then incomplete, so nothing is pruned).
//! - Source path: the file's path relative to the config folder without its last extension
//!   (`secrets/app.yaml` -> `secrets/app`); with `split = "keys"` one secret per top-level key,
//!   `secrets/app/<key>`. `source_version` is the file's `sops.lastmodified`.
//! - Fetch: the data key is unwrapped with `kms:Decrypt` through the file's `sops.kms` entries,
//!   in order, until one works: `KeyId` = the entry's ARN, in the ARN's region, with its
//!   `context`, after assuming its `role` if it has one (STS AssumeRole on top of the source's
//!   credentials). One `Decrypt` per file, shared by its keys (single flight); throttling or an
//!   unreachable KMS is not cached, so a later fetch tries again. Then every value is decrypted
//!   and the MAC verified before any value is returned: a tampered value, unencrypted value or
//!   MAC fails that file only (with `split = "keys"`, the first key fetched verifies the whole
//!   file, the others then decrypt only their own value; a file that fails fails every key).
//!   Files keyed only for age, PGP, GCP KMS, Azure Key Vault or Vault transit fail with an error
//!   saying so: only AWS KMS recipients are supported.
//! - Values: `split = "file"`: the document as compact JSON, keys in file order, numbers and
//!   booleans as SOPS encrypted them (`5432`, `1.5`, `true`); `split = "keys"`: a string value
//!   as it is, anything else as that JSON.
//!
//! Identity: `sops:<the globs, or [source] instance> <source path>` (`source::instance`): the
//! same files run from another folder are the same source.
//!
//! Minimal IAM: `kms:Decrypt` on the files' keys (and `sts:AssumeRole` on a `role` they name).

pub(crate) mod crypt;
pub(crate) mod format;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::SharedCredentialsProvider;
use futures::future::BoxFuture;
use tokio::sync::OnceCell;
use zeroize::Zeroizing;

use self::format::{Document, Format};
use super::kms::call::{self, KmsFailure};
use super::open::SourceContext;
use super::{
    Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};
use crate::aws::client::ClientError;
use crate::config::{SopsConfig, SopsSplit};
use crate::identity::Scope;
use crate::limits::Limits;
use crate::retry::RetryPolicy;
use crate::secret::SecretValue;

/// A data key, or the definitive reason it cannot be had.
type KeyOutcome = Result<Arc<Zeroizing<Vec<u8>>>, SourceError>;

/// One parsed file.
struct File {
    path: PathBuf,
    /// Source path of the file (without extension).
    rel: String,
    doc: Document,
    key: OnceCell<KeyOutcome>,
    /// The MAC of the parsed file was verified (with `split = "keys"`, once per file).
    verified: AtomicBool,
}

/// SOPS files under a config folder.
pub struct SopsSource {
    dir: PathBuf,
    patterns: Vec<String>,
    instance: String,
    split: SopsSplit,
    base: aws_config::SdkConfig,
    clients: Mutex<HashMap<(String, Option<String>), aws_sdk_kms::Client>>,
    limits: Arc<Limits>,
    policy: RetryPolicy,
    /// By file source path.
    files: Mutex<HashMap<String, Arc<File>>>,
    /// Source path -> (file source path, top-level key) for `split = "keys"`.
    keys: Mutex<HashMap<String, (String, String)>>,
    kms_calls: AtomicU64,
}

impl fmt::Debug for SopsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SopsSource")
            .field("dir", &self.dir)
            .field("files", &self.patterns)
            .field("split", &self.split)
            .field("kms_calls", &self.kms_calls())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SopsSource {
    /// Prepares the source: KMS settings default to the target's (a key's region comes from its
    /// ARN).
    pub(crate) async fn open(c: &SopsConfig, cx: &SourceContext<'_>) -> Result<Self, ClientError> {
        let base = cx.sdk(&c.aws).await?;
        Ok(Self::new(c, base, cx.limits.clone(), cx.policy))
    }

    /// A source with the SDK settings `base`.
    pub fn new(
        c: &SopsConfig,
        base: aws_config::SdkConfig,
        limits: Arc<Limits>,
        policy: RetryPolicy,
    ) -> Self {
        SopsSource {
            dir: c.dir.clone(),
            patterns: c.files.clone(),
            instance: c.instance.clone(),
            split: c.split,
            base,
            clients: Mutex::new(HashMap::new()),
            limits,
            policy,
            files: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            kms_calls: AtomicU64::new(0),
        }
    }

    /// The identity's instance: the configured `instance`, else the file set (the globs,
    /// relative to the config folder; `source::instance`), never the folder's absolute path.
    pub(crate) fn instance(&self) -> String {
        self.instance.clone()
    }

    /// The configured subtree: SOPS files have none.
    pub(crate) fn subtree(&self) -> &str {
        ""
    }

    /// KMS requests sent so far (every attempt counts).
    pub fn kms_calls(&self) -> u64 {
        self.kms_calls.load(Ordering::Relaxed)
    }

    /// The files the globs match, sorted, each once.
    fn matched(&self) -> (Vec<PathBuf>, Vec<ListProblem>) {
        let mut files = Vec::new();
        let mut problems = Vec::new();
        let base = glob::Pattern::escape(&self.dir.display().to_string());
        for p in &self.patterns {
            let pattern = format!("{base}/{p}");
            match glob::glob(&pattern) {
                Ok(paths) => {
                    let before = files.len();
                    for entry in paths {
                        match entry {
                            Ok(path) if path.is_file() => files.push(path),
                            Ok(_) => {}
                            Err(e) => problems.push(ListProblem {
                                path: p.clone(),
                                line: None,
                                error: format!("cannot read {}: {}", e.path().display(), e.error()),
                            }),
                        }
                    }
                    if files.len() == before {
                        problems.push(ListProblem {
                            path: p.clone(),
                            line: None,
                            error: format!(
                                "no file matches the SOPS glob {p:?} in {}; check [source] files \
                                 (globs are relative to that folder)",
                                self.dir.display()
                            ),
                        });
                    }
                }
                Err(e) => problems.push(ListProblem {
                    path: p.clone(),
                    line: None,
                    error: format!("bad glob pattern: {e}"),
                }),
            }
        }
        files.sort();
        files.dedup();
        (files, problems)
    }

    /// Source path of a file: relative to the config folder, `/`-separated, without extension.
    fn rel_of(&self, path: &Path) -> Result<String, String> {
        let rel = path
            .strip_prefix(&self.dir)
            .map_err(|_| "outside the config folder".to_owned())?
            .with_extension("");
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        parts
            .map(|p| p.join("/"))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| "file name is not UTF-8".to_owned())
    }

    fn list_files(&self) -> Listing {
        let (paths, mut problems) = self.matched();
        let mut refs = Vec::new();
        let mut files: HashMap<String, Arc<File>> = HashMap::new();
        let mut keys = HashMap::new();
        for path in paths {
            let shown = path.display().to_string();
            let rel = match self.rel_of(&path) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(ListProblem {
                        path: shown,
                        line: None,
                        error: e,
                    });
                    continue;
                }
            };
            let problem = |error: String| ListProblem {
                path: rel.clone(),
                line: None,
                error,
            };
            if let Some(other) = files.get(&rel) {
                problems.push(problem(format!(
                    "{shown} has the same source path as {}; rename one",
                    other.path.display()
                )));
                continue;
            }
            let text = match std::fs::read(&path) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(_) => {
                        problems.push(problem(format!("{shown} is not UTF-8 text")));
                        continue;
                    }
                },
                Err(e) => {
                    problems.push(problem(format!("cannot read {shown}: {e}")));
                    continue;
                }
            };
            let doc = match format::parse(Format::detect(&path, &text), &text) {
                Ok(d) => d,
                Err(e) => {
                    problems.push(problem(format!("{shown}: {e}")));
                    continue;
                }
            };
            let version = Some(doc.meta.lastmodified.clone());
            match self.split {
                SopsSplit::File => {
                    refs.push(SourceRef::new(rel.clone()).with_version(version));
                }
                SopsSplit::Keys => {
                    for (k, _) in &doc.tree {
                        let p = format!("{rel}/{k}");
                        refs.push(SourceRef::new(p.clone()).with_version(version.clone()));
                        keys.insert(p, (rel.clone(), k.clone()));
                    }
                }
            }
            files.insert(
                rel.clone(),
                Arc::new(File {
                    path,
                    rel,
                    doc,
                    key: OnceCell::new(),
                    verified: AtomicBool::new(false),
                }),
            );
        }
        refs.sort_by(|a, b| a.path.cmp(&b.path));
        refs.dedup_by(|a, b| a.path == b.path);
        *lock(&self.files) = files;
        *lock(&self.keys) = keys;
        Listing { refs, problems }
    }

    /// The KMS client for `region`, as `role` when given (cached).
    async fn client(&self, region: &str, role: Option<&str>) -> aws_sdk_kms::Client {
        let id = (region.to_owned(), role.map(str::to_owned));
        if let Some(c) = lock(&self.clients).get(&id) {
            return c.clone();
        }
        let mut b = aws_sdk_kms::config::Builder::from(&self.base)
            .region(aws_sdk_kms::config::Region::new(region.to_owned()));
        if let Some(role) = role {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("secretport-sops")
                .configure(&self.base)
                .build()
                .await;
            b = b.credentials_provider(SharedCredentialsProvider::new(provider));
        }
        let client = aws_sdk_kms::Client::from_conf(b.build());
        lock(&self.clients).insert(id, client.clone());
        client
    }

    /// Unwraps the file's data key through its KMS recipients. `Err` = transient (not cached).
    async fn unwrap_key(&self, file: &File) -> Result<KeyOutcome, KmsFailure> {
        let meta = &file.doc.meta;
        let bad = |m: String| {
            Ok(Err(SourceError::new(
                SourceErrorKind::BadRecord,
                &file.rel,
                m,
            )))
        };
        if meta.kms.is_empty() {
            return bad(if meta.others.is_empty() {
                "no key recipients in sops metadata".into()
            } else {
                format!(
                    "the data key is wrapped only for {}; secretport unwraps SOPS data keys with \
                     AWS KMS (sops.kms) only: add a KMS recipient (sops updatekeys / \
                     sops rotate --add-kms <key ARN>)",
                    meta.others.join(", ")
                )
            });
        }
        let mut failures = Vec::new();
        let mut transient = None;
        let mut denied = false;
        for k in &meta.kms {
            let region = k
                .arn
                .split(':')
                .nth(3)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .or_else(|| self.base.region().map(|r| r.to_string()))
                .unwrap_or_default();
            let client = self.client(&region, k.role.as_deref()).await;
            match call::decrypt(
                &client,
                &self.limits,
                &self.policy,
                &self.kms_calls,
                &k.enc,
                &k.context,
                Some(&k.arn),
            )
            .await
            {
                Ok(key) if key.len() == 32 => return Ok(Ok(Arc::new(key))),
                Ok(key) => failures.push(format!(
                    "{}: the data key is {} bytes, SOPS keys are 32",
                    k.arn,
                    key.len()
                )),
                Err(f) => {
                    denied |= f.kind == SourceErrorKind::Denied;
                    failures.push(format!("{}: {}", k.arn, f.message));
                    if f.transient {
                        transient = Some(f);
                    }
                }
            }
        }
        if let Some(f) = transient {
            return Err(KmsFailure {
                message: failures.join("; "),
                ..f
            });
        }
        let kind = if denied {
            SourceErrorKind::Denied
        } else {
            SourceErrorKind::BadRecord
        };
        Ok(Err(SourceError::new(
            kind,
            &file.rel,
            format!(
                "no KMS recipient could unwrap the data key: {}",
                failures.join("; ")
            ),
        )))
    }

    async fn data_key(&self, file: &File) -> KeyOutcome {
        let outcome = file
            .key
            .get_or_try_init(|| self.unwrap_key(file))
            .await
            .map_err(|f| SourceError::new(f.kind, &file.rel, f.message))?;
        outcome.clone()
    }

    async fn fetch_value(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let (file_rel, top_key) = match self.split {
            SopsSplit::File => (r.path.clone(), None),
            SopsSplit::Keys => match lock(&self.keys).get(&r.path) {
                Some((f, k)) => (f.clone(), Some(k.clone())),
                None => (r.path.clone(), None),
            },
        };
        let file = lock(&self.files).get(&file_rel).cloned().ok_or_else(|| {
            SourceError::new(
                SourceErrorKind::NotFound,
                &r.path,
                "no such SOPS file or key",
            )
        })?;
        let key = self.data_key(&file).await.map_err(|mut e| {
            e.path = r.path.clone();
            e
        })?;
        let fail = |m: String| {
            SourceError::new(
                SourceErrorKind::BadRecord,
                &r.path,
                format!("{}: {m}", file.path.display()),
            )
        };
        let rules = crypt::Rules::of(&file.doc.meta).map_err(fail)?;
        let mut bytes = match &top_key {
            None => {
                let plain = crypt::decrypt_tree(&key, &file.doc.tree, &file.doc.meta, &rules)
                    .map_err(fail)?;
                let mut out = Zeroizing::new(Vec::with_capacity(4096));
                crypt::write_json(&plain, &mut out).map_err(fail)?;
                out
            }
            // The first key of a file verifies the whole file's MAC; the others then decrypt
            // only their own value.
            Some(k) if file.verified.load(Ordering::Acquire) => {
                let v = crypt::decrypt_key(&key, &file.doc.tree, k, &rules).map_err(fail)?;
                crypt::value_text(&v).map_err(|e| fail(format!("key {k}: {e}")))?
            }
            Some(k) => {
                let plain = crypt::decrypt_tree(&key, &file.doc.tree, &file.doc.meta, &rules)
                    .map_err(fail)?;
                file.verified.store(true, Ordering::Release);
                let crypt::Plain::Map(m) = &plain else {
                    return Err(fail("the document is not a mapping".into()));
                };
                let v = m
                    .iter()
                    .find(|(mk, _)| mk == k)
                    .map(|(_, v)| v)
                    .ok_or_else(|| fail(format!("key {k} is gone")))?;
                crypt::value_text(v).map_err(|e| fail(format!("key {k}: {e}")))?
            }
        };
        let text = String::from_utf8(std::mem::take(&mut *bytes))
            .map_err(|_| fail("the value is not UTF-8".into()))?;
        Ok(Fetched::Value {
            value: SecretValue::text(text),
            version: Some(file.doc.meta.lastmodified.clone()),
            metadata: BTreeMap::new(),
        })
    }
}

impl Source for SopsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Sops
    }

    fn scope(&self) -> Scope {
        Scope::new(SourceKind::Sops.as_str(), &self.instance(), self.subtree())
    }

    fn location(&self) -> String {
        format!(
            "files {} in {}",
            self.patterns.join(", "),
            self.dir.display()
        )
    }

    fn empty_advice(&self) -> String {
        match self.split {
            SopsSplit::File => "no file matched the SOPS globs; check [source] files".into(),
            SopsSplit::Keys => "the matched SOPS files hold no keys (split = \"keys\" reads one \
                 secret per top-level key); check [source] files and split"
                .into(),
        }
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move { Ok(self.list_files()) })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_value(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AwsAccess, LimitsConfig};

    #[test]
    fn source_paths_scope_and_identity() {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let s = SopsSource::new(
            &SopsConfig {
                dir: PathBuf::from("/srv/config"),
                files: vec!["secrets/*.yaml".into()],
                instance: "secrets/*.yaml".into(),
                split: SopsSplit::File,
                aws: AwsAccess::default(),
            },
            conf,
            Arc::new(Limits::new(&LimitsConfig::default())),
            RetryPolicy::new(1),
        );
        assert_eq!(
            s.rel_of(Path::new("/srv/config/secrets/app.enc.yaml"))
                .unwrap(),
            "secrets/app.enc"
        );
        assert!(s.rel_of(Path::new("/elsewhere/a.yaml")).is_err());
        assert_eq!(s.subtree(), "");
        assert_eq!(
            s.scope().identity("secrets/app").text(),
            "sops:secrets/=2A.yaml secrets/app"
        );
    }
}
