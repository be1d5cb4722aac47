//! The rewrite of one source path into a target name, and the validity checks.
//!
//! Steps, in order (each adds its [`Reason`] when it changes something):
//! 1. `prefix/` is put in front (`prefix`).
//! 2. Non-ASCII characters are transliterated with `deunicode` (`café` -> `cafe`,
//!    `北京` -> `Bei Jing`; `transliterated`). A transliteration is plain text: a `/` in it is not
//!    a path separator (`½` -> `1/2` is treated like any other disallowed character).
//! 3. Characters the policy does not allow (`charset`): under `aws` each run of them becomes one
//!    `_` (`db #1` -> `db_1`); under `alphanumeric` they are removed (`db #1` -> `db1`), since no
//!    replacement character exists in that alphabet.
//! 4. Empty segments are collapsed and a leading/trailing `/` removed (`a//b/` -> `a/b`;
//!    `segments`).
//! 5. If nothing is left, a hash token of the source stands in (`_` + 8 hex under `aws`, `X` +
//!    8 hex under `alphanumeric`; `empty`).
//! 6. Over 512 characters, the name is cut and the separator plus 8 hex of SHA-256(source)
//!    appended, so it is exactly 512 characters (`truncated`).
//! 7. Last, a name that ends in `-` plus six characters (AWS would read it as the random suffix
//!    of an ARN) gets that `-` replaced by `_` (`arn-suffix`).
//!
//! A name whose plain form `prefix/source` is already valid skips all of this (fast path).

use deunicode::deunicode_char;
use sha2::{Digest, Sha256};

use super::{Mapping, NamingRules, Policy, Reason, ReasonSet};

/// The longest name AWS Secrets Manager accepts.
pub const MAX_NAME_LEN: usize = crate::target::limits::MAX_NAME_CHARS;
/// The longest prefix accepted: it leaves room for the name and any hash suffix.
pub const MAX_PREFIX_LEN: usize = 256;
/// Hex digits of SHA-256 in a hash suffix or token (lengthened on a clash).
pub(crate) const HASH_LEN: usize = 8;

const fn build_table(aws: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || b == b'/'
            || (aws && matches!(b, b'_' | b'+' | b'=' | b'.' | b'@' | b'-'));
        i += 1;
    }
    t
}

static AWS_TABLE: [bool; 256] = build_table(true);
static ALNUM_TABLE: [bool; 256] = build_table(false);

/// Allowed bytes (including `/`) under `policy`; every byte >= 0x80 is disallowed.
#[inline]
pub(crate) fn table(policy: Policy) -> &'static [bool; 256] {
    match policy {
        Policy::Aws => &AWS_TABLE,
        Policy::Alphanumeric => &ALNUM_TABLE,
    }
}

/// Whether the 7th byte from the end is `-` (AWS's `-XXXXXX` ARN suffix shape).
#[inline]
pub(crate) fn has_arn_suffix(name: &[u8]) -> bool {
    name.len() >= 7 && name[name.len() - 7] == b'-'
}

/// What is wrong with `name` as a target under `policy`, or `None` when it is valid:
/// 1..=512 characters, all allowed by the policy, no leading or trailing `/`, no empty segment,
/// no `-` plus six characters at the end.
pub fn target_problem(name: &str, policy: Policy) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = name.chars().find(|&c| !policy.allows(c)) {
        return Some(format!(
            "it contains {c:?}; allowed are {}",
            policy.allowed_description()
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "it is {} characters long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        ));
    }
    if name.starts_with('/') || name.ends_with('/') {
        return Some("it begins or ends with '/'".into());
    }
    if name.contains("//") {
        return Some("it has an empty path segment ('//')".into());
    }
    if has_arn_suffix(name.as_bytes()) {
        return Some(
            "it ends in '-' plus six characters, which AWS reads as the random suffix of an ARN"
                .into(),
        );
    }
    None
}

/// Whether `name` is a valid target under `policy` (see [`target_problem`]).
pub fn is_valid_target(name: &str, policy: Policy) -> bool {
    plain_is_valid(name.as_bytes(), None, table(policy))
}

/// Checks a name prefix for the config. Trailing `/` are ignored and an empty prefix means
/// none; otherwise it must be at most 256 characters from the policy's alphabet, with no
/// leading `/` and no empty segment.
pub fn validate_prefix(prefix: &str, policy: Policy) -> Result<(), String> {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return Ok(());
    }
    let expected = format!(
        "expected up to {MAX_PREFIX_LEN} characters from {} (a trailing '/' is ignored), \
         without a leading '/' or an empty segment",
        policy.allowed_description()
    );
    if let Some(c) = p.chars().find(|&c| !policy.allows(c)) {
        return Err(format!("{expected}; found {c:?}"));
    }
    if p.len() > MAX_PREFIX_LEN {
        return Err(format!("{expected}; found {} characters", p.len()));
    }
    if p.starts_with('/') {
        return Err(format!("{expected}; found a leading '/'"));
    }
    if p.contains("//") {
        return Err(format!("{expected}; found '//'"));
    }
    Ok(())
}

/// Whether `prefix/source` (or `source` without a prefix) is a valid target. The prefix must
/// already be valid. No allocation; this is the fast-path test.
#[inline]
pub(crate) fn plain_is_valid(source: &[u8], prefix: Option<&[u8]>, table: &[bool; 256]) -> bool {
    let n = source.len();
    if n == 0 || source[0] == b'/' || source[n - 1] == b'/' {
        return false;
    }
    let plen = prefix.map_or(0, |p| p.len() + 1);
    let total = plen + n;
    if total > MAX_NAME_LEN {
        return false;
    }
    let mut prev_slash = false;
    for &b in source {
        if !table[b as usize] {
            return false;
        }
        let slash = b == b'/';
        if slash && prev_slash {
            return false;
        }
        prev_slash = slash;
    }
    if total >= 7 {
        let p = total - 7;
        let b = if p >= plen {
            source[p - plen]
        } else if p + 1 == plen {
            b'/'
        } else {
            prefix.map_or(b'/', |pre| pre[p])
        };
        if b == b'-' {
            return false;
        }
    }
    true
}

/// Whether `target` is exactly `prefix/source` (`source` without a prefix). No allocation.
#[inline]
pub(crate) fn is_plain(target: &str, prefix: Option<&str>, source: &str) -> bool {
    match prefix {
        None => target == source,
        Some(p) => {
            target.len() == p.len() + 1 + source.len()
                && target.as_bytes()[p.len()] == b'/'
                && target.starts_with(p)
                && target.ends_with(source)
        }
    }
}

/// Appends the first `n` (<= 64) lowercase hex digits of `digest`.
pub(crate) fn push_hex(out: &mut String, digest: &[u8], n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..n {
        let byte = digest[i / 2];
        let nib = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        out.push(HEX[nib as usize] as char);
    }
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// Makes sure `name` does not end in `-` plus six characters: replaces that `-` by `_`, or, if
/// the `-` lies inside the prefix (`name[..body_start]`, which must not change), appends `_`
/// until the shape is gone. Returns whether it changed anything.
pub(crate) fn fix_arn_suffix(name: &mut String, body_start: usize) -> bool {
    let mut changed = false;
    while has_arn_suffix(name.as_bytes()) {
        changed = true;
        let p = name.len() - 7;
        if p >= body_start {
            name.replace_range(p..p + 1, "_");
        } else {
            // Only reachable with a body of at most five characters: far from 512.
            debug_assert!(name.len() < MAX_NAME_LEN);
            name.push('_');
        }
    }
    changed
}

/// The rule-based candidate for one source: the target, its reasons, and whether the source is
/// compliant (target == plain name). `prefix` must be valid (see [`validate_prefix`]).
pub(crate) fn candidate(
    source: &str,
    prefix: Option<&str>,
    policy: Policy,
) -> (String, ReasonSet, bool) {
    let t = table(policy);
    let mut reasons = ReasonSet::default();
    let plen = prefix.map_or(0, |p| p.len() + 1);
    if plain_is_valid(source.as_bytes(), prefix.map(str::as_bytes), t) {
        let mut out = String::with_capacity(plen + source.len());
        if let Some(p) = prefix {
            out.push_str(p);
            out.push('/');
            reasons.insert(Reason::Prefix);
        }
        out.push_str(source);
        return (out, reasons, true);
    }
    let mut out = String::with_capacity(plen + source.len() + 2);
    if let Some(p) = prefix {
        out.push_str(p);
        out.push('/');
        reasons.insert(Reason::Prefix);
    }
    let body_start = out.len();
    let mut w = Writer {
        out,
        body_start,
        table: t,
        aws: policy == Policy::Aws,
        in_run: false,
        reasons,
    };
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii() {
            w.push_ascii(c as u8);
            continue;
        }
        match deunicode_char(c) {
            Some(tr) => {
                w.reasons.insert(Reason::Transliterated);
                // deunicode ends some transliterations with a space ("Bei "), to separate them
                // from what follows; drop it before a separator or at the end (as deunicode's
                // own string functions do).
                let tr = if tr.len() > 1
                    && tr.ends_with(' ')
                    && match chars.peek() {
                        None => true,
                        Some(n) => n.is_ascii() && !n.is_ascii_alphanumeric(),
                    } {
                    &tr[..tr.len() - 1]
                } else {
                    tr
                };
                for b in tr.bytes() {
                    if b == b'/' {
                        w.push_disallowed();
                    } else {
                        w.push_ascii(b);
                    }
                }
            }
            None => w.push_disallowed(),
        }
    }
    let Writer {
        mut out,
        mut reasons,
        ..
    } = w;
    if out.len() > body_start && out.ends_with('/') {
        out.pop();
        reasons.insert(Reason::Segments);
    }
    if out.len() == body_start {
        out.push_str(policy.hash_separator());
        push_hex(&mut out, &sha256(source.as_bytes()), HASH_LEN);
        reasons.insert(Reason::Empty);
    }
    if out.len() > MAX_NAME_LEN {
        let sep = policy.hash_separator();
        out.truncate(MAX_NAME_LEN - sep.len() - HASH_LEN);
        out.push_str(sep);
        push_hex(&mut out, &sha256(source.as_bytes()), HASH_LEN);
        reasons.insert(Reason::Truncated);
    }
    if fix_arn_suffix(&mut out, body_start) {
        reasons.insert(Reason::ArnSuffix);
    }
    debug_assert!(
        target_problem(&out, policy).is_none(),
        "{out:?}: {:?}",
        target_problem(&out, policy)
    );
    (out, reasons, false)
}

/// Builds the body of a slow-path name byte by byte.
struct Writer {
    out: String,
    body_start: usize,
    table: &'static [bool; 256],
    aws: bool,
    /// The last thing written was the `_` standing for a run of disallowed characters.
    in_run: bool,
    reasons: ReasonSet,
}

impl Writer {
    #[inline]
    fn push_ascii(&mut self, b: u8) {
        if b == b'/' {
            self.in_run = false;
            if self.out.len() == self.body_start || self.out.ends_with('/') {
                self.reasons.insert(Reason::Segments);
            } else {
                self.out.push('/');
            }
        } else if self.table[b as usize] {
            self.in_run = false;
            self.out.push(b as char);
        } else {
            self.push_disallowed();
        }
    }

    #[inline]
    fn push_disallowed(&mut self) {
        self.reasons.insert(Reason::Charset);
        if self.aws && !self.in_run {
            self.out.push('_');
            self.in_run = true;
        }
    }
}

/// The rules applied to one name alone: no overrides, no sticky names, no collisions (use
/// [`super::plan_names`] for a set). The prefix of `rules` must be valid ([`validate_prefix`]).
///
/// ```
/// use secretport::naming::{rewrite, NamingRules, Policy};
/// let rules = NamingRules::new(Some("devops"), Policy::Aws);
/// let m = rewrite("apps/café db", &rules);
/// assert_eq!(m.target, "devops/apps/cafe_db");
/// assert_eq!(m.reasons_str(), "prefix;transliterated;charset");
/// assert!(m.changed);
/// ```
pub fn rewrite(source: &str, rules: &NamingRules) -> Mapping {
    let prefix = rules.prefix();
    let (target, reasons, compliant) = candidate(source, prefix, rules.policy);
    Mapping {
        source: source.to_owned(),
        changed: !compliant && !is_plain(&target, prefix, source),
        target,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(prefix: Option<&str>) -> NamingRules {
        NamingRules::new(prefix, Policy::Aws)
    }

    fn alnum(prefix: Option<&str>) -> NamingRules {
        NamingRules::new(prefix, Policy::Alphanumeric)
    }

    fn rw(source: &str, rules: &NamingRules) -> (String, String) {
        let m = rewrite(source, rules);
        assert!(
            is_valid_target(&m.target, rules.policy),
            "{source:?} -> {:?}",
            m.target
        );
        let r = m.reasons_str();
        (m.target, r)
    }

    #[test]
    fn compliant_names_only_get_the_prefix() {
        let m = rewrite("app/db-password_v2+x=y.z@w", &aws(Some("devops")));
        assert_eq!(m.target, "devops/app/db-password_v2+x=y.z@w");
        assert_eq!(m.reasons.to_vec(), vec![Reason::Prefix]);
        assert!(!m.changed);
        let m = rewrite("app/db", &aws(None));
        assert_eq!(m.target, "app/db");
        assert!(m.reasons.is_empty());
        assert!(!m.changed);
    }

    #[test]
    fn transliterates_unicode() {
        assert_eq!(
            rw("café", &aws(Some("p"))),
            ("p/cafe".into(), "prefix;transliterated".into())
        );
        assert_eq!(
            rw("Ünïcödé/naïve", &aws(None)),
            ("Unicode/naive".into(), "transliterated".into())
        );
        // Trailing space of a CJK transliteration: kept between words, dropped at the end
        // and before a separator.
        assert_eq!(
            rw("北京/x", &aws(None)),
            ("Bei_Jing/x".into(), "transliterated;charset".into())
        );
        assert_eq!(
            rw("北京", &alnum(None)),
            ("BeiJing".into(), "transliterated;charset".into())
        );
        // A '/' produced by transliteration is not a separator.
        let (t, _) = rw("½", &aws(None));
        assert!(!t.contains('/'), "{t}");
    }

    #[test]
    fn replaces_disallowed_runs_under_aws() {
        assert_eq!(
            rw("my secret", &aws(None)),
            ("my_secret".into(), "charset".into())
        );
        assert_eq!(rw("db#1", &aws(None)), ("db_1".into(), "charset".into()));
        assert_eq!(
            rw("a :#: b/c", &aws(Some("devops"))),
            ("devops/a_b/c".into(), "prefix;charset".into())
        );
        assert_eq!(
            rw("team: x/key#2", &aws(None)),
            ("team_x/key_2".into(), "charset".into())
        );
    }

    #[test]
    fn removes_disallowed_under_alphanumeric() {
        assert_eq!(rw("db#1", &alnum(None)), ("db1".into(), "charset".into()));
        assert_eq!(
            rw("app/db-password_v2", &alnum(Some("devops"))),
            ("devops/app/dbpasswordv2".into(), "prefix;charset".into())
        );
        assert_eq!(
            rw("a/#/b", &alnum(None)),
            ("a/b".into(), "charset;segments".into())
        );
        assert_eq!(
            rw("café au lait", &alnum(None)),
            ("cafeaulait".into(), "transliterated;charset".into())
        );
    }

    #[test]
    fn collapses_segments() {
        assert_eq!(rw("a//b/", &aws(None)), ("a/b".into(), "segments".into()));
        assert_eq!(
            rw("/a///b", &aws(Some("p"))),
            ("p/a/b".into(), "prefix;segments".into())
        );
    }

    #[test]
    fn never_empty() {
        let (t, r) = rw("", &aws(None));
        assert_eq!(r, "empty");
        assert!(t.starts_with('_') && t.len() == 9, "{t}");
        let (t, r) = rw("///", &aws(Some("p")));
        assert_eq!(r, "prefix;segments;empty");
        assert!(t.starts_with("p/_"), "{t}");
        let (t, r) = rw("#:!", &alnum(Some("p")));
        assert_eq!(r, "prefix;charset;empty");
        assert!(t.starts_with("p/X") && t.len() == 11, "{t}");
        // Stable, and different for different sources.
        assert_eq!(rw("#:!", &alnum(None)), rw("#:!", &alnum(None)));
        assert_ne!(rw("#:!", &alnum(None)).0, rw("#:?", &alnum(None)).0);
    }

    #[test]
    fn fixes_arn_suffix() {
        assert_eq!(
            rw("app/db-abcdef", &aws(None)),
            ("app/db_abcdef".into(), "arn-suffix".into())
        );
        assert_eq!(
            rw("app/db-abcdef", &aws(Some("devops"))),
            ("devops/app/db_abcdef".into(), "prefix;arn-suffix".into())
        );
        // Any six characters after '-', even across a '/'.
        assert_eq!(
            rw("x-abc/de", &aws(None)),
            ("x_abc/de".into(), "arn-suffix".into())
        );
        // Arising only after the charset step.
        assert_eq!(
            rw("db-ab cde", &aws(None)),
            ("db_ab_cde".into(), "charset;arn-suffix".into())
        );
        // Seven characters or five after '-' are fine.
        assert_eq!(rw("db-abcdefg", &aws(None)).1, "");
        assert_eq!(rw("db-abcde", &aws(None)).1, "");
        // The '-' inside the prefix must not change: the name is padded instead.
        let (t, r) = rw("x", &aws(Some("p-abcd")));
        assert_eq!((t.as_str(), r.as_str()), ("p-abcd/x_", "prefix;arn-suffix"));
    }

    #[test]
    fn truncates_long_names() {
        let long = "a".repeat(600);
        let m = rewrite(&long, &aws(Some("devops")));
        assert_eq!(m.target.len(), MAX_NAME_LEN);
        assert!(m.target.starts_with("devops/aaaa"));
        let tail = &m.target[MAX_NAME_LEN - 9..];
        assert!(tail.starts_with('_'));
        assert!(tail[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(m.reasons_str(), "prefix;truncated");
        assert!(is_valid_target(&m.target, Policy::Aws));
        // Stable and source-dependent.
        assert_eq!(rewrite(&long, &aws(Some("devops"))).target, m.target);
        let other = format!("{}b", "a".repeat(599));
        assert_ne!(rewrite(&other, &aws(Some("devops"))).target, m.target);
        // Exactly 512 with the prefix is fine, 513 is not.
        let fits = "b".repeat(MAX_NAME_LEN - 7);
        assert_eq!(rewrite(&fits, &aws(Some("devops"))).reasons_str(), "prefix");
        let over = "b".repeat(MAX_NAME_LEN - 6);
        assert_eq!(
            rewrite(&over, &aws(Some("devops"))).reasons_str(),
            "prefix;truncated"
        );
        // Alphanumeric: X + 8 hex.
        let m = rewrite(&"é".repeat(600), &alnum(None));
        assert_eq!(m.target.len(), MAX_NAME_LEN);
        assert_eq!(&m.target[MAX_NAME_LEN - 9..MAX_NAME_LEN - 8], "X");
        assert_eq!(m.reasons_str(), "transliterated;truncated");
    }

    #[test]
    fn validity() {
        let p = Policy::Aws;
        assert!(is_valid_target("a", p));
        assert!(is_valid_target("devops/app/db-abcdefg", p));
        assert!(!is_valid_target("", p));
        assert!(!is_valid_target("a b", p));
        assert!(!is_valid_target("café", p));
        assert!(!is_valid_target("/a", p));
        assert!(!is_valid_target("a/", p));
        assert!(!is_valid_target("a//b", p));
        assert!(!is_valid_target("app/db-abcdef", p));
        assert!(!is_valid_target(&"a".repeat(513), p));
        assert!(is_valid_target(&"a".repeat(512), p));
        assert!(!is_valid_target("a_b", Policy::Alphanumeric));
        assert!(is_valid_target("aB9/c", Policy::Alphanumeric));
        for (name, pol) in [
            ("", p),
            ("a b", p),
            ("/a", p),
            ("a//b", p),
            ("x-abcdef", p),
            ("a-b", Policy::Alphanumeric),
        ] {
            assert!(target_problem(name, pol).is_some(), "{name}");
        }
        assert!(target_problem("a-b", p).is_none());
        assert!(target_problem(&"a".repeat(513), p)
            .unwrap()
            .contains("513 characters"));
    }

    #[test]
    fn prefix_validation() {
        assert_eq!(validate_prefix("devops", Policy::Aws), Ok(()));
        assert_eq!(validate_prefix("devops/team-a/", Policy::Aws), Ok(()));
        assert_eq!(validate_prefix("", Policy::Aws), Ok(()));
        let e = validate_prefix("dev ops", Policy::Aws).unwrap_err();
        assert!(e.contains("expected") && e.contains("' '"), "{e}");
        assert!(validate_prefix("/devops", Policy::Aws).is_err());
        assert!(validate_prefix("a//b", Policy::Aws).is_err());
        assert!(validate_prefix(&"a".repeat(257), Policy::Aws).is_err());
        assert!(validate_prefix(&"a".repeat(256), Policy::Aws).is_ok());
        assert!(validate_prefix("dev-ops", Policy::Alphanumeric).is_err());
        assert!(validate_prefix("devops/a1", Policy::Alphanumeric).is_ok());
    }
}
