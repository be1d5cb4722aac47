//! The rename planner: maps Vault / export source paths to AWS Secrets Manager names.
//!
//! Pure code: no I/O anywhere in this module. Callers read the input names and the overrides
//! file themselves and hand over strings.
//!
//! * [`rules`]: the rewrite of one name (prefix, transliteration, character set, empty
//!   segments, length, ARN suffix), with a fast path for names that already comply.
//! * [`overrides`]: the explicit `source,target` pairs of the overrides CSV.
//! * [`planner`]: a whole set of names at once: overrides, sticky names (secrets secretport
//!   created earlier) and collisions. The per-name work runs on rayon; the collision pass is
//!   sequential over sorted data, so the result is identical for any input order and any number
//!   of threads.
//!
//! # Definitions
//! * The **plain name** of a source is `prefix/source` (just `source` without a prefix).
//! * A source is **compliant** when its plain name is already a valid target
//!   ([`is_valid_target`]); it is then never rewritten (it only gets the prefix), unless its
//!   plain name is taken by an override or by an existing (sticky) secret of another source.
//! * [`Mapping::changed`] is `true` when the target differs from the plain name, i.e. when the
//!   name was rewritten beyond adding the prefix. Adding the prefix alone is not a change (it
//!   shows as reason `prefix`).

pub mod overrides;
pub mod planner;
pub mod preview;
pub mod rules;

use std::fmt;
use std::str::FromStr;

pub use overrides::{Override, Overrides};
pub use planner::{is_rule_name, plan_names, plan_names_with_first, StickyNames, NO_STICKY};
pub(crate) use planner::{plan_names_lean, Lean};
pub use rules::{
    is_valid_target, rewrite, target_problem, validate_prefix, MAX_NAME_LEN, MAX_PREFIX_LEN,
};

/// Which characters a target name may contain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// What AWS Secrets Manager accepts: `A-Z a-z 0-9 / _ + = . @ -`.
    #[default]
    Aws,
    /// Plain alphanumerics and the path separator: `A-Z a-z 0-9 /`.
    Alphanumeric,
}

impl Policy {
    /// `"aws"` or `"alphanumeric"`, as written in the config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Aws => "aws",
            Policy::Alphanumeric => "alphanumeric",
        }
    }

    /// The allowed characters, for messages.
    pub(crate) fn allowed_description(self) -> &'static str {
        match self {
            Policy::Aws => "A-Z a-z 0-9 / _ + = . @ -",
            Policy::Alphanumeric => "A-Z a-z 0-9 /",
        }
    }

    /// Whether `c` may appear in a target name under this policy.
    pub fn allows(self, c: char) -> bool {
        c.is_ascii() && rules::table(self)[c as usize]
    }

    /// What goes between a name and an appended hash: `_` for `aws`; for `alphanumeric`,
    /// which has no punctuation, an uppercase `X` (the hash itself is lowercase hex, so the
    /// boundary stays visible: `app/dbpassX3f9a1c2e`).
    pub(crate) fn hash_separator(self) -> &'static str {
        match self {
            Policy::Aws => "_",
            Policy::Alphanumeric => "X",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Policy::Aws),
            "alphanumeric" => Ok(Policy::Alphanumeric),
            other => Err(format!(
                "unknown naming policy {other:?}: expected \"aws\" or \"alphanumeric\""
            )),
        }
    }
}

/// Why a target differs from the bare source path. Declared (and so sorted) in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Reason {
    /// `prefix/` was put in front.
    Prefix = 0,
    /// Non-ASCII characters were transliterated to ASCII (`café` -> `cafe`).
    Transliterated,
    /// Characters the policy does not allow were replaced (`aws`) or removed (`alphanumeric`).
    Charset,
    /// Empty path segments were collapsed, or a leading/trailing `/` removed.
    Segments,
    /// Nothing was left of the source: a hash-derived token stands in for it.
    Empty,
    /// The name was over 512 characters: cut, and a hash of the source appended.
    Truncated,
    /// The name ended in `-` plus six characters (an ARN suffix to AWS): `-` became `_`.
    ArnSuffix,
    /// Another source (or an override / existing secret) wanted the same name: a hash of the
    /// source path was appended.
    Collision,
    /// The target comes from the overrides file.
    Override,
    /// The target is the name of the secret secretport created earlier for this source, which
    /// differs from what the rules give now; it is kept.
    Sticky,
}

impl Reason {
    /// All reasons, in order.
    pub const ALL: [Reason; 10] = [
        Reason::Prefix,
        Reason::Transliterated,
        Reason::Charset,
        Reason::Segments,
        Reason::Empty,
        Reason::Truncated,
        Reason::ArnSuffix,
        Reason::Collision,
        Reason::Override,
        Reason::Sticky,
    ];

    /// The code used in CSV output.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Prefix => "prefix",
            Reason::Transliterated => "transliterated",
            Reason::Charset => "charset",
            Reason::Segments => "segments",
            Reason::Empty => "empty",
            Reason::Truncated => "truncated",
            Reason::ArnSuffix => "arn-suffix",
            Reason::Collision => "collision",
            Reason::Override => "override",
            Reason::Sticky => "sticky",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown rename reason {s:?}"))
    }
}

/// A set of [`Reason`]s as a bit set: no allocation per name (a plan holds one per source
/// secret). Iterates in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReasonSet(u16);

impl ReasonSet {
    /// Adds `r`.
    #[inline]
    pub fn insert(&mut self, r: Reason) {
        self.0 |= 1 << (r as u8);
    }

    /// The set of just `r`.
    #[inline]
    pub fn only(r: Reason) -> Self {
        ReasonSet(1 << (r as u8))
    }

    /// Whether `r` is in the set.
    #[inline]
    pub fn contains(self, r: Reason) -> bool {
        self.0 & (1 << (r as u8)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The reasons, in pipeline order.
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The reasons as `;`-separated codes, e.g. `prefix;charset` (empty when there are none).
    pub fn codes(self) -> String {
        let codes: Vec<&str> = self.iter().map(Reason::as_str).collect();
        codes.join(";")
    }

    /// The reasons as a vector, in pipeline order.
    pub fn to_vec(self) -> Vec<Reason> {
        if self.0 == 0 {
            return Vec::new();
        }
        let mut v = Vec::with_capacity(self.0.count_ones() as usize);
        v.extend(
            Reason::ALL
                .into_iter()
                .filter(|r| self.0 & (1 << (*r as u8)) != 0),
        );
        v
    }
}

/// How target names are formed. The prefix is validated by the config ([`validate_prefix`]);
/// trailing `/` are ignored (`"devops/"` is `"devops"`), and an empty prefix means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamingRules {
    /// Name prefix: `"devops"` + `app/db` -> `devops/app/db`.
    pub prefix: Option<String>,
    /// Character policy.
    pub policy: Policy,
}

impl NamingRules {
    /// Rules with the prefix normalised (trailing `/` removed, empty -> none).
    pub fn new(prefix: Option<&str>, policy: Policy) -> Self {
        let prefix = prefix
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        NamingRules { prefix, policy }
    }

    /// The prefix without trailing `/`, or `None` when there is none (or it is empty).
    pub fn prefix(&self) -> Option<&str> {
        self.prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
    }

    /// The plain name of `source`: `prefix/source`, or `source` without a prefix.
    pub fn plain_name(&self, source: &str) -> String {
        match self.prefix() {
            Some(p) => format!("{p}/{source}"),
            None => source.to_owned(),
        }
    }
}

/// The target name planned for one source path (the path itself is the caller's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Planned {
    /// The target name in AWS Secrets Manager.
    pub target: String,
    /// `true` when `target` differs from the plain name `prefix/source`.
    pub changed: bool,
    /// Why.
    pub reasons: ReasonSet,
}

impl Planned {
    /// The mapping of `source` to this name.
    pub fn for_source(self, source: String) -> Mapping {
        Mapping {
            source,
            target: self.target,
            changed: self.changed,
            reasons: self.reasons,
        }
    }
}

/// One source path and the target name planned for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// The source path, verbatim.
    pub source: String,
    /// The target name in AWS Secrets Manager.
    pub target: String,
    /// `true` when `target` differs from the plain name `prefix/source`: the name was rewritten
    /// beyond adding the prefix (rules, collision suffix, override or kept sticky name).
    pub changed: bool,
    /// Why (a set; iterates in pipeline order, [`Reason`]'s order).
    pub reasons: ReasonSet,
}

impl Mapping {
    /// The reasons as `;`-separated codes, e.g. `prefix;charset` (empty when there are none).
    pub fn reasons_str(&self) -> String {
        self.reasons.codes()
    }

    /// Whether `r` is among the reasons.
    pub fn has(&self, r: Reason) -> bool {
        self.reasons.contains(r)
    }
}

/// Errors of the rename planner; each names the line or source it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// The configured prefix is not usable under the policy.
    #[error("invalid name prefix {prefix:?}: {message}")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
        /// What is expected.
        message: String,
    },
    /// A line of the overrides CSV could not be read.
    #[error("overrides line {line}: {message}")]
    OverrideSyntax {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An override with an empty source.
    #[error("overrides line {line}: the source is empty")]
    EmptyOverrideSource {
        /// 1-based line number.
        line: u64,
    },
    /// An override whose target AWS (or the policy) would not accept.
    #[error(
        "overrides line {line}: target {target:?} for source {path:?} is not a valid name \
         under policy {policy}: {message}"
    )]
    InvalidOverrideTarget {
        /// 1-based line number.
        line: u64,
        /// The source path.
        path: String,
        /// The rejected target.
        target: String,
        /// The policy in force.
        policy: Policy,
        /// What is wrong with it.
        message: String,
    },
    /// The same source twice in the overrides.
    #[error("overrides line {line}: source {path:?} already has an override on line {first_line}")]
    DuplicateOverrideSource {
        /// 1-based line number of the second occurrence.
        line: u64,
        /// The source path.
        path: String,
        /// 1-based line number of the first occurrence.
        first_line: u64,
    },
    /// Two overrides with one target.
    #[error(
        "overrides line {line}: target {target:?} (for source {path:?}) is already the target \
         of source {other:?} on line {first_line}"
    )]
    DuplicateOverrideTarget {
        /// 1-based line number of the second occurrence.
        line: u64,
        /// The source of the second occurrence.
        path: String,
        /// The shared target.
        target: String,
        /// The source of the first occurrence.
        other: String,
        /// 1-based line number of the first occurrence.
        first_line: u64,
    },
    /// An override whose target is the existing (sticky) secret of another source.
    #[error(
        "overrides line {line}: target {target:?} for source {path:?} already belongs to the \
         existing secret of source {holder:?}"
    )]
    OverrideTargetTaken {
        /// 1-based line number in the overrides.
        line: u64,
        /// The overridden source.
        path: String,
        /// The target.
        target: String,
        /// The source whose existing secret has that name.
        holder: String,
    },
    /// Two existing secrets claim one name (their source tags disagree with the names).
    #[error("existing secrets of sources {first:?} and {second:?} both claim target {target:?}")]
    StickyConflict {
        /// The name.
        target: String,
        /// One source (the smaller).
        first: String,
        /// The other source.
        second: String,
    },
    /// A line of the names input is not UTF-8.
    #[error("input line {line}: not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_prints() {
        assert_eq!("aws".parse::<Policy>(), Ok(Policy::Aws));
        assert_eq!("alphanumeric".parse::<Policy>(), Ok(Policy::Alphanumeric));
        assert!("AWS".parse::<Policy>().unwrap_err().contains("\"aws\""));
        assert_eq!(Policy::default(), Policy::Aws);
        assert_eq!(Policy::Alphanumeric.to_string(), "alphanumeric");
        use serde::de::{value::Error as DeError, IntoDeserializer};
        use serde::Deserialize;
        let de = IntoDeserializer::<DeError>::into_deserializer("alphanumeric");
        assert_eq!(Policy::deserialize(de), Ok(Policy::Alphanumeric));
        let de = IntoDeserializer::<DeError>::into_deserializer("Aws");
        assert!(Policy::deserialize(de).is_err());
    }

    #[test]
    fn reasons_round_trip_and_order() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(r));
        }
        let mut sorted = Reason::ALL;
        sorted.sort();
        assert_eq!(sorted, Reason::ALL);
        let mut set = ReasonSet::default();
        set.insert(Reason::Collision);
        set.insert(Reason::Prefix);
        set.insert(Reason::Collision);
        assert_eq!(set.to_vec(), vec![Reason::Prefix, Reason::Collision]);
        let m = Mapping {
            source: "a".into(),
            target: "b".into(),
            changed: true,
            reasons: set,
        };
        assert_eq!(m.reasons_str(), "prefix;collision");
        assert!(m.has(Reason::Collision));
    }

    #[test]
    fn rules_normalise_prefix() {
        assert_eq!(
            NamingRules::new(Some("devops/"), Policy::Aws).prefix,
            Some("devops".into())
        );
        assert_eq!(NamingRules::new(Some("/"), Policy::Aws).prefix, None);
        assert_eq!(NamingRules::new(Some(""), Policy::Aws).prefix, None);
        let r = NamingRules {
            prefix: Some("devops//".into()),
            policy: Policy::Aws,
        };
        assert_eq!(r.prefix(), Some("devops"));
        assert_eq!(r.plain_name("app/db"), "devops/app/db");
        assert_eq!(NamingRules::default().plain_name("app/db"), "app/db");
    }
}
