//! Where a job's secrets came from, as consumers address them: the part of the config a report
//! does not record (the report's `source_path` is relative to the job's subtree; the Vault
//! mount, the SSM path, the SOPS layout live only in the config).
//!
//! `refs` reads these keys straight from the config's TOML instead of loading it as a run does:
//! a run resolves credentials (the Vault token, AppRole ids) and fails without them, but the
//! mapping needs none, so a CI gate can run `refs scan` with no secret in its environment. The
//! config was validated by the run that wrote the report; here a missing or mistyped key of the
//! few read is still an error naming it.

use crate::source::SourceKind;

/// One job's source location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The job's name (`default` for the single `[source]` form).
    pub job: String,
    /// Its source.
    pub location: Location,
}

/// A source as consumers address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Vault KV: the mount and the subtree, both without surrounding slashes.
    Vault {
        /// KV mount.
        mount: String,
        /// Subtree inside it ("" = whole mount).
        path: String,
        /// `kv_version` when the config forces one (1 has no `data/` in its API path).
        kv_version: Option<u8>,
        /// `split = "keys"`: the key is the source path's last segment (`mount/path#key`).
        split_keys: bool,
    },
    /// SSM: the configured path, `/a/b` or `/`.
    Ssm {
        /// Normalised as the run normalises it.
        path: String,
    },
    /// SOPS files: `split = "keys"` puts the key in the source path's last segment.
    Sops {
        /// One secret per top-level key.
        split_keys: bool,
    },
    /// A credstash table.
    Credstash {
        /// The DynamoDB table.
        table: String,
    },
    /// A `file` or `kms` export.
    Export {
        /// `File` or `Kms`.
        kind: SourceKind,
        /// The export file as the config names it.
        file: String,
        /// `split = "keys"`: the key is the source path's last segment (`file#path#key`).
        split_keys: bool,
    },
}

/// `apps/db/password` -> `("apps/db", "#password")` for a key-secret, else the path whole.
fn split_path(source_path: &str, split_keys: bool) -> (&str, String) {
    match source_path.rsplit_once('/') {
        Some((parent, key)) if split_keys => (parent, format!("#{key}")),
        _ if split_keys => ("", format!("#{source_path}")),
        _ => (source_path, String::new()),
    }
}

impl Location {
    /// Whether each secret is one key of a source secret (`split = "keys"`): its value is that
    /// key's, not a JSON object to pick keys from.
    pub fn splits_keys(&self) -> bool {
        match self {
            Location::Vault { split_keys, .. }
            | Location::Sops { split_keys }
            | Location::Export { split_keys, .. } => *split_keys,
            Location::Ssm { .. } | Location::Credstash { .. } => false,
        }
    }

    /// The kind, the reference consumers write for `source_path`, and (Vault) the API path.
    pub fn consumer_reference(&self, source_path: &str) -> (SourceKind, String, String) {
        let join = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
            (true, _) => b.to_owned(),
            (_, true) => a.to_owned(),
            _ => format!("{a}/{b}"),
        };
        match self {
            Location::Vault {
                mount,
                path,
                kv_version,
                split_keys,
            } => {
                let (secret, key) = split_path(source_path, *split_keys);
                let full = join(path, secret);
                let reference = join(mount, &full);
                let api = if *kv_version == Some(1) {
                    reference.clone()
                } else {
                    join(&join(mount, "data"), &full)
                };
                (SourceKind::Vault, reference + &key, api + &key)
            }
            Location::Ssm { path } => {
                let base = path.trim_end_matches('/');
                (
                    SourceKind::Ssm,
                    format!("{base}/{source_path}"),
                    String::new(),
                )
            }
            Location::Sops { split_keys } => {
                let r = match source_path.rsplit_once('/') {
                    Some((file, key)) if *split_keys => format!("{file}#{key}"),
                    _ => source_path.to_owned(),
                };
                (SourceKind::Sops, r, String::new())
            }
            Location::Credstash { .. } => {
                (SourceKind::Credstash, source_path.to_owned(), String::new())
            }
            Location::Export {
                kind,
                file,
                split_keys,
            } => {
                let (secret, key) = split_path(source_path, *split_keys);
                (*kind, format!("{file}#{secret}{key}"), String::new())
            }
        }
    }
}

/// Reads every job's source location from a config's TOML text.
pub fn read_origins(text: &str) -> Result<Vec<Origin>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    match table.get("jobs") {
        None => {
            let source = section(&table, "source", "source")?;
            Ok(vec![Origin {
                job: "default".into(),
                location: location(source, "source")?,
            }])
        }
        Some(toml::Value::Array(jobs)) => jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let at = format!("jobs[{i}]");
                let job = job
                    .as_table()
                    .ok_or_else(|| format!("{at}: must be a table"))?;
                let name = job
                    .get("name")
                    .and_then(|n| n.as_str())
                    .ok_or_else(|| format!("{at}.name: missing"))?;
                let source = section(job, "source", &format!("{at}.source"))?;
                Ok(Origin {
                    job: name.to_owned(),
                    location: location(source, &format!("{at}.source"))?,
                })
            })
            .collect(),
        Some(_) => Err("jobs: must be an array of tables ([[jobs]])".into()),
    }
}

fn section<'a>(t: &'a toml::Table, key: &str, at: &str) -> Result<&'a toml::Table, String> {
    t.get(key)
        .and_then(|v| v.as_table())
        .ok_or_else(|| format!("{at}: missing (the [source] of the run that wrote the report)"))
}

fn string<'a>(t: &'a toml::Table, key: &str, at: &str) -> Result<Option<&'a str>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{at}.{key}: must be a string")),
    }
}

fn location(s: &toml::Table, at: &str) -> Result<Location, String> {
    let name = string(s, "kind", at)?.ok_or_else(|| format!("{at}.kind: missing"))?;
    let kind = SourceKind::parse(name)
        .ok_or_else(|| format!("{at}.kind: unknown source kind {name:?}"))?;
    Ok(match kind {
        SourceKind::Vault => {
            let mount = string(s, "mount", at)?
                .ok_or_else(|| format!("{at}.mount: missing"))?
                .trim_matches('/')
                .to_owned();
            let path = string(s, "path", at)?
                .unwrap_or("")
                .trim_matches('/')
                .to_owned();
            let kv_version = match s.get("kv_version") {
                None => None,
                Some(toml::Value::Integer(v @ 1..=2)) => Some(*v as u8),
                Some(_) => return Err(format!("{at}.kv_version: must be 1 or 2")),
            };
            Location::Vault {
                mount,
                path,
                kv_version,
                split_keys: string(s, "split", at)? == Some("keys"),
            }
        }
        SourceKind::Ssm => {
            let path = string(s, "path", at)?.unwrap_or("/").trim_matches('/');
            Location::Ssm {
                path: format!("/{path}"),
            }
        }
        SourceKind::Sops => Location::Sops {
            split_keys: string(s, "split", at)? == Some("keys"),
        },
        SourceKind::Credstash => Location::Credstash {
            table: string(s, "table", at)?
                .unwrap_or("credential-store")
                .to_owned(),
        },
        SourceKind::File | SourceKind::Kms => Location::Export {
            kind,
            file: string(s, "file", at)?
                .ok_or_else(|| format!("{at}.file: missing"))?
                .to_owned(),
            split_keys: string(s, "split", at)? == Some("keys"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_gives_the_reference_consumers_write() {
        let v = |kv| Location::Vault {
            mount: "secret".into(),
            path: "apps".into(),
            kv_version: kv,
            split_keys: false,
        };
        let split = |kv| Location::Vault {
            mount: "secret".into(),
            path: "apps".into(),
            kv_version: kv,
            split_keys: true,
        };
        let table: Vec<(Location, &str, (SourceKind, &str, &str))> = vec![
            (
                v(None),
                "db",
                (SourceKind::Vault, "secret/apps/db", "secret/data/apps/db"),
            ),
            (
                v(Some(2)),
                "a/b",
                (SourceKind::Vault, "secret/apps/a/b", "secret/data/apps/a/b"),
            ),
            (
                v(Some(1)),
                "db",
                (SourceKind::Vault, "secret/apps/db", "secret/apps/db"),
            ),
            (
                Location::Vault {
                    mount: "kv".into(),
                    path: "".into(),
                    kv_version: None,
                    split_keys: false,
                },
                "db",
                (SourceKind::Vault, "kv/db", "kv/data/db"),
            ),
            (
                split(None),
                "db/password",
                (
                    SourceKind::Vault,
                    "secret/apps/db#password",
                    "secret/data/apps/db#password",
                ),
            ),
            (
                split(Some(1)),
                "db/password",
                (
                    SourceKind::Vault,
                    "secret/apps/db#password",
                    "secret/apps/db#password",
                ),
            ),
            (
                Location::Ssm {
                    path: "/prod".into(),
                },
                "db/pw",
                (SourceKind::Ssm, "/prod/db/pw", ""),
            ),
            (
                Location::Ssm { path: "/".into() },
                "db",
                (SourceKind::Ssm, "/db", ""),
            ),
            (
                Location::Sops { split_keys: true },
                "secrets/app/token",
                (SourceKind::Sops, "secrets/app#token", ""),
            ),
            (
                Location::Sops { split_keys: false },
                "secrets/app",
                (SourceKind::Sops, "secrets/app", ""),
            ),
            (
                Location::Credstash { table: "t".into() },
                "db.pw",
                (SourceKind::Credstash, "db.pw", ""),
            ),
            (
                Location::Export {
                    kind: SourceKind::Kms,
                    file: "x.jsonl".into(),
                    split_keys: false,
                },
                "a/b",
                (SourceKind::Kms, "x.jsonl#a/b", ""),
            ),
            (
                Location::Export {
                    kind: SourceKind::File,
                    file: "x.jsonl".into(),
                    split_keys: true,
                },
                "a/b/pw",
                (SourceKind::File, "x.jsonl#a/b#pw", ""),
            ),
        ];
        for (loc, sp, (k, r, api)) in table {
            let got = loc.consumer_reference(sp);
            assert_eq!(got, (k, r.to_owned(), api.to_owned()), "{loc:?} {sp}");
        }
    }

    #[test]
    fn configs_read_without_credentials_single_and_jobs() {
        let single = "[source]\nkind = \"vault\"\nmount = \"/secret/\"\npath = \"apps/\"\nauth = { method = \"token\", token_env = \"UNSET\" }\n[target]\nprefix = \"p\"\n";
        assert_eq!(
            read_origins(single).unwrap(),
            vec![Origin {
                job: "default".into(),
                location: Location::Vault {
                    mount: "secret".into(),
                    path: "apps".into(),
                    kv_version: None,
                    split_keys: false,
                }
            }]
        );
        let jobs = "[[jobs]]\nname = \"a\"\n[jobs.source]\nkind = \"ssm\"\npath = \"/prod/\"\n[[jobs]]\nname = \"b\"\n[jobs.source]\nkind = \"credstash\"\n";
        let o = read_origins(jobs).unwrap();
        assert_eq!(
            o[0].location,
            Location::Ssm {
                path: "/prod".into()
            }
        );
        assert_eq!(o[1].job, "b");
        for (text, want) in [
            ("[target]\n", "source: missing"),
            ("[source]\nkind = \"vault\"\n", "source.mount: missing"),
            ("[source]\nkind = \"nope\"\n", "unknown source kind"),
            (
                "[source]\nkind = \"vault\"\nmount = 3\n",
                "source.mount: must be a string",
            ),
            (
                "[[jobs]]\n[jobs.source]\nkind = \"ssm\"\n",
                "jobs[0].name: missing",
            ),
        ] {
            let e = read_origins(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
