//! What a run's new secrets add to the monthly AWS bill, for the plan's summary and the
//! confirmation question.
//!
//! AWS Secrets Manager bills every secret per month, and a replica in another region is billed
//! as a secret of its own. A migration's new secrets (creates, and renames, which create the
//! secret at its new name) are the part of the bill a run adds; updates, retags and adoptions
//! change nothing on it. Replicas added to secrets that already exist are not counted: the plan
//! cannot see them (`ListSecrets` does not return replication), only the executor's
//! `DescribeSecret` does. API calls (billed per 10,000) are left out: a migration's are cents.
//!
//! Pure arithmetic, table-tested; the price comes from `[cost] price_per_secret_month`.

/// AWS's list price for one secret (or one replica) per month, in US dollars, as of
/// [`LIST_PRICE_DATE`] (<https://aws.amazon.com/secrets-manager/pricing/>). Override it with
/// `[cost] price_per_secret_month` for another currency, a negotiated price or a newer list.
pub(crate) const LIST_PRICE_PER_SECRET_MONTH: f64 = 0.40;

/// When [`LIST_PRICE_PER_SECRET_MONTH`] was AWS's list price.
pub(crate) const LIST_PRICE_DATE: &str = "2026-01";

/// What a set of new secrets adds per month.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Cost {
    /// New secrets (creates and renames).
    pub new_secrets: u64,
    /// Their replicas (each replica region of each new secret).
    pub replicas: u64,
    /// The price per secret and month this was computed with.
    pub price: f64,
}

impl Cost {
    /// `new_secrets` new secrets, each replicated to `replica_regions` other regions, at
    /// `price` per secret and month.
    pub fn of(new_secrets: u64, replica_regions: usize, price: f64) -> Cost {
        Cost {
            new_secrets,
            replicas: new_secrets.saturating_mul(replica_regions as u64),
            price,
        }
    }

    /// Secrets billed: the new ones and their replicas.
    pub(crate) fn billed(&self) -> u64 {
        self.new_secrets.saturating_add(self.replicas)
    }

    /// Dollars (or the configured price's currency) per month, rounded to cents.
    pub fn monthly(&self) -> f64 {
        (self.billed() as f64 * self.price * 100.0).round() / 100.0
    }

    /// The sum of two jobs' costs (the run's total). The price is the config's, so it is the
    /// same for every job; the larger is kept should they differ.
    pub fn plus(self, other: Cost) -> Cost {
        Cost {
            new_secrets: self.new_secrets.saturating_add(other.new_secrets),
            replicas: self.replicas.saturating_add(other.replicas),
            price: self.price.max(other.price),
        }
    }

    /// For the summary line and the question: `adds $1.20/month (2 new secrets + 1 replica at
    /// $0.40 each)`; `None` when nothing new is billed.
    pub fn words(&self, verb: &str) -> Option<String> {
        if self.billed() == 0 {
            return None;
        }
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let what = if self.replicas == 0 {
            plural(self.new_secrets, "new secret", "new secrets")
        } else {
            format!(
                "{} + {}",
                plural(self.new_secrets, "new secret", "new secrets"),
                plural(self.replicas, "replica", "replicas")
            )
        };
        Some(format!(
            "{verb} ${:.2}/month ({what} at ${} each)",
            self.monthly(),
            price_text(self.price)
        ))
    }

    /// The JSON summary's `cost` object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "new_secrets": self.new_secrets,
            "replicas": self.replicas,
            "billed_secrets": self.billed(),
            "price_per_secret_month": self.price,
            "monthly": self.monthly(),
        })
    }
}

/// `0.40`, `0.4125`: at least cents, more digits only when the price has them.
fn price_text(price: f64) -> String {
    let cents = format!("{price:.2}");
    if (cents.parse::<f64>().unwrap_or(price) - price).abs() < 1e-9 {
        cents
    } else {
        let s = format!("{price:.6}");
        s.trim_end_matches('0').to_owned()
    }
}

/// Checks a configured price: a finite, non-negative number of at most 1,000 per secret and
/// month (a larger one is a typo, cents meant as dollars).
pub(crate) fn check_price(price: f64) -> Result<f64, String> {
    if price.is_finite() && (0.0..=1000.0).contains(&price) {
        Ok(price)
    } else {
        Err(format!(
            "must be a price per secret and month between 0 and 1000 (AWS's list price was {LIST_PRICE_PER_SECRET_MONTH:.2} US dollars in {LIST_PRICE_DATE}), got {price}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_and_replicas_each_billed_as_a_secret() {
        // (new secrets, replica regions, price) -> (billed, monthly, words)
        type Row = (u64, usize, f64, u64, f64, Option<&'static str>);
        let table: &[Row] = &[
            (0, 0, 0.40, 0, 0.0, None),
            (0, 3, 0.40, 0, 0.0, None),
            (
                1,
                0,
                0.40,
                1,
                0.40,
                Some("adds $0.40/month (1 new secret at $0.40 each)"),
            ),
            (
                3,
                0,
                0.40,
                3,
                1.20,
                Some("adds $1.20/month (3 new secrets at $0.40 each)"),
            ),
            (
                3,
                2,
                0.40,
                9,
                3.60,
                Some("adds $3.60/month (3 new secrets + 6 replicas at $0.40 each)"),
            ),
            (
                1,
                1,
                0.40,
                2,
                0.80,
                Some("adds $0.80/month (1 new secret + 1 replica at $0.40 each)"),
            ),
            (
                62_800,
                0,
                0.40,
                62_800,
                25_120.0,
                Some("adds $25120.00/month (62800 new secrets at $0.40 each)"),
            ),
            (
                7,
                0,
                0.4125,
                7,
                2.89,
                Some("adds $2.89/month (7 new secrets at $0.4125 each)"),
            ),
            // a price of 0 (credits, a test account) still shows what is billed
            (
                2,
                0,
                0.0,
                2,
                0.0,
                Some("adds $0.00/month (2 new secrets at $0.00 each)"),
            ),
        ];
        for &(new, regions, price, billed, monthly, words) in table {
            let c = Cost::of(new, regions, price);
            assert_eq!(c.billed(), billed, "{new} x {regions}");
            assert!(
                (c.monthly() - monthly).abs() < 1e-9,
                "{new}: {}",
                c.monthly()
            );
            assert_eq!(c.words("adds").as_deref(), words, "{new} x {regions}");
        }
    }

    #[test]
    fn jobs_add_up_and_the_json_names_every_part() {
        let total = Cost::of(2, 1, 0.40).plus(Cost::of(3, 0, 0.40));
        assert_eq!(
            (total.new_secrets, total.replicas, total.billed()),
            (5, 2, 7)
        );
        assert_eq!(Cost::default().plus(Cost::of(1, 0, 0.40)).price, 0.40);
        assert_eq!(
            total.json(),
            serde_json::json!({"new_secrets": 5, "replicas": 2, "billed_secrets": 7,
                "price_per_secret_month": 0.40, "monthly": 2.80})
        );
    }

    #[test]
    fn prices_out_of_range_are_refused() {
        assert_eq!(check_price(0.40), Ok(0.40));
        assert_eq!(check_price(0.0), Ok(0.0));
        for bad in [-0.01, 1000.01, f64::NAN, f64::INFINITY] {
            let e = check_price(bad).expect_err("refused");
            assert!(e.contains("between 0 and 1000"), "{e}");
        }
    }
}
