//! A config's jobs: the single form (`[source]`, `[target]`, `[naming]` at the top: one job
//! named `default`) or `[[jobs]]` tables, each with a unique `name`, its own source, target,
//! naming and `include` / `exclude` filter. Problems inside a job are named by its index
//! (`jobs[1].target.prefix`), so they point at the table the user must edit.

use super::validate::{Section, Validator};
use super::{NamingConfig, SourceConfig, Split, TargetConfig};
use crate::filter::PathFilter;
use crate::naming::NamingRules;

/// One job: a source, a target, naming and which source paths it takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobConfig {
    /// Unique within the config (`default` for the single form); the report's `job` column.
    pub name: String,
    /// Where secrets come from.
    pub source: SourceConfig,
    /// Where they go.
    pub target: TargetConfig,
    /// How names are rewritten (prefix lives in `target`).
    pub naming: NamingConfig,
    /// `include` / `exclude` globs on source paths.
    pub filter: PathFilter,
    /// A source that lists 0 secrets is fine (otherwise an error naming where it looked).
    pub allow_empty: bool,
    /// `[source] split`: one secret per source secret, or one per top-level key of its JSON
    /// object (`vault`, `file`, `kms`, `sops`; SOPS splits its files itself).
    pub split: Split,
}

impl JobConfig {
    /// The naming rules this job implies.
    pub(crate) fn naming_rules(&self) -> NamingRules {
        NamingRules {
            prefix: Some(self.target.prefix.clone()).filter(|p| !p.is_empty()),
            policy: self.naming.policy,
        }
    }
}

impl Validator<'_> {
    /// The jobs of a whole file (`root`): the single form, or each `[[jobs]]` table, with the
    /// two forms mixed, no job, or a job name given twice reported as problems.
    pub(super) fn jobs(&mut self, root: &mut Section) -> Vec<JobConfig> {
        match root.take("jobs") {
            None => self.job(root, None).into_iter().collect(),
            Some(toml::Value::Array(items)) => {
                for single in ["source", "target", "naming"] {
                    if root.take(single).is_some() {
                        root.problem(
                            single,
                            format!("[{single}] beside [[jobs]]: put it inside each job as [jobs.{single}] (a config is either one [source] + [target] or several [[jobs]])"),
                        );
                    }
                }
                if items.is_empty() {
                    root.problem("jobs", "must hold at least one [[jobs]] table");
                }
                let mut jobs: Vec<JobConfig> = Vec::new();
                let mut names: Vec<String> = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let key = format!("jobs[{i}]");
                    let toml::Value::Table(t) = item else {
                        self.bad(key, format!("expected a table, got {}", item.type_str()));
                        continue;
                    };
                    if let Some(toml::Value::String(name)) = t.get("name") {
                        if names.contains(name) {
                            self.bad(
                                format!("{key}.name"),
                                format!("{name:?} names two jobs; job names must be unique"),
                            );
                        }
                        names.push(name.clone());
                    }
                    let mut s = Section::new(&key, t);
                    let job = self.job(&mut s, Some(i));
                    self.problems.extend(s.finish());
                    jobs.extend(job);
                }
                jobs
            }
            Some(other) => {
                root.problem(
                    "jobs",
                    format!(
                        "expected [[jobs]] tables, got {} (write each job as [[jobs]] with name, [jobs.source] and [jobs.target])",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    /// One job: the whole file in the single form (`index` None: `[source]`, `[target]`,
    /// `[naming]` at the top), or one `[[jobs]]` table (with `name`, `include`, `exclude`).
    fn job(&mut self, s: &mut Section, index: Option<usize>) -> Option<JobConfig> {
        let name = match index {
            None => Some("default".to_owned()),
            Some(_) => {
                let n: Option<String> = s.req(
                    "name",
                    "a job name (letters, digits, - _ .), e.g. \"payments-prod\"",
                );
                n.filter(|n| {
                    let ok = (1..=64).contains(&n.len())
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                    if !ok {
                        s.problem(
                            "name",
                            format!("{n:?} is not a job name (1..=64 of A-Za-z0-9 - _ .)"),
                        );
                    }
                    ok
                })
            }
        };
        let (mut include, mut exclude) = match index {
            Some(_) => filter_lists(s),
            None => (Vec::new(), Vec::new()),
        };
        self.allow_empty = false;
        let source = s.table("source", true).and_then(|mut src| {
            // the single form may give its filters in [source]
            if index.is_none() {
                (include, exclude) = filter_lists(&mut src);
            }
            self.source(src)
        });
        let allow_empty = self.allow_empty;
        let split = self.split;
        let filter_at = match index {
            None => "source".to_owned(),
            Some(i) => format!("jobs[{i}]"),
        };
        let filter = match PathFilter::new(&include, &exclude) {
            Ok(f) => Some(f),
            Err(errors) => {
                for e in errors {
                    self.bad(
                        format!("{filter_at}.{}[{}]", e.list, e.index),
                        format!("{:?} is not a glob pattern: {}", e.pattern, e.why),
                    );
                }
                None
            }
        };
        let target = s.table("target", true).map(|t| self.target(t));
        let naming_sec = s.table("naming", false);
        let prefix = target
            .as_ref()
            .map(|t| t.prefix.clone())
            .filter(|p| !p.is_empty());
        let prefix_key = match index {
            None => "target.prefix".to_owned(),
            Some(i) => format!("jobs[{i}].target.prefix"),
        };
        let naming = self.naming(naming_sec, prefix, &prefix_key);
        Some(JobConfig {
            name: name?,
            source: source?,
            target: target?,
            naming: naming?,
            filter: filter?,
            allow_empty,
            split,
        })
    }
}

/// `include` and `exclude`: glob patterns on source paths, none when absent.
fn filter_lists(s: &mut Section) -> (Vec<String>, Vec<String>) {
    let mut list = |k: &str| {
        s.opt::<Vec<String>>(k, "a list of glob patterns on source paths")
            .unwrap_or_default()
    };
    (list("include"), list("exclude"))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{parse, GOOD};
    use crate::naming::Policy;

    const JOBS: &str = r#"
[limits]
write_per_second = 20

[[jobs]]
name = "payments"
include = ["apps/**"]
exclude = ["apps/tmp/**"]
[jobs.source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "secret"
auth = { method = "token", token_env = "MY_TOKEN" }
[jobs.target]
region = "us-east-1"
prefix = "payments"

[[jobs]]
name = "edge"
[jobs.source]
kind = "vault"
address = "http://127.0.0.1:8200"
mount = "kv"
[jobs.target]
region = "eu-west-1"
prefix = "edge"
[jobs.naming]
policy = "alphanumeric"
"#;

    #[test]
    fn jobs_parse_each_with_its_source_target_naming_and_filter() {
        let c = parse(JOBS).expect("valid");
        let names: Vec<&str> = c.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["payments", "edge"]);
        assert!(c.jobs[0].filter.admits("apps/api"));
        assert!(!c.jobs[0].filter.admits("apps/tmp/x"));
        assert!(!c.jobs[0].filter.admits("web/x"));
        assert!(c.jobs[1].filter.is_all());
        assert_eq!(c.jobs[1].target.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.jobs[1].naming.policy, Policy::Alphanumeric);
        assert_eq!(c.limits.write_per_second, 20);
        let mut one = c.clone();
        one.select(&["edge".into()]).expect("known job");
        assert_eq!(one.jobs.len(), 1);
        let err = c.clone().select(&["nope".into()]).unwrap_err();
        assert!(err.contains("payments, edge"), "{err}");
        assert!(c.single().unwrap_err().contains("--job"));
    }

    #[test]
    fn job_problems_name_the_job_index_and_key() {
        let bad = JOBS
            .replace("name = \"edge\"", "name = \"payments\"")
            .replace("\"apps/tmp/**\"", "\"[oops\"")
            .replace("prefix = \"edge\"", "prefix = \"/\"");
        let err = parse(&bad).unwrap_err();
        let keys: Vec<&str> = err.problems().iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"jobs[1].name"), "{keys:?}");
        assert!(keys.contains(&"jobs[0].exclude[0]"), "{keys:?}");
        assert!(keys.contains(&"jobs[1].target.prefix"), "{keys:?}");
        // both forms at once
        let mixed = format!("{GOOD}\n{JOBS}").replace("[limits]\nwrite_per_second = 20\n", "");
        let err = parse(&mixed).unwrap_err();
        assert!(
            err.problems()
                .iter()
                .any(|p| p.key == "source" && p.message.contains("[[jobs]]")),
            "{err}"
        );
        let unnamed = JOBS.replace("name = \"edge\"\n", "");
        let err = parse(&unnamed).unwrap_err();
        assert!(
            err.problems().iter().any(|p| p.key == "jobs[1].name"),
            "{err}"
        );
    }

    #[test]
    fn single_form_takes_filters_in_source() {
        let c = parse(&GOOD.replace(
            "path = \"apps/\"",
            "path = \"apps/\"\ninclude = [\"team-a/**\"]",
        ))
        .expect("valid");
        assert!(c.jobs[0].filter.admits("team-a/db"));
        assert!(!c.jobs[0].filter.admits("team-b/db"));
    }
}
