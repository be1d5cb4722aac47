//! The `kms` source: a JSON Lines export whose values are encrypted with AWS KMS, either
//! directly or with KMS-protected data keys (envelope encryption).
//!
//! # Format
//!
//! One secret per line; `path` is required, unknown fields are an error, binary fields are
//! standard base64 (with padding). Two record shapes:
//!
//! **Direct** (value ≤ 4 KiB, the KMS `Encrypt` limit):
//! ```json
//! {"path":"app/db","ciphertext":"<base64 CiphertextBlob>","encryption_context":{"app":"db"},"key_id":"arn:aws:kms:..."}
//! ```
//! The value is `kms:Decrypt(CiphertextBlob = ciphertext, EncryptionContext =
//! encryption_context, KeyId = key_id)`. `encryption_context` (an object of strings) is optional
//! (absent = none). `key_id` is optional; when given it pins the key: KMS refuses a ciphertext
//! that was encrypted under another key (key id, key ARN, alias name or alias ARN).
//!
//! **Envelope** (any size; records that share a data key cost one `kms:Decrypt` between them):
//! ```json
//! {"path":"app/db","encrypted_data_key":"<base64>","iv":"<base64, 12 bytes>","ciphertext":"<base64>","encryption_context":{"app":"db"},"key_id":"..."}
//! ```
//! Produce it like this (it is what `secretport kms-export --mode envelope` writes):
//! 1. `GenerateDataKey(KeyId, KeySpec = AES_256, EncryptionContext = C)` gives a 32-byte
//!    `Plaintext` data key `K` and its `CiphertextBlob`, written as `encrypted_data_key`. One data
//!    key may encrypt many records (each with its own IV); they must all carry the same
//!    `encryption_context` and `key_id`.
//! 2. `iv`: 12 random bytes, never reused with the same key.
//! 3. AAD, the GCM associated data: empty when `C` is absent or empty; otherwise `C` serialized
//!    as **compact JSON with keys sorted** by code point, i.e. what `serde_json` writes for a
//!    `BTreeMap<String, String>`, and what Python writes with
//!    `json.dumps(C, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`:
//!    `{"app":"db","env":"prod"}` (UTF-8, no spaces, only `"` `\` and control characters
//!    escaped).
//! 4. `ciphertext` = AES-256-GCM(key `K`, nonce `iv`, AAD, plaintext) with the 16-byte tag
//!    appended (the usual `ciphertext || tag` layout of most libraries, e.g. Python
//!    `cryptography`'s `AESGCM(K).encrypt(iv, plaintext, aad)`).
//! 5. Write `encryption_context` = `C` (omit it if empty) and `key_id` (optional).
//!
//! Reading reverses it: `kms:Decrypt(encrypted_data_key, EncryptionContext = C, KeyId)`, then
//! AES-256-GCM decryption with the same AAD. The context is thus checked twice: by KMS for the
//! data key and by GCM for each record, so a record cannot be moved under another context.
//!
//! The `path` itself is not authenticated: a record copied under another path still decrypts.
//! Where that matters, put the path into the encryption context (e.g. `{"path":"app/db"}`; for
//! envelope records that means one data key per record).
//!
//! Decrypted bytes that are valid UTF-8 become a `SecretString`, anything else a
//! `SecretBinary` (so a binary value that happens to be valid UTF-8 is imported as text). Values
//! of JSON object secrets are the JSON text itself.
//!
//! # Behaviour
//!
//! The file is read (a line at a time) and every record validated at [`KmsSource::open`]: shape,
//! base64, IV length (12), ciphertext at least as long as the tag. What is kept is an index
//! (path → byte offset, length and digest of the line, and the record's data key cell), not the
//! ciphertexts: a fetch reads its line again, refusing it when the file changed on disk since the
//! listing (see [`crate::source::file`]), so memory does not grow with the export's size. A bad
//! line (invalid UTF-8 included; a leading byte order mark is skipped) becomes a [`ListProblem`]
//! with its line number and the other lines go on. A decrypted value over AWS's 64 KiB fails its
//! record, naming the line. Values are decrypted only on [`Source::fetch`]. Data
//! keys are decrypted once per run and cached (zeroized when the source is dropped), keyed by
//! the encrypted data key bytes *together with* the encryption context and `key_id` (KMS only
//! releases a key for the right context, so a record with a wrong context must not be served
//! from the cache of a right one). Concurrent fetches that need the same data key wait for one
//! `Decrypt` (single flight, a `tokio::sync::OnceCell` per key). Definitive failures (wrong
//! context, denied) are cached too; throttling or an unreachable KMS (after the retry policy) is
//! not, so a later record tries again. Every KMS call goes through [`retry::call`] with
//! `Limits.kms`. Errors name the path and line, never a value or key byte.
//!
//! [`retry::call`]: crate::retry::call

pub(crate) mod call;
pub(crate) mod envelope;
pub(crate) mod record;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use self::call::KmsFailure;
use self::envelope::DataKey;
use self::record::{record_of, Record};
use super::export::{ExportFile, Indexed};
use super::{
    Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};
use crate::identity::Scope;
use crate::limits::Limits;
use crate::retry::RetryPolicy;
use crate::secret::{SecretValue, MAX_SECRET_BYTES};

/// The outcome of decrypting one data key that is final for the run.
type KeyOutcome = Result<Arc<DataKey>, KmsFailure>;
/// One data key's single-flight cell, shared by every record that uses it.
type KeySlot = Arc<OnceCell<KeyOutcome>>;

/// What identifies one data key decryption: the same encrypted key under another context or
/// pinned key is another KMS question.
#[derive(Hash, PartialEq, Eq)]
struct SlotKey {
    encrypted_data_key: Vec<u8>,
    aad: Vec<u8>,
    key_id: Option<String>,
}

/// What is kept of a valid record besides its place in the file: for envelope records, the
/// data key cell.
type Entry = Indexed<Option<KeySlot>>;

/// A KMS-encrypted export, validated and ready to decrypt.
pub struct KmsSource {
    file: PathBuf,
    /// The identity's instance (`source::instance`: the file relative to the config folder,
    /// or the configured name).
    instance: String,
    export: ExportFile,
    /// Valid records, sorted by path.
    entries: Vec<Entry>,
    /// Records rejected at open, by path (first problem of the path), so a fetch of one explains.
    rejected: HashMap<String, ListProblem>,
    problems: Vec<ListProblem>,
    slots: Vec<KeySlot>,
    client: aws_sdk_kms::Client,
    limits: Arc<Limits>,
    policy: RetryPolicy,
    kms_calls: AtomicU64,
}

impl fmt::Debug for KmsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsSource")
            .field("file", &self.file)
            .field("records", &self.entries.len())
            .field("problems", &self.problems.len())
            .field("data_keys", &self.slots.len())
            .field("data_keys_decrypted", &self.data_keys_decrypted())
            .field("kms_calls", &self.kms_calls())
            .finish_non_exhaustive()
    }
}

impl KmsSource {
    /// Reads and validates the export; its secrets' identities name `instance` (see
    /// `source::instance`). Only an unreadable file is an error; bad records (a line
    /// that is not valid UTF-8 included) end up in the listing's problems with their line
    /// numbers.
    pub fn open(
        file: &Path,
        instance: &str,
        client: aws_sdk_kms::Client,
        limits: Arc<Limits>,
        policy: RetryPolicy,
    ) -> Result<KmsSource, SourceError> {
        let mut slots: HashMap<SlotKey, KeySlot> = HashMap::new();
        let (export, entries, problems) = ExportFile::open(file, |fields| {
            Ok(match record_of(fields)? {
                Record::Envelope {
                    encrypted_data_key,
                    aad,
                    key_id,
                    ..
                } => Some(
                    slots
                        .entry(SlotKey {
                            encrypted_data_key,
                            aad,
                            key_id,
                        })
                        .or_default()
                        .clone(),
                ),
                Record::Direct { .. } => None,
            })
        })
        .map_err(|e| {
            SourceError::new(
                SourceErrorKind::Unavailable,
                file.display().to_string(),
                format!("cannot read export: {e}"),
            )
        })?;
        let mut rejected = HashMap::new();
        for p in &problems {
            rejected.entry(p.path.clone()).or_insert_with(|| p.clone());
        }
        Ok(KmsSource {
            file: file.to_owned(),
            instance: instance.to_owned(),
            export,
            entries,
            rejected,
            problems,
            slots: slots.into_values().collect(),
            client,
            limits,
            policy,
            kms_calls: AtomicU64::new(0),
        })
    }

    /// KMS requests sent so far (every attempt counts).
    pub fn kms_calls(&self) -> u64 {
        self.kms_calls.load(Ordering::Relaxed)
    }

    /// Distinct data keys (encrypted key + context + key id) among the valid envelope records.
    pub fn data_keys(&self) -> usize {
        self.slots.len()
    }

    /// Data keys decrypted (successfully) so far.
    pub fn data_keys_decrypted(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.get(), Some(Ok(_))))
            .count()
    }

    async fn data_key(&self, record: &Record, slot: &KeySlot) -> Result<Arc<DataKey>, KmsFailure> {
        let Record::Envelope {
            encrypted_data_key,
            context,
            key_id,
            ..
        } = record
        else {
            unreachable!("only envelope records have a key slot")
        };
        let outcome = slot
            .get_or_try_init(|| async {
                match call::decrypt(
                    &self.client,
                    &self.limits,
                    &self.policy,
                    &self.kms_calls,
                    encrypted_data_key,
                    context,
                    key_id.as_deref(),
                )
                .await
                {
                    Ok(plain) => {
                        Ok(DataKey::from_slice(&plain)
                            .map(Arc::new)
                            .map_err(|n| KmsFailure {
                                kind: SourceErrorKind::BadRecord,
                                failure: crate::aws::classify::Failure::Unknown,
                                message: format!(
                                    "the decrypted data key is {n} bytes; AES-256 needs {}",
                                    envelope::KEY_LEN
                                ),
                                transient: false,
                            }))
                    }
                    Err(f) if f.transient => Err(f),
                    Err(f) => Ok(Err(f)),
                }
            })
            .await?;
        outcome.clone()
    }

    async fn fetch_value(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let found = self
            .entries
            .binary_search_by(|e| e.path.as_str().cmp(&r.path));
        let Some(entry) = found.ok().map(|i| &self.entries[i]) else {
            return Err(match self.rejected.get(&r.path) {
                Some(p) => SourceError::new(SourceErrorKind::BadRecord, &r.path, p.error.clone())
                    .at_line(p.line),
                None => SourceError::new(
                    SourceErrorKind::NotFound,
                    &r.path,
                    format!("not in {}", self.file.display()),
                ),
            });
        };
        let fail = |kind, message: String| {
            SourceError::new(kind, &r.path, message).at_line(Some(entry.at.line))
        };
        let kms_fail = |f: KmsFailure| fail(f.kind, f.message);
        // the record as indexed, read again (refused if the file changed since)
        let record = self
            .export
            .with_record(&r.path, &entry.at, record_of)
            .map_err(|e| fail(SourceErrorKind::BadRecord, e))?;
        let value = match &record {
            Record::Direct {
                ciphertext,
                context,
                key_id,
            } => {
                let mut plain = call::decrypt(
                    &self.client,
                    &self.limits,
                    &self.policy,
                    &self.kms_calls,
                    ciphertext,
                    context,
                    key_id.as_deref(),
                )
                .await
                .map_err(kms_fail)?;
                SecretValue::from_bytes(std::mem::take(&mut *plain))
            }
            Record::Envelope {
                iv,
                ciphertext,
                aad,
                ..
            } => {
                let Some(slot) = entry.meta.as_ref() else {
                    // indexed as a direct record: the line changed (its digest would differ)
                    return Err(fail(
                        SourceErrorKind::BadRecord,
                        "the record changed since it was listed".into(),
                    ));
                };
                let key = self.data_key(&record, slot).await.map_err(kms_fail)?;
                let plain = envelope::open(&key, iv, ciphertext, aad).map_err(|_| {
                    fail(
                        SourceErrorKind::BadRecord,
                        "AES-256-GCM authentication failed: ciphertext, iv or \
                         encryption_context altered, or the data key is not this record's"
                            .into(),
                    )
                })?;
                SecretValue::from_bytes(plain)
            }
        };
        if value.len() > MAX_SECRET_BYTES {
            return Err(fail(
                SourceErrorKind::BadRecord,
                format!(
                    "decrypted value is {} bytes; AWS Secrets Manager allows at most \
                     {MAX_SECRET_BYTES}",
                    value.len()
                ),
            ));
        }
        Ok(Fetched::Value {
            value,
            version: None,
            metadata: BTreeMap::new(),
        })
    }
}

impl Source for KmsSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Kms
    }

    fn scope(&self) -> Scope {
        Scope::new(SourceKind::Kms.as_str(), &self.instance, "")
    }

    fn location(&self) -> String {
        format!("export file {}", self.file.display())
    }

    fn empty_advice(&self) -> String {
        "the KMS export file has no records (one JSON object per line, as secretport kms-export \
         writes them); check that the export finished and that [source] file names it"
            .into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(async move {
            Ok(Listing {
                refs: self
                    .entries
                    .iter()
                    .map(|e| {
                        let mut r = SourceRef::new(e.path.clone());
                        r.line = Some(e.at.line);
                        r
                    })
                    .collect(),
                problems: self.problems.clone(),
            })
        })
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_value(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitsConfig;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    fn client() -> aws_sdk_kms::Client {
        // Never called in these tests: everything below fails before reaching KMS.
        let conf = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    fn source(text: &str) -> (tempfile::NamedTempFile, KmsSource) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let s = KmsSource::open(
            f.path(),
            "kms.jsonl",
            client(),
            Arc::new(Limits::new(&LimitsConfig::default())),
            RetryPolicy::new(1),
        )
        .unwrap();
        (f, s)
    }

    #[tokio::test]
    async fn listing_problems_and_slots() {
        let iv = B64.encode([0u8; 12]);
        let ct = B64.encode([0u8; 20]);
        let line = |path: &str, edk: &str, ctx: &str| {
            format!(
                "{{\"path\":\"{path}\",\"encrypted_data_key\":\"{edk}\",\"iv\":\"{iv}\",\"ciphertext\":\"{ct}\"{ctx}}}\n"
            )
        };
        let text = [
            line("a", "AQ==", ""),
            line("b", "AQ==", ""),
            line("c", "AQ==", ",\"encryption_context\":{\"x\":\"y\"}"),
            line("d", "Ag==", ""),
            "{\"path\":\"e\",\"ciphertext\":\"AQID\"}\n".to_owned(),
            "{\"path\":\"f\",\"ciphertext\":\"%%\"}\n".to_owned(),
            format!("{{\"path\":\"g\",\"encrypted_data_key\":\"AQ==\",\"iv\":\"AAAA\",\"ciphertext\":\"{ct}\"}}\n"),
        ]
        .concat();
        let (_f, s) = source(&text);
        let l = s.list().await.unwrap();
        assert_eq!(
            l.refs.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(
            l.problems
                .iter()
                .map(|p| p.line.unwrap())
                .collect::<Vec<_>>(),
            [6, 7]
        );
        // a and b share one key; c (other context) and d (other key) do not
        assert_eq!(s.data_keys(), 3);
        let e = s.fetch(&SourceRef::new("g")).await.unwrap_err();
        assert_eq!((e.kind, e.line), (SourceErrorKind::BadRecord, Some(7)));
        assert!(e.message.contains("12 bytes"), "{e}");
        let e = s.fetch(&SourceRef::new("zz")).await.unwrap_err();
        assert_eq!(e.kind, SourceErrorKind::NotFound);
        assert_eq!(s.scope().identity("a/b").path(), "a/b");
        assert_eq!(s.scope().kind(), "kms");
        assert!(format!("{s:?}").contains("data_keys: 3"));
    }
}
