//! The executor: runs plan items against a [`Target`], writing one report row per outcome.
//!
//! For each item it fetches what [`decide::needs`] asks for (the source value, the target's
//! current value from the bulk prefetch), asks [`decide::decide`] for the steps, and runs them.
//! It decides nothing itself beyond reacting to a failed write (a name taken meanwhile, a
//! response lost after the write landed). A dry run is the same code over
//! [`crate::target::dry::DryRun`]. At most `concurrency` items are in flight; one failing
//! secret never stops the others. Once the shutdown signal is set no new item starts; the
//! rest are reported as not started. The same holds, as failures, once the source's
//! credential is about to end with nothing to renew it ([`Expiry`]).
//!
//! It prints nothing: each finished item and orphan is one [`Event::Done`] to the caller's
//! [`Events`], failed when a `failed` row was made for that secret (counted on the item's own
//! context, so a neighbour failing meanwhile never counts against it); a secret found gone while
//! reading finishes with its orphan row, one step either way. [`undo`] runs a rollback's steps
//! the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use futures::stream::{self, StreamExt};

use crate::decide::{self, CurrentFact, Facts, Need, SourceFact, Step};
use crate::engine::{Event, Events};
use crate::identity::token::TokenDeriver;
use crate::identity::{Scope, SourceIdentity};
use crate::naming;
use crate::plan::{Decision, Item, Orphan, Plan, TagsLeftOut};
use crate::policy::Prune;
use crate::report::{Action, Row, Sink, Status};
use crate::secret::SecretValue;
use crate::shutdown::Shutdown;
use crate::source::expiry::Expiry;
use crate::source::{Fetched, Source, SourceErrorKind};
use crate::target::limits::BATCH_GET_MAX;
use crate::target::{CallError, CurrentValue, ErrorClass, NewSecret, Target};

/// Settings of one execution.
pub(crate) struct Settings {
    /// What decisions depend on.
    pub(crate) rules: decide::Rules,
    /// CMK for new secrets.
    pub(crate) kms_key_id: Option<String>,
    /// Items in flight.
    pub(crate) concurrency: usize,
    /// Naming policy (for the last-line name check).
    pub(crate) policy: naming::Policy,
    /// Idempotency tokens from a configured key; `None`: the key secret in the target, read
    /// (or created) on the first write that needs a token, so a run that writes nothing reads
    /// nothing.
    pub(crate) tokens: Option<TokenDeriver>,
}

/// Current target values, fetched in bulk before items run; or, with `by_version`, none at
/// all: each item first checks whether the secret's `AWSCURRENT` VersionId is the token of the
/// source value (then it holds that value, unread), and reads only when it is not.
#[derive(Default)]
pub(crate) struct Prefetched {
    values: HashMap<String, CurrentValue>,
    errors: HashMap<String, String>,
    by_version: bool,
}

/// Runs plan items against the target.
pub(crate) struct Executor<'a> {
    /// The target (a [`crate::target::dry::DryRun`] in dry runs).
    pub(crate) target: &'a dyn Target,
    /// The source.
    pub(crate) source: &'a dyn Source,
    /// Settings.
    pub(crate) settings: &'a Settings,
    /// Where rows go.
    pub(crate) sink: &'a Sink,
    /// Once set, no new item starts.
    pub(crate) shutdown: &'a Shutdown,
    /// Where each finished step is announced ([`Event::Done`]).
    pub(crate) events: &'a dyn Events,
    /// Secrets found gone from the source while reading (become orphans).
    pub(crate) gone: Mutex<Vec<Orphan>>,
    /// The source's scope: every item's identity is derived from it.
    scope: Scope,
    /// The source's credential end of life, consulted before each item starts.
    expiry: Option<Expiry>,
    key: tokio::sync::OnceCell<Option<TokenDeriver>>,
    tokens: tokio::sync::OnceCell<Result<TokenDeriver, String>>,
}

struct Ctx<'i> {
    item: Item<'i>,
    /// The item's identity (derived once per item, not held by the plan).
    identity: SourceIdentity,
    start: Instant,
    attempts: u32,
    version: String,
    /// Source tags left out of this secret's tags: named on its next row, once.
    left_out: Option<TagsLeftOut>,
    /// The source's own description of the secret (`Fetched::Value::description`), for a
    /// create.
    description: Option<String>,
    /// A `failed` row was made for this item: it counts as failed, once, whatever its
    /// neighbours in flight do.
    failed: bool,
    /// Found gone: it finishes with its orphan row, after the items.
    deferred: bool,
}

impl<'i> Ctx<'i> {
    fn new(item: Item<'i>, scope: &Scope) -> Ctx<'i> {
        Ctx {
            item,
            identity: item.identity(scope),
            start: Instant::now(),
            attempts: 0,
            version: item.version().unwrap_or_default().to_owned(),
            left_out: None,
            description: None,
            failed: false,
            deferred: false,
        }
    }

    /// The item's row; every row of an item is made here, so a failure is seen here.
    fn row(&mut self, action: Action, status: Status, why: impl Into<String>) -> Row {
        self.failed |= status == Status::Failed;
        let item = self.item;
        let mut r = Row::new(item.path(), item.target_name(), action, status);
        r.source_version.clone_from(&self.version);
        r.target_arn = item.existing().map(|e| e.arn()).unwrap_or_default();
        r.attempts = self.attempts;
        r.error = why.into();
        r.duration_ms = self.start.elapsed().as_millis();
        r.reasons = item.reasons().codes();
        if let Some(left_out) = self.left_out.take() {
            r.error = if r.error.is_empty() {
                left_out.words()
            } else {
                format!("{}; {}", r.error, left_out.words())
            };
            if !r.reasons.is_empty() {
                r.reasons.push(';');
            }
            r.reasons.push_str(TAGS_LEFT_OUT);
        }
        r
    }
}

/// The words of a create row whose source's own description could not be copied.
const DESCRIPTION_LEFT_OUT: &str = "the source's description was left out: this secret's \
     description holds its source identity (too long for the source tag)";

/// The `reasons` code of a row that names source tags left out.
pub(crate) const TAGS_LEFT_OUT: &str = "tags-left-out";

/// Whether a failed write may nevertheless have landed (its response lost): worth asking AWS.
fn may_have_landed(e: &CallError) -> bool {
    matches!(e.class, ErrorClass::Unavailable | ErrorClass::Other)
}

impl Executor<'_> {
    /// An executor with an empty list of gone secrets.
    pub(crate) fn new<'a>(
        target: &'a dyn Target,
        source: &'a dyn Source,
        settings: &'a Settings,
        sink: &'a Sink,
        shutdown: &'a Shutdown,
        events: &'a dyn Events,
    ) -> Executor<'a> {
        Executor {
            target,
            source,
            settings,
            sink,
            shutdown,
            events,
            gone: Mutex::new(Vec::new()),
            scope: source.scope(),
            expiry: source.expiry(),
            key: tokio::sync::OnceCell::new(),
            tokens: tokio::sync::OnceCell::new(),
        }
    }

    /// The key existing secrets were written with: configured, or the key secret in the target
    /// (read once; `None` when it does not exist or cannot be read, and then values are
    /// compared by reading them).
    async fn existing_key(&self) -> Option<&TokenDeriver> {
        self.key
            .get_or_init(|| async {
                if let Some(t) = &self.settings.tokens {
                    return Some(t.clone());
                }
                match crate::target::token_key::load(self.target).await {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::info!(error = %e, "token key unreadable: comparing values by reading them");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    /// The token deriver for writes: the existing key, an ephemeral one in a dry run (no token
    /// is sent), or a key secret created now (the first writing run in the account).
    async fn tokens(&self) -> Result<&TokenDeriver, String> {
        self.tokens
            .get_or_init(|| async {
                if let Some(t) = self.existing_key().await {
                    return Ok(t.clone());
                }
                if !self.target.writes() {
                    return TokenDeriver::ephemeral()
                        .map_err(|e| format!("idempotency token key: {e}"));
                }
                crate::target::token_key::load_or_create(self.target)
                    .await
                    .map_err(|e| format!("idempotency token key: {e}"))
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the secret's `AWSCURRENT` version is the one this value would have been written
    /// as (by a create, or a put over its `AWSPREVIOUS`).
    async fn holds(&self, cx: &Ctx<'_>, value: &SecretValue) -> bool {
        let item = cx.item;
        let (Some(key), Some(existing)) = (self.existing_key().await, item.existing()) else {
            return false;
        };
        let Some(current) = existing.current_version() else {
            return false;
        };
        key.token(&cx.identity, value, None) == current
            || existing
                .previous_version()
                .is_some_and(|p| key.token(&cx.identity, value, Some(&p)) == current)
    }

    /// Reads the current value of every existing secret whose value must be compared,
    /// [`BATCH_GET_MAX`] per `BatchGetSecretValue` call. A batch that fails as a whole, or
    /// leaves some secrets unanswered, falls back to one `GetSecretValue` per secret, so one
    /// bad secret never fails its 19 neighbours.
    pub(crate) async fn prefetch(&self, items: &[Item<'_>]) -> Prefetched {
        if self.existing_key().await.is_some() {
            return Prefetched {
                by_version: true,
                ..Prefetched::default()
            };
        }
        let compared: Vec<crate::target::listed::Listed<'_>> = items
            .iter()
            .filter(|i| decide::needs(i, &self.settings.rules, false) == Need::SourceAndCurrent)
            .filter_map(|i| i.existing())
            .collect();
        let ids: Vec<String> = compared.iter().map(|e| e.arn()).collect();
        // the version the listing labels AWSCURRENT: a batch answer of another version (moto
        // answers the last version written, not AWSCURRENT) is read again with the stage
        let listed_current: HashMap<String, String> = compared
            .iter()
            .filter_map(|e| Some((e.arn(), e.current_version()?)))
            .collect();
        let chunks: Vec<Vec<String>> = ids.chunks(BATCH_GET_MAX).map(<[_]>::to_vec).collect();
        let results: Vec<_> = stream::iter(chunks)
            .map(|chunk| async move { (self.target.batch_get(&chunk).await, chunk) })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut p = Prefetched::default();
        let mut single = Vec::new();
        for (r, chunk) in results {
            match r {
                Ok(read) => {
                    for id in chunk {
                        if !read.values.contains_key(&id) && !read.errors.contains_key(&id) {
                            single.push(id); // unanswered (e.g. a secret without a version)
                        }
                    }
                    for (id, v) in read.values {
                        let listed = listed_current.get(id.as_str()).map(String::as_str);
                        if listed.is_some() && v.version_id.as_deref() != listed {
                            single.push(id);
                        } else {
                            p.values.insert(id, v);
                        }
                    }
                    single.extend(read.errors.into_keys());
                }
                Err(_) => single.extend(chunk),
            }
        }
        let singles: Vec<_> = stream::iter(single)
            .map(|id| async move { (self.target.get_value(&id).await, id) })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (r, id) in singles {
            match r {
                Ok((Some(v), _)) => {
                    p.values.insert(id, v);
                }
                Ok((None, _)) => {}
                // listed a moment ago, so "not found" means it has no AWSCURRENT version (a
                // secret created without a value): nothing to compare, the value is written
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(e) => {
                    p.errors.insert(id, e.to_string());
                }
            }
        }
        p
    }

    /// Runs every item: [`prefetch`](Self::prefetch) and [`run`](Self::run) a window of
    /// `concurrency` × [`BATCH_GET_MAX`] items at a time, so the target values read for
    /// comparison (when there is no token key to compare by version) are held for one window,
    /// not for the whole run: memory is bounded by the concurrency, not by the number of secrets.
    pub(crate) async fn run_all(&self, plan: &Plan) {
        let window = self.settings.concurrency.max(1) * BATCH_GET_MAX;
        for chunk in plan.windows(window) {
            let pre = self.prefetch(&chunk).await;
            self.run(&chunk, &pre).await;
        }
    }

    /// Runs every item, `concurrency` at a time.
    pub(crate) async fn run(&self, items: &[Item<'_>], pre: &Prefetched) {
        stream::iter(items)
            .map(|&item| async move {
                let mut cx = Ctx::new(item, &self.scope);
                self.run_item(&mut cx, pre).await;
                // a secret found gone is one step with its orphan row, not two
                if !cx.deferred {
                    self.events.event(&Event::Done { failed: cx.failed });
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<()>()
            .await;
    }

    async fn read_source(
        &self,
        cx: &mut Ctx<'_>,
    ) -> (Option<SecretValue>, BTreeMap<String, String>, Fact) {
        match self.source.fetch(&cx.item.source()).await {
            Ok(Fetched::Value {
                value,
                version,
                metadata,
                description,
            }) => {
                if let Some(v) = version {
                    cx.version = v;
                }
                cx.description = description;
                (Some(value), metadata, Fact::Value)
            }
            Ok(Fetched::Gone { reason, version }) => {
                if let Some(v) = version {
                    cx.version = v;
                }
                (None, BTreeMap::new(), Fact::Gone(reason))
            }
            Err(e) => {
                let msg = e.to_string();
                if !self.target.writes()
                    && matches!(e.kind, SourceErrorKind::Denied | SourceErrorKind::Auth)
                {
                    (None, BTreeMap::new(), Fact::Unread(msg))
                } else {
                    (None, BTreeMap::new(), Fact::Failed(msg))
                }
            }
        }
    }

    async fn run_item(&self, cx: &mut Ctx<'_>, pre: &Prefetched) {
        let item = cx.item;
        if self.shutdown.is_triggered() {
            let action = match item.decision() {
                Decision::Create => Action::Create,
                _ => Action::Skip,
            };
            self.sink
                .emit(cx.row(action, Status::Skipped, "interrupted: not started"));
            return;
        }
        // the source's credential ends before this secret could be read: not started (failed,
        // so the run exits 1; a rerun with a working credential picks it up). A secret decided
        // from names and tags alone reads nothing from the source and goes on.
        let reads_source = decide::needs(&item, &self.settings.rules, false) != Need::Nothing;
        if let Some(end) = self
            .expiry
            .as_ref()
            .filter(|_| reads_source)
            .and_then(|e| e.stops_at(Instant::now()))
        {
            let action = match item.decision() {
                Decision::Create => Action::Create,
                _ => Action::Skip,
            };
            self.sink.emit(cx.row(
                action,
                Status::Failed,
                format!("not started: {}", end.words()),
            ));
            return;
        }
        if !naming::is_valid_target(item.target_name(), self.settings.policy) {
            self.sink.emit(cx.row(
                Action::Skip,
                Status::Failed,
                "target name rejected by the naming rules",
            ));
            return;
        }
        let rules = &self.settings.rules;
        let mut restored = false;
        let mut fetched: Option<(Option<SecretValue>, BTreeMap<String, String>, Fact)> = None;
        // the ownership proof every write of this item carries, made once its source value is
        // in hand (the key is needed by the write's token anyway; a source that cannot be read
        // creates no key secret)
        let mut proof: Option<String> = None;
        loop {
            let need = decide::needs(&item, rules, restored);
            if need != Need::Nothing && fetched.is_none() {
                fetched = Some(self.read_source(cx).await);
            }
            let reread;
            let current = match (need, restored) {
                (Need::SourceAndCurrent, true) => {
                    let arn = item.existing().map(|e| e.arn()).unwrap_or_default();
                    reread = self.target.get_value(&arn).await;
                    match &reread {
                        Ok((Some(v), _)) => CurrentFact::Value(v),
                        Ok((None, _)) => CurrentFact::Empty,
                        Err(e) => CurrentFact::Failed(e.to_string()),
                    }
                }
                (Need::SourceAndCurrent, false) if pre.by_version => {
                    let value = fetched.as_ref().and_then(|f| f.0.as_ref());
                    match value {
                        Some(v) if self.holds(cx, v).await => CurrentFact::SameVersion,
                        Some(_) => {
                            let arn = item.existing().map(|e| e.arn()).unwrap_or_default();
                            reread = self.target.get_value(&arn).await;
                            match &reread {
                                Ok((Some(v), _)) => CurrentFact::Value(v),
                                Ok((None, _)) => CurrentFact::Empty,
                                Err(e) if e.class == ErrorClass::NotFound => CurrentFact::Empty,
                                Err(e) => CurrentFact::Failed(e.to_string()),
                            }
                        }
                        None => CurrentFact::NotRead, // the source side decides (gone, failed)
                    }
                }
                (Need::SourceAndCurrent, false) => {
                    let arn = item.existing().map(|e| e.arn()).unwrap_or_default();
                    match (pre.values.get(&arn), pre.errors.get(&arn)) {
                        (Some(v), _) => CurrentFact::Value(v),
                        (None, Some(e)) => CurrentFact::Failed(e.clone()),
                        (None, None) => CurrentFact::Empty,
                    }
                }
                _ => CurrentFact::NotRead,
            };
            let source = match &fetched {
                None => SourceFact::NotRead,
                Some((Some(v), meta, _)) => SourceFact::Value {
                    value: v,
                    metadata: meta,
                },
                Some((None, _, Fact::Gone(r))) => SourceFact::Gone(r.clone()),
                Some((None, _, Fact::Unread(r))) => SourceFact::Unread(r.clone()),
                Some((None, _, Fact::Failed(r))) => SourceFact::Failed(r.clone()),
                Some((None, _, Fact::Value)) => SourceFact::NotRead,
            };
            if matches!(source, SourceFact::Unread(_)) {
                self.sink.value_unread();
            }
            if proof.is_none() && matches!(source, SourceFact::Value { .. }) {
                proof = self
                    .tokens()
                    .await
                    .ok()
                    .map(|t| t.ownership_proof(item.target_name(), &self.scope, &rules.prefix));
            }
            let facts = Facts {
                identity: &cx.identity,
                source,
                current,
                restored,
                proof: proof.as_deref(),
            };
            let steps = decide::decide(&item, &facts, rules);
            let value = fetched.as_ref().and_then(|f| f.0.as_ref());
            match self.run_steps(cx, steps, value).await {
                Next::Done => return,
                Next::Restored => {
                    restored = true;
                    cx.attempts = 0;
                }
            }
        }
    }

    async fn run_steps(
        &self,
        cx: &mut Ctx<'_>,
        steps: Vec<Step>,
        value: Option<&SecretValue>,
    ) -> Next {
        for step in steps {
            let ok = match step {
                Step::Row {
                    action,
                    status,
                    why,
                } => {
                    self.sink.emit(cx.row(action, status, why));
                    true
                }
                Step::Create { tags } => match value {
                    Some(v) => self.create(cx, v, &tags).await,
                    None => false,
                },
                Step::Put { previous, why } => match value {
                    Some(v) => self.put(cx, v, previous, why).await,
                    None => false,
                },
                Step::Tag { tags, why } => self.tag(cx, &tags, why).await,
                Step::Restore => {
                    if self.restore(cx).await {
                        return Next::Restored;
                    }
                    false
                }
                Step::CheckReplicas => self.check_replicas(cx).await,
                Step::Replicate { regions } => self.replicate(cx, &regions).await,
                Step::TagsLeftOut(left_out) => {
                    cx.left_out = Some(left_out);
                    true
                }
                Step::Orphan(why) => {
                    if let Some(secret) = cx.item.existing_index() {
                        cx.deferred = true;
                        self.gone
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Orphan {
                                secret,
                                identity: cx.identity.clone(),
                                why,
                            });
                    }
                    true
                }
            };
            if !ok {
                break;
            }
        }
        Next::Done
    }

    fn wrote(&self) {
        if self.target.writes() {
            self.sink.wrote();
        }
    }

    /// After a write failed in a way that may hide success: does AWS hold the version the
    /// token names? The token makes the answer exact.
    async fn landed(&self, cx: &mut Ctx<'_>, id: &str, token: &str) -> Option<String> {
        match self.target.describe(id).await {
            Ok((s, a)) => {
                cx.attempts += a;
                let ours = s.source_tag() == Some(cx.identity.tag_value().as_str());
                (ours && s.current_version.as_deref() == Some(token)).then_some(s.arn)
            }
            Err(e) => {
                cx.attempts += e.attempts;
                None
            }
        }
    }

    async fn create(
        &self,
        cx: &mut Ctx<'_>,
        value: &SecretValue,
        tags: &BTreeMap<String, String>,
    ) -> bool {
        let item = cx.item;
        let (action, why) = match item.renamed_from() {
            Some(old) => (
                Action::Rename,
                format!("renamed from {old} (mapping changed); {old} becomes an orphan"),
            ),
            None => (Action::Create, String::new()),
        };
        let replicas = &self.settings.rules.replicas;
        let why = match (why.is_empty(), replicas.is_empty()) {
            (_, true) => why,
            (true, false) => format!("replicas: {}", decide::region_list(replicas)),
            (false, false) => format!("{why}; replicas: {}", decide::region_list(replicas)),
        };
        let name = item.target_name();
        let token = match self.tokens().await {
            Ok(t) => t.token(&cx.identity, value, None),
            Err(e) => {
                self.sink.emit(cx.row(action, Status::Failed, e));
                return false;
            }
        };
        let (description, kept) = cx.identity.description_with(cx.description.as_deref());
        let why = match (kept, why.is_empty()) {
            (true, _) => why,
            (false, true) => DESCRIPTION_LEFT_OUT.to_owned(),
            (false, false) => format!("{why}; {DESCRIPTION_LEFT_OUT}"),
        };
        let new = NewSecret {
            name,
            value,
            token: token.clone(),
            description: &description,
            kms_key_id: self.settings.kms_key_id.as_deref(),
            tags,
            replicas,
        };
        match self.target.create(&new).await {
            Ok(((arn, version), attempts)) => {
                cx.attempts += attempts;
                self.wrote();
                let mut row = cx.row(action, Status::Ok, why);
                row.target_arn = arn;
                row.version_id = version;
                self.sink.emit(row);
                true
            }
            Err(e) => {
                cx.attempts += e.attempts;
                if !may_have_landed(&e)
                    && !matches!(e.class, ErrorClass::Exists | ErrorClass::InvalidRequest)
                {
                    self.sink
                        .emit(cx.row(action, Status::Failed, e.to_string()));
                    return false;
                }
                // What does AWS hold at the name? Our version (a lost response, or a retry
                // answered "exists" after the first attempt landed), a name scheduled for
                // deletion (AWS answers InvalidRequestException, moto ResourceExistsException),
                // or someone else's secret.
                match self.target.describe(name).await {
                    Ok((s, attempts)) => {
                        cx.attempts += attempts;
                        let ours = s.source_tag() == Some(cx.identity.tag_value().as_str());
                        let mut row = if ours
                            && s.deleted_date.is_none()
                            && s.current_version.as_deref() == Some(token.as_str())
                        {
                            if may_have_landed(&e) {
                                self.wrote();
                                let mut row = cx.row(
                                    action,
                                    Status::Ok,
                                    "the response was lost, but AWS holds the version written",
                                );
                                row.version_id.clone_from(&token);
                                row
                            } else {
                                // refused because the name exists, holding this very version:
                                // another run of this config wrote it (it claims the create)
                                let mut row = cx.row(
                                    Action::Unchanged,
                                    Status::Ok,
                                    "written by a concurrent run: AWS holds this version already",
                                );
                                row.version_id.clone_from(&token);
                                row
                            }
                        } else if let Some(d) = &s.deleted_date {
                            cx.row(
                                Action::Skip,
                                Status::Skipped,
                                format!("scheduled for deletion on {d}; rerun with --restore-deleted to restore it"),
                            )
                        } else if matches!(e.class, ErrorClass::Exists | ErrorClass::InvalidRequest)
                        {
                            cx.row(
                                Action::Conflict,
                                Status::Failed,
                                format!("created by someone else during this run ({})", e.message),
                            )
                        } else {
                            cx.row(action, Status::Failed, e.to_string())
                        };
                        row.target_arn = s.arn;
                        let ok = row.status == Status::Ok;
                        self.sink.emit(row);
                        ok
                    }
                    Err(d) => {
                        cx.attempts += d.attempts;
                        self.sink
                            .emit(cx.row(action, Status::Failed, e.to_string()));
                        false
                    }
                }
            }
        }
    }

    async fn put(
        &self,
        cx: &mut Ctx<'_>,
        value: &SecretValue,
        previous: Option<String>,
        why: String,
    ) -> bool {
        let Some(existing) = cx.item.existing() else {
            return false;
        };
        let arn = existing.arn();
        let arn = arn.as_str();
        let token = match self.tokens().await {
            Ok(t) => t.token(&cx.identity, value, previous.as_deref()),
            Err(e) => {
                self.sink.emit(cx.row(Action::Update, Status::Failed, e));
                return false;
            }
        };
        let mut from = previous.clone().unwrap_or_default();
        // The token names the version labelled AWSPREVIOUS (a rollback moved AWSCURRENT back
        // from it, or a person did): AWS would answer a put with it "success" and change
        // nothing, so AWSCURRENT is moved to it instead.
        if existing.previous_version().as_deref() != Some(token.as_str()) {
            match self.target.put_value(arn, value, token.clone()).await {
                Ok((w, a)) => {
                    cx.attempts += a;
                    match w.current {
                        Some(true) => {
                            self.wrote();
                            return self.put_row(cx, Status::Ok, why, w.version_id, previous);
                        }
                        Some(false) => {} // ignored: the token names an existing version
                        // the answer did not say: ask which version is current
                        None => match self.target.describe(arn).await {
                            Ok((s, a)) => {
                                cx.attempts += a;
                                if s.current_version.as_deref() == Some(token.as_str()) {
                                    self.wrote();
                                    return self.put_row(cx, Status::Ok, why, token, previous);
                                }
                                from = s.current_version.unwrap_or_default();
                            }
                            Err(e) => {
                                cx.attempts += e.attempts;
                                let msg = format!(
                                    "PutSecretValue answered, but which version is AWSCURRENT cannot be read: {e}"
                                );
                                return self.put_row(
                                    cx,
                                    Status::Failed,
                                    msg,
                                    String::new(),
                                    previous,
                                );
                            }
                        },
                    }
                }
                Err(e) => {
                    cx.attempts += e.attempts;
                    if may_have_landed(&e) && self.landed(cx, arn, &token).await.is_some() {
                        self.wrote();
                        let why = "the response was lost, but AWS holds the version written";
                        return self.put_row(cx, Status::Ok, why.into(), token, previous);
                    }
                    return self.put_row(
                        cx,
                        Status::Failed,
                        e.to_string(),
                        String::new(),
                        previous,
                    );
                }
            }
        }
        self.move_to_existing(cx, arn, token, &from, why, previous)
            .await
    }

    /// A put whose token names an existing version that is not `AWSCURRENT`: AWS ignored it
    /// (or would), so `AWSCURRENT` is moved to that version, which holds this very value.
    async fn move_to_existing(
        &self,
        cx: &mut Ctx<'_>,
        arn: &str,
        token: String,
        from: &str,
        why: String,
        previous: Option<String>,
    ) -> bool {
        let note = |why: &str, what: String| {
            if why.is_empty() {
                what
            } else {
                format!("{why}; {what}")
            }
        };
        match self.target.move_current(arn, &token, from).await {
            Ok((_, a)) => {
                cx.attempts += a;
                self.wrote();
                let what = if self.target.writes() {
                    format!("AWSCURRENT moved to existing version {token}, which holds this value (AWS ignores a write with its token)")
                } else {
                    format!(
                        "would move AWSCURRENT to existing version {token}, which holds this value"
                    )
                };
                self.put_row(cx, Status::Ok, note(&why, what), token, previous)
            }
            Err(e) => {
                cx.attempts += e.attempts;
                // AWSCURRENT moved meanwhile: to this version (a concurrent run did the same),
                // or elsewhere (then the write is not done)
                let now = match self.target.describe(arn).await {
                    Ok((s, a)) => {
                        cx.attempts += a;
                        s.current_version
                    }
                    Err(d) => {
                        cx.attempts += d.attempts;
                        None
                    }
                };
                if now.as_deref() == Some(token.as_str()) {
                    let mut row = cx.row(
                        Action::Unchanged,
                        Status::Ok,
                        format!("written by a concurrent run: AWSCURRENT is already version {token}, which holds this value"),
                    );
                    row.version_id = token;
                    self.sink.emit(row);
                    true
                } else {
                    let what = format!(
                        "AWS ignored the write (its token names existing version {token}) and AWSCURRENT could not be moved there: {e}"
                    );
                    self.put_row(
                        cx,
                        Status::Failed,
                        note(&why, what),
                        String::new(),
                        previous,
                    )
                }
            }
        }
    }

    fn put_row(
        &self,
        cx: &mut Ctx<'_>,
        status: Status,
        why: String,
        version: String,
        previous: Option<String>,
    ) -> bool {
        let mut row = cx.row(Action::Update, status, why);
        row.version_id = version;
        row.previous_version_id = previous.unwrap_or_default();
        self.sink.emit(row);
        status == Status::Ok
    }

    async fn tag(&self, cx: &mut Ctx<'_>, tags: &BTreeMap<String, String>, why: String) -> bool {
        let Some(arn) = cx.item.existing().map(|e| e.arn()) else {
            return false;
        };
        cx.attempts = 0;
        match self.target.tag(&arn, tags).await {
            Ok((_, a)) => {
                cx.attempts += a;
                self.wrote();
                self.sink.emit(cx.row(Action::Retag, Status::Ok, why));
                true
            }
            Err(e) => {
                cx.attempts += e.attempts;
                self.sink
                    .emit(cx.row(Action::Retag, Status::Failed, e.to_string()));
                false
            }
        }
    }

    /// Reads the replication status of one of our secrets and runs what
    /// [`decide::replica_steps`] says. Only our own secrets get here (see `decide`).
    async fn check_replicas(&self, cx: &mut Ctx<'_>) -> bool {
        let Some(arn) = cx.item.existing().map(|e| e.arn()) else {
            return false;
        };
        cx.attempts = 0;
        let actual = match self.target.describe(&arn).await {
            Ok((s, a)) => {
                cx.attempts += a;
                s.replication.unwrap_or_default()
            }
            Err(e) => {
                cx.attempts += e.attempts;
                self.sink.emit(cx.row(
                    Action::Replicate,
                    Status::Failed,
                    format!("cannot read the replication status: {e}"),
                ));
                return false;
            }
        };
        for step in decide::replica_steps(&self.settings.rules.replicas, &actual) {
            match step {
                Step::Replicate { regions } if !self.replicate(cx, &regions).await => {
                    return false;
                }
                Step::Row {
                    action,
                    status,
                    why,
                } => {
                    self.sink.replica_failed();
                    self.sink.emit(cx.row(action, status, why));
                }
                _ => {}
            }
        }
        true
    }

    async fn replicate(&self, cx: &mut Ctx<'_>, regions: &[crate::target::ReplicaRegion]) -> bool {
        let Some(arn) = cx.item.existing().map(|e| e.arn()) else {
            return false;
        };
        let list = decide::region_list(regions);
        match self.target.replicate(&arn, regions).await {
            Ok((status, a)) => {
                cx.attempts += a;
                self.wrote();
                let failed: Vec<String> = status
                    .iter()
                    .filter(|r| {
                        r.status == crate::target::ReplicaStatus::Failed
                            && regions.iter().any(|x| x.region == r.region)
                    })
                    .map(|r| format!("{} ({})", r.region, r.message))
                    .collect();
                let (status, why) = if !self.target.writes() {
                    (
                        Status::Ok,
                        format!("replica missing: {list}; would be added"),
                    )
                } else if failed.is_empty() {
                    (Status::Ok, format!("replica added: {list}"))
                } else {
                    (
                        Status::Failed,
                        format!("replication to {list} failed: {}", failed.join("; ")),
                    )
                };
                self.sink.emit(cx.row(Action::Replicate, status, why));
                status == Status::Ok
            }
            Err(e) => {
                cx.attempts += e.attempts;
                self.sink.emit(cx.row(
                    Action::Replicate,
                    Status::Failed,
                    format!("replica {list}: {e}"),
                ));
                false
            }
        }
    }

    async fn restore(&self, cx: &mut Ctx<'_>) -> bool {
        let Some(arn) = cx.item.existing().map(|e| e.arn()) else {
            return false;
        };
        match self.target.restore(&arn).await {
            Ok((_, a)) => {
                cx.attempts += a;
                self.wrote();
                let why = if self.target.writes() {
                    ""
                } else {
                    "scheduled for deletion; would be restored, then updated if its value differs"
                };
                self.sink.emit(cx.row(Action::Restore, Status::Ok, why));
                true
            }
            Err(e) => {
                cx.attempts += e.attempts;
                // already restored (a concurrent run, or a lost answer)? then the work is done
                if let Ok((s, a)) = self.target.describe(&arn).await {
                    cx.attempts += a;
                    if s.deleted_date.is_none() {
                        let (action, why) = if may_have_landed(&e) {
                            self.wrote();
                            (
                                Action::Restore,
                                "the response was lost, but AWS restored it",
                            )
                        } else {
                            (Action::Unchanged, "already restored (by a concurrent run)")
                        };
                        self.sink.emit(cx.row(action, Status::Ok, why));
                        return true;
                    }
                }
                self.sink
                    .emit(cx.row(Action::Restore, Status::Failed, e.to_string()));
                false
            }
        }
    }

    /// The secrets found gone from the source while items ran.
    pub(crate) fn take_gone(&self) -> Vec<Orphan> {
        std::mem::take(&mut *self.gone.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reports orphans, and schedules their deletion when `prune` says so (with its recovery
    /// window); otherwise each row carries the reason nothing is pruned. One
    /// [`Event::Done`] per orphan.
    pub(crate) async fn orphans(&self, plan: &Plan, orphans: &[Orphan], prune: &Prune) {
        stream::iter(orphans)
            .map(|o| {
                async move {
                    let start = Instant::now();
                    let secret = plan.secret(o);
                    let arn = secret.arn();
                    let mut row = Row::new(o.identity.path(), secret.name(), Action::Orphan, Status::Skipped);
                    row.target_arn.clone_from(&arn);
                    row.previous_version_id = secret.current_version().unwrap_or_default();
                    let why = o.why.words();
                    match *prune {
                        Prune::Keep(ref refusal) => row.error = format!("{why}; {}", refusal.words()),
                        Prune::Delete { window_days: days } => {
                            row.action = Action::Delete;
                            match self.target.schedule_deletion(&arn, days).await {
                                Ok((date, a)) => {
                                    self.wrote();
                                    row.status = Status::Ok;
                                    row.attempts = a;
                                    row.error = if self.target.writes() {
                                        format!("{why}; scheduled for deletion on {date} ({days}-day recovery window)")
                                    } else {
                                        format!("{why}; would be scheduled for deletion with a {days}-day recovery window")
                                    };
                                }
                                Err(e) => {
                                    row.attempts = e.attempts;
                                    // already scheduled (a concurrent prune, or this request
                                    // landed and its answer was lost)? AWS refuses a second one
                                    match self.target.describe(&arn).await {
                                        Ok((s, a)) if s.deleted_date.is_some() => {
                                            row.attempts += a;
                                            let d = s.deleted_date.unwrap_or_default();
                                            row.status = Status::Ok;
                                            if may_have_landed(&e) {
                                                self.wrote();
                                                row.error = format!("{why}; the response was lost, but AWS scheduled it for deletion on {d}");
                                            } else {
                                                // not this run's deletion: claimed by the run that made it
                                                row.action = Action::Orphan;
                                                row.error = format!("{why}; already scheduled for deletion on {d} (by a concurrent run)");
                                            }
                                        }
                                        Ok((_, a)) => {
                                            row.attempts += a;
                                            row.status = Status::Failed;
                                            row.error = e.to_string();
                                        }
                                        Err(d) => {
                                            row.attempts += d.attempts;
                                            row.status = Status::Failed;
                                            row.error = e.to_string();
                                        }
                                    }
                                }
                            }
                        }
                    }
                    row.duration_ms = start.elapsed().as_millis();
                    let failed = row.status == Status::Failed;
                    self.sink.emit(row);
                    self.events.event(&Event::Done { failed });
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<()>()
            .await;
    }
}

enum Fact {
    Value,
    Gone(String),
    Unread(String),
    Failed(String),
}

enum Next {
    Done,
    Restored,
}

pub(crate) mod undo;

#[cfg(test)]
mod tests;
