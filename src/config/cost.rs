//! `[cost]`: the price the plan's monthly cost ("adds $X/month") is computed with.

use super::validate::{Section, Validator};

/// `[cost]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CostConfig {
    /// Price of one secret (or replica) per month, for the plan's "adds $X/month"; default
    /// AWS's list price ([`crate::cost::LIST_PRICE_PER_SECRET_MONTH`]).
    pub(crate) price_per_secret_month: f64,
}

impl Validator<'_> {
    /// `[cost] price_per_secret_month`: a price (`crate::cost::check_price`), default AWS's
    /// list price.
    pub(super) fn cost(&mut self, s: Option<Section>) -> CostConfig {
        let mut c = CostConfig {
            price_per_secret_month: crate::cost::LIST_PRICE_PER_SECRET_MONTH,
        };
        let Some(mut s) = s else { return c };
        if let Some(p) = s.opt::<f64>("price_per_secret_month", "a number (price per month)") {
            match crate::cost::check_price(p) {
                Ok(p) => c.price_per_secret_month = p,
                Err(m) => s.problem("price_per_secret_month", m),
            }
        }
        self.problems.extend(s.finish());
        c
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{parse, GOOD};

    #[test]
    fn cost_price_defaults_to_the_list_price_and_is_validated() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(
            c.cost.price_per_secret_month,
            crate::cost::LIST_PRICE_PER_SECRET_MONTH
        );
        for (price, want) in [("0.5", Some(0.5)), ("1", Some(1.0)), ("0", Some(0.0))] {
            let c = parse(&format!("{GOOD}[cost]\nprice_per_secret_month = {price}\n"))
                .expect("valid price");
            assert_eq!(Some(c.cost.price_per_secret_month), want, "{price}");
        }
        for bad in ["-1", "1e9", "\"0.40\"", "nan"] {
            let err =
                parse(&format!("{GOOD}[cost]\nprice_per_secret_month = {bad}\n")).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("cost.price_per_secret_month"),
                "{bad}: {text}"
            );
        }
        let err = parse(&format!("{GOOD}[cost]\nprice = 1\n")).unwrap_err();
        assert!(err.to_string().contains("cost.price"), "{err}");
    }
}
