//! The shutdown signal, passed into the library as a value (as mini-redis passes its shutdown
//! future into `server::run`): the binary triggers it on Ctrl-C or SIGTERM, tests trigger it
//! directly. Once triggered, the executor starts no new secret, retry loops stop retrying and
//! return their last error, and the run ends with a report that says what was not started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A one-way flag with a future to wait on. Clones share the flag.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<(AtomicBool, Notify)>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl Shutdown {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and wakes every waiter.
    pub fn trigger(&self) {
        self.inner.0.store(true, Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    /// Whether the flag is set.
    pub(crate) fn is_triggered(&self) -> bool {
        self.inner.0.load(Ordering::SeqCst)
    }

    /// Completes once the flag is set.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_waiters_and_stays_set() {
        let s = Shutdown::new();
        let w = {
            let s = s.clone();
            tokio::spawn(async move { s.wait().await })
        };
        tokio::task::yield_now().await;
        assert!(!s.is_triggered());
        s.trigger();
        w.await.unwrap();
        s.wait().await; // already set: returns at once
        assert!(s.is_triggered());
    }
}
