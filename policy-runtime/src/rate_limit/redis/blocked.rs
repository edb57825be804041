//! The local cache of requests known to be refused until some instant.
//!
//! This module owns remembering Redis' refusals so that a client hammering an
//! exhausted limit costs no round trip until its retry time. This is safe
//! with any number of instances: a refusal consumes nothing, and other
//! instances can only push a client's retry time later, never earlier, so a
//! cached refusal is never wrong before it expires (unless the state is reset
//! through another instance, or deleted by hand). The cache is bounded: when
//! full, expired entries are dropped, and if it is still full a new refusal is
//! not cached (it then simply costs a round trip).
//!
//! An entry is keyed by the request's fingerprint: every check's Redis key,
//! cost and quotas, so that only the very same request is answered from it.

use crate::rate_limit::store::Decision;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Refusals by request fingerprint, each valid until its retry time.
pub(super) struct BlockedCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Blocked>>,
    /// The number of entries, read without the lock so that a store with
    /// nobody blocked never takes it.
    len: AtomicUsize,
}

struct Blocked {
    /// When Redis' answer was computed, at the latest.
    at: Instant,
    /// When a retry can succeed.
    until: Instant,
    decision: Decision,
}

impl BlockedCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Whether no refusal is cached (so a lookup can be skipped).
    pub(super) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }

    /// The refusal of the request with this fingerprint, if it stands at `now`.
    pub(super) fn get(&self, fingerprint: &str, now: Instant) -> Option<Decision> {
        if self.is_empty() {
            return None;
        }
        let mut entries = self.lock();
        let entry = entries.get(fingerprint)?;
        if now >= entry.until {
            entries.remove(fingerprint);
            self.len.store(entries.len(), Ordering::Relaxed);
            return None;
        }
        let elapsed = now.saturating_duration_since(entry.at);
        Some(Decision {
            retry_after: entry.until - now,
            reset_after: entry.decision.reset_after.saturating_sub(elapsed),
            ..entry.decision
        })
    }

    /// Remembers a refusal computed by Redis no earlier than `sent`.
    ///
    /// Times are measured from when the request was sent, so the cached
    /// refusal ends no later than the one in Redis.
    pub(super) fn insert(&self, fingerprint: String, sent: Instant, decision: Decision) {
        if self.capacity == 0 || decision.allowed || decision.retry_after.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&fingerprint) {
            let now = Instant::now();
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= self.capacity {
                self.len.store(entries.len(), Ordering::Relaxed);
                return;
            }
        }
        entries.insert(
            fingerprint,
            Blocked {
                at: sent,
                until: sent + decision.retry_after,
                decision,
            },
        );
        self.len.store(entries.len(), Ordering::Relaxed);
    }

    /// Forgets every refusal that involves the Redis key `key`.
    pub(super) fn forget(&self, key: &str) {
        if self.is_empty() {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|fingerprint, _| !fingerprint.split('\n').any(|part| part == key));
        self.len.store(entries.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Blocked>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;
    use std::time::Duration;

    fn refusal(retry_after: Duration) -> Decision {
        Decision {
            allowed: false,
            quota: Quota::new(1, Duration::from_secs(60)),
            remaining: 0,
            reset_after: retry_after,
            retry_after,
        }
    }

    #[test]
    fn a_refusal_is_served_until_its_retry_time() {
        let cache = BlockedCache::new(8);
        let sent = Instant::now();
        cache.insert("k\n1\nq".into(), sent, refusal(Duration::from_secs(10)));
        let later = sent + Duration::from_secs(4);
        let cached = cache.get("k\n1\nq", later).unwrap();
        assert!(!cached.allowed);
        assert_eq!(cached.retry_after, Duration::from_secs(6));
        assert_eq!(cached.reset_after, Duration::from_secs(6));
        assert!(cache.get("k\n2\nq", later).is_none());
        assert!(cache
            .get("k\n1\nq", sent + Duration::from_secs(10))
            .is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = BlockedCache::new(2);
        let sent = Instant::now();
        for key in ["a", "b", "c"] {
            cache.insert(key.into(), sent, refusal(Duration::from_secs(10)));
        }
        assert_eq!(cache.lock().len(), 2);
        assert!(cache.get("c", sent).is_none());
    }

    #[test]
    fn forgetting_a_key_drops_every_refusal_that_involves_it() {
        let cache = BlockedCache::new(8);
        let sent = Instant::now();
        cache.insert(
            "p:s:k1\n1\nq".into(),
            sent,
            refusal(Duration::from_secs(10)),
        );
        cache.insert(
            "p:s:k2\n1\nq".into(),
            sent,
            refusal(Duration::from_secs(10)),
        );
        cache.forget("p:s:k1");
        assert!(cache.get("p:s:k1\n1\nq", sent).is_none());
        assert!(cache.get("p:s:k2\n1\nq", sent).is_some());
    }

    #[test]
    fn admissions_and_a_zero_capacity_are_not_cached() {
        let cache = BlockedCache::new(0);
        cache.insert("k".into(), Instant::now(), refusal(Duration::from_secs(1)));
        assert!(cache.get("k", Instant::now()).is_none());
    }
}
