//! The executor: the only place that writes to AWS.
//!
//! It interprets a [`Plan`] item by item, at most `concurrency` items in flight, each AWS call
//! under the group's limiter and the shared retry policy (`retry::call`, via
//! `aws::secrets`). In dry-run mode it walks the same path and stops short of every write, so
//! `plan`, `migrate` and `reconcile --check` cannot disagree about what would happen. Every
//! outcome becomes a report row through the [`Sink`]; one failing secret never stops the others.
//! A cancel flag (Ctrl-C) stops dispatching new items; items in flight finish and the rest are
//! reported as not started.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures::stream::{self, StreamExt};

use crate::aws::secrets::{CurrentValue, NewSecret, SecretsTarget, TargetSecret, BATCH_GET_MAX};
use crate::aws::token::TokenDeriver;
use crate::config::OnConflict;
use crate::naming;
use crate::plan::{expected_tags, tag_drift, Decision, Item};
use crate::progress::Progress;
use crate::report::{Action, Report, Row, Status};
use crate::secret::{SecretValue, MAX_SECRET_BYTES};
use crate::source::{Fetched, Source, SourceErrorKind};

/// Collects report rows and counts; shared by all tasks of a run.
pub struct Sink {
    report: Mutex<Report>,
    counts: Mutex<BTreeMap<(Action, Status), u64>>,
    write_error: Mutex<Option<std::io::Error>>,
    /// Write requests that succeeded.
    pub writes: AtomicU64,
    /// Dry run only: values the source would not let us read (list-only access).
    pub unread: AtomicU64,
    dry_run: bool,
}

impl Sink {
    /// A sink writing to `report`.
    pub fn new(report: Report, dry_run: bool) -> Sink {
        Sink {
            report: Mutex::new(report),
            counts: Mutex::new(BTreeMap::new()),
            write_error: Mutex::new(None),
            writes: AtomicU64::new(0),
            unread: AtomicU64::new(0),
            dry_run,
        }
    }

    /// Records a row in the report and the counters.
    pub fn emit(&self, mut row: Row) {
        if self.dry_run && matches!(row.status, Status::Ok | Status::Skipped) {
            row.status = Status::Planned;
        }
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((row.action, row.status))
            .or_default() += 1;
        // A row about no secret is a fatal error that the command prints itself.
        let about_a_secret = !(row.source_path.is_empty() && row.target_name.is_empty());
        if row.status == Status::Failed && about_a_secret {
            tracing::warn!(path = %row.source_path, target = %row.target_name, action = row.action.as_str(), error = %row.error, "failed");
        }
        let mut report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = report.write(&row) {
            let mut slot = self.write_error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e);
            }
        }
    }

    /// Counts by action and status so far.
    pub fn counts(&self) -> BTreeMap<(Action, Status), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Rows with status `failed`.
    pub fn failed(&self) -> u64 {
        self.counts()
            .iter()
            .filter(|((_, s), _)| *s == Status::Failed)
            .map(|(_, n)| n)
            .sum()
    }

    /// The first error writing the report, if any (taken).
    pub fn take_write_error(&self) -> Option<std::io::Error> {
        self.write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The report's path.
    pub fn report_path(&self) -> std::path::PathBuf {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .path()
            .to_owned()
    }
}

/// Settings of one execution.
pub struct Settings {
    /// Stop short of every write.
    pub dry_run: bool,
    /// Restore our secrets that are scheduled for deletion.
    pub restore_deleted: bool,
    /// CMK for new secrets.
    pub kms_key_id: Option<String>,
    /// Tags from config.
    pub config_tags: BTreeMap<String, String>,
    /// Copy source metadata into tags.
    pub copy_metadata: bool,
    /// Items in flight.
    pub concurrency: usize,
    /// Naming policy (for the last-line name check).
    pub policy: naming::Policy,
    /// Idempotency tokens.
    pub tokens: TokenDeriver,
}

/// Current target values, fetched in bulk before items run.
#[derive(Default)]
pub struct Prefetched {
    values: HashMap<String, CurrentValue>,
    errors: HashMap<String, String>,
}

/// Runs plan items against the target.
pub struct Executor<'a> {
    /// The target.
    pub target: &'a SecretsTarget,
    /// The source.
    pub source: &'a dyn Source,
    /// Settings.
    pub settings: &'a Settings,
    /// Where rows go.
    pub sink: &'a Sink,
    /// Set to stop dispatching.
    pub cancel: &'a AtomicBool,
    /// Progress display.
    pub progress: &'a Progress,
}

struct Ctx<'i> {
    item: &'i Item,
    start: Instant,
    attempts: u32,
    version: String,
}

impl Ctx<'_> {
    fn row(&self, action: Action, status: Status, error: impl Into<String>) -> Row {
        let mut r = Row::new(
            &self.item.source.path,
            &self.item.mapping.target,
            action,
            status,
        );
        r.source_version = self.version.clone();
        r.target_arn = self
            .item
            .existing
            .as_ref()
            .map(|e| e.arn.clone())
            .unwrap_or_default();
        r.attempts = self.attempts;
        r.error = error.into();
        r.duration_ms = self.start.elapsed().as_millis();
        r
    }
}

/// What reading the source gave.
enum Read {
    Value(SecretValue, BTreeMap<String, String>),
    /// Reported already.
    Done,
    /// Value could not be read in a dry run; the reason.
    Unread(String),
}

fn description(identity: &str) -> String {
    let mut d = format!("Migrated by secretport from {identity}");
    if d.len() > 2048 {
        let mut cut = 2048;
        while !d.is_char_boundary(cut) {
            cut -= 1;
        }
        d.truncate(cut);
    }
    d
}

impl Executor<'_> {
    /// Reads the current value of every existing secret whose value the plan must compare,
    /// [`BATCH_GET_MAX`] per `BatchGetSecretValue` call.
    pub async fn prefetch(&self, items: &[Item]) -> Prefetched {
        let ids: Vec<String> = items
            .iter()
            .filter(|i| {
                matches!(
                    &i.decision,
                    Decision::Compare
                        | Decision::Conflict {
                            owner: None,
                            policy: OnConflict::Adopt | OnConflict::Overwrite,
                        }
                )
            })
            .filter_map(|i| i.existing.as_ref().map(|e| e.arn.clone()))
            .collect();
        let chunks: Vec<Vec<String>> = ids.chunks(BATCH_GET_MAX).map(<[_]>::to_vec).collect();
        let results: Vec<_> = stream::iter(chunks)
            .map(|chunk| async move { (self.target.batch_get(&chunk).await, chunk) })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut p = Prefetched::default();
        for (r, chunk) in results {
            match r {
                Ok((values, errors, _)) => {
                    p.values.extend(values);
                    p.errors.extend(errors);
                }
                Err(e) => {
                    for id in chunk {
                        p.errors.insert(id, e.to_string());
                    }
                }
            }
        }
        p
    }

    /// Runs every item, `concurrency` at a time.
    pub async fn run(&self, items: &[Item], pre: &Prefetched) {
        stream::iter(items)
            .map(|item| async move {
                let failed_before = self.sink.failed();
                self.run_item(item, pre).await;
                self.progress.inc(self.sink.failed() > failed_before);
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<()>()
            .await;
    }

    async fn read_source(&self, cx: &mut Ctx<'_>, action: Action) -> Read {
        match self.source.fetch(&cx.item.source).await {
            Ok(Fetched::Value {
                value,
                version,
                metadata,
            }) => {
                if let Some(v) = version {
                    cx.version = v;
                }
                if value.len() > MAX_SECRET_BYTES {
                    self.sink.emit(cx.row(
                        Action::Skip,
                        Status::Failed,
                        format!(
                            "value is {} bytes; AWS Secrets Manager allows at most {MAX_SECRET_BYTES}",
                            value.len()
                        ),
                    ));
                    return Read::Done;
                }
                let mut meta = cx.item.source.metadata.clone();
                meta.extend(metadata);
                Read::Value(value, meta)
            }
            Ok(Fetched::Skip { reason, version }) => {
                if let Some(v) = version {
                    cx.version = v;
                }
                self.sink
                    .emit(cx.row(Action::Skip, Status::Skipped, reason));
                Read::Done
            }
            Err(e) => {
                let msg = format!("source read failed: {e}");
                if self.settings.dry_run
                    && matches!(e.kind, SourceErrorKind::Denied | SourceErrorKind::Auth)
                {
                    return Read::Unread(msg);
                }
                let a = if matches!(action, Action::Create) {
                    Action::Create
                } else {
                    Action::Skip
                };
                self.sink.emit(cx.row(a, Status::Failed, msg));
                Read::Done
            }
        }
    }

    fn tags_for(&self, item: &Item, meta: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let empty = BTreeMap::new();
        let meta = if self.settings.copy_metadata {
            meta
        } else {
            &empty
        };
        expected_tags(&self.settings.config_tags, meta, &item.tag_value)
    }

    async fn run_item(&self, item: &Item, pre: &Prefetched) {
        let mut cx = Ctx {
            item,
            start: Instant::now(),
            attempts: 0,
            version: item.source.version.clone().unwrap_or_default(),
        };
        if let Some(reason) = &item.source.skip {
            self.sink
                .emit(cx.row(Action::Skip, Status::Skipped, reason.clone()));
            return;
        }
        if self.cancel.load(Ordering::Relaxed) {
            let action = match item.decision {
                Decision::Create => Action::Create,
                _ => Action::Skip,
            };
            self.sink
                .emit(cx.row(action, Status::Skipped, "interrupted: not started"));
            return;
        }
        if !naming::is_valid_target(&item.mapping.target, self.settings.policy) {
            self.sink.emit(cx.row(
                Action::Skip,
                Status::Failed,
                "target name rejected by the naming rules",
            ));
            return;
        }
        match &item.decision {
            Decision::Create => self.create(&mut cx).await,
            Decision::Compare => self.compare(&mut cx, pre, false).await,
            Decision::ScheduledForDeletion { date, ours } => {
                if *ours && self.settings.restore_deleted {
                    self.restore_then_compare(&mut cx, date).await;
                } else {
                    let why = if *ours {
                        format!("scheduled for deletion on {date}; rerun with --restore-deleted to restore it")
                    } else {
                        format!("scheduled for deletion on {date} and not managed by secretport")
                    };
                    self.sink.emit(cx.row(Action::Skip, Status::Skipped, why));
                }
            }
            Decision::Conflict { owner, policy } => match (owner, policy) {
                (Some(other), _) => self.sink.emit(cx.row(
                    Action::Conflict,
                    Status::Skipped,
                    format!("name is managed by secretport for another source ({other})"),
                )),
                (None, OnConflict::Skip) => self.sink.emit(cx.row(
                    Action::Conflict,
                    Status::Skipped,
                    "exists and is not managed by secretport (on_conflict = skip)",
                )),
                (None, OnConflict::Fail) => self.sink.emit(cx.row(
                    Action::Conflict,
                    Status::Failed,
                    "exists and is not managed by secretport (on_conflict = fail)",
                )),
                (None, OnConflict::Adopt) => self.compare(&mut cx, pre, true).await,
                (None, OnConflict::Overwrite) => self.compare(&mut cx, pre, false).await,
            },
        }
    }

    async fn create(&self, cx: &mut Ctx<'_>) {
        let (value, meta) = match self.read_source(cx, Action::Create).await {
            Read::Value(v, m) => (v, m),
            Read::Done => return,
            Read::Unread(why) => {
                self.sink.unread.fetch_add(1, Ordering::Relaxed);
                self.sink.emit(cx.row(
                    Action::Create,
                    Status::Planned,
                    format!("value unread ({why}); size not checked"),
                ));
                return;
            }
        };
        if self.settings.dry_run {
            self.sink.emit(cx.row(Action::Create, Status::Planned, ""));
            return;
        }
        let tags = self.tags_for(cx.item, &meta);
        let name = cx.item.mapping.target.as_str();
        let new = NewSecret {
            name,
            value: &value,
            token: self.settings.tokens.token(&cx.item.identity, &value, None),
            description: &description(&cx.item.identity),
            kms_key_id: self.settings.kms_key_id.as_deref(),
            tags: &tags,
        };
        match self.target.create(&new).await {
            Ok((arn, attempts)) => {
                cx.attempts += attempts;
                self.sink.writes.fetch_add(1, Ordering::Relaxed);
                let mut row = cx.row(Action::Create, Status::Ok, "");
                row.target_arn = arn;
                self.sink.emit(row);
            }
            Err(e) => {
                cx.attempts += e.attempts;
                let exists = matches!(
                    e.code.as_deref(),
                    Some("ResourceExistsException" | "InvalidRequestException")
                );
                if !exists {
                    self.sink
                        .emit(cx.row(Action::Create, Status::Failed, e.to_string()));
                    return;
                }
                // AWS answers InvalidRequestException for a name scheduled for deletion, moto
                // ResourceExistsException: decide from DescribeSecret's DeletedDate instead.
                match self.target.describe(name).await {
                    Ok((s, attempts)) => {
                        cx.attempts += attempts;
                        let mut row = match &s.deleted_date {
                            Some(d) => cx.row(
                                Action::Skip,
                                Status::Skipped,
                                format!("scheduled for deletion on {d}; rerun with --restore-deleted to restore it"),
                            ),
                            None => cx.row(
                                Action::Conflict,
                                Status::Failed,
                                format!("created by someone else during this run ({})", e.message),
                            ),
                        };
                        row.target_arn = s.arn;
                        self.sink.emit(row);
                    }
                    Err(d) => {
                        cx.attempts += d.attempts;
                        self.sink
                            .emit(cx.row(Action::Create, Status::Failed, e.to_string()));
                    }
                }
            }
        }
    }

    async fn restore_then_compare(&self, cx: &mut Ctx<'_>, date: &str) {
        let Some(existing) = cx.item.existing.clone() else {
            return;
        };
        if self.settings.dry_run {
            self.sink.emit(cx.row(
                Action::Restore,
                Status::Planned,
                format!("scheduled for deletion on {date}; will be restored, then updated if its value differs"),
            ));
            return;
        }
        match self.target.restore(&existing.arn).await {
            Ok((_, a)) => {
                cx.attempts += a;
                self.sink.writes.fetch_add(1, Ordering::Relaxed);
                self.sink.emit(cx.row(Action::Restore, Status::Ok, ""));
            }
            Err(e) => {
                cx.attempts += e.attempts;
                self.sink
                    .emit(cx.row(Action::Restore, Status::Failed, e.to_string()));
                return;
            }
        }
        cx.attempts = 0;
        let mut pre = Prefetched::default();
        match self.target.get_value(&existing.arn).await {
            Ok((Some(v), _)) => {
                pre.values.insert(existing.arn.clone(), v);
            }
            Ok((None, _)) => {}
            Err(e) => {
                pre.errors.insert(existing.arn.clone(), e.to_string());
            }
        }
        self.compare(cx, &pre, false).await;
    }

    /// Compares the source value with the target's and writes the difference; `adopt` only
    /// takes over an unmanaged secret whose value already equals the source.
    async fn compare(&self, cx: &mut Ctx<'_>, pre: &Prefetched, adopt: bool) {
        let Some(existing) = cx.item.existing.clone() else {
            return;
        };
        let unmanaged = !existing.is_managed();
        let (value, meta) = match self.read_source(cx, Action::Update).await {
            Read::Value(v, m) => (v, m),
            Read::Done => return,
            Read::Unread(why) => {
                self.sink.unread.fetch_add(1, Ordering::Relaxed);
                self.sink.emit(cx.row(
                    Action::Update,
                    Status::Planned,
                    format!("value unread ({why}); update or unchanged cannot be decided"),
                ));
                return;
            }
        };
        let current = match pre.values.get(&existing.arn) {
            Some(c) => Some(c),
            None => match pre.errors.get(&existing.arn) {
                Some(err) => {
                    self.sink.emit(cx.row(
                        Action::Update,
                        Status::Failed,
                        format!("cannot read the current value: {err}"),
                    ));
                    return;
                }
                None => None, // a secret without a current value
            },
        };
        let same = current.is_some_and(|c| c.value.same_as(&value));
        if adopt && !same {
            self.sink.emit(cx.row(
                Action::Conflict,
                Status::Skipped,
                "exists, not managed by secretport, and its value differs from the source: not adopted (on_conflict = overwrite would replace it)",
            ));
            return;
        }
        if same {
            if !unmanaged {
                self.sink.emit(cx.row(Action::Unchanged, Status::Ok, ""));
            }
        } else if self.settings.dry_run {
            let why = if unmanaged {
                "exists and is not managed by secretport; on_conflict = overwrite"
            } else {
                ""
            };
            self.sink.emit(cx.row(Action::Update, Status::Planned, why));
        } else {
            let token = self.settings.tokens.token(
                &cx.item.identity,
                &value,
                current.and_then(|c| c.version_id.as_deref()),
            );
            match self.target.put_value(&existing.arn, &value, token).await {
                Ok((_, a)) => {
                    cx.attempts += a;
                    self.sink.writes.fetch_add(1, Ordering::Relaxed);
                    self.sink.emit(cx.row(Action::Update, Status::Ok, ""));
                }
                Err(e) => {
                    cx.attempts += e.attempts;
                    self.sink
                        .emit(cx.row(Action::Update, Status::Failed, e.to_string()));
                    return;
                }
            }
        }
        self.retag(cx, &existing, &meta, unmanaged, adopt).await;
    }

    async fn retag(
        &self,
        cx: &mut Ctx<'_>,
        existing: &TargetSecret,
        meta: &BTreeMap<String, String>,
        unmanaged: bool,
        adopt: bool,
    ) {
        let expected = self.tags_for(cx.item, meta);
        let drift = tag_drift(&expected, &existing.tags);
        if drift.is_empty() {
            return;
        }
        let keys: Vec<&str> = drift.keys().map(String::as_str).collect();
        let why = match (unmanaged, adopt) {
            (true, true) => format!("adopted (value already equal); tags {}", keys.join(", ")),
            (true, false) => format!(
                "taken over (on_conflict = overwrite); tags {}",
                keys.join(", ")
            ),
            _ => format!("tags missing or changed: {}", keys.join(", ")),
        };
        cx.attempts = 0;
        if self.settings.dry_run {
            self.sink.emit(cx.row(Action::Retag, Status::Planned, why));
            return;
        }
        match self.target.tag(&existing.arn, &drift).await {
            Ok((_, a)) => {
                cx.attempts += a;
                self.sink.writes.fetch_add(1, Ordering::Relaxed);
                self.sink.emit(cx.row(Action::Retag, Status::Ok, why));
            }
            Err(e) => {
                cx.attempts += e.attempts;
                self.sink
                    .emit(cx.row(Action::Retag, Status::Failed, e.to_string()));
            }
        }
    }

    /// Reports orphans, and schedules their deletion when `prune` is `Ok`. `prune` carries the
    /// reason when pruning is refused or not asked for.
    pub async fn orphans(&self, orphans: &[TargetSecret], prune: Result<i64, String>) {
        stream::iter(orphans)
            .map(|o| {
                let prune = prune.clone();
                async move {
                    let start = Instant::now();
                    let mut row = Row::new(
                        o.source_tag().unwrap_or(""),
                        &o.name,
                        Action::Orphan,
                        Status::Skipped,
                    );
                    row.target_arn = o.arn.clone();
                    match prune {
                        Err(why) => {
                            row.status = if self.settings.dry_run {
                                Status::Planned
                            } else {
                                Status::Skipped
                            };
                            row.error = why;
                        }
                        Ok(days) if self.settings.dry_run => {
                            row.action = Action::Delete;
                            row.status = Status::Planned;
                            row.error = format!("source is gone; would be scheduled for deletion with a {days}-day recovery window");
                        }
                        Ok(days) => {
                            row.action = Action::Delete;
                            match self.target.schedule_deletion(&o.arn, days).await {
                                Ok((date, a)) => {
                                    self.sink.writes.fetch_add(1, Ordering::Relaxed);
                                    row.status = Status::Ok;
                                    row.attempts = a;
                                    row.error = format!("source is gone; scheduled for deletion on {date} ({days}-day recovery window)");
                                }
                                Err(e) => {
                                    row.status = Status::Failed;
                                    row.attempts = e.attempts;
                                    row.error = e.to_string();
                                }
                            }
                        }
                    }
                    row.duration_ms = start.elapsed().as_millis();
                    self.sink.emit(row);
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<()>()
            .await;
    }
}
