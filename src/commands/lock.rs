//! A same-host lock per config: two writing runs of one config on one machine (a cron overlap,
//! a CronJob pod scheduled twice on a node) run one after the other, so the second lists and
//! plans against what the first wrote and its report claims none of the first's writes.
//!
//! Why a lock at all: AWS answers a `CreateSecret` (or `PutSecretValue`) that repeats another
//! run's request (same name, same token, same value) with the very success it gave the first,
//! so two runs racing on one secret cannot tell from AWS which of them wrote it. Correctness
//! never depends on the lock: runs that overlap without it (two hosts, a lock file that cannot
//! be opened) still converge to one version per secret, find deletions and moves already done
//! (`ok`, not failed), and only a create both sent at the same moment is claimed by both.
//!
//! The lock is an advisory `flock` on `secretport-<config digest>.lock` in the system's
//! temporary directory: the same config text is the same lock wherever the file lies.
//! `plan` and `reconcile --check` take none.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::time::Duration;

use crate::shutdown::Shutdown;

/// Held for the whole run; released when dropped (or when the process ends, however it ends).
pub(crate) struct RunLock {
    _file: File,
}

fn lock_path(digest: &str) -> PathBuf {
    let short: String = digest.chars().take(16).collect();
    std::env::temp_dir().join(format!("secretport-{short}.lock"))
}

fn open(path: &PathBuf) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        // a lock file another user created: a read-only descriptor locks as well
        .or_else(|_| File::open(path))
}

/// Takes the lock of the config with `digest`, waiting (and saying so on stderr, once) while
/// another run holds it. `None` when no lock can be had (the file cannot be opened, the
/// filesystem has no locks) or the run was interrupted while waiting: the run goes on without.
pub(crate) async fn acquire(digest: &str, command: &str, shutdown: &Shutdown) -> Option<RunLock> {
    let path = lock_path(digest);
    let file = match open(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "no same-host run lock");
            return None;
        }
    };
    let mut said = false;
    loop {
        match try_lock(&file) {
            Ok(true) => return Some(RunLock { _file: file }),
            Ok(false) => {
                if !said {
                    eprintln!(
                        "{command}: another run of this config is in progress on this host (lock {}); waiting for it to finish",
                        path.display()
                    );
                    said = true;
                }
                if shutdown.is_triggered() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no same-host run lock");
                return None;
            }
        }
    }
}

/// `Ok(false)`: another process holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Err(std::io::Error::other("no run lock on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_is_done() {
        let digest = format!("test{:012x}", std::process::id());
        let shutdown = Shutdown::new();
        let first = acquire(&digest, "test", &shutdown).await.unwrap();
        let started = std::time::Instant::now();
        let waiter = tokio::spawn(async move {
            let s = Shutdown::new();
            acquire(&digest, "test", &s).await.is_some()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "the second run waits");
        drop(first);
        assert!(waiter.await.unwrap());
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
