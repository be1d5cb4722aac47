//! The `credstash` source: a [credstash](https://github.com/fugue/credstash) DynamoDB table
//! (credstash 1.x, `credstash.py`'s `seal_aes_ctr_legacy` / `open_aes_ctr_legacy`).
//!
//! # Format
//!
//! One DynamoDB item per name and version, hash key `name` (S), range key `version` (S, the
//! version number left-padded with zeros to 19 digits, so string order is numeric order), and:
//! - `key` (S): base64 of the KMS `CiphertextBlob` of a 64-byte data key
//!   (`GenerateDataKey(NumberOfBytes = 64, EncryptionContext = context)`);
//! - `contents` (S): base64 of the ciphertext;
//! - `hmac` (B or S: credstash ≥ 1.13 writes the *hex text* of the HMAC as bytes, older versions
//!   as a string): the HMAC of the ciphertext;
//! - `digest` (S, optional, default `SHA256`): `SHA`, `SHA224`, `SHA256`, `SHA384`, `SHA512` or
//!   `MD5`, the hash of that HMAC.
//!
//! The data key's first 32 bytes are the AES-256 key, the last 32 the HMAC key. The value is
//! AES-256-CTR with the fixed initial counter block `0x00…01` (credstash's `LEGACY_NONCE`, a
//! 128-bit big-endian counter; safe because every item has its own data key), plaintext UTF-8.
//!
//! # Behaviour
//!
//! [`Source::list`] scans the table (paginated, under `[limits] dynamodb_per_second`, projected
//! to the attributes above) and keeps the highest version of each name, highest as DynamoDB
//! orders the range key (byte order of the string), which is what `credstash get` returns. The
//! scan holds only ciphertext. A latest item that cannot be read (missing attribute, bad base64,
//! unknown digest) is a listing problem for its name: an older version is never migrated in its
//! place. [`Source::fetch`] unwraps the item's data key with one `kms:Decrypt` (the configured
//! `context`, under `kms_per_second`, through [`call::decrypt`]), verifies the HMAC in constant
//! time *before* a byte is decrypted, then decrypts. A wrong context, an unusable key or a bad
//! HMAC fails that name only. Data keys are zeroized after use; nothing is cached (every item
//! has its own key, so a cache would only hold key material longer).
//!
//! Identity: `credstash:<region>/<table> <name>`; the source path is the name.
//!
//! Minimal IAM: `dynamodb:Scan` on the table, `kms:Decrypt` on the key (with the context).
//!
//! [`call::decrypt`]: super::kms::call::decrypt

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aes::cipher::{KeyIvInit, StreamCipher};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use futures::future::BoxFuture;
use hmac::{KeyInit, Mac};
use zeroize::Zeroizing;

use super::kms::call;
use super::open::SourceContext;
use super::{
    aws_call, Fetched, ListProblem, Listing, Source, SourceError, SourceErrorKind, SourceKind,
    SourceRef,
};
use crate::aws::client::ClientError;
use crate::config::CredstashConfig;
use crate::identity::Scope;
use crate::limits::{Limits, Op};
use crate::retry::{self, RetryPolicy};
use crate::secret::SecretValue;

/// credstash's fixed initial counter block (`LEGACY_NONCE`).
const NONCE: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Bytes of a credstash data key: AES-256 key + HMAC key.
const DATA_KEY_LEN: usize = 64;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// The HMAC digests credstash offers (`--digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    /// `SHA` (SHA-1).
    Sha1,
    /// `SHA224`.
    Sha224,
    /// `SHA256` (the default).
    Sha256,
    /// `SHA384`.
    Sha384,
    /// `SHA512`.
    Sha512,
    /// `MD5`.
    Md5,
}

impl Digest {
    /// The digest credstash names `name`.
    pub(crate) fn from_name(name: &str) -> Option<Digest> {
        Some(match name {
            "SHA" => Digest::Sha1,
            "SHA224" => Digest::Sha224,
            "SHA256" => Digest::Sha256,
            "SHA384" => Digest::Sha384,
            "SHA512" => Digest::Sha512,
            "MD5" => Digest::Md5,
            _ => return None,
        })
    }

    /// credstash's name of the digest.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Digest::Sha1 => "SHA",
            Digest::Sha224 => "SHA224",
            Digest::Sha256 => "SHA256",
            Digest::Sha384 => "SHA384",
            Digest::Sha512 => "SHA512",
            Digest::Md5 => "MD5",
        }
    }

    /// True when the HMAC of `data` under `key` equals `expected` (constant time).
    pub(crate) fn verify(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        fn check<M: Mac + KeyInit>(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.verify_slice(expected).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            Digest::Sha1 => check::<hmac::Hmac<sha1::Sha1>>(key, data, expected),
            Digest::Sha224 => check::<hmac::Hmac<sha2::Sha224>>(key, data, expected),
            Digest::Sha256 => check::<hmac::Hmac<sha2::Sha256>>(key, data, expected),
            Digest::Sha384 => check::<hmac::Hmac<sha2::Sha384>>(key, data, expected),
            Digest::Sha512 => check::<hmac::Hmac<sha2::Sha512>>(key, data, expected),
            Digest::Md5 => check::<hmac::Hmac<md5::Md5>>(key, data, expected),
        }
    }
}

/// The latest version of one name, as stored (ciphertext only).
#[derive(Clone)]
struct Item {
    version: String,
    key: Vec<u8>,
    contents: Vec<u8>,
    hmac: Vec<u8>,
    digest: Digest,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("version", &self.version)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// What one scanned item gave: a readable item or why not.
type Scanned = Result<Item, String>;

/// A credstash table.
pub struct CredstashSource {
    table: String,
    region: String,
    context: BTreeMap<String, String>,
    dynamodb: aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    limits: Arc<Limits>,
    policy: RetryPolicy,
    items: Mutex<HashMap<String, Item>>,
    kms_calls: AtomicU64,
    scan_calls: AtomicU64,
}

impl fmt::Debug for CredstashSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredstashSource")
            .field("table", &self.table)
            .field("region", &self.region)
            .field("context", &self.context)
            .field("kms_calls", &self.kms_calls())
            .field("scan_calls", &self.scan_calls())
            .finish_non_exhaustive()
    }
}

fn attr_string(item: &HashMap<String, AttributeValue>, name: &str) -> Result<String, String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        Some(_) => Err(format!("attribute {name} is not a string")),
        None => Err(format!("attribute {name} is missing")),
    }
}

/// Parses one scanned item (name and version already taken).
fn parse_item(item: &HashMap<String, AttributeValue>, version: String) -> Scanned {
    let b64 = |name: &str| -> Result<Vec<u8>, String> {
        let text = attr_string(item, name)?;
        B64.decode(text.trim())
            .map_err(|e| format!("attribute {name} is not base64: {e}"))
    };
    let key = b64("key")?;
    let contents = b64("contents")?;
    let hmac_text: Vec<u8> = match item.get("hmac") {
        Some(AttributeValue::B(b)) => b.as_ref().to_vec(),
        Some(AttributeValue::S(s)) => s.as_bytes().to_vec(),
        Some(_) => return Err("attribute hmac is neither binary nor a string".into()),
        None => return Err("attribute hmac is missing".into()),
    };
    let hmac = std::str::from_utf8(&hmac_text)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .ok_or_else(|| "attribute hmac is not hexadecimal".to_owned())?;
    let digest = match item.get("digest") {
        None => Digest::Sha256,
        Some(AttributeValue::S(d)) => Digest::from_name(d).ok_or_else(|| {
            format!("digest {d:?} is not one credstash offers (SHA, SHA224, SHA256, SHA384, SHA512, MD5)")
        })?,
        Some(_) => return Err("attribute digest is not a string".into()),
    };
    Ok(Item {
        version,
        key,
        contents,
        hmac,
        digest,
    })
}

impl CredstashSource {
    /// Connects to the table of `c`: region, endpoint and credentials default to the target's.
    pub(crate) async fn open(
        c: &CredstashConfig,
        cx: &SourceContext<'_>,
    ) -> Result<Self, ClientError> {
        let conf = cx.sdk(&c.aws).await?;
        let region = conf
            .region()
            .map(|r| r.to_string())
            .ok_or(ClientError::NoRegion)?;
        Ok(Self::new(
            c.table.clone(),
            region,
            c.context.clone(),
            aws_sdk_dynamodb::Client::new(&conf),
            aws_sdk_kms::Client::new(&conf),
            cx.limits.clone(),
            cx.policy,
        ))
    }

    /// A source reading `table` in `region` (for the identity) with these clients.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: String,
        region: String,
        context: BTreeMap<String, String>,
        dynamodb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        limits: Arc<Limits>,
        policy: RetryPolicy,
    ) -> Self {
        CredstashSource {
            table,
            region,
            context,
            dynamodb,
            kms,
            limits,
            policy,
            items: Mutex::new(HashMap::new()),
            kms_calls: AtomicU64::new(0),
            scan_calls: AtomicU64::new(0),
        }
    }

    /// `<region>/<table>`: which table this is.
    pub(crate) fn instance(&self) -> String {
        format!("{}/{}", self.region, self.table)
    }

    /// The configured subtree: credstash has none.
    pub(crate) fn subtree(&self) -> &str {
        ""
    }

    /// KMS requests sent so far (every attempt counts).
    pub fn kms_calls(&self) -> u64 {
        self.kms_calls.load(Ordering::Relaxed)
    }

    /// DynamoDB Scan requests sent so far (every attempt counts).
    pub fn scan_calls(&self) -> u64 {
        self.scan_calls.load(Ordering::Relaxed)
    }

    async fn scan(&self) -> Result<Listing, SourceError> {
        // Per name: the highest version seen and what it gave.
        let mut latest: BTreeMap<String, (String, Scanned)> = BTreeMap::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let result = retry::call_op(
                &self.limits,
                &self.policy,
                &self.scan_calls,
                Op::Scan,
                || {
                    self.dynamodb
                        .scan()
                        .table_name(&self.table)
                        .projection_expression("#n, #v, #k, contents, hmac, digest")
                        .expression_attribute_names("#n", "name")
                        .expression_attribute_names("#v", "version")
                        .expression_attribute_names("#k", "key")
                        .set_exclusive_start_key(start.clone())
                        .send()
                },
            )
            .await;
            let page = result.map_err(|e| {
                let mut err = aws_call::error(Op::Scan, "", &e);
                err.message = scan_failure(&self.table, &self.region, err.kind, &err.message);
                err
            })?;
            for item in page.items() {
                let (Ok(name), Ok(version)) =
                    (attr_string(item, "name"), attr_string(item, "version"))
                else {
                    // Not a credstash item (no string name/version): nothing to attribute it to.
                    continue;
                };
                let newer = latest.get(&name).is_none_or(|(v, _)| version > *v);
                if newer {
                    let parsed = parse_item(item, version.clone());
                    latest.insert(name, (version, parsed));
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        let mut listing = Listing::default();
        let mut items = HashMap::with_capacity(latest.len());
        for (name, (version, scanned)) in latest {
            match scanned {
                Ok(item) => {
                    let mut r = SourceRef::new(name.clone());
                    r.version = Some(version_label(&version).into());
                    listing.refs.push(r);
                    items.insert(name, item);
                }
                Err(why) => listing.problems.push(ListProblem {
                    path: name,
                    line: None,
                    error: format!(
                        "latest version {} cannot be read: {why}",
                        version_label(&version)
                    ),
                }),
            }
        }
        *self.items.lock().unwrap_or_else(|p| p.into_inner()) = items;
        Ok(listing)
    }

    async fn fetch_value(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let item = self
            .items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.path)
            .cloned()
            .ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::NotFound,
                    &r.path,
                    format!("not in table {}", self.table),
                )
            })?;
        let version = version_label(&item.version);
        let fail = |kind, message: String| {
            SourceError::new(kind, &r.path, format!("version {version}: {message}"))
        };
        let key = call::decrypt(
            &self.kms,
            &self.limits,
            &self.policy,
            &self.kms_calls,
            &item.key,
            &self.context,
            None,
        )
        .await
        .map_err(|f| {
            let hint = if f.failure == crate::aws::classify::Failure::BadCiphertext {
                " (is [source] context the one used at `credstash put`?)"
            } else {
                ""
            };
            fail(f.kind, format!("{}{hint}", f.message))
        })?;
        let plain = open(&key, &item).map_err(|m| fail(SourceErrorKind::BadRecord, m))?;
        Ok(Fetched::Value {
            value: plain,
            version: Some(version),
            metadata: BTreeMap::new(),
        })
    }
}

/// The version as credstash users know it (`3`, not `0000000000000000003`); non-numeric
/// versions are shown as stored.
fn version_label(v: &str) -> String {
    let t = v.trim_start_matches('0');
    if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() {
        if t.is_empty() {
            "0".into()
        } else {
            t.into()
        }
    } else {
        v.to_owned()
    }
}

/// Verifies the HMAC, then decrypts (`open_aes_ctr_legacy`). Errors never hold key or value
/// bytes.
fn open(data_key: &Zeroizing<Vec<u8>>, item: &Item) -> Result<SecretValue, String> {
    if data_key.len() != DATA_KEY_LEN {
        return Err(format!(
            "the decrypted data key is {} bytes; credstash data keys are {DATA_KEY_LEN}",
            data_key.len()
        ));
    }
    let (aes_key, hmac_key) = data_key.split_at(DATA_KEY_LEN / 2);
    if !item.digest.verify(hmac_key, &item.contents, &item.hmac) {
        return Err(format!(
            "HMAC ({}) of the ciphertext does not match: contents or hmac altered, or the data \
             key is not this item's; nothing was decrypted",
            item.digest.name()
        ));
    }
    let mut buf = Zeroizing::new(item.contents.clone());
    let mut cipher = Aes256Ctr::new_from_slices(aes_key, &NONCE)
        .map_err(|_| "cannot initialise AES-256-CTR".to_owned())?;
    cipher.apply_keystream(&mut buf);
    let text = String::from_utf8(std::mem::take(&mut *buf))
        .map_err(|_| "the decrypted value is not UTF-8 text".to_owned())?;
    Ok(SecretValue::text(text))
}

/// The message of a failed `Scan` of the whole table: what to check for the usual causes (a
/// table that does not exist there, a caller without `dynamodb:Scan`), then AWS's words.
fn scan_failure(table: &str, region: &str, kind: SourceErrorKind, detail: &str) -> String {
    match kind {
        SourceErrorKind::NotFound => format!(
            "credstash table {table} does not exist in {region}; check [source] table (credstash's \
             -t, default credential-store) and region ({detail})"
        ),
        SourceErrorKind::Denied => format!(
            "credstash table {table} in {region}: reading it was denied; the caller needs \
             dynamodb:Scan on the table ({detail})"
        ),
        _ => format!("credstash table {table} in {region}: {detail}"),
    }
}

impl Source for CredstashSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Credstash
    }

    fn scope(&self) -> Scope {
        Scope::new(
            SourceKind::Credstash.as_str(),
            &self.instance(),
            self.subtree(),
        )
    }

    fn location(&self) -> String {
        format!("credstash table {} in {}", self.table, self.region)
    }

    fn empty_advice(&self) -> String {
        "the credstash table is empty; check [source] table (credstash's -t, default \
         credential-store) and region"
            .into()
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(self.scan())
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_value(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_scan_names_the_table_and_what_to_check() {
        let table: &[(SourceErrorKind, &str)] = &[
            (
                SourceErrorKind::NotFound,
                "credstash table t does not exist in eu-west-1; check [source] table (credstash's -t, default credential-store) and region (AWS said)",
            ),
            (
                SourceErrorKind::Denied,
                "credstash table t in eu-west-1: reading it was denied; the caller needs dynamodb:Scan on the table (AWS said)",
            ),
            (
                SourceErrorKind::Unavailable,
                "credstash table t in eu-west-1: AWS said",
            ),
        ];
        for (kind, want) in table {
            assert_eq!(scan_failure("t", "eu-west-1", *kind, "AWS said"), *want);
        }
    }

    fn seal(plain: &[u8], key: &[u8; 64]) -> (Vec<u8>, Vec<u8>) {
        let mut buf = plain.to_vec();
        let mut c = Aes256Ctr::new_from_slices(&key[..32], &NONCE).unwrap();
        c.apply_keystream(&mut buf);
        let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key[32..]).unwrap();
        m.update(&buf);
        (buf, m.finalize().into_bytes().to_vec())
    }

    #[test]
    fn hmac_checked_before_decrypting() {
        let key = [7u8; 64];
        let (contents, hmac) = seal("héllo".as_bytes(), &key);
        let mut item = Item {
            version: "0000000000000000001".into(),
            key: vec![],
            contents,
            hmac,
            digest: Digest::Sha256,
        };
        let k = Zeroizing::new(key.to_vec());
        assert_eq!(open(&k, &item).unwrap().expose_str(), Some("héllo"));
        item.contents[0] ^= 1;
        let e = open(&k, &item).unwrap_err();
        assert!(
            e.contains("HMAC (SHA256)") && e.contains("does not match"),
            "{e}"
        );
        item.contents[0] ^= 1;
        item.digest = Digest::Sha512;
        assert!(open(&k, &item).is_err());
        assert!(open(&Zeroizing::new(vec![0; 32]), &item)
            .unwrap_err()
            .contains("32 bytes"));
    }

    #[test]
    fn scope_and_identity() {
        let conf = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let s = CredstashSource::new(
            "credential-store".into(),
            "eu-west-1".into(),
            BTreeMap::new(),
            aws_sdk_dynamodb::Client::new(&conf),
            aws_sdk_kms::Client::new(&conf),
            Arc::new(Limits::new(&crate::config::LimitsConfig::default())),
            RetryPolicy::new(1),
        );
        assert_eq!(s.instance(), "eu-west-1/credential-store");
        assert_eq!(s.subtree(), "");
        assert_eq!(
            s.scope().identity("app.db").text(),
            "credstash:eu-west-1/credential-store app.db"
        );
    }

    #[test]
    fn versions_and_digests() {
        assert_eq!(version_label("0000000000000000012"), "12");
        assert_eq!(version_label("0000000000000000000"), "0");
        assert_eq!(version_label("v2"), "v2");
        assert_eq!(Digest::from_name("SHA"), Some(Digest::Sha1));
        assert_eq!(Digest::from_name("MD5"), Some(Digest::Md5));
        assert_eq!(Digest::from_name("WHIRLPOOL"), None);
    }

    #[test]
    fn item_parsing_reports_what_is_wrong() {
        let mut m = HashMap::new();
        m.insert("key".into(), AttributeValue::S("AAAA".into()));
        m.insert("contents".into(), AttributeValue::S("AAAA".into()));
        m.insert(
            "hmac".into(),
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(b"00ff".to_vec())),
        );
        let item = parse_item(&m, "1".into()).unwrap();
        assert_eq!(item.hmac, vec![0, 255]);
        assert_eq!(item.digest, Digest::Sha256);
        m.insert("digest".into(), AttributeValue::S("RIPEMD".into()));
        assert!(parse_item(&m, "1".into()).unwrap_err().contains("RIPEMD"));
        m.remove("digest");
        m.insert("contents".into(), AttributeValue::S("%%".into()));
        assert!(parse_item(&m, "1".into()).unwrap_err().contains("contents"));
    }
}
