//! Overlapping jobs: two jobs of one run that would both claim one source secret in one place.
//!
//! A job owns what it writes by its scope (source instance, base path, filters) and prefix.
//! Two jobs of one config that read the same source secret into the same account, region and
//! prefix (nested base paths `svc/` and `svc/tiny/` on one mount, or filters that both admit a
//! path) would write one name from two scopes: one job's secrets would look foreign, renamed or
//! orphaned to the other, and a prune of one could delete the other's live secrets. So the run
//! is refused before anything is written (exit 64, like a config error), naming both jobs and
//! an example path.
//!
//! The decision is made from what the jobs really claim: their listings after the
//! `include`/`exclude` filter, as identities (kind, instance, full path). Disjoint filters on
//! one mount into one prefix are fine, and so are nested base paths into different prefixes
//! (their names differ) or different regions or accounts.
//!
//! Pure: [`find`] is fed by `engine::overlapping` (called by `commands::run`) once every job is
//! listed, before the confirmation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::identity::SourceIdentity;

/// Where a job writes: account, region, prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Place<'a> {
    /// The AWS account id (the caller's; `unknown` when STS could not tell, which compares
    /// equal to another unknown one: refusing is the safe side).
    pub account: &'a str,
    /// The region.
    pub region: &'a str,
    /// The target prefix (`""` for none).
    pub prefix: &'a str,
}

/// What one job of the run claims.
pub struct Claim<'a, P> {
    /// The job's name.
    pub job: &'a str,
    /// Where it writes.
    pub place: Place<'a>,
    /// The identities of its filtered listing; only read when another job writes to the
    /// same place.
    pub(crate) identities: P,
}

/// Two jobs that would both claim a source secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// The first job, in config order.
    pub first: String,
    /// The second job.
    pub second: String,
    /// A secret both claim (the smallest such identity of that pair: deterministic).
    pub example: SourceIdentity,
    /// Where both would write it.
    pub account: String,
    /// The region.
    pub region: String,
    /// The prefix.
    pub prefix: String,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.prefix.is_empty() {
            "no prefix".to_owned()
        } else {
            format!("prefix {}/", self.prefix)
        };
        write!(
            f,
            "jobs {:?} and {:?} overlap: both claim {} source {} path {:?} into account {}, region {}, {prefix}; \
             one secret may be written by one job only: make their paths or include/exclude filters disjoint, \
             or give them different prefixes; nothing was written",
            self.first,
            self.second,
            self.example.kind(),
            self.example.instance(),
            self.example.path(),
            self.account,
            self.region,
        )
    }
}

/// The first pair of jobs (in config order) that would both claim a source secret in the same
/// place, with the smallest identity they share; `None` when no two jobs overlap.
pub(crate) fn find<'a, P>(claims: Vec<Claim<'a, P>>) -> Option<Overlap>
where
    P: IntoIterator<Item = SourceIdentity>,
{
    let mut by_place: BTreeMap<Place<'a>, Vec<(usize, Claim<'a, P>)>> = BTreeMap::new();
    for (i, c) in claims.into_iter().enumerate() {
        by_place.entry(c.place.clone()).or_default().push((i, c));
    }
    // (first job index, second job index, example) of the best candidate so far
    let mut best: Option<(usize, usize, SourceIdentity, Place<'a>, &'a str, &'a str)> = None;
    for (place, jobs) in by_place {
        if jobs.len() < 2 {
            continue;
        }
        let mut claimed: HashMap<SourceIdentity, usize> = HashMap::new();
        let mut names: Vec<&'a str> = Vec::new();
        let mut indexes: Vec<usize> = Vec::new();
        for (i, c) in jobs {
            let me = names.len();
            names.push(c.job);
            indexes.push(i);
            for id in c.identities {
                match claimed.get(&id) {
                    Some(&other) if other != me => {
                        let cand = (indexes[other], i, id);
                        let better = best
                            .as_ref()
                            .is_none_or(|(a, b, e, ..)| (cand.0, cand.1, &cand.2) < (*a, *b, e));
                        if better {
                            best =
                                Some((cand.0, cand.1, cand.2, place.clone(), names[other], c.job));
                        }
                    }
                    Some(_) => {}
                    None => {
                        claimed.insert(id, me);
                    }
                }
            }
        }
    }
    best.map(|(_, _, example, place, first, second)| Overlap {
        first: first.to_owned(),
        second: second.to_owned(),
        example,
        account: place.account.to_owned(),
        region: place.region.to_owned(),
        prefix: place.prefix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::PathFilter;
    use crate::identity::Scope;

    const MOUNT: &str = "http://v:8200/secret";

    /// A job: name, base path, filter (include, exclude), listing under the mount (full paths),
    /// account, region, prefix.
    struct Job {
        name: &'static str,
        base: &'static str,
        include: &'static [&'static str],
        exclude: &'static [&'static str],
        instance: &'static str,
        account: &'static str,
        region: &'static str,
        prefix: &'static str,
    }

    fn job(name: &'static str, base: &'static str) -> Job {
        Job {
            name,
            base,
            include: &[],
            exclude: &[],
            instance: MOUNT,
            account: "111122223333",
            region: "us-east-1",
            prefix: "p",
        }
    }

    /// What the mount holds.
    const MOUNT_PATHS: &[&str] = &[
        "apps/db",
        "apps/api",
        "apps2/db",
        "svc/a",
        "svc/tiny/t0",
        "svc/tiny/t1",
    ];

    /// Lists the job's base path (relative paths, as a source does), filters, and turns the
    /// result into identities, as `engine::overlapping` does.
    fn claims(jobs: &[Job]) -> Option<Overlap> {
        let listed: Vec<(Scope, Vec<String>)> = jobs
            .iter()
            .map(|j| {
                let scope = Scope::new("vault", j.instance, j.base);
                let base = j.base.trim_matches('/');
                let filter = PathFilter::new(
                    &j.include.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    &j.exclude.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )
                .unwrap();
                let rel: Vec<String> = MOUNT_PATHS
                    .iter()
                    .filter_map(|p| {
                        if base.is_empty() {
                            Some(p.to_string())
                        } else {
                            p.strip_prefix(base)?.strip_prefix('/').map(str::to_owned)
                        }
                    })
                    .filter(|r| filter.admits(r))
                    .collect();
                (scope, rel)
            })
            .collect();
        find(
            jobs.iter()
                .zip(&listed)
                .map(|(j, (scope, rel))| Claim {
                    job: j.name,
                    place: Place {
                        account: j.account,
                        region: j.region,
                        prefix: j.prefix,
                    },
                    identities: rel.iter().map(|r| scope.identity(r)),
                })
                .collect(),
        )
    }

    #[test]
    fn overlapping_jobs_are_found_and_others_are_not() {
        let nested = claims(&[job("outer", "svc/"), job("inner", "svc/tiny/")]).unwrap();
        assert_eq!(
            (nested.first.as_str(), nested.second.as_str()),
            ("outer", "inner")
        );
        assert_eq!(nested.example.path(), "svc/tiny/t0");
        let text = nested.to_string();
        for part in ["\"outer\"", "\"inner\"", "svc/tiny/t0", "prefix p/", MOUNT] {
            assert!(text.contains(part), "{part}: {text}");
        }
        // the same base path twice
        assert!(claims(&[job("a", "apps"), job("b", "apps")]).is_some());
        // the whole mount contains everything
        let all = claims(&[job("all", ""), job("two", "apps2")]).unwrap();
        assert_eq!(all.example.path(), "apps2/db");

        for (what, jobs) in [
            (
                "siblings apps and apps2",
                vec![job("a", "apps"), job("b", "apps2")],
            ),
            (
                "nested, different prefixes",
                vec![
                    job("outer", "svc"),
                    Job {
                        prefix: "q",
                        ..job("inner", "svc/tiny")
                    },
                ],
            ),
            (
                "nested, different regions",
                vec![
                    job("outer", "svc"),
                    Job {
                        region: "eu-west-1",
                        ..job("inner", "svc/tiny")
                    },
                ],
            ),
            (
                "nested, different accounts",
                vec![
                    job("outer", "svc"),
                    Job {
                        account: "999988887777",
                        ..job("inner", "svc/tiny")
                    },
                ],
            ),
            (
                "nested, another mount",
                vec![
                    job("outer", "svc"),
                    Job {
                        instance: "http://v:8200/kv",
                        ..job("inner", "svc/tiny")
                    },
                ],
            ),
            (
                "disjoint filters on one mount",
                vec![
                    Job {
                        include: &["tiny/**"],
                        ..job("tiny", "svc")
                    },
                    Job {
                        exclude: &["tiny/**"],
                        ..job("rest", "svc")
                    },
                ],
            ),
            (
                "nested, the outer one excludes the inner subtree",
                vec![
                    Job {
                        exclude: &["tiny/**"],
                        ..job("outer", "svc")
                    },
                    job("inner", "svc/tiny"),
                ],
            ),
        ] {
            assert_eq!(claims(&jobs), None, "{what}");
        }
        // filters that both admit a path do overlap
        let both = claims(&[
            Job {
                include: &["tiny/t0"],
                ..job("one", "svc")
            },
            Job {
                include: &["tiny/**"],
                ..job("two", "svc")
            },
        ])
        .unwrap();
        assert_eq!(both.example.path(), "svc/tiny/t0");
    }

    #[test]
    fn the_first_pair_in_config_order_and_its_smallest_path_are_named() {
        let o = claims(&[
            job("a", "apps2"),
            job("b", "svc/tiny"),
            job("c", "svc"),
            job("d", ""),
        ])
        .unwrap();
        // a and d share apps2/db; (a, d) comes before (b, c)
        assert_eq!((o.first.as_str(), o.second.as_str()), ("a", "d"));
        assert_eq!(o.example.path(), "apps2/db");
        // only one job per place: nothing to compare, and the listing is never read
        let lone = find(vec![Claim {
            job: "x",
            place: Place {
                account: "1",
                region: "r",
                prefix: "p",
            },
            identities: std::iter::from_fn(|| -> Option<SourceIdentity> {
                panic!("read a listing with nothing to compare it to")
            }),
        }]);
        assert_eq!(lone, None);
    }
}
