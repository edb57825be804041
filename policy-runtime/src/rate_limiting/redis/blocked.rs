//! The local cache of requests known to be refused until some instant.
//!
//! This module owns remembering Redis' refusals so that a client hammering an
//! exhausted limit costs no round trip until its retry time. This is safe
//! with any number of instances: a refusal consumes nothing, and other
//! instances can only push a client's retry time later, never earlier, so a
//! cached refusal is never wrong before it expires (unless the state is reset
//! through another instance, or deleted by hand).
//!
//! The cache is bounded by its capacity (10 000 refusals by default, set with
//! `RedisStoreBuilder::blocked_cache_capacity`). A refusal that finds it full
//! is not cached: that client's next request simply costs a round trip, and
//! Redis refuses it again, so a full cache never admits anyone. Expired
//! entries are swept out when the cache is full, but at most once per half a
//! capacity of insertions, so that the sweep (linear in the capacity) costs
//! amortised O(1) per request even while the cache is full of refusals that
//! have not expired yet. Reaching the cap with nothing to sweep is logged
//! once, at `warn`, until a sweep finds the cache at most half full again.
//!
//! An entry is keyed by the request's fingerprint: every check's Redis key,
//! cost and quotas, so that only the very same request is answered from it.
//! Building a fingerprint and looking it up costs more than the rest of a
//! check's local work, so a small filter by the first check's key, read
//! without the lock, answers "certainly not cached" for most requests while
//! few clients are blocked. An index from each Redis key to the entries
//! that involve it lets a reset forget a client's refusals without visiting
//! the others.

use crate::rate_limiting::store::Decision;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Refusals by request fingerprint, each valid until its retry time.
pub(super) struct BlockedCache {
    capacity: usize,
    entries: Mutex<Entries>,
    /// The number of entries, read without the lock so that a store with
    /// nobody blocked never takes it.
    len: AtomicUsize,
    /// A bit per slot of [`slot`], set for the first key of every entry (and
    /// perhaps of some that are gone): a clear bit means no entry starts
    /// with that key. Changed only under the lock.
    filter: [AtomicU64; FILTER_WORDS],
}

const FILTER_WORDS: usize = 4;

/// The refusals, and when the cache may be swept next.
struct Entries {
    map: HashMap<Arc<str>, Blocked>,
    /// The fingerprints of the entries by every Redis key they involve
    /// (kept in step with `map`), for [`BlockedCache::forget`].
    by_key: HashMap<Box<str>, Vec<Arc<str>>>,
    /// Insertions since the last sweep: a sweep of a full cache waits for
    /// [`BlockedCache::sweep_every`] of them, so that its cost spreads over
    /// as many requests as it may visit entries.
    since_sweep: usize,
    /// Whether the cache was found full, with nothing expired, and logged;
    /// cleared when a sweep leaves it at most half full.
    full_logged: bool,
    /// How many sweeps ran, and how many entries sweeps and resets
    /// visited (to bound them in tests).
    sweeps: u64,
    visited: u64,
}

impl Entries {
    /// Adds or replaces an entry, and indexes a new one by its keys.
    fn add(&mut self, fingerprint: String, blocked: Blocked) {
        if let Some(entry) = self.map.get_mut(fingerprint.as_str()) {
            *entry = blocked;
            return;
        }
        let fingerprint: Arc<str> = fingerprint.into();
        for key in keys_of(&fingerprint) {
            let list = self.by_key.entry(Box::from(key)).or_default();
            if !list.contains(&fingerprint) {
                list.push(Arc::clone(&fingerprint));
            }
        }
        self.map.insert(fingerprint, blocked);
    }

    /// Drops an entry and its place in the index.
    fn remove(&mut self, fingerprint: &str) {
        if self.map.remove(fingerprint).is_none() {
            return;
        }
        for key in keys_of(fingerprint) {
            if let Some(list) = self.by_key.get_mut(key) {
                list.retain(|other| **other != *fingerprint);
                if list.is_empty() {
                    self.by_key.remove(key);
                }
            }
        }
    }
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
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                by_key: HashMap::new(),
                since_sweep: 0,
                full_logged: false,
                sweeps: 0,
                visited: 0,
            }),
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
        let entry = entries.map.get(fingerprint)?;
        if now >= entry.until {
            entries.remove(fingerprint);
            self.stored(&entries.map);
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
        let mut guard = self.lock();
        let entries = &mut *guard;
        entries.since_sweep = entries.since_sweep.saturating_add(1);
        if entries.map.len() >= self.capacity && !entries.map.contains_key(fingerprint.as_str()) {
            if entries.since_sweep >= self.sweep_every() {
                self.sweep(entries, Instant::now());
            }
            if entries.map.len() >= self.capacity {
                if !entries.full_logged {
                    entries.full_logged = true;
                    tracing::warn!(
                        store = "redis",
                        capacity = self.capacity,
                        "The Redis store's refusal cache is full of refusals that have not \
                         expired; until some expire, new refusals are not cached and each \
                         retry of a refused client costs a round trip to Redis (raise \
                         `blocked_cache_capacity` to cache more)"
                    );
                }
                return;
            }
        }
        let (word, bit) = slot(first_key(&fingerprint));
        entries.add(
            fingerprint,
            Blocked {
                at: sent,
                until: sent + decision.retry_after,
                decision,
            },
        );
        self.filter[word].fetch_or(bit, Ordering::Relaxed);
        self.stored(&entries.map);
    }

    /// How many insertions a sweep of a full cache waits for: half the
    /// capacity, so that sweeps cost amortised O(1) per insertion while a
    /// sweep that frees a lot comes soon.
    fn sweep_every(&self) -> usize {
        (self.capacity / 2).max(1)
    }

    /// Drops the expired refusals. Called under the lock.
    fn sweep(&self, entries: &mut Entries, now: Instant) {
        entries.visited += entries.map.len() as u64;
        entries.map.retain(|_, entry| entry.until > now);
        let Entries { map, by_key, .. } = entries;
        by_key.retain(|_, list| {
            list.retain(|fingerprint| map.contains_key(fingerprint));
            !list.is_empty()
        });
        entries.since_sweep = 0;
        entries.sweeps += 1;
        if entries.map.len() <= self.capacity / 2 {
            entries.full_logged = false;
        }
        self.refilter(&entries.map);
        self.stored(&entries.map);
    }

    /// Forgets every refusal that involves the Redis key `key`, visiting
    /// only those (through the index). The filter keeps their bits until the
    /// next sweep: a stale bit only costs a lookup.
    pub(super) fn forget(&self, key: &str) {
        if self.is_empty() {
            return;
        }
        let mut entries = self.lock();
        let Some(involved) = entries.by_key.remove(key) else {
            return;
        };
        entries.visited += involved.len() as u64;
        for fingerprint in involved {
            entries.remove(&fingerprint);
        }
        self.stored(&entries.map);
    }

    /// Publishes the number of entries after a change; an empty cache has
    /// an empty filter. Called under the lock.
    fn stored(&self, entries: &HashMap<Arc<str>, Blocked>) {
        if entries.is_empty() {
            for word in &self.filter {
                word.store(0, Ordering::Relaxed);
            }
        }
        self.len.store(entries.len(), Ordering::Relaxed);
    }

    /// Rebuilds the filter from the entries, dropping the bits of entries
    /// that are gone. Called under the lock.
    fn refilter(&self, entries: &HashMap<Arc<str>, Blocked>) {
        let mut filter = [0u64; FILTER_WORDS];
        for fingerprint in entries.keys() {
            let (word, bit) = slot(first_key(fingerprint));
            filter[word] |= bit;
        }
        for (word, bits) in self.filter.iter().zip(filter) {
            word.store(bits, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every check's Redis key in a fingerprint: its lines are the key, the
/// cost and the quotas of each check in turn (see `script::fingerprint`).
fn keys_of(fingerprint: &str) -> impl Iterator<Item = &str> {
    fingerprint
        .split('\n')
        .step_by(3)
        .filter(|key| !key.is_empty())
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
        assert!(
            cache
                .get("k\n1\nq", sent + Duration::from_secs(10))
                .is_none()
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = BlockedCache::new(2);
        let sent = Instant::now();
        for key in ["a", "b", "c"] {
            cache.insert(key.into(), sent, refusal(Duration::from_secs(10)));
        }
        assert_eq!(cache.lock().map.len(), 2);
        assert!(cache.get("c", sent).is_none());
    }

    #[test]
    fn a_full_cache_of_live_refusals_is_swept_once_per_half_capacity() {
        const CAP: usize = 8;
        let cache = BlockedCache::new(CAP);
        let sent = Instant::now();
        let hour = Duration::from_secs(3600);
        for i in 0..CAP {
            cache.insert(format!("k{i}\n1\nq"), sent, refusal(hour));
        }
        assert_eq!(cache.lock().sweeps, 0);
        // A thousand new refusals meet the cap: none is cached, every cached
        // one still stands, and the sweeps visit at most two entries per
        // insertion.
        for i in CAP..CAP + 1000 {
            cache.insert(format!("k{i}\n1\nq"), sent, refusal(hour));
            assert!(cache.lock().map.len() <= CAP);
        }
        let sweeps = cache.lock().sweeps;
        assert!(sweeps as usize * CAP <= 2 * 1000 + CAP, "{sweeps} sweeps");
        for i in 0..CAP {
            assert!(cache.get(&format!("k{i}\n1\nq"), sent).is_some());
        }
        assert!(cache.get(&format!("k{}\n1\nq", CAP), sent).is_none());
    }

    #[test]
    fn expired_refusals_make_room_at_the_next_sweep() {
        let cache = BlockedCache::new(4);
        let sent = Instant::now() - Duration::from_secs(10);
        for i in 0..4 {
            cache.insert(format!("old{i}"), sent, refusal(Duration::from_secs(1)));
        }
        // The first insertion past the cap sweeps: the expired ones go.
        cache.insert(
            "new".into(),
            Instant::now(),
            refusal(Duration::from_secs(60)),
        );
        assert_eq!(cache.lock().map.len(), 1);
        assert!(cache.get("new", Instant::now()).is_some());
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
    fn a_reset_visits_only_the_refusals_of_its_key() {
        let cache = BlockedCache::new(2000);
        let sent = Instant::now();
        let hour = Duration::from_secs(3600);
        for i in 0..1000 {
            cache.insert(format!("p:s:{i}\n1\nq,\n"), sent, refusal(hour));
        }
        // A request of two checks involves both keys.
        cache.insert("p:s:a\n1\nq,\np:t:b\n1\nq,\n".into(), sent, refusal(hour));
        for i in 0..100 {
            cache.forget(&format!("p:s:nobody{i}"));
        }
        cache.forget("p:s:7");
        cache.forget("p:t:b");
        assert_eq!(cache.lock().visited, 2);
        assert!(cache.get("p:s:7\n1\nq,\n", sent).is_none());
        assert!(cache.get("p:s:a\n1\nq,\np:t:b\n1\nq,\n", sent).is_none());
        assert!(cache.get("p:s:8\n1\nq,\n", sent).is_some());
        let entries = cache.lock();
        assert_eq!(entries.map.len(), 999);
        assert_eq!(entries.by_key.len(), 999);
        assert!(!entries.by_key.contains_key("p:s:a"));
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
