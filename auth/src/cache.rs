//! A single-flight, expiring credential cache.
//!
//! Contract: `get` returns the cached entry while it is fresh without taking any lock; when it
//! is missing or expired, exactly one caller runs the fetch while the others wait for its
//! outcome (success or failure), so a hundred requests during an expired credential cause one
//! plugin run. `invalidate(generation)` drops the entry only if it is still the one a failed
//! request used, so a burst of 401s from the same stale credential causes one refresh.
//! Time is `tokio::time::Instant`, so tests drive expiry with paused time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use http::HeaderValue;
use tokio::time::Instant;

use crate::error::CredentialError;

/// One credential: the header to send (none when it is a client certificate only).
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) header: Option<HeaderValue>,
    pub(crate) expires: Option<Instant>,
    pub(crate) generation: u64,
}

impl Entry {
    fn fresh(&self) -> bool {
        self.expires.is_none_or(|at| Instant::now() < at)
    }
}

/// What a fetch produced.
pub(crate) struct Fetched {
    pub(crate) header: Option<HeaderValue>,
    pub(crate) expires: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct RefreshCell {
    current: ArcSwapOption<Entry>,
    /// Held while a fetch runs; holds the failure of the latest fetch, if it failed.
    refresh: tokio::sync::Mutex<Option<CredentialError>>,
    /// Number of fetches finished, read before queueing to tell whether one finished meanwhile.
    finished: AtomicU64,
    generations: AtomicU64,
}

impl RefreshCell {
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<Entry>, CredentialError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, CredentialError>>,
    {
        if let Some(entry) = self.current.load_full().filter(|e| e.fresh()) {
            return Ok(entry);
        }
        let seen = self.finished.load(Ordering::Acquire);
        let mut last_failure = self.refresh.lock().await;
        if let Some(entry) = self.current.load_full().filter(|e| e.fresh()) {
            return Ok(entry);
        }
        // We queued behind a fetch that failed: share its failure instead of running the
        // plugin once more per waiting request.
        if self.finished.load(Ordering::Acquire) != seen
            && let Some(failure) = last_failure.as_ref()
        {
            return Err(failure.clone());
        }
        let result = fetch().await;
        self.finished.fetch_add(1, Ordering::Release);
        match result {
            Ok(fetched) => {
                *last_failure = None;
                let entry = Arc::new(self.entry(fetched));
                self.current.store(Some(entry.clone()));
                Ok(entry)
            }
            Err(error) => {
                *last_failure = Some(error.clone());
                Err(error)
            }
        }
    }

    fn entry(&self, fetched: Fetched) -> Entry {
        Entry {
            header: fetched.header,
            expires: fetched.expires,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    /// Drops the entry of `generation` if it is still current.
    pub(crate) fn invalidate(&self, generation: u64) {
        let current = self.current.load();
        if current.as_ref().is_some_and(|e| e.generation == generation) {
            let _previous = self.current.compare_and_swap(&*current, None);
        }
    }

    /// Stores a credential obtained outside `get` (an initial value from the kubeconfig).
    pub(crate) fn seed(&self, fetched: Fetched) {
        self.current.store(Some(Arc::new(self.entry(fetched))));
    }
}
