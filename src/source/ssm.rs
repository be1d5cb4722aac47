//! The `ssm` source: AWS Systems Manager Parameter Store, one subtree (`path`, recursive).
//!
//! # Why names are listed apart from values, and values read while listing
//!
//! Parameter Store meters `GetParameter`, `GetParameters` and `GetParametersByPath` together:
//! 40 requests/s per account and region by default, shared with every production reader of the
//! account. Each of those returns at most 10 values per call, so N parameters cost at least N/10
//! calls of that quota: **N/10/40 s is the floor** of any read of N values. `DescribeParameters`
//! (names, versions, types, key ids, no values) is not part of that quota: AWS meters it under a
//! limit of its own (lower, undocumented), and it returns up to 50 parameters per page.
//!
//! So the listing is two overlapping streams:
//! - names: `DescribeParameters` pages of 50, one after the other (each needs the previous
//!   page's token), under their own limiter (`[limits] ssm_describe_per_second`, default 10):
//!   N/50 calls outside the quota, 500 names/s at the default rate;
//! - values: as soon as 10 names are known they are read with one
//!   `GetParameters(WithDecryption = true)`, up to 8 batches at once (`IN_FLIGHT`), under the SSM
//!   read limiter (`[limits] ssm_per_second`, 40): N/10 calls inside the quota, 400 values/s.
//!
//! Names arrive faster than the quota can read their values, and batches run in parallel, so the
//! quota, not the round trip, bounds the run: N/50 calls outside the quota + N/10 inside it =
//! the floor (2,000 parameters: 40 `DescribeParameters` pages within 4 s, overlapped with 200
//! `GetParameters` in 5 s). The former listing, `GetParametersByPath` with values, made the same
//! N/10 quota calls but one at a time: each page waited for the previous page's token, so at
//! R ms a round trip it read at most 1000/R pages/s, under the 40/s quota whenever a round trip
//! takes more than 25 ms (45–70 ms a page was seen against a busy moto). Listing names without
//! values and reading each value with `GetParameter` would cost N + N/10 quota calls (11 times
//! the floor). AWS may answer a filtered `DescribeParameters` page with fewer than 50 names (even
//! none) and a token; the listing follows the tokens to the end, and batches fill across pages.
//! (moto pages `DescribeParameters` by 10 and scans every parameter for each page, so against
//! moto the listing, not the quota, bounds the run: see CONTRIBUTING.md.)
//!
//! The values are read while listing because `plan` needs nothing else and the executor will
//! ask for every one of them: each value is kept only inside a [`SecretValue`] (redacted,
//! zeroized on drop) in this source until the executor fetches it; the fetch *takes* it out, so
//! it is held no longer than the run needs it. A value fetched a second time (or never read) is
//! read again with `GetParameter`. `plan` therefore decrypts too, as `ssm get-parameters
//! --with-decryption` would; the values never leave the process. Only `rename --config`
//! ([`Source::list_names`]) reads no value: it lists names with `DescribeParameters` alone.
//!
//! # Behaviour
//!
//! - Listing: `DescribeParameters(MaxResults = 50, ParameterFilters = [Path Recursive <path>,
//!   Type Equals <types>])` page by page (no `Path` filter for `/`), and
//!   `GetParameters(Names = 10 of them, WithDecryption = true)`. Every call goes through its
//!   limiter (AIMD: a throttled answer lowers the rate) and the retry policy, so a throttled
//!   listing slows down and completes.
//! - A parameter whose KMS key the caller may not use makes AWS refuse the *whole*
//!   `GetParameters` batch that holds it. That batch is then read one by one (`GetParameter`);
//!   the one that still fails is that parameter's error, naming the parameter and its key (from
//!   the listing), and every other parameter goes on. A name `GetParameters` does not return
//!   (`InvalidParameters`: deleted since it was listed) is read again at fetch with
//!   `GetParameter`, whose answer is that parameter's row (never dropped silently).
//! - Source path: the parameter name relative to `path`, without the leading `/`; version: the
//!   version whose value was read. Values: `String` and `SecureString` as stored, `StringList`
//!   as its comma-separated text.
//! - `copy_tags = true`: one `ListTagsForResource` per parameter, at fetch (only then: it is one
//!   call per parameter), copied into the secret's tags.
//! - The parameter's `Description` is not copied: a managed secret's description holds its
//!   source identity (the proof behind a source tag too long for a tag, read back exactly by
//!   `identity::recorded_identity`), so any other text there would break ownership.
//!
//! Identity: `ssm:<region>[@<endpoint>] <name without leading />`.
//!
//! Minimal IAM: `ssm:DescribeParameters` (on `*`: it takes no resource), `ssm:GetParameters`
//! and `ssm:GetParameter` on `arn:aws:ssm:<region>:<account>:parameter/<path>*` (plus
//! `ssm:ListTagsForResource` with `copy_tags`), `kms:Decrypt` on the parameters' keys
//! (`alias/aws/ssm` needs nothing extra for a principal of the same account).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::types::{Parameter, ParameterStringFilter, ParameterType, ResourceTypeForTagging};
use futures::future::BoxFuture;

use super::open::SourceContext;
use super::{
    aws_call, Fetched, Listing, Source, SourceError, SourceErrorKind, SourceKind, SourceRef,
};
use crate::aws::client::{ClientError, Endpoint};
use crate::config::SsmConfig;
use crate::identity::Scope;
use crate::limits::{Limits, Op};
use crate::retry::{self, Class, Classify, RetryPolicy};
use crate::secret::SecretValue;

/// `DescribeParameters`' largest page.
const DESCRIBE_PAGE: i32 = 50;
/// `GetParameters`' most names per call.
const BATCH: usize = 10;
/// `GetParameters` batches in flight at once: at 40 calls/s and 50–100 ms a call, 2 to 4 keep
/// the quota busy; 8 leave room for slow answers and retries while the limiter sets the pace.
const IN_FLIGHT: usize = 8;

/// What `DescribeParameters` says about one parameter (no value).
struct Described {
    /// Full parameter name.
    name: String,
    version: i64,
    /// The KMS key of a `SecureString`, for error messages.
    key_id: Option<String>,
}

/// What the listing learnt about one parameter.
struct Entry {
    /// Full parameter name.
    name: String,
    /// The value read while listing (taken by the first fetch), or why it could not be read.
    value: Option<Result<SecretValue, SourceError>>,
    version: Option<String>,
    /// The KMS key of a `SecureString` (from the listing), for error messages.
    key_id: Option<String>,
}

impl Entry {
    /// A listed parameter whose value is not read (yet).
    fn unread(d: Described) -> Entry {
        Entry {
            name: d.name,
            value: None,
            version: Some(d.version.to_string()),
            key_id: d.key_id,
        }
    }
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
    pub(crate) async fn open(c: &SsmConfig, cx: &SourceContext<'_>) -> Result<Self, ClientError> {
        let conf = cx.sdk(&c.aws).await?;
        let region = conf
            .region()
            .map(|r| r.to_string())
            .ok_or(ClientError::NoRegion)?;
        let endpoint = Endpoint::of_source(&c.aws, cx.target, cx.timeout)
            .endpoint_url
            .map(str::to_owned);
        Ok(Self::new(
            c,
            region,
            endpoint,
            aws_sdk_ssm::Client::new(&conf),
            cx.limits.clone(),
            cx.policy,
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
    pub(crate) fn instance(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{}@{e}", self.region),
            None => self.region.clone(),
        }
    }

    /// The configured path without slashes (`prod/app`; empty for the whole store).
    pub(crate) fn subtree(&self) -> &str {
        self.path.trim_matches('/')
    }

    /// Sends the request `op` (`send` builds and sends it, once per attempt) under its
    /// limiter and the retry policy, counting every attempt.
    async fn send<T, E, F, Fut>(&self, op: Op, send: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: Classify,
    {
        retry::call_op(&self.limits, &self.policy, &self.calls, op, send).await
    }

    /// SSM requests sent so far (every attempt counts).
    pub(crate) fn ssm_calls(&self) -> u64 {
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

    /// `DescribeParameters`' filters: the subtree (recursive; none for `/`) and the types.
    fn describe_filters(&self) -> Vec<ParameterStringFilter> {
        let filter = |key: &str, option: &str, values: Vec<String>| {
            ParameterStringFilter::builder()
                .key(key)
                .option(option)
                .set_values(Some(values))
                .build()
                .unwrap_or_else(|_| unreachable!("key is set"))
        };
        let mut filters = vec![filter("Type", "Equals", self.types.clone())];
        if self.path != "/" {
            filters.push(filter("Path", "Recursive", vec![self.path.clone()]));
        }
        filters
    }

    /// Lists every parameter of the subtree with `DescribeParameters`, page after page under
    /// its own limiter, sending each to `names` as soon as its page arrives.
    async fn describe_all(
        &self,
        names: futures::channel::mpsc::UnboundedSender<Described>,
    ) -> Result<(), SourceError> {
        let filters = self.describe_filters();
        let mut token: Option<String> = None;
        loop {
            let result = self
                .send(Op::DescribeParameters, || {
                    self.client
                        .describe_parameters()
                        .set_parameter_filters(Some(filters.clone()))
                        .max_results(DESCRIBE_PAGE)
                        .set_next_token(token.clone())
                        .send()
                })
                .await;
            let out = result.map_err(|e| {
                let mut err = aws_call::error(Op::DescribeParameters, &self.path, &e);
                if err.kind == SourceErrorKind::Denied {
                    err.message = format!(
                        "listing the SSM path was denied; the caller needs \
                         ssm:DescribeParameters on the parameters under {} in {} (and \
                         ssm:GetParameters, kms:Decrypt on the keys of SecureStrings) ({})",
                        self.path, self.region, err.message
                    );
                }
                err
            })?;
            for p in out.parameters() {
                // never read (nor decrypt) what lies outside the subtree (`/` lists names
                // without a leading `/` too)
                let Some(name) = p.name().filter(|n| self.relative(n).is_some()) else {
                    continue;
                };
                let key_id = (p.r#type() == Some(&ParameterType::SecureString))
                    .then(|| p.key_id().map(str::to_owned))
                    .flatten();
                let described = Described {
                    name: name.to_owned(),
                    version: p.version(),
                    key_id,
                };
                if names.unbounded_send(described).is_err() {
                    return Ok(()); // the reader stopped: its error is the listing's
                }
            }
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(()),
            }
        }
    }

    /// Reads the values of up to [`BATCH`] listed parameters with one
    /// `GetParameters(WithDecryption)`. A batch AWS refuses as a whole (one parameter's KMS key)
    /// is read one by one, so only that parameter fails.
    async fn read_batch(&self, batch: Vec<Described>) -> Result<Vec<Entry>, SourceError> {
        let names: Vec<String> = batch.iter().map(|d| d.name.clone()).collect();
        let result = self
            .send(Op::GetParameters, || {
                self.client
                    .get_parameters()
                    .set_names(Some(names.clone()))
                    .with_decryption(true)
                    .send()
            })
            .await;
        match result {
            Ok(out) => {
                let mut got: HashMap<&str, &Parameter> = out
                    .parameters()
                    .iter()
                    .filter_map(|p| Some((p.name()?, p)))
                    .collect();
                if !out.invalid_parameters().is_empty() {
                    tracing::debug!(
                        count = out.invalid_parameters().len(),
                        "GetParameters did not return some listed parameters; they are read \
                         again at fetch"
                    );
                }
                Ok(batch
                    .into_iter()
                    .map(|d| match got.remove(d.name.as_str()) {
                        Some(p) => Entry {
                            value: Some(Self::value_of(p)),
                            version: Some(p.version().to_string()),
                            ..Entry::unread(d)
                        },
                        // not returned (deleted since it was listed?): the fetch reads it again
                        // and its answer is that parameter's row
                        None => Entry::unread(d),
                    })
                    .collect())
            }
            Err(e) => {
                let first = aws_call::error(Op::GetParameters, &self.path, &e);
                if e.class() != Class::Permanent || first.kind == SourceErrorKind::Auth {
                    return Err(first);
                }
                tracing::debug!(
                    path = %self.path,
                    "a GetParameters batch was refused; read its parameters one by one"
                );
                let mut entries = Vec::with_capacity(batch.len());
                for d in batch {
                    let p = self.get_one(&d.name, d.key_id.as_deref()).await;
                    let version = p.as_ref().ok().map(|p| p.version().to_string());
                    entries.push(Entry {
                        value: Some(p.and_then(|p| Self::value_of(&p))),
                        version: version.or_else(|| Some(d.version.to_string())),
                        ..Entry::unread(d)
                    });
                }
                Ok(entries)
            }
        }
    }

    /// `GetParameter(name, WithDecryption)`; `key` (from the listing) names the KMS key when
    /// decryption fails, else it is looked up.
    async fn get_one(&self, name: &str, key: Option<&str>) -> Result<Parameter, SourceError> {
        let result = self
            .send(Op::GetParameter, || {
                self.client
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
            })
            .await;
        match result {
            Ok(out) => out.parameter.ok_or_else(|| {
                SourceError::new(
                    SourceErrorKind::Other,
                    name,
                    "ssm:GetParameter answered without a parameter",
                )
            }),
            Err(e) => {
                let mut err = aws_call::error(Op::GetParameter, name, &e);
                if e.class() == Class::Permanent
                    && !matches!(err.kind, SourceErrorKind::Auth | SourceErrorKind::NotFound)
                {
                    // Most likely the parameter's KMS key: say which one.
                    err.kind = SourceErrorKind::BadRecord;
                    let key = match key {
                        Some(k) => Some(k.to_owned()),
                        None => self.key_of(name).await,
                    };
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
        let result = self
            .send(Op::DescribeParameters, || {
                self.client
                    .describe_parameters()
                    .parameter_filters(filter.clone())
                    .send()
            })
            .await;
        result
            .ok()?
            .parameters()
            .iter()
            .find(|p| p.name() == Some(name))
            .and_then(|p| p.key_id().map(str::to_owned))
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

    /// Lists the subtree; with `values`, reads each value (decrypted) while the listing goes
    /// on, and keeps it for the fetch.
    async fn list_all(&self, values: bool) -> Result<Listing, SourceError> {
        use futures::{StreamExt, TryStreamExt};
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let names = self.describe_all(tx);
        let read = rx
            .chunks(BATCH)
            .map(|batch| async move {
                if values {
                    self.read_batch(batch).await
                } else {
                    Ok(batch.into_iter().map(Entry::unread).collect())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_fold(Vec::new(), |mut found, entries| {
                found.extend(entries);
                std::future::ready(Ok(found))
            });
        let ((), found) = futures::try_join!(names, read)?;
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
        let result = self
            .send(Op::ListTagsForResource, || {
                self.client
                    .list_tags_for_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(name)
                    .send()
            })
            .await;
        let out = result.map_err(|e| aws_call::error(Op::ListTagsForResource, name, &e))?;
        Ok(out
            .tag_list()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn fetch_value(&self, r: &SourceRef) -> Result<Fetched, SourceError> {
        let listed = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            entries.get_mut(&r.path).map(|e| {
                (
                    e.name.clone(),
                    e.value.take(),
                    e.version.clone(),
                    e.key_id.clone(),
                )
            })
        };
        let (name, value, version) = match listed {
            Some((name, Some(value), version, _)) => (name, value, version),
            other => {
                let (name, key) = other
                    .map(|(n, _, _, k)| (n, k))
                    .unwrap_or_else(|| (self.full_name(&r.path), None));
                let p = self.get_one(&name, key.as_deref()).await;
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
    fn kind(&self) -> SourceKind {
        SourceKind::Ssm
    }

    fn scope(&self) -> Scope {
        Scope::new(SourceKind::Ssm.as_str(), &self.instance(), self.subtree())
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
    fn describe_filters_cover_the_subtree_and_the_types() {
        let show = |s: &SsmSource| {
            s.describe_filters()
                .iter()
                .map(|f| {
                    format!(
                        "{} {} {}",
                        f.key(),
                        f.option().unwrap_or(""),
                        f.values().join(",")
                    )
                })
                .collect::<Vec<_>>()
        };
        for (path, want) in [
            (
                "/prod/app",
                vec!["Type Equals SecureString", "Path Recursive /prod/app"],
            ),
            // the whole store: no Path filter (names outside `/...` are left out by `relative`)
            ("/", vec!["Type Equals SecureString"]),
        ] {
            assert_eq!(show(&source(path, None)), want, "{path}");
        }
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
