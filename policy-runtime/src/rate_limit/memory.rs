//! [`MemoryStore`]: rate-limit state held in this process.
//!
//! This module owns the in-memory backend: a concurrent map per scope from
//! client key to GCRA state, created on first use. The arithmetic is
//! [`super::gcra`]'s; time comes from a governor clock, so tests can use
//! governor's `FakeRelativeClock`. It does not touch HTTP or logging.
//!
//! Why not governor's keyed limiter: it checks one quota at a time and cannot
//! take back a request that a later quota refuses, while a request refused by
//! one of several quotas must consume nothing from the others.

use super::gcra::{self, Limit};
use super::store::{ClientKey, Decision, LimitRequest, LimiterStore, StoreFuture};
use crate::Quota;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock, Reference};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The state of one scope: its limits and every client's TATs.
struct Scope {
    quotas: &'static [Quota],
    limits: Box<[Limit]>,
    clients: Clients,
    /// Clients added since the scope was created; with `sweep_at`, paces the
    /// amortised eviction of idle clients.
    added: AtomicU64,
    sweep_at: AtomicU64,
}

/// The fewest additions between two sweeps, so small maps are not swept often.
const MIN_SWEEP_INTERVAL: u64 = 1024;

/// One TAT per client when the scope has one quota (the common case, kept
/// compact), a boxed slice of them otherwise.
enum Clients {
    One(DashMap<ClientKey, u64>),
    Many(DashMap<ClientKey, Box<[u64]>>),
}

/// Rate-limit state held in this process: exact for one instance, lost on restart.
///
/// GCRA: `N/period` lets a burst of `N` through, then one more request every
/// `period / N`. When a handler has several quotas, a request is counted
/// against all of them or, if any refuses it, against none. Tests can pass a
/// [`FakeRelativeClock`](crate::FakeRelativeClock) to [`MemoryStore::with_clock`]
/// and move time by hand.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{ClientKey, FakeRelativeClock, LimitRequest, LimiterStore, MemoryStore, Quota};
///
/// static QUOTAS: [Quota; 1] = [Quota::new(1, Duration::from_secs(1))];
/// let clock = FakeRelativeClock::default();
/// let store = MemoryStore::with_clock(clock.clone());
/// let key = ClientKey::Ip("192.0.2.7".parse().unwrap());
/// let request = LimitRequest { scope: "doc", key: &key, quotas: &QUOTAS };
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(store.check(request).await.unwrap().allowed);
/// assert!(!store.check(request).await.unwrap().allowed);
/// clock.advance(Duration::from_secs(1));
/// assert!(store.check(request).await.unwrap().allowed);
/// # });
/// ```
pub struct MemoryStore<C: Clock = DefaultClock> {
    clock: C,
    origin: C::Instant,
    scopes: RwLock<HashMap<&'static str, Arc<Scope>>>,
}

impl MemoryStore {
    /// A store on the real monotonic clock.
    ///
    /// ```
    /// let store = policy_runtime::MemoryStore::new();
    /// let engine = policy_runtime::Engine::builder().limiter_store(store).build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn new() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// A store on the given clock, typically a
    /// [`FakeRelativeClock`](crate::FakeRelativeClock) in tests.
    ///
    /// ```
    /// use policy_runtime::{FakeRelativeClock, MemoryStore};
    ///
    /// let store = MemoryStore::with_clock(FakeRelativeClock::default());
    /// # drop(store);
    /// ```
    pub fn with_clock(clock: C) -> Self {
        let origin = clock.now();
        Self {
            clock,
            origin,
            scopes: RwLock::new(HashMap::new()),
        }
    }

    /// Nanoseconds since the store was created, on its clock.
    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.origin).as_u64()
    }

    fn scope(&self, name: &'static str, quotas: &'static [Quota]) -> Arc<Scope> {
        {
            let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = scopes.get(name).filter(|s| same_quotas(s.quotas, quotas)) {
                return Arc::clone(found);
            }
        }
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        let entry = scopes
            .entry(name)
            .or_insert_with(|| Arc::new(Scope::new(quotas)));
        if !same_quotas(entry.quotas, quotas) {
            // Two handlers sharing a scope name with different quotas: the
            // later definition replaces the earlier one rather than mixing them.
            *entry = Arc::new(Scope::new(quotas));
        }
        Arc::clone(entry)
    }
}

impl Scope {
    fn new(quotas: &'static [Quota]) -> Self {
        let limits: Box<[Limit]> = quotas.iter().copied().map(Limit::new).collect();
        let clients = if limits.len() == 1 {
            Clients::One(DashMap::new())
        } else {
            Clients::Many(DashMap::new())
        };
        Scope {
            quotas,
            limits,
            clients,
            added: AtomicU64::new(0),
            sweep_at: AtomicU64::new(MIN_SWEEP_INTERVAL),
        }
    }

    fn decide(&self, key: &ClientKey, now: u64) -> Decision {
        let decision = match &self.clients {
            Clients::One(clients) => match clients.get_mut(key) {
                Some(mut tat) => {
                    return gcra::decide(&self.limits, std::slice::from_mut(&mut *tat), now)
                }
                None => {
                    let mut tat = clients.entry(key.clone()).or_insert(0);
                    gcra::decide(&self.limits, std::slice::from_mut(&mut *tat), now)
                }
            },
            Clients::Many(clients) => match clients.get_mut(key) {
                Some(mut tats) => return gcra::decide(&self.limits, &mut tats, now),
                None => {
                    let mut tats = clients
                        .entry(key.clone())
                        .or_insert_with(|| vec![0; self.limits.len()].into_boxed_slice());
                    gcra::decide(&self.limits, &mut tats, now)
                }
            },
        };
        // A new client was added (and its map guard is released): maybe sweep.
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        let due = self.sweep_at.load(Ordering::Relaxed);
        if added >= due {
            let next = added + MIN_SWEEP_INTERVAL.max(self.len() as u64);
            // One thread sweeps; the others go on.
            if self
                .sweep_at
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.sweep(now);
            }
        }
        decision
    }

    /// Forgets every client whose state has fully replenished (a new client
    /// would be treated the same) and returns the memory. Amortised: it runs
    /// after as many additions as there were clients, so each addition pays
    /// for a constant share.
    fn sweep(&self, now: u64) {
        match &self.clients {
            Clients::One(clients) => {
                clients.retain(|_, tat| !gcra::is_idle(std::slice::from_ref(tat), now));
                clients.shrink_to_fit();
            }
            Clients::Many(clients) => {
                clients.retain(|_, tats| !gcra::is_idle(tats, now));
                clients.shrink_to_fit();
            }
        }
    }

    fn len(&self) -> usize {
        match &self.clients {
            Clients::One(clients) => clients.len(),
            Clients::Many(clients) => clients.len(),
        }
    }
}

fn same_quotas(a: &'static [Quota], b: &'static [Quota]) -> bool {
    std::ptr::eq(a, b) || a == b
}

impl<C> LimiterStore for MemoryStore<C>
where
    C: Clock + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn check<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a> {
        if request.quotas.is_empty() {
            return StoreFuture::ready(Err(super::store::StoreError::new(
                "a rate-limit policy declared no quota",
            )));
        }
        let scope = self.scope(request.scope, request.quotas);
        StoreFuture::ready(Ok(scope.decide(request.key, self.now())))
    }
}
