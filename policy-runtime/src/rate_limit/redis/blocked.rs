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
//! Building a fingerprint and looking it up costs more than the rest of a
//! check's local work, so a small filter by the first check's key, read
//! without the lock, answers "certainly not cached" for most requests while
//! few clients are blocked.

use crate::rate_limit::store::Decision;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Refusals by request fingerprint, each valid until its retry time.
pub(super) struct BlockedCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Blocked>>,
    /// The number of entries, read without the lock so that a store with
    /// nobody blocked never takes it.
    len: AtomicUsize,
    /// A bit per slot of [`slot`], set for the first key of every entry (and
    /// perhaps of some that are gone): a clear bit means no entry starts
    /// with that key. Changed only under the lock.
    filter: [AtomicU64; FILTER_WORDS],
}

const FILTER_WORDS: usize = 4;

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
            filter: Default::default(),
        }
    }

    /// Whether a request whose first check has the Redis key `first_key`
    /// may be cached; when not, its fingerprint need not even be built.
    pub(super) fn may_hold(&self, first_key: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let (word, bit) = slot(first_key);
        self.filter[word].load(Ordering::Relaxed) & bit != 0
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
            self.stored(&entries);
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
            self.refilter(&entries);
            if entries.len() >= self.capacity {
                self.stored(&entries);
                return;
            }
        }
        let (word, bit) = slot(first_key(&fingerprint));
        entries.insert(
            fingerprint,
            Blocked {
                at: sent,
                until: sent + decision.retry_after,
                decision,
            },
        );
        self.filter[word].fetch_or(bit, Ordering::Relaxed);
        self.stored(&entries);
    }

    /// Forgets every refusal that involves the Redis key `key`.
    pub(super) fn forget(&self, key: &str) {
        if self.is_empty() {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|fingerprint, _| !fingerprint.split('\n').any(|part| part == key));
        self.refilter(&entries);
        self.stored(&entries);
    }

    /// Publishes the number of entries after a change; an empty cache has
    /// an empty filter. Called under the lock.
    fn stored(&self, entries: &HashMap<String, Blocked>) {
        if entries.is_empty() {
            for word in &self.filter {
                word.store(0, Ordering::Relaxed);
            }
        }
        self.len.store(entries.len(), Ordering::Relaxed);
    }

    /// Rebuilds the filter from the entries, dropping the bits of entries
    /// that are gone. Called under the lock.
    fn refilter(&self, entries: &HashMap<String, Blocked>) {
        let mut filter = [0u64; FILTER_WORDS];
        for fingerprint in entries.keys() {
            let (word, bit) = slot(first_key(fingerprint));
            filter[word] |= bit;
        }
        for (word, bits) in self.filter.iter().zip(filter) {
            word.store(bits, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Blocked>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The first check's Redis key: a fingerprint's first line.
fn first_key(fingerprint: &str) -> &str {
    fingerprint.split('\n').next().unwrap_or_default()
}

/// The filter's word and bit for a key, from its last bytes (for the
/// store's keys, hex digits of a hash, so spread evenly).
fn slot(key: &str) -> (usize, u64) {
    let hash = key.bytes().rev().take(4).fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    let slot = hash % (FILTER_WORDS * 64);
    (slot / 64, 1 << (slot % 64))
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
    fn the_filter_lets_every_cached_first_key_through() {
        let cache = BlockedCache::new(64);
        let sent = Instant::now();
        assert!(!cache.may_hold("p:s:k1"));
        let keys: Vec<String> = (0..40).map(|i| format!("p:s:{i:064x}")).collect();
        for key in &keys {
            cache.insert(
                format!("{key}\n1\nq,\n"),
                sent,
                refusal(Duration::from_secs(10)),
            );
        }
        assert!(keys.iter().all(|key| cache.may_hold(key)));
        // Few bits are set, so most other keys skip the lookup.
        let others = (1000..2000)
            .filter(|i| cache.may_hold(&format!("p:s:{i:064x}")))
            .count();
        assert!(others < 500, "{others}");
        // Forgetting a key rebuilds the filter; an empty cache lets nothing through.
        for key in &keys {
            cache.forget(key);
        }
        assert!(cache.is_empty());
        assert!(!cache.may_hold(&keys[0]));
    }

    #[test]
    fn admissions_and_a_zero_capacity_are_not_cached() {
        let cache = BlockedCache::new(0);
        cache.insert("k".into(), Instant::now(), refusal(Duration::from_secs(1)));
        assert!(cache.get("k", Instant::now()).is_none());
    }
}
