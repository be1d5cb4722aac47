//! The `ssm` source: AWS Systems Manager Parameter Store, one subtree (`path`, recursive).
//!
//! # Why values are read while listing
//!
//! `GetParametersByPath` returns up to 10 parameters per call *with* their values (decrypted
//! with `WithDecryption = true`), while reading values one by one costs one `GetParameter` per
//! parameter. Both draw on the same low, account-wide SSM throughput quota (40 requests/s by
//! default, shared with every production reader of the account), so listing without values and
//! fetching each one would cost 11 calls per 10 parameters instead of 1: 2,000 parameters take
//! 5 s of quota this way and 55 s the other way. So the listing decrypts, and each value is kept
//! only inside a [`SecretValue`] (redacted, zeroized on drop) in this source until the executor
//! fetches it; the fetch *takes* it out, so it is held no longer than the run needs it. A value
//! fetched a second time (or never listed) is read again with `GetParameter`. `plan` therefore
//! decrypts too, as `ssm get-parameters-by-path --with-decryption` would; the values never
//! leave the process. Only `rename --config` ([`Source::list_names`]) lists without
//! decryption: it needs names, not values.
//!
//! # Behaviour
//!
//! - Listing: `GetParametersByPath(Path, Recursive, WithDecryption, MaxResults = 10,
//!   ParameterFilters = [Type Equals <types>])`, page by page, every call under
//!   `[limits] ssm_per_second` with the AIMD limiter and the retry policy.
//! - A parameter whose KMS key the caller may not use makes AWS refuse the *whole* page that
//!   holds it. That page is then listed again without decryption and its `SecureString`s read
//!   one by one (`GetParameter`); the one that still fails is that parameter's error, naming the
//!   parameter and its key (`DescribeParameters`), and every other parameter goes on.
//! - Source path: the parameter name relative to `path`, without the leading `/`; version: the
//!   parameter's version. Values: `String` and `SecureString` as stored, `StringList` as its
//!   comma-separated text.
//! - `copy_tags = true`: one `ListTagsForResource` per parameter, at fetch (only then: it is one
//!   call per parameter), copied into the secret's tags.
//!
//! Identity: `ssm:<region>[@<endpoint>] <name without leading />`.
//!
//! Minimal IAM: `ssm:GetParametersByPath` on `arn:aws:ssm:<region>:<account>:parameter/<path>*`
//! (plus `ssm:GetParameter` and `ssm:DescribeParameters` for the per-parameter fallback, and
//! `ssm:ListTagsForResource` with `copy_tags`), `kms:Decrypt` on the parameters' keys
//! (`alias/aws/ssm` needs nothing extra for a principal of the same account).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::types::{Parameter, ParameterStringFilter, ParameterType, ResourceTypeForTagging};
use futures::future::BoxFuture;

use super::kms::source_sdk_config;
use super::{aws_call, Fetched, Listing, Source, SourceError, SourceErrorKind, SourceRef};
use crate::aws::client::ClientError;
use crate::config::{SsmConfig, TargetConfig};
use crate::identity::Scope;
use crate::limits::Limits;
use crate::retry::{self, Class, Classify, RetryPolicy};
use crate::secret::SecretValue;

/// `GetParametersByPath`'s largest page.
const PAGE: i32 = 10;

/// What the listing learnt about one parameter.
struct Entry {
    /// Full parameter name.
    name: String,
    /// The value read while listing (taken by the first fetch), or why it could not be read.
    value: Option<Result<SecretValue, SourceError>>,
    version: Option<String>,
}

/// A Parameter Store subtree.
pub struct SsmSource {
    /// `/prod` (no trailing slash; `/` for everything).
    path: String,
    types: Vec<String>,
    copy_tags: bool,
    region: String,
    endpoint: Option<String>,
    client: aws_sdk_ssm::Client,
    limits: Arc<Limits>,
    policy: RetryPolicy,
    entries: Mutex<HashMap<String, Entry>>,
    calls: AtomicU64,
}

impl fmt::Debug for SsmSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SsmSource")
            .field("path", &self.path)
            .field("types", &self.types)
            .field("instance", &self.instance())
            .field("ssm_calls", &self.ssm_calls())
            .finish_non_exhaustive()
    }
}

impl SsmSource {
    /// Connects: region, endpoint and credentials default to the target's.
    pub async fn open(
        c: &SsmConfig,
        target: &TargetConfig,
        limits: Arc<Limits>,
        policy: RetryPolicy,
        timeout: std::time::Duration,
    ) -> Result<Self, ClientError> {
        let conf = source_sdk_config(&c.aws, target, timeout).await?;
        let region = conf
            .region()
            .map(|r| r.to_string())
            .ok_or(ClientError::NoRegion)?;
        let endpoint = c
            .aws
            .endpoint_url
            .clone()
            .or_else(|| target.endpoint_url.clone());
        Ok(Self::new(
            c,
            region,
            endpoint,
            aws_sdk_ssm::Client::new(&conf),
            limits,
            policy,
        ))
    }

    /// A source over `client`.
    pub fn new(
        c: &SsmConfig,
        region: String,
        endpoint: Option<String>,
        client: aws_sdk_ssm::Client,
        limits: Arc<Limits>,
        policy: RetryPolicy,
    ) -> Self {
        SsmSource {
            path: c.path.clone(),
            types: c.types.clone(),
            copy_tags: c.copy_tags,
            region,
            endpoint,
            client,
            limits,
            policy,
            entries: Mutex::new(HashMap::new()),
            calls: AtomicU64::new(0),
        }
    }

    /// `<region>` or `<region>@<endpoint>` when an endpoint is configured.
    pub fn instance(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{}@{e}", self.region),
            None => self.region.clone(),
        }
    }

    /// The configured path without slashes (`prod/app`; empty for the whole store).
    pub fn subtree(&self) -> &str {
        self.path.trim_matches('/')
    }

    /// SSM requests sent so far (every attempt counts).
    pub fn ssm_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `name` relative to the configured path, without the leading `/`; `None` outside it.
    fn relative(&self, name: &str) -> Option<String> {
        let rest = if self.path == "/" {
            name.strip_prefix('/')?
        } else {
            name.strip_prefix(&self.path)?.strip_prefix('/')?
        };
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    /// The full parameter name of a source path.
    fn full_name(&self, rel: &str) -> String {
        if self.path == "/" {
            format!("/{rel}")
        } else {
            format!("{}/{rel}", self.path)
        }
    }

    fn type_filter(&self) -> ParameterStringFilter {
        ParameterStringFilter::builder()
            .key("Type")
            .option("Equals")
            .set_values(Some(self.types.clone()))
            .build()
            .unwrap_or_else(|_| unreachable!("key is set"))
    }

    async fn page(
        &self,
        token: Option<String>,
        decrypt: bool,
    ) -> Result<
        aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput,
        aws_smithy_runtime_api::client::result::SdkError<
            aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathError,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    > {
        let filter = self.type_filter();
        let attempted = retry::call(&self.limits.ssm, &self.policy, || {
            self.client
                .get_parameters_by_path()
                .path(&self.path)
                .recursive(true)
                .with_decryption(decrypt)
                .max_results(PAGE)
                .parameter_filters(filter.clone())
                .set_next_token(token.clone())
                .send()
        })
        .await;
        self.calls
            .fetch_add(u64::from(attempted.attempts), Ordering::Relaxed);
        attempted.result
    }

    /// `GetParameter(name, WithDecryption)`.
    async fn get_one(&self, name: &str) -> Result<Parameter, SourceError> {
        let attempted = retry::call(&self.limits.ssm, &self.policy, || {
            self.client
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
        })
        .await;
        self.calls
            .fetch_add(u64::from(attempted.attempts), Ordering::Relaxed);
        match attempted.result {
            Ok(out) => out.parameter.ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Other,
                    name,
                    "ssm:GetParameter answered without a parameter",
                )
            }),
            Err(e) => {
                let mut err = aws_call::error("ssm:GetParameter", name, &e);
                if e.class() == Class::Permanent
                    && !matches!(err.kind, SourceErrorKind::Auth | SourceErrorKind::NotFound)
                {
                    // Most likely the parameter's KMS key: say which one.
                    err.kind = SourceErrorKind::BadRecord;
                    let key = self.key_of(name).await;
                    err.message = format!(
                        "cannot decrypt: KMS key {} unusable for this caller (disabled, deleted, \
                         or kms:Decrypt denied) ({})",
                        key.unwrap_or_else(|| "(unknown)".into()),
                        err.message
                    );
                }
                Err(err)
            }
        }
    }

    /// The KMS key id of a parameter (`DescribeParameters`), for error messages.
    async fn key_of(&self, name: &str) -> Option<String> {
        let filter = ParameterStringFilter::builder()
            .key("Name")
            .option("Equals")
            .values(name)
            .build()
            .ok()?;
        let attempted = retry::call(&self.limits.ssm, &self.policy, || {
            self.client
                .describe_parameters()
                .parameter_filters(filter.clone())
                .send()
        })
        .await;
        self.calls
            .fetch_add(u64::from(attempted.attempts), Ordering::Relaxed);
        attempted
            .result
            .ok()?
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .and_then(|p| p.key_id().map(str::to_owned))
    }

    fn entry_of(p: &Parameter, value: Option<Result<SecretValue, SourceError>>) -> Option<Entry> {
        Some(Entry {
            name: p.name()?.to_owned(),
            value,
            version: Some(p.version().to_string()),
        })
    }

    fn value_of(p: &Parameter) -> Result<SecretValue, SourceError> {
        p.value()
            .map(|v| SecretValue::text(v.to_owned()))
            .ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Other,
                    p.name().unwrap_or(""),
                    "SSM answered without a value",
                )
            })
    }

    /// Lists the subtree; with `values`, keeps each value (decrypted) for the fetch.
    async fn list_all(&self, values: bool) -> Result<Listing, SourceError> {
        let mut found: Vec<Entry> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (params, next) = match self.page(token.clone(), values).await {
                Ok(out) => {
                    let params = out
                        .parameters()
                        .iter()
                        .filter_map(|p| Self::entry_of(p, values.then(|| Self::value_of(p))))
                        .collect::<Vec<_>>();
                    (params, out.next_token)
                }
                Err(e) => {
                    let mut first = aws_call::error("ssm:GetParametersByPath", &self.path, &e);
                    if first.kind == SourceErrorKind::Denied {
                        first.message = format!(
                            "listing the SSM path was denied; the caller needs \
                             ssm:GetParametersByPath on the parameters under {} in {} (and \
                             kms:Decrypt on the keys of SecureStrings) ({})",
                            self.path, self.region, first.message
                        );
                    }
                    if !values
                        || e.class() != Class::Permanent
                        || first.kind == SourceErrorKind::Auth
                    {
                        return Err(first);
                    }
                    // Maybe one parameter's KMS key: list this page without values and read
                    // its SecureStrings one by one, so only that parameter fails.
                    let out = self.page(token.clone(), false).await.map_err(|_| first)?;
                    let mut params = Vec::new();
                    for p in out.parameters() {
                        let value = if p.r#type() == Some(&ParameterType::SecureString) {
                            match p.name() {
                                Some(n) => self.get_one(n).await.and_then(|q| Self::value_of(&q)),
                                None => continue,
                            }
                        } else {
                            Self::value_of(p)
                        };
                        params.extend(Self::entry_of(p, Some(value)));
                    }
                    tracing::debug!(
                        path = %self.path,
                        "a decrypting page was refused; read its parameters one by one"
                    );
                    (params, out.next_token)
                }
            };
            found.extend(params);
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        let mut listing = Listing::default();
        let mut entries = HashMap::with_capacity(found.len());
        for e in found {
            let Some(rel) = self.relative(&e.name) else {
                continue;
            };
            listing
                .refs
                .push(SourceRef::new(rel.clone()).with_version(e.version.clone()));
            entries.insert(rel, e);
        }
        listing.refs.sort_by(|a, b| a.path.cmp(&b.path));
        listing.refs.dedup_by(|a, b| a.path == b.path);
        *self.entries.lock().unwrap_or_else(|p| p.into_inner()) = entries;
        Ok(listing)
    }

    async fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, SourceError> {
        let attempted = retry::call(&self.limits.ssm, &self.policy, || {
            self.client
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(name)
                .send()
        })
        .await;
        self.calls
            .fetch_add(u64::from(attempted.attempts), Ordering::Relaxed);
        let out = attempted
            .result
            .map_err(|e| aws_call::error("ssm:ListTagsForResource", name, &e))?;
        Ok(out
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn fetch_value(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let listed = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries
                .get_mut(&r.path)
                .map(|e| (e.name.clone(), e.value.take(), e.version.clone()))
        };
        let (name, value, version) = match listed {
            Some((name, Some(value), version)) => (name, value, version),
            other => {
                let name = other
                    .map(|(n, _, _)| n)
                    .unwrap_or_else(|| self.full_name(&r.path));
                let p = self.get_one(&name).await;
                let version = p.as_ref().ok().map(|p| p.version().to_string());
                (name, p.and_then(|p| Self::value_of(&p)), version)
            }
        };
        let value = value.map_err(|mut e| {
            e.path = r.path.clone();
            if !e.message.contains(&name) {
                e.message = format!("parameter {name}: {}", e.message);
            }
            e
        })?;
        let metadata = if self.copy_tags {
            self.tags(&name).await.map_err(|mut e| {
                e.path = r.path.clone();
                e
            })?
        } else {
            BTreeMap::new()
        };
        Ok(Fetched::Value {
            value,
            version,
            metadata,
        })
    }
}

impl Source for SsmSource {
    fn kind(&self) -> &'static str {
        "ssm"
    }

    fn scope(&self) -> Scope {
        Scope::new("ssm", &self.instance(), self.subtree())
    }

    fn location(&self) -> String {
        format!("SSM path {} ({})", self.path, self.instance())
    }

    fn empty_advice(&self) -> String {
        format!(
            "no parameter of type {} under that SSM path; check [source] path (every parameter \
             below it is read, recursively), types and region",
            self.types.join(" or ")
        )
    }

    fn list(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(self.list_all(true))
    }

    fn list_names(&self) -> BoxFuture<'_, Result<Listing, SourceError>> {
        Box::pin(self.list_all(false))
    }

    fn fetch<'a>(&'a self, r: &'a SourceRef) -> BoxFuture<'a, Result<Fetched, SourceError>> {
        Box::pin(self.fetch_value(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AwsAccess, LimitsConfig};

    fn source(path: &str, endpoint: Option<&str>) -> SsmSource {
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        SsmSource::new(
            &SsmConfig {
                path: path.into(),
                types: vec!["SecureString".into()],
                copy_tags: false,
                aws: AwsAccess::default(),
            },
            "eu-west-1".into(),
            endpoint.map(str::to_owned),
            aws_sdk_ssm::Client::from_conf(conf),
            Arc::new(Limits::new(&LimitsConfig::default())),
            RetryPolicy::new(1),
        )
    }

    #[test]
    fn paths_and_identity() {
        let s = source("/prod/app", None);
        assert_eq!(s.relative("/prod/app/db/pw").as_deref(), Some("db/pw"));
        assert_eq!(s.relative("/prod/application/x"), None);
        assert_eq!(s.relative("/prod/app"), None);
        assert_eq!(s.subtree(), "prod/app");
        assert_eq!(s.instance(), "eu-west-1");
        assert_eq!(
            s.scope().identity("db/pw").text(),
            "ssm:eu-west-1 prod/app/db/pw"
        );
        let all = source("/", Some("http://127.0.0.1:5000"));
        assert_eq!(all.relative("/a/b").as_deref(), Some("a/b"));
        assert_eq!(all.subtree(), "");
        assert_eq!(
            all.scope().identity("a/b").text(),
            "ssm:eu-west-1@http://127.0.0.1:5000 a/b"
        );
    }
}
