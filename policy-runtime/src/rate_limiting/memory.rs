//! [`MemoryStore`]: rate-limit state held in this process.
//!
//! This module owns the in-memory backend: a concurrent map per scope from
//! client key to limiting state, created on first use, and the amortised
//! eviction of idle clients, one part of a scope's clients at a time (the
//! parts are [`super::client_map`]'s), and the bound on each scope's strict
//! logs. The arithmetic is [`crate::gcra`]'s; time comes from a
//! [`Clock`], so tests can use a [`ManualClock`](crate::ManualClock). It does not touch
//! HTTP; it logs once per scope when the scope's strict logs reach their bound.
//!
//! Why not governor's keyed limiter: it checks one quota at a time and cannot
//! take back a request that a later quota refuses, while a request refused by
//! one of several quotas must consume nothing from the others; and it has no
//! strict (sliding log) mode.

use super::client_map::{ClientMap, PARTS};
use super::store::{ClientKey, Decision, LimitRequest, LimiterStore, StoreError, StoreFuture};
use crate::Quota;
use crate::clock::{Clock, SystemClock};
use crate::gcra::{self, Layout, Limit, Log, LogBudget};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// The state of one scope: its limits and every client's state.
struct Scope {
    quotas: Box<[Quota]>,
    limits: Box<[Limit]>,
    shape: Layout,
    clients: Clients,
    /// The bound on the entries of this scope's strict logs.
    budget: LogBudget,
    /// Clients added so far; with `sweep_at`, paces the amortised eviction.
    added: AtomicU64,
    sweep_at: AtomicU64,
    /// Clock time after which a sweep is due even without new clients, so
    /// that memory is returned when traffic stops.
    sweep_by: AtomicU64,
    /// The part of the clients the next sweep visits (modulo [`PARTS`]).
    next_part: AtomicUsize,
    /// Sweeps made because the scope's longest period had passed; a round
    /// of them is [`PARTS`] long.
    stale_sweeps: AtomicUsize,
    /// The longest time a client's state can stay in use.
    horizon: u64,
}

/// One `u64` per client when the scope needs one slot (a single non-strict
/// quota, the common case), updated by compare-and-swap under the shard's
/// read lock, so checks of different clients in one shard do not wait for
/// each other; a [`ClientState`], under the shard's write lock, otherwise.
enum Clients {
    One(OneSlot),
    Many(ClientMap<ClientKey, ClientState>),
}

/// The state of a client under several quotas or a strict one: a slot per
/// GCRA quota and a log per strict quota.
struct ClientState {
    slots: Box<[u64]>,
    logs: Box<[Log]>,
}

impl ClientState {
    fn new(shape: Layout) -> Self {
        ClientState {
            slots: vec![0; shape.slots].into_boxed_slice(),
            logs: (0..shape.logs).map(|_| Log::new()).collect(),
        }
    }
}

/// One-slot clients, keyed as compactly as their key allows: IPv4 addresses
/// as `u32` and IPv6 networks of /64 or wider as their `u64` prefix, so the
/// common entry is 16 bytes instead of 32; every other key as it is.
#[derive(Default)]
struct OneSlot {
    v4: ClientMap<u32, AtomicU64>,
    v6: ClientMap<u64, AtomicU64>,
    other: ClientMap<ClientKey, AtomicU64>,
}

/// A key in the form [`OneSlot`] files it under.
enum Compact<'k> {
    V4(u32),
    V6(u64),
    Other(&'k ClientKey),
}

impl<'k> Compact<'k> {
    fn of(key: &'k ClientKey) -> Self {
        match key {
            ClientKey::Ip(IpAddr::V4(ip)) => Compact::V4(u32::from(*ip)),
            // Grouped by /64 or wider: the low half is zero, the prefix is the key.
            ClientKey::Ip(IpAddr::V6(ip)) if u128::from(*ip) as u64 == 0 => {
                Compact::V6((u128::from(*ip) >> 64) as u64)
            }
            other => Compact::Other(other),
        }
    }
}

/// Runs `f` on the slot of `key` in `map`, creating it if needed; says
/// whether it was created.
fn with_slot<K: std::hash::Hash + Eq + Clone, R>(
    map: &ClientMap<K, AtomicU64>,
    key: &K,
    f: impl FnMut(&mut [u64]) -> R,
) -> (R, bool) {
    let map = map.part_of(key);
    if let Some(slot) = map.get(key) {
        return (update(&slot, f), false);
    }
    let slot = map.entry(key.clone()).or_insert(AtomicU64::new(0));
    (update(&slot, f), true)
}

/// Runs `f` on a copy of `slot` and stores what `f` left in the copy, unless
/// another check changed the slot meanwhile: then `f` runs again on the new
/// value. `f` must depend only on the state it is given.
fn update<R>(slot: &AtomicU64, mut f: impl FnMut(&mut [u64]) -> R) -> R {
    let mut seen = slot.load(Ordering::Acquire);
    loop {
        let mut state = seen;
        let result = f(std::slice::from_mut(&mut state));
        if state == seen {
            return result;
        }
        match slot.compare_exchange_weak(seen, state, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return result,
            Err(now) => seen = now,
        }
    }
}

/// The state of `key` in `map`, if it has any.
fn load<K: std::hash::Hash + Eq>(map: &ClientMap<K, AtomicU64>, key: &K) -> Option<u64> {
    map.part_of(key)
        .get(key)
        .map(|slot| slot.load(Ordering::Acquire))
}

impl OneSlot {
    fn with<R>(&self, key: &ClientKey, f: impl FnMut(&mut [u64]) -> R) -> (R, bool) {
        match Compact::of(key) {
            Compact::V4(ip) => with_slot(&self.v4, &ip, f),
            Compact::V6(prefix) => with_slot(&self.v6, &prefix, f),
            Compact::Other(key) => with_slot(&self.other, key, f),
        }
    }

    fn get(&self, key: &ClientKey) -> Option<u64> {
        match Compact::of(key) {
            Compact::V4(ip) => load(&self.v4, &ip),
            Compact::V6(prefix) => load(&self.v6, &prefix),
            Compact::Other(key) => load(&self.other, key),
        }
    }

    fn remove(&self, key: &ClientKey) {
        match Compact::of(key) {
            Compact::V4(ip) => drop(self.v4.part_of(&ip).remove(&ip)),
            Compact::V6(prefix) => drop(self.v6.part_of(&prefix).remove(&prefix)),
            Compact::Other(key) => drop(self.other.part_of(key).remove(key)),
        }
    }

    fn retain_part(&self, part: usize, keep: impl Fn(u64) -> bool) {
        self.v4.retain_part(part, |_, slot| keep(*slot.get_mut()));
        self.v6.retain_part(part, |_, slot| keep(*slot.get_mut()));
        self.other
            .retain_part(part, |_, slot| keep(*slot.get_mut()));
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.other.len()
    }
}

/// The fewest additions between two sweeps, so small maps are not swept often.
const MIN_SWEEP_INTERVAL: u64 = 1024;

/// The default bound on the strict-log entries of one scope.
const DEFAULT_STRICT_LOG_CAP: usize = 1 << 22;

/// Rate-limit state held in this process: exact for one instance, lost on restart.
///
/// `N/period` lets a burst of `N` through, then one more request every
/// `period / N` (GCRA); strict quotas admit at most `N` in any window of length
/// `period`; sliding quotas keep two counters per client (see
/// [`Quota::sliding`]). When a request meets several quotas, it is counted
/// against all of them or, if any refuses it, against none; a request
/// counted earlier can be given back ([`LimiterStore::refund`]) exactly. Clients whose state has fully
/// replenished are evicted as new clients arrive (amortised, no background
/// task), one eighth of a scope's clients at a time: after every eighth as
/// many new clients as the scope holds, and on each of the first eight
/// requests after the scope's longest period has passed, so memory is also
/// returned when traffic stops and no request pays for a whole sweep.
///
/// A strict quota keeps a log of its admission times per client, which grows
/// with the client's admissions: a client that made `k` requests in the
/// window holds `k` times (8 bytes each), never more than the quota's count.
/// The logs of one scope hold at most [`MemoryStore::DEFAULT_STRICT_LOG_CAP`] entries over
/// all its clients (see [`MemoryStore::with_strict_log_cap`]); at the bound,
/// a request that needs one more entry is refused with a `Retry-After` of the
/// quota's period, the first such refusal is logged, and idle clients are
/// swept sooner. Tests
/// can pass a [`ManualClock`](crate::ManualClock) to
/// [`MemoryStore::with_clock`] and move time by hand.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{ClientKey, LimitRequest, LimiterStore, ManualClock, MemoryStore, Quota};
///
/// let quotas = [Quota::new(1, Duration::from_secs(1))];
/// let clock = ManualClock::new();
/// let store = MemoryStore::with_clock(clock.clone());
/// let key = ClientKey::Ip("192.0.2.7".parse().unwrap());
/// let request = [LimitRequest { scope: "doc", key: &key, quotas: &quotas, cost: 1 }];
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(store.check(&request).await.unwrap().allowed);
/// assert!(!store.check(&request).await.unwrap().allowed);
/// clock.advance(Duration::from_secs(1));
/// assert!(store.check(&request).await.unwrap().allowed);
/// # });
/// ```
pub struct MemoryStore<C: Clock = SystemClock> {
    clock: C,
    origin: u64,
    strict_log_cap: usize,
    scopes: RwLock<HashMap<Box<str>, Arc<Scope>, foldhash::fast::RandomState>>,
}

impl MemoryStore {
    /// The default bound on the strict-log entries of one scope: 4,194,304
    /// entries, 8 bytes each, so 32 MiB (see
    /// [`MemoryStore::with_strict_log_cap`]).
    ///
    /// ```
    /// assert_eq!(policy_runtime::MemoryStore::DEFAULT_STRICT_LOG_CAP, 4_194_304);
    /// ```
    pub const DEFAULT_STRICT_LOG_CAP: usize = DEFAULT_STRICT_LOG_CAP;

    /// A store on the real monotonic clock.
    ///
    /// ```
    /// use policy_runtime::{Engine, MemoryStore};
    ///
    /// let store = MemoryStore::new();
    /// assert_eq!(store.clients(), 0);
    /// let engine = Engine::builder().limiter_store(store).build();
    /// assert!(engine.is_ok());
    /// ```
    pub fn new() -> Self {
        Self::with_clock(SystemClock::new())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryStore<C> {
    /// A store on the given clock, typically a
    /// [`ManualClock`](crate::ManualClock) in tests.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{ClientKey, ManualClock, LimitRequest, LimiterStore, MemoryStore, Quota};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let clock = ManualClock::new();
    ///     let store = MemoryStore::with_clock(clock.clone());
    ///     let quotas = [Quota::new(1, Duration::from_secs(60))];
    ///     let request = [LimitRequest { scope: "doc", key: &ClientKey::Global, quotas: &quotas, cost: 1 }];
    ///
    ///     assert!(store.check(&request).await.unwrap().allowed);
    ///     assert!(!store.check(&request).await.unwrap().allowed);
    ///     clock.advance(Duration::from_secs(60));
    ///     assert!(store.check(&request).await.unwrap().allowed);
    /// }
    /// ```
    pub fn with_clock(clock: C) -> Self {
        let origin = clock.now_nanos();
        Self {
            clock,
            origin,
            strict_log_cap: DEFAULT_STRICT_LOG_CAP,
            scopes: RwLock::new(HashMap::default()),
        }
    }

    /// Bounds the strict-log entries of each scope at `entries` (8 bytes an
    /// entry; [`MemoryStore::DEFAULT_STRICT_LOG_CAP`] by default). At the bound a request
    /// that needs one more entry is refused, never admitted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{ClientKey, LimitRequest, LimiterStore, MemoryStore, Quota};
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let store = MemoryStore::new().with_strict_log_cap(2);
    ///     let quotas = [Quota::new(5, Duration::from_secs(3600)).strict()];
    ///     let check = |ip: &str| {
    ///         let key = ClientKey::Ip(ip.parse().unwrap());
    ///         let store = &store;
    ///         let quotas = &quotas;
    ///         async move {
    ///             let request = [LimitRequest { scope: "signup", key: &key, quotas, cost: 1 }];
    ///             store.check(&request).await.unwrap()
    ///         }
    ///     };
    ///
    ///     assert!(check("192.0.2.1").await.allowed);
    ///     assert!(check("192.0.2.2").await.allowed);
    ///     assert_eq!(store.strict_log_entries(), 2);
    ///     // The scope's logs are full: refused, with the period as the wait.
    ///     let refused = check("192.0.2.3").await;
    ///     assert!(!refused.allowed);
    ///     assert_eq!(refused.retry_after, Duration::from_secs(3600));
    /// }
    /// ```
    pub fn with_strict_log_cap(mut self, entries: usize) -> Self {
        self.strict_log_cap = entries;
        self
    }

    /// How many strict-log entries the store holds over every scope, as
    /// allocated. For tests of the bound.
    #[doc(hidden)]
    pub fn strict_log_entries(&self) -> usize {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        scopes.values().map(|scope| scope.budget.used()).sum()
    }

    /// How many clients the store holds state for, over every scope. Idle
    /// clients are counted until the next sweep removes them.
    ///
    /// ```
    /// assert_eq!(policy_runtime::MemoryStore::new().clients(), 0);
    /// ```
    pub fn clients(&self) -> usize {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        scopes.values().map(|scope| scope.len()).sum()
    }

    /// Removes every idle client now, instead of waiting for the amortised
    /// sweep, and returns the memory.
    ///
    /// ```
    /// let store = policy_runtime::MemoryStore::new();
    /// store.evict_idle();
    /// assert_eq!(store.clients(), 0);
    /// ```
    pub fn evict_idle(&self) {
        let now = self.now();
        let scopes: Vec<Arc<Scope>> = {
            let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
            scopes.values().cloned().collect()
        };
        for scope in scopes {
            for part in 0..PARTS {
                scope.sweep_part(part, now);
            }
        }
    }

    /// Nanoseconds since the store was created, on its clock.
    fn now(&self) -> u64 {
        self.clock.now_nanos().saturating_sub(self.origin)
    }

    /// Runs `f` on the scope `name`, creating it (or re-creating it for new
    /// quotas) if needed. The common case holds only the read lock and clones
    /// no `Arc`.
    fn with_scope<R>(&self, name: &str, quotas: &[Quota], f: impl FnOnce(&Scope) -> R) -> R {
        {
            let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = scopes.get(name).filter(|s| *s.quotas == *quotas) {
                return f(found);
            }
        }
        let scope = {
            let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
            let entry = scopes
                .entry(name.into())
                .or_insert_with(|| Arc::new(Scope::new(name, quotas, self.strict_log_cap)));
            if *entry.quotas != *quotas {
                // The quotas of a scope changed (two handlers sharing a scope
                // name with different quotas): the new definition starts
                // afresh rather than reading state laid out for other quotas.
                *entry = Arc::new(Scope::new(name, quotas, self.strict_log_cap));
            }
            Arc::clone(entry)
        };
        f(&scope)
    }

    fn existing_scope(&self, name: &str) -> Option<Arc<Scope>> {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        scopes.get(name).cloned()
    }
}

impl Scope {
    fn new(name: &str, quotas: &[Quota], strict_log_cap: usize) -> Self {
        let (limits, shape) = gcra::layout(quotas);
        let clients = if shape == (Layout { slots: 1, logs: 0 }) {
            Clients::One(OneSlot::default())
        } else {
            Clients::Many(ClientMap::default())
        };
        let horizon = quotas
            .iter()
            .map(|quota| u64::try_from(quota.period().as_nanos()).unwrap_or(u64::MAX))
            .max()
            .unwrap_or(0);
        Scope {
            quotas: quotas.into(),
            limits,
            shape,
            clients,
            budget: LogBudget::new(name, strict_log_cap),
            added: AtomicU64::new(0),
            sweep_at: AtomicU64::new(MIN_SWEEP_INTERVAL),
            sweep_by: AtomicU64::new(horizon),
            next_part: AtomicUsize::new(0),
            stale_sweeps: AtomicUsize::new(0),
            horizon,
        }
    }

    /// Sweeps a part when the longest period has passed since the last
    /// round of sweeps; the parts left in the round are due at once, so the
    /// next few requests return the memory of a scope whose traffic stopped.
    fn sweep_if_stale(&self, now: u64) {
        let due = self.sweep_by.load(Ordering::Relaxed);
        if now >= due
            && self
                .sweep_by
                .compare_exchange(due, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep_next_part(now);
            if self.stale_sweeps.fetch_add(1, Ordering::Relaxed) % PARTS == PARTS - 1 {
                self.sweep_by
                    .store(now.saturating_add(self.horizon), Ordering::Relaxed);
            }
        }
    }

    /// Runs `f` on a client's state (its slots and logs), creating it if
    /// needed. `f` may run more than once (see [`update`]) and must depend
    /// only on the state it is given.
    fn with_state<R>(
        &self,
        key: &ClientKey,
        now: u64,
        mut f: impl FnMut(&mut [u64], &mut [Log]) -> R,
    ) -> R {
        let result = match &self.clients {
            Clients::One(clients) => match clients.with(key, |slots| f(slots, &mut [])) {
                (result, false) => return result,
                (result, true) => result,
            },
            Clients::Many(clients) => {
                let part = clients.part_of(key);
                match part.get_mut(key) {
                    Some(mut state) => {
                        let state = &mut *state;
                        return f(&mut state.slots, &mut state.logs);
                    }
                    None => {
                        let mut state = part
                            .entry(key.clone())
                            .or_insert_with(|| ClientState::new(self.shape));
                        let state = &mut *state;
                        f(&mut state.slots, &mut state.logs)
                    }
                }
            }
        };
        // A client was added and its map guard released: maybe sweep.
        self.note_addition(now);
        result
    }

    /// What the scope would answer `key` for a request of weight `cost`
    /// without counting it: a refusal, or `None` if it would be admitted.
    fn refusal(&self, key: &ClientKey, now: u64, cost: u32) -> Option<Decision> {
        match &self.clients {
            Clients::One(clients) => {
                let slot = clients.get(key).unwrap_or(0);
                gcra::refusal(&self.limits, &[slot], &[], now, cost)
            }
            Clients::Many(clients) => match clients.part_of(key).get(key) {
                Some(state) => gcra::refusal(&self.limits, &state.slots, &state.logs, now, cost),
                None => {
                    let state = ClientState::new(self.shape);
                    gcra::refusal(&self.limits, &state.slots, &state.logs, now, cost)
                }
            },
        }
    }

    /// Paces the amortised sweep: called for each client added, and for each
    /// refusal at the strict logs' bound, so a full scope is swept sooner.
    fn note_addition(&self, now: u64) {
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        let due = self.sweep_at.load(Ordering::Relaxed);
        if added >= due {
            // A part is an eighth of the clients: one part for every eighth
            // as many additions as there are clients.
            let next = added + MIN_SWEEP_INTERVAL.max(self.len() as u64) / PARTS as u64;
            // One thread sweeps; the others go on.
            if self
                .sweep_at
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.sweep_next_part(now);
            }
        }
    }

    fn peek(&self, key: &ClientKey, now: u64) -> Option<Decision> {
        match &self.clients {
            Clients::One(clients) => clients
                .get(key)
                .map(|slot| gcra::peek(&self.limits, &[slot], &[], now)),
            Clients::Many(clients) => clients
                .part_of(key)
                .get(key)
                .map(|state| gcra::peek(&self.limits, &state.slots, &state.logs, now)),
        }
    }

    fn forget(&self, key: &ClientKey) {
        match &self.clients {
            Clients::One(clients) => clients.remove(key),
            Clients::Many(clients) => {
                if let Some((_, state)) = clients.part_of(key).remove(key) {
                    self.budget.give(gcra::log_entries(&state.logs));
                }
            }
        }
    }

    /// Sweeps the next part in turn.
    fn sweep_next_part(&self, now: u64) {
        let part = self.next_part.fetch_add(1, Ordering::Relaxed) % PARTS;
        self.sweep_part(part, now);
    }

    /// Forgets every client of one part whose state has fully replenished (a
    /// new client would be treated the same) and returns the memory.
    /// Amortised: a part is swept after an eighth as many additions as there
    /// were clients, so each addition pays a constant share, and one request
    /// never pays for more than a part.
    fn sweep_part(&self, part: usize, now: u64) {
        match &self.clients {
            Clients::One(clients) => {
                clients.retain_part(part, |slot| !gcra::is_idle(&self.limits, &[slot], &[], now))
            }
            Clients::Many(clients) => clients.retain_part(part, |_, state| {
                let idle = gcra::is_idle(&self.limits, &state.slots, &state.logs, now);
                if idle {
                    self.budget.give(gcra::log_entries(&state.logs));
                }
                !idle
            }),
        }
    }

    fn len(&self) -> usize {
        match &self.clients {
            Clients::One(clients) => clients.len(),
            Clients::Many(clients) => clients.len(),
        }
    }
}

impl<C> MemoryStore<C>
where
    C: Clock,
{
    fn decide(&self, requests: &[LimitRequest<'_>]) -> Result<Decision, StoreError> {
        let now = self.now();
        let mut decisive: Option<Decision> = None;
        for (index, request) in requests.iter().enumerate() {
            if request.quotas.is_empty() {
                return Err(StoreError::new(format!(
                    "the rate-limit check of `{}` declared no quota",
                    request.scope
                )));
            }
            let decision = self.with_scope(request.scope, request.quotas, |scope| {
                scope.sweep_if_stale(now);
                let decision = scope.with_state(request.key, now, |slots, logs| {
                    gcra::decide(&scope.limits, slots, logs, now, request.cost, &scope.budget)
                });
                if !decision.allowed && scope.budget.was_pressed() {
                    scope.note_addition(now);
                }
                decision
            });
            if !decision.allowed {
                // The check that makes the client wait longest decides, so a
                // retry at `retry_after` is not refused by a later check.
                let mut decision = decision;
                for later in &requests[index + 1..] {
                    let refusal = self.with_scope(later.scope, later.quotas, |scope| {
                        scope.refusal(later.key, now, later.cost)
                    });
                    if let Some(refusal) =
                        refusal.filter(|refusal| refusal.retry_after > decision.retry_after)
                    {
                        decision = refusal;
                    }
                }
                // Take back what the earlier checks of this request counted.
                for earlier in &requests[..index] {
                    self.with_scope(earlier.scope, earlier.quotas, |scope| {
                        scope.with_state(earlier.key, now, |slots, logs| {
                            gcra::undo(&scope.limits, slots, logs, now, earlier.cost)
                        })
                    });
                }
                return Ok(decision);
            }
            if decisive.is_none_or(|best| decision.remaining < best.remaining) {
                decisive = Some(decision);
            }
        }
        Ok(decisive.unwrap_or_else(Decision::unlimited))
    }
}

impl<C> LimiterStore for MemoryStore<C>
where
    C: Clock,
{
    fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
        StoreFuture::ready(self.decide(requests))
    }

    fn answers_at_once(&self) -> bool {
        true
    }

    fn peek<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
        let now = self.now();
        let state = self
            .existing_scope(request.scope)
            .and_then(|scope| scope.peek(request.key, now));
        StoreFuture::ready(Ok(state))
    }

    fn reset<'a>(&'a self, scope: &'a str, key: &'a ClientKey) -> StoreFuture<'a, ()> {
        if let Some(scope) = self.existing_scope(scope) {
            scope.forget(key);
        }
        StoreFuture::ready(Ok(()))
    }

    fn refund<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a, ()> {
        let now = self.now();
        for request in requests {
            // A scope that is gone, or laid out for other quotas, holds
            // nothing of the request any more.
            let Some(scope) = self
                .existing_scope(request.scope)
                .filter(|scope| *scope.quotas == *request.quotas)
            else {
                continue;
            };
            scope.with_state(request.key, now, |slots, logs| {
                gcra::refund(&scope.limits, slots, logs, request.cost)
            });
        }
        StoreFuture::ready(Ok(()))
    }
}
