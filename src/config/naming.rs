//! `[naming]`: the character policy target names are rewritten to, and the overrides file
//! (read and checked against the job's prefix and policy here, so a bad override is a config
//! problem, not a failure halfway through a run).

use super::validate::{Section, Validator};
use crate::naming::{self, NamingRules, Overrides, Policy};

/// `[naming]`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NamingConfig {
    /// Character policy.
    pub(crate) policy: Policy,
    /// The overrides file, already parsed and validated.
    pub(crate) overrides: Overrides,
}

impl Validator<'_> {
    pub(super) fn naming(
        &mut self,
        s: Option<Section>,
        prefix: Option<String>,
        prefix_key: &str,
    ) -> Option<NamingConfig> {
        let mut s = s.unwrap_or_else(|| Section::new("naming", toml::Table::new()));
        let policy: Policy = s
            .opt("policy", "\"aws\" or \"alphanumeric\"")
            .unwrap_or_default();
        if let Some(p) = &prefix {
            if let Err(m) = naming::validate_prefix(p, policy) {
                self.bad(prefix_key.to_owned(), m);
            }
        }
        let rules = NamingRules { prefix, policy };
        let overrides_path = self.file(&mut s, "overrides", false);
        let overrides = match &overrides_path {
            None => Overrides::default(),
            Some(p) => match std::fs::read_to_string(p) {
                Err(e) => {
                    s.problem("overrides", format!("cannot read {}: {e}", p.display()));
                    Overrides::default()
                }
                Ok(text) => match Overrides::parse(&text, &rules) {
                    Ok(o) => o,
                    Err(e) => {
                        s.problem("overrides", format!("{}: {e}", p.display()));
                        Overrides::default()
                    }
                },
            },
        };
        self.problems.extend(s.finish());
        Some(NamingConfig { policy, overrides })
    }
}
