//! Request-rate limits per AWS API group, adaptive on throttling.
//!
//! Each quota group (Secrets Manager writes and reads, KMS, SSM, SSM `DescribeParameters`,
//! DynamoDB, Vault) gets one [`AdaptiveLimiter`]: a `governor` token bucket at the
//! configured rate with a small burst (a fifth of a second's worth), so the first second does not
//! spend the account's whole burst at once; AWS's own bucket then keeps a reserve for jitter in
//! arrival times. When AWS answers with throttling anyway (another writer shares the account's
//! quota) the limiter lowers its rate multiplicatively, at most once per cool-down so a volley of
//! throttles from concurrent calls counts once, and climbs back additively while calls succeed
//! (AIMD, as TCP does), instead of hammering a quota that is already spent.
//!
//! Which group an AWS call draws from is decided by its [`Op`] ([`Op::group`], an exhaustive
//! match): callers name the operation, never the limiter.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;
use crate::shutdown::Shutdown;

/// Multiplicative decrease factor on throttling.
const DECREASE: f64 = 0.7;
/// A rate is never lowered below this share of the configured rate.
const FLOOR_SHARE: f64 = 0.05;
/// Least time between two decreases: a volley of throttles from calls that were already in
/// flight counts once.
const DECREASE_GAP: Duration = Duration::from_millis(250);
/// Time between two increases.
const COOL_DOWN: Duration = Duration::from_millis(1000);
/// No increase until this long after the last throttle.
const QUIET: Duration = Duration::from_secs(2);
/// Additive increase per cool-down period, as a share of the configured rate.
const INCREASE_SHARE: f64 = 0.05;

struct State {
    current: f64,
    limiter: Arc<DefaultDirectRateLimiter>,
    generation: u64,
    last_change: Instant,
    last_throttle: Option<Instant>,
}

/// A token bucket whose rate adapts to throttling (AIMD), never above the configured rate.
pub struct AdaptiveLimiter {
    name: &'static str,
    max: f64,
    state: Mutex<State>,
    throttles: AtomicU64,
    decreases: AtomicU64,
    retries: AtomicU64,
    shutdown: Shutdown,
}

fn bucket(rate: f64, burst: u32) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    Arc::new(RateLimiter::direct(quota))
}

impl AdaptiveLimiter {
    /// A limiter for `per_second` requests per second.
    pub(crate) fn new(name: &'static str, per_second: u32) -> Self {
        let max = f64::from(per_second.max(1));
        AdaptiveLimiter {
            name,
            max,
            state: Mutex::new(State {
                current: max,
                limiter: bucket(max, Self::burst_for(max)),
                generation: 0,
                last_change: Instant::now(),
                last_throttle: None,
            }),
            throttles: AtomicU64::new(0),
            decreases: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            shutdown: Shutdown::new(),
        }
    }

    fn burst_for(rate: f64) -> u32 {
        ((rate / 5.0).floor() as u32).max(1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run's shutdown signal (retry loops stop retrying once it is set).
    pub(crate) fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The group's name (`write`, `read`, `kms`, `ssm`, `ssm-describe`, `dynamodb`, `vault`).
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// Waits until a request may be sent. A waiter whose bucket was replaced meanwhile (the
    /// rate changed) waits again on the new one, so a lowered rate takes effect at once.
    pub(crate) async fn acquire(&self) {
        loop {
            let (generation, limiter) = {
                let s = self.lock();
                (s.generation, s.limiter.clone())
            };
            limiter.until_ready().await;
            if self.lock().generation == generation {
                return;
            }
        }
    }

    fn set_rate(s: &mut State, rate: f64, burst: u32) {
        s.current = rate;
        s.limiter = bucket(rate, burst);
        s.generation += 1;
        s.last_change = Instant::now();
    }

    /// Records a throttled answer: lowers the rate (once per cool-down).
    pub(crate) fn on_throttle(&self) {
        self.throttles.fetch_add(1, Ordering::Relaxed);
        let mut s = self.lock();
        s.last_throttle = Some(Instant::now());
        if s.last_change.elapsed() < DECREASE_GAP && s.current < self.max {
            return;
        }
        let next = (s.current * DECREASE).max(self.max * FLOOR_SHARE).max(0.5);
        if next < s.current {
            Self::set_rate(&mut s, next, 1);
            self.decreases.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                group = self.name,
                rate = next,
                "throttled: lowering request rate"
            );
        }
    }

    /// Records a successful answer: raises the rate again after a cool-down.
    pub(crate) fn on_success(&self) {
        let mut s = self.lock();
        let quiet = s.last_throttle.is_none_or(|t| t.elapsed() >= QUIET);
        if s.current >= self.max || s.last_change.elapsed() < COOL_DOWN || !quiet {
            return;
        }
        let next = (s.current + self.max * INCREASE_SHARE).min(self.max);
        let burst = if next >= self.max {
            Self::burst_for(next)
        } else {
            1
        };
        Self::set_rate(&mut s, next, burst);
        tracing::debug!(group = self.name, rate = next, "recovering request rate");
    }

    /// The rate in force now.
    pub(crate) fn current_rate(&self) -> f64 {
        self.lock().current
    }

    /// Throttled answers seen.
    pub(crate) fn throttles(&self) -> u64 {
        self.throttles.load(Ordering::Relaxed)
    }

    /// Records that a failed call is being sent again ([`crate::retry::call`]).
    pub(crate) fn on_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls sent again after a retryable failure (throttled, transient).
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// The limiters of one run.
pub struct Limits {
    /// Secrets Manager writes ([`Group::Write`]: CreateSecret, PutSecretValue, TagResource,
    /// DeleteSecret, RestoreSecret, UpdateSecretVersionStage, ReplicateSecretToRegions).
    pub(crate) write: AdaptiveLimiter,
    /// Secrets Manager reads and STS ([`Group::Read`]).
    pub(crate) read: AdaptiveLimiter,
    /// KMS Decrypt/Encrypt/GenerateDataKey ([`Group::Kms`]).
    pub(crate) kms: AdaptiveLimiter,
    /// SSM Parameter Store reads inside its throughput quota: GetParameters, GetParameter
    /// (and ListTagsForResource) (the `ssm` source).
    pub(crate) ssm: AdaptiveLimiter,
    /// SSM `DescribeParameters` (the `ssm` source's listing): outside the throughput quota,
    /// under a limit of its own.
    pub(crate) ssm_describe: AdaptiveLimiter,
    /// DynamoDB Scan (the `credstash` source).
    pub(crate) dynamodb: AdaptiveLimiter,
    /// Vault/OpenBao requests (lists, reads, logins).
    pub(crate) vault: AdaptiveLimiter,
}

/// An API operation secretport calls, with the quota group it draws from ([`Op::group`]) and
/// its AWS name ([`Op::name`], what messages, reports and call counts show). The one table of
/// operation → limiter: a new operation is a new variant, which every match below must place,
/// so no call can be paced by the wrong limiter for want of a spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `secretsmanager:CreateSecret`.
    CreateSecret,
    /// `secretsmanager:PutSecretValue`.
    PutSecretValue,
    /// `secretsmanager:TagResource`.
    TagResource,
    /// `secretsmanager:DeleteSecret`.
    DeleteSecret,
    /// `secretsmanager:RestoreSecret`.
    RestoreSecret,
    /// `secretsmanager:UpdateSecretVersionStage`.
    UpdateSecretVersionStage,
    /// `secretsmanager:ReplicateSecretToRegions`.
    ReplicateSecretToRegions,
    /// `secretsmanager:ListSecrets`.
    ListSecrets,
    /// `secretsmanager:DescribeSecret`.
    DescribeSecret,
    /// `secretsmanager:GetSecretValue`.
    GetSecretValue,
    /// `secretsmanager:BatchGetSecretValue`.
    BatchGetSecretValue,
    /// `sts:GetCallerIdentity` (paced with the target's reads).
    GetCallerIdentity,
    /// `kms:Decrypt`.
    Decrypt,
    /// `kms:Encrypt` (`kms-export`).
    Encrypt,
    /// `kms:GenerateDataKey` (`kms-export`).
    GenerateDataKey,
    /// `ssm:GetParameters`.
    GetParameters,
    /// `ssm:GetParameter`.
    GetParameter,
    /// `ssm:ListTagsForResource`.
    ListTagsForResource,
    /// `ssm:DescribeParameters`: outside SSM's throughput quota, under a limit of its own.
    DescribeParameters,
    /// `dynamodb:Scan` (the `credstash` source's listing).
    Scan,
}

impl Op {
    /// The quota group it draws from. AWS meters Secrets Manager's reads and writes
    /// separately (per account and region), KMS on its own, SSM's throughput quota apart from
    /// `DescribeParameters`, and DynamoDB per table.
    pub(crate) const fn group(self) -> Group {
        match self {
            Op::CreateSecret
            | Op::PutSecretValue
            | Op::TagResource
            | Op::DeleteSecret
            | Op::RestoreSecret
            | Op::UpdateSecretVersionStage
            | Op::ReplicateSecretToRegions => Group::Write,
            Op::ListSecrets
            | Op::DescribeSecret
            | Op::GetSecretValue
            | Op::BatchGetSecretValue
            | Op::GetCallerIdentity => Group::Read,
            Op::Decrypt | Op::Encrypt | Op::GenerateDataKey => Group::Kms,
            Op::GetParameters | Op::GetParameter | Op::ListTagsForResource => Group::Ssm,
            Op::DescribeParameters => Group::SsmDescribe,
            Op::Scan => Group::Dynamodb,
        }
    }

    /// The AWS service's name for it (`CreateSecret`).
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Op::CreateSecret => "CreateSecret",
            Op::PutSecretValue => "PutSecretValue",
            Op::TagResource => "TagResource",
            Op::DeleteSecret => "DeleteSecret",
            Op::RestoreSecret => "RestoreSecret",
            Op::UpdateSecretVersionStage => "UpdateSecretVersionStage",
            Op::ReplicateSecretToRegions => "ReplicateSecretToRegions",
            Op::ListSecrets => "ListSecrets",
            Op::DescribeSecret => "DescribeSecret",
            Op::GetSecretValue => "GetSecretValue",
            Op::BatchGetSecretValue => "BatchGetSecretValue",
            Op::GetCallerIdentity => "GetCallerIdentity",
            Op::Decrypt => "Decrypt",
            Op::Encrypt => "Encrypt",
            Op::GenerateDataKey => "GenerateDataKey",
            Op::GetParameters => "GetParameters",
            Op::GetParameter => "GetParameter",
            Op::ListTagsForResource => "ListTagsForResource",
            Op::DescribeParameters => "DescribeParameters",
            Op::Scan => "Scan",
        }
    }

    /// The IAM action prefix of its service (`secretsmanager`, `sts`, `kms`, `ssm`,
    /// `dynamodb`), for messages that name the call as `ssm:GetParameters`.
    pub(crate) const fn service(self) -> &'static str {
        match self.group() {
            Group::Write | Group::Read => match self {
                Op::GetCallerIdentity => "sts",
                _ => "secretsmanager",
            },
            Group::Kms => "kms",
            Group::Ssm | Group::SsmDescribe => "ssm",
            Group::Dynamodb => "dynamodb",
        }
    }

    /// `service:Name`, as IAM and CloudTrail spell it (`ssm:GetParameters`).
    pub(crate) fn qualified(self) -> String {
        format!("{}:{}", self.service(), self.name())
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A quota group: one limiter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// Secrets Manager writes.
    Write,
    /// Secrets Manager reads (and STS).
    Read,
    /// KMS cryptographic operations.
    Kms,
    /// SSM Parameter Store reads inside its throughput quota.
    Ssm,
    /// SSM `DescribeParameters`.
    SsmDescribe,
    /// DynamoDB reads (credstash).
    Dynamodb,
}

impl Limits {
    /// Every group's limiter, for the run's call counts (`--metrics-file`).
    pub(crate) fn all(&self) -> [&AdaptiveLimiter; 6] {
        [
            &self.write,
            &self.read,
            &self.kms,
            &self.ssm,
            &self.dynamodb,
            &self.vault,
        ]
    }

    /// The limiter of the group `op` draws from ([`Op::group`]).
    pub(crate) fn for_op(&self, op: Op) -> &AdaptiveLimiter {
        match op.group() {
            Group::Write => &self.write,
            Group::Read => &self.read,
            Group::Kms => &self.kms,
            Group::Ssm => &self.ssm,
            Group::SsmDescribe => &self.ssm_describe,
            Group::Dynamodb => &self.dynamodb,
        }
    }

    /// Limiters at the configured rates, with no shutdown signal.
    pub fn new(cfg: &LimitsConfig) -> Self {
        Self::with_shutdown(cfg, &Shutdown::new())
    }

    /// Limiters at the configured rates whose retry loops stop once `shutdown` is set.
    pub(crate) fn with_shutdown(cfg: &LimitsConfig, shutdown: &Shutdown) -> Self {
        let group = |name, rate| {
            let mut l = AdaptiveLimiter::new(name, rate);
            l.shutdown = shutdown.clone();
            l
        };
        Limits {
            write: group("write", cfg.write_per_second),
            read: group("read", cfg.read_per_second),
            kms: group("kms", cfg.kms_per_second),
            ssm: group("ssm", cfg.ssm_per_second),
            ssm_describe: group("ssm-describe", cfg.ssm_describe_per_second),
            dynamodb: group("dynamodb", cfg.dynamodb_per_second),
            vault: group("vault", cfg.vault_per_second),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decreases_once_per_cool_down_and_recovers() {
        let l = AdaptiveLimiter::new("write", 50);
        l.on_throttle();
        l.on_throttle();
        l.on_throttle();
        assert!(
            (l.current_rate() - 35.0).abs() < 1e-9,
            "{}",
            l.current_rate()
        );
        assert_eq!(l.throttles(), 3);
        // no increase while throttles are recent
        l.lock().last_change = Instant::now() - COOL_DOWN * 2;
        l.on_success();
        assert!((l.current_rate() - 35.0).abs() < 1e-9);
        let long_ago = Instant::now() - QUIET * 2;
        l.lock().last_throttle = Some(long_ago);
        l.lock().last_change = long_ago;
        l.on_success();
        assert!(
            (l.current_rate() - 37.5).abs() < 1e-9,
            "{}",
            l.current_rate()
        );
        for _ in 0..10 {
            l.lock().last_change = long_ago;
            l.on_success();
        }
        assert_eq!(l.current_rate(), 50.0);
    }

    #[test]
    fn every_operation_has_its_quota_group_and_aws_name() {
        use Op::*;
        let table: &[(Op, Group, &str)] = &[
            (CreateSecret, Group::Write, "secretsmanager:CreateSecret"),
            (
                PutSecretValue,
                Group::Write,
                "secretsmanager:PutSecretValue",
            ),
            (TagResource, Group::Write, "secretsmanager:TagResource"),
            (DeleteSecret, Group::Write, "secretsmanager:DeleteSecret"),
            (RestoreSecret, Group::Write, "secretsmanager:RestoreSecret"),
            (
                UpdateSecretVersionStage,
                Group::Write,
                "secretsmanager:UpdateSecretVersionStage",
            ),
            (
                ReplicateSecretToRegions,
                Group::Write,
                "secretsmanager:ReplicateSecretToRegions",
            ),
            (ListSecrets, Group::Read, "secretsmanager:ListSecrets"),
            (DescribeSecret, Group::Read, "secretsmanager:DescribeSecret"),
            (GetSecretValue, Group::Read, "secretsmanager:GetSecretValue"),
            (
                BatchGetSecretValue,
                Group::Read,
                "secretsmanager:BatchGetSecretValue",
            ),
            (GetCallerIdentity, Group::Read, "sts:GetCallerIdentity"),
            (Decrypt, Group::Kms, "kms:Decrypt"),
            (Encrypt, Group::Kms, "kms:Encrypt"),
            (GenerateDataKey, Group::Kms, "kms:GenerateDataKey"),
            (GetParameters, Group::Ssm, "ssm:GetParameters"),
            (GetParameter, Group::Ssm, "ssm:GetParameter"),
            (ListTagsForResource, Group::Ssm, "ssm:ListTagsForResource"),
            (
                DescribeParameters,
                Group::SsmDescribe,
                "ssm:DescribeParameters",
            ),
            (Scan, Group::Dynamodb, "dynamodb:Scan"),
        ];
        for (op, group, qualified) in table {
            assert_eq!(op.group(), *group, "{op}");
            assert_eq!(op.qualified(), *qualified, "{op}");
            assert_eq!(op.to_string(), op.name());
        }
        let l = Limits::new(&LimitsConfig::default());
        for (op, group) in [
            (PutSecretValue, "write"),
            (GetCallerIdentity, "read"),
            (Decrypt, "kms"),
            (GetParameters, "ssm"),
            (DescribeParameters, "ssm-describe"),
            (Scan, "dynamodb"),
        ] {
            assert_eq!(l.for_op(op).name(), group, "{op}");
        }
    }

    #[tokio::test]
    async fn paces_at_the_configured_rate() {
        let l = AdaptiveLimiter::new("read", 100);
        let start = Instant::now();
        for _ in 0..70 {
            l.acquire().await;
        }
        // burst 20, then 50 more at 100/s = 0.5 s
        let e = start.elapsed();
        assert!(e >= Duration::from_millis(450), "{e:?}");
    }
}
