//! `[limits]`: request rates per quota group, concurrency, attempts and the time limit of one
//! attempt, each within a range; an absent key takes its default from
//! [`LimitsConfig::default`], the one place the defaults are written.

use super::validate::{Section, Validator};

/// `[limits]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// CreateSecret + PutSecretValue + UpdateSecret + TagResource (+ delete/restore) per second.
    pub write_per_second: u32,
    /// List/Describe/Get/BatchGet per second.
    pub read_per_second: u32,
    /// KMS Decrypt per second.
    pub kms_per_second: u32,
    /// SSM Parameter Store reads per second (`ssm` source: GetParameters, GetParameter,
    /// ListTagsForResource; AWS's default throughput quota is 40/s, shared by GetParameter,
    /// GetParameters and GetParametersByPath with every other reader in the account).
    pub ssm_per_second: u32,
    /// SSM `DescribeParameters` pages per second (`ssm` source's listing). Not part of the
    /// 40/s throughput quota: AWS meters it on its own, lower and undocumented, limit.
    pub ssm_describe_per_second: u32,
    /// DynamoDB Scan pages per second (`credstash` source).
    pub dynamodb_per_second: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request, first try included.
    pub max_attempts: u32,
    /// Vault requests per second at most (Vault has no AWS-style quota; `parallelism` bounds
    /// requests in flight, this bounds their rate for servers with rate-limit quotas).
    pub(crate) vault_per_second: u32,
    /// Time limit of one request attempt (AWS and Vault), in seconds: a hung endpoint costs at
    /// most this per attempt.
    pub timeout_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            write_per_second: 50,
            read_per_second: 100,
            kms_per_second: 1000,
            ssm_per_second: 40,
            ssm_describe_per_second: 10,
            dynamodb_per_second: 50,
            concurrency: 32,
            max_attempts: 8,
            vault_per_second: 10_000,
            timeout_seconds: 30,
        }
    }
}

impl Validator<'_> {
    /// Each key within its range; an absent or out-of-range key keeps its default.
    pub(super) fn limits(&mut self, s: Option<Section>) -> LimitsConfig {
        let d = LimitsConfig::default();
        let Some(mut s) = s else { return d };
        let int = |s: &mut Section, k: &str, lo: i64, hi: i64, dflt: i64| -> i64 {
            let v: i64 = s.opt(k, "an integer").unwrap_or(dflt);
            if !(lo..=hi).contains(&v) {
                s.problem(k, format!("must be {lo}..={hi}, got {v}"));
                dflt
            } else {
                v
            }
        };
        let positive =
            |s: &mut Section, k: &str, hi: i64, dflt: u32| int(s, k, 1, hi, dflt.into()) as u32;
        let l = LimitsConfig {
            write_per_second: positive(&mut s, "write_per_second", 10_000, d.write_per_second),
            read_per_second: positive(&mut s, "read_per_second", 10_000, d.read_per_second),
            kms_per_second: positive(&mut s, "kms_per_second", 100_000, d.kms_per_second),
            ssm_per_second: positive(&mut s, "ssm_per_second", 10_000, d.ssm_per_second),
            ssm_describe_per_second: positive(
                &mut s,
                "ssm_describe_per_second",
                1000,
                d.ssm_describe_per_second,
            ),
            dynamodb_per_second: positive(
                &mut s,
                "dynamodb_per_second",
                10_000,
                d.dynamodb_per_second,
            ),
            concurrency: int(&mut s, "concurrency", 1, 1024, d.concurrency as i64) as usize,
            max_attempts: positive(&mut s, "max_attempts", 50, d.max_attempts),
            vault_per_second: positive(&mut s, "vault_per_second", 100_000, d.vault_per_second),
            timeout_seconds: int(&mut s, "timeout_seconds", 1, 600, d.timeout_seconds as i64)
                as u64,
        };
        self.problems.extend(s.finish());
        l
    }
}

#[cfg(test)]
mod tests {
    use super::LimitsConfig;
    use crate::config::testing::{has_problem, parse, GOOD};

    #[test]
    fn limits_take_values_in_range_and_report_the_others() {
        let limits =
            |extra: &str| parse(&GOOD.replace("write_per_second = 10", extra)).map(|c| c.limits);
        let d = LimitsConfig::default();
        let all = limits("").expect("valid");
        assert_eq!(
            (all.write_per_second, all.concurrency, all.timeout_seconds),
            (d.write_per_second, d.concurrency, d.timeout_seconds)
        );
        let set = limits(
            "concurrency = 1024
timeout_seconds = 1
max_attempts = 1",
        )
        .expect("valid");
        assert_eq!(
            (set.concurrency, set.timeout_seconds, set.max_attempts),
            (1024, 1, 1)
        );
        for (extra, key, message) in [
            (
                "concurrency = 0",
                "limits.concurrency",
                "must be 1..=1024, got 0",
            ),
            (
                "timeout_seconds = 601",
                "limits.timeout_seconds",
                "must be 1..=600, got 601",
            ),
            (
                "kms_per_second = 100001",
                "limits.kms_per_second",
                "must be 1..=100000, got 100001",
            ),
            ("max_attempts = \"8\"", "limits.max_attempts", "an integer"),
        ] {
            let err = limits(extra).expect_err(extra);
            assert!(has_problem(&err, key, message), "{extra}: {err}");
        }
    }
}
