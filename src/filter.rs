//! `include` / `exclude` globs on source paths: which of a source's secrets a job takes.
//!
//! Applied to the listing before planning, so an excluded secret is never read, never
//! planned, and — because the planner asks the same filter about every owned secret it finds
//! in the target — never an orphan either: narrowing a job's filter must not schedule the
//! secrets it stopped taking for deletion. Patterns are matched against the source path (the
//! path relative to the job's `path`, the same string the report's `source_path` shows).
//!
//! Glob syntax is the `glob` crate's, with `/` matched literally: `*` stays inside one path
//! segment, `**` as a whole segment spans any number of them (`apps/**` is everything under
//! `apps/`), `?` is one character, `[abc]` a class. An empty `include` takes everything.

use glob::{MatchOptions, Pattern};

const OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// A bad pattern: which list, its index, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{list}[{index}]: {pattern:?} is not a glob pattern: {why}")]
pub struct FilterError {
    /// `include` or `exclude`.
    pub list: &'static str,
    /// Position in the list.
    pub index: usize,
    /// The pattern as written.
    pub pattern: String,
    /// The parser's reason.
    pub why: String,
}

/// Include and exclude globs; admits a path when some include matches (or there are none) and
/// no exclude does.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl PathFilter {
    /// Compiles both lists; every bad pattern is reported.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, Vec<FilterError>> {
        let mut errors = Vec::new();
        let mut compile = |list: &'static str, pats: &[String]| -> Vec<Pattern> {
            pats.iter()
                .enumerate()
                .filter_map(|(index, p)| match Pattern::new(p.trim_start_matches('/')) {
                    Ok(pat) => Some(pat),
                    Err(e) => {
                        errors.push(FilterError {
                            list,
                            index,
                            pattern: p.clone(),
                            why: e.msg.to_owned(),
                        });
                        None
                    }
                })
                .collect()
        };
        let include = compile("include", include);
        let exclude = compile("exclude", exclude);
        if errors.is_empty() {
            Ok(PathFilter { include, exclude })
        } else {
            Err(errors)
        }
    }

    /// Whether the filter takes everything.
    pub(crate) fn is_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether the job takes the secret at `path` (relative to the job's source path).
    pub(crate) fn admits(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        (self.include.is_empty() || self.include.iter().any(|p| p.matches_with(path, OPTIONS)))
            && !self.exclude.iter().any(|p| p.matches_with(path, OPTIONS))
    }

    /// Whether some `parent/KEY` (KEY one path segment, as a key-secret of `split = "keys"`
    /// is) could be admitted: `false` only when no key can be, so the parent need not be read.
    /// Exact for the segment-wise globs this filter takes; when unsure, `true` (a parent read
    /// for nothing costs a read; a parent wrongly skipped would make its key-secrets look
    /// removed).
    pub(crate) fn may_admit_child(&self, parent: &str) -> bool {
        let parent = parent.trim_start_matches('/');
        let mut segs: Vec<Seg<'_>> = if parent.is_empty() {
            Vec::new()
        } else {
            parent.split('/').map(Seg::Known).collect()
        };
        segs.push(Seg::AnyKey);
        let parts = |p: &Pattern| p.as_str().split('/').map(str::to_owned).collect::<Vec<_>>();
        let included =
            self.include.is_empty() || self.include.iter().any(|p| some_match(&parts(p), &segs));
        included && !self.exclude.iter().any(|p| every_match(&parts(p), &segs))
    }

    /// Words for messages: `include [..], exclude [..]`.
    pub(crate) fn describe(&self) -> String {
        let list = |v: &[Pattern]| {
            v.iter()
                .map(|p| p.as_str().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.include.is_empty(), self.exclude.is_empty()) {
            (true, true) => "everything".into(),
            (false, true) => format!("include [{}]", list(&self.include)),
            (true, false) => format!("exclude [{}]", list(&self.exclude)),
            (false, false) => format!(
                "include [{}], exclude [{}]",
                list(&self.include),
                list(&self.exclude)
            ),
        }
    }
}

/// A path segment of [`PathFilter::may_admit_child`]'s question: known, or any key.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Known(&'a str),
    AnyKey,
}

/// Whether the pattern segment `p` matches the known segment `s`; `None` when `p` is not a
/// pattern on its own.
fn seg_matches(p: &str, s: &str) -> Option<bool> {
    Pattern::new(p).ok().map(|p| p.matches_with(s, OPTIONS))
}

/// Whether the pattern (by segments) matches the path for *some* key.
fn some_match(ps: &[String], qs: &[Seg<'_>]) -> bool {
    match (ps.first().map(String::as_str), qs.first()) {
        (None, q) => q.is_none(),
        (Some("**"), _) => some_match(&ps[1..], qs) || (!qs.is_empty() && some_match(ps, &qs[1..])),
        (Some(_), None) => false,
        // any single-segment pattern matches some key
        (Some(_), Some(Seg::AnyKey)) => some_match(&ps[1..], &qs[1..]),
        (Some(p), Some(Seg::Known(s))) => {
            seg_matches(p, s).unwrap_or(true) && some_match(&ps[1..], &qs[1..])
        }
    }
}

/// Whether the pattern (by segments) matches the path for *every* key.
fn every_match(ps: &[String], qs: &[Seg<'_>]) -> bool {
    match (ps.first().map(String::as_str), qs.first()) {
        (None, q) => q.is_none(),
        (Some("**"), _) => {
            every_match(&ps[1..], qs) || (!qs.is_empty() && every_match(ps, &qs[1..]))
        }
        (Some(_), None) => false,
        (Some(p), Some(Seg::AnyKey)) => p == "*" && every_match(&ps[1..], &qs[1..]),
        (Some(p), Some(Seg::Known(s))) => {
            seg_matches(p, s).unwrap_or(false) && every_match(&ps[1..], &qs[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(inc: &[&str], exc: &[&str]) -> PathFilter {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        PathFilter::new(&s(inc), &s(exc)).expect("valid patterns")
    }

    #[test]
    fn empty_filter_takes_everything() {
        let all = f(&[], &[]);
        assert!(all.is_all());
        assert!(all.admits("a") && all.admits("a/b/c"));
    }

    #[test]
    fn star_stays_in_a_segment_and_double_star_spans_them() {
        let one = f(&["apps/*"], &[]);
        assert!(one.admits("apps/x"));
        assert!(!one.admits("apps/x/y"), "* must not cross /");
        assert!(!one.admits("apps2/x"));
        let deep = f(&["apps/**"], &[]);
        assert!(deep.admits("apps/x") && deep.admits("apps/x/y/z"));
        assert!(!deep.admits("apps2/x"), "segment-wise, not a string prefix");
        let anywhere = f(&["**/db-*"], &[]);
        assert!(anywhere.admits("a/b/db-main") && anywhere.admits("db-main"));
        assert!(!anywhere.admits("a/b/cache"));
    }

    #[test]
    fn exclude_wins_over_include() {
        let x = f(&["apps/**"], &["apps/tmp/**", "**/*.bak"]);
        assert!(x.admits("apps/api/key"));
        assert!(!x.admits("apps/tmp/scratch"));
        assert!(!x.admits("apps/api/key.bak"));
        assert!(!x.admits("other/key"));
        let only_exclude = f(&[], &["legacy/**"]);
        assert!(only_exclude.admits("apps/x") && !only_exclude.admits("legacy/x"));
    }

    #[test]
    fn may_admit_child_agrees_with_admits() {
        let filters = [
            f(&[], &[]),
            f(&["db"], &[]),
            f(&["db/*"], &[]),
            f(&["db/password"], &[]),
            f(&["apps/**"], &[]),
            f(&["**/pass*"], &[]),
            f(&["*/db/u?er"], &[]),
            f(&[], &["legacy/**"]),
            f(&[], &["db/*"]),
            f(&[], &["db/password"]),
            f(&[], &["**"]),
            f(&["apps/**"], &["apps/tmp/**", "**/*.bak"]),
            f(&["[ab]pps/**"], &["**/x"]),
        ];
        let parents = [
            "",
            "db",
            "apps",
            "apps/db",
            "apps/tmp",
            "apps/tmp/x",
            "legacy",
            "legacy/a",
            "x/db",
            "bpps/q",
        ];
        let keys = ["password", "user", "x", "k.bak", "pass", "a b"];
        for (i, filter) in filters.iter().enumerate() {
            for parent in parents {
                let admitted = keys.iter().any(|k| {
                    let path = if parent.is_empty() {
                        (*k).to_owned()
                    } else {
                        format!("{parent}/{k}")
                    };
                    filter.admits(&path)
                });
                // never skips a parent whose key could be admitted
                if admitted {
                    assert!(filter.may_admit_child(parent), "filter {i}, {parent:?}");
                }
            }
        }
        // and skips where no key can be
        assert!(!f(&["db/*"], &[]).may_admit_child("apps"));
        assert!(!f(&["db"], &[]).may_admit_child("db"));
        assert!(!f(&["apps/**"], &[]).may_admit_child("other"));
        assert!(!f(&[], &["legacy/**"]).may_admit_child("legacy/a"));
        assert!(!f(&[], &["db/*"]).may_admit_child("db"));
        assert!(!f(&[], &["**"]).may_admit_child("a"));
        assert!(f(&[], &["db/password"]).may_admit_child("db"));
        assert!(f(&["**/pass*"], &[]).may_admit_child("x/db"));
    }

    #[test]
    fn leading_slashes_and_case() {
        let x = f(&["/apps/*"], &[]);
        assert!(x.admits("apps/a") && x.admits("/apps/a"));
        assert!(
            !x.admits("Apps/a"),
            "case-sensitive like the paths themselves"
        );
    }

    #[test]
    fn bad_patterns_are_all_reported_with_their_list_and_index() {
        let errs = PathFilter::new(&["ok/*".into(), "a/***".into()], &["[z".into()])
            .expect_err("two bad patterns");
        assert_eq!(errs.len(), 2);
        assert_eq!((errs[0].list, errs[0].index), ("include", 1));
        assert_eq!((errs[1].list, errs[1].index), ("exclude", 0));
        assert!(errs[1].to_string().contains("\"[z\""), "{}", errs[1]);
    }
}
