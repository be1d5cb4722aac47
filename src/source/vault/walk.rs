//! The recursive listing of the subtree.
//!
//! A work queue of folders, `parallelism` `LIST` requests in flight (a `FuturesUnordered` fed
//! from the queue; the request semaphore bounds it too). Every answer adds its secrets to the
//! listing and its sub-folders to the queue, so a tree of 10,000 secrets in 1,000 folders costs
//! 1,000 round trips spread over `parallelism` connections. Listing needs only the `list`
//! capability: no metadata or data is read per secret.

use std::collections::VecDeque;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;

use super::http::{encode_path, Verb};
use super::kv::Kv;
use super::{at_path, VaultSource};
use crate::source::{ListProblem, Listing, SourceError, SourceErrorKind, SourceRef};

#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct ListAnswer {
    data: Option<Keys>,
}

/// What listing one folder gave.
enum Folder {
    Keys(Vec<String>),
    /// 404: the folder holds nothing (anymore).
    Missing,
}

impl VaultSource {
    /// The API path that lists a folder (`folder` relative to the subtree, `""` or ending in
    /// `/`), with a trailing slash as Vault's ACL paths for folders have.
    pub(super) fn list_path(&self, folder: &str) -> String {
        let full = self.full_path(folder);
        let full = full.trim_end_matches('/');
        let mut p = match self.kv {
            Kv::V2 => format!("{}/metadata/", self.mount),
            Kv::V1 => format!("{}/", self.mount),
        };
        if !full.is_empty() {
            p.push_str(full);
            p.push('/');
        }
        p
    }

    async fn list_folder(&self, folder: &str) -> Result<Folder, SourceError> {
        let api = self.list_path(folder);
        let reply = self
            .call(Verb::List, &encode_path(&api))
            .await
            .map_err(|e| at_path(e, folder))?;
        match reply.status {
            200 => {
                let answer: ListAnswer = serde_json::from_slice(&reply.body).map_err(|e| {
                    SourceError::new(
                        SourceErrorKind::Other,
                        folder,
                        format!("unexpected answer listing {api}: {e}"),
                    )
                })?;
                Ok(Folder::Keys(
                    answer.data.map(|d| d.keys).unwrap_or_default(),
                ))
            }
            404 => {
                let errors = reply.errors();
                if errors.contains("no handler for route") {
                    // the mount itself does not exist
                    Err(SourceError::new(
                        SourceErrorKind::NotFound,
                        folder,
                        format!(
                            "no KV mount \"{}\" at {} ({errors})",
                            self.mount, self.http.address
                        ),
                    ))
                } else if self.kv == Kv::V1
                    && String::from_utf8_lossy(&reply.body).contains("versioned K/V")
                {
                    // a KV v2 mount read with v1 paths answers 404 with this warning
                    Err(SourceError::new(
                        SourceErrorKind::Other,
                        folder,
                        format!(
                            "mount \"{}\" is KV version 2, but kv_version = 1 is configured; set kv_version = 2 or remove it",
                            self.mount
                        ),
                    ))
                } else {
                    Ok(Folder::Missing)
                }
            }
            403 => Err(SourceError::new(
                SourceErrorKind::Denied,
                folder,
                format!(
                    "permission denied listing {api}; the token needs the \"list\" capability there"
                ),
            )),
            _ => Err(at_path(self.unexpected(&api, &reply), folder)),
        }
    }

    /// Lists the subtree (see the module docs).
    pub(super) async fn walk(&self) -> Result<Listing, SourceError> {
        let mut listing = Listing::default();
        let mut queue: VecDeque<String> = VecDeque::from([String::new()]);
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.parallelism {
                let Some(folder) = queue.pop_front() else {
                    break;
                };
                running.push(async move {
                    let result = self.list_folder(&folder).await;
                    (folder, result)
                });
            }
            let Some((folder, result)) = running.next().await else {
                break;
            };
            match result {
                Ok(Folder::Keys(keys)) => {
                    for key in keys {
                        let key = key.trim_start_matches('/');
                        if key.is_empty() {
                            continue;
                        }
                        let path = format!("{folder}{key}");
                        if key.ends_with('/') {
                            queue.push_back(path);
                        } else {
                            listing.refs.push(SourceRef::new(path));
                        }
                    }
                }
                // a subtree that does not exist is empty
                Ok(Folder::Missing) if folder.is_empty() => {}
                Ok(Folder::Missing) => listing.problems.push(ListProblem {
                    path: folder.clone(),
                    line: None,
                    error: format!(
                        "folder {} disappeared while listing (404)",
                        self.list_path(&folder)
                    ),
                }),
                // nothing can be listed, or the token is gone: the listing is impossible
                Err(e) if folder.is_empty() || e.kind == SourceErrorKind::Auth => return Err(e),
                Err(e) => listing.problems.push(ListProblem {
                    path: folder.clone(),
                    line: None,
                    error: e.message,
                }),
            }
        }
        listing.refs.sort_by(|a, b| a.path.cmp(&b.path));
        listing.refs.dedup_by(|a, b| a.path == b.path);
        listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
        tracing::debug!(
            secrets = listing.refs.len(),
            problems = listing.problems.len(),
            "listed Vault subtree"
        );
        Ok(listing)
    }
}
