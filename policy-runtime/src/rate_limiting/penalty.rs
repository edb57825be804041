//! [`Penalty`]: blocking clients that keep hitting 429.
//!
//! This module owns the strike logs and the block list, per scope and client,
//! and their bound. A client that is refused `strikes` times within `within`
//! in one scope is blocked in that scope for `block_for`: every request it
//! makes there gets a 429 until then. Each block is logged once, when it
//! starts, by the caller; reaching the bound is logged once here.
//!
//! **Shared.** With a store that shares strikes
//! ([`LimiterStore::strike_store`](super::store::LimiterStore::strike_store),
//! as [`crate::RedisStore`] does), a refusal's strike is counted in that
//! store ([`PenaltyBox::strike_shared`], one round trip on the refusal path
//! only), so strikes on every instance add up to one block. The table then
//! holds the blocks learned from the store's answers, served locally until
//! they end (as the Redis store's refusal cache serves refusals), and the
//! strikes the store could not take (an outage), counted as without it.

use super::client_map::{ClientMap, PARTS};
use super::store::{ClientKey, StoreError, StrikeRule, StrikeStore, StrikeTable};
use crate::Quota;
use crate::gcra::{EventLimit, Log};
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Blocks a client that keeps hitting its limits.
///
/// A block is per scope: a client refused `strikes` times within `within` by
/// the limits of one scope (a handler's, or a shared `scope = "..."`) gets a
/// 429 from that scope for `block_for`, with a `Retry-After` of the time
/// left, while its other scopes are unaffected. Who "the client" is follows
/// the limit's key:
///
/// - `key = ip`, `api_key`, `header("...")` or a custom key: the key's value,
///   so with `header("x-user-id")` it is the user id the header names (a
///   caller that sends another id is another client, as for the limit).
/// - `key = global`: the bucket is shared, so one client's refusals must not
///   block everyone; the penalty counts and blocks by client IP instead.
///
/// The box holds at most [`Penalty::DEFAULT_MAX_CLIENTS`] clients over all
/// scopes (change it with [`Penalty::max_clients`]); clients with neither a
/// block nor a recent strike are forgotten as new ones arrive, a part of a
/// scope at a time. When it is full, the strikes of clients it does not hold
/// are pooled per scope: `strikes` refusals among them block all of them in
/// that scope (stricter, never off), and the first time is logged.
///
/// With a `RedisStore` (feature `redis`; any store whose
/// [`strike_store`](crate::LimiterStore::strike_store) shares strikes),
/// strikes are counted in the store, so refusals on every instance add up
/// to one block: one round trip per refusal until the block starts, none
/// for an admitted request. An instance learns of a block started elsewhere
/// at the client's next refusal there, and refuses it as blocked until the
/// block ends. When the store is unavailable, strikes are counted in the
/// instance's memory and known blocks hold.
///
/// `strikes` is at most [`Penalty::MAX_STRIKES`]; `within` and `block_for`
/// at most [`Quota::MAX_PERIOD`]. [`EngineBuilder::build`](crate::EngineBuilder::build)
/// refuses a penalty out of that range, naming the value.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{Engine, Penalty};
///
/// // Ten 429s within a minute block the client for fifteen minutes.
/// let penalty = Penalty::new(10, Duration::from_secs(60), Duration::from_secs(900));
/// assert_eq!(penalty.block_for(), Duration::from_secs(900));
/// assert!(Engine::builder().penalty(penalty).build().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Penalty {
    strikes: u32,
    within: Duration,
    block_for: Duration,
    max_clients: usize,
}

impl Penalty {
    /// The most strikes a penalty may count: each client keeps one time per
    /// strike.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Penalty::MAX_STRIKES, 100);
    /// ```
    pub const MAX_STRIKES: u32 = 100;

    /// How many clients the penalty box holds by default, over all scopes.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Penalty::DEFAULT_MAX_CLIENTS, 100_000);
    /// ```
    pub const DEFAULT_MAX_CLIENTS: usize = 100_000;

    /// Block for `block_for` after `strikes` refusals within `within`. A
    /// zero `strikes` is raised to 1; the range is checked when the engine
    /// is built.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let penalty = policy_runtime::Penalty::new(5, Duration::from_secs(60), Duration::from_secs(600));
    /// assert_eq!(penalty.block_for(), Duration::from_secs(600));
    /// ```
    pub fn new(strikes: u32, within: Duration, block_for: Duration) -> Self {
        Self {
            strikes: strikes.max(1),
            within,
            block_for,
            max_clients: Self::DEFAULT_MAX_CLIENTS,
        }
    }

    /// The same penalty, holding at most `clients` clients over all scopes
    /// (raised to 1).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{Engine, Penalty};
    ///
    /// let penalty = Penalty::new(5, Duration::from_secs(60), Duration::from_secs(600)).max_clients(1_000_000);
    /// assert!(Engine::builder().penalty(penalty).build().is_ok());
    /// ```
    pub fn max_clients(self, clients: usize) -> Self {
        Self {
            max_clients: clients.max(1),
            ..self
        }
    }

    /// How long a block lasts.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let penalty = policy_runtime::Penalty::new(5, Duration::from_secs(60), Duration::from_secs(30));
    /// assert_eq!(penalty.block_for().as_secs(), 30);
    /// ```
    pub fn block_for(&self) -> Duration {
        self.block_for
    }

    /// What is out of the supported range, if anything.
    fn range_problem(&self) -> Option<String> {
        let days = |duration: Duration| duration.as_secs().div_ceil(86_400);
        let max_days = days(Quota::MAX_PERIOD);
        if self.strikes > Self::MAX_STRIKES {
            return Some(format!(
                "penalty: {} strikes are too many; the most is {}",
                self.strikes,
                Self::MAX_STRIKES
            ));
        }
        for (name, value) in [("within", self.within), ("block_for", self.block_for)] {
            if value > Quota::MAX_PERIOD {
                return Some(format!(
                    "penalty: `{name}` of {} days is too long; the longest supported is {max_days} days",
                    days(value)
                ));
            }
        }
        None
    }
}

/// One client's strikes and block.
#[derive(Default)]
struct Record {
    strikes: Log,
    blocked_until: u64,
}

/// The clients of one scope.
struct ScopeBox {
    clients: ClientMap<ClientKey, Record>,
    /// The pooled record of clients struck while the box was full.
    overflow: Mutex<Record>,
    /// When the pooled block ends: read without the lock on every check.
    overflow_until: AtomicU64,
    /// Clients added (or refused a record) so far; with `sweep_at`, paces
    /// the amortised eviction.
    added: AtomicU64,
    sweep_at: AtomicU64,
    next_part: AtomicUsize,
}

/// The fewest additions between two sweeps of a scope.
const MIN_SWEEP_INTERVAL: u64 = 1024;

impl ScopeBox {
    fn new() -> Self {
        ScopeBox {
            clients: ClientMap::default(),
            overflow: Mutex::new(Record::default()),
            overflow_until: AtomicU64::new(0),
            added: AtomicU64::new(0),
            sweep_at: AtomicU64::new(MIN_SWEEP_INTERVAL),
            next_part: AtomicUsize::new(0),
        }
    }
}

/// What a refusal's strike came to in a shared penalty box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Struck {
    /// This strike started a block of this length.
    Started(Duration),
    /// The client was blocked already (through another instance), for this
    /// much longer: refused as blocked.
    Blocked(Duration),
}

/// The strike logs and blocks of one engine.
pub(crate) struct PenaltyBox {
    penalty: Penalty,
    /// Where strikes are counted for every instance, if anywhere.
    shared: Option<Arc<dyn StrikeStore>>,
    strikes: EventLimit,
    /// `block_for` in nanoseconds; within range, so adding it cannot overflow.
    block_for: u64,
    scopes: RwLock<HashMap<Box<str>, Arc<ScopeBox>, foldhash::fast::RandomState>>,
    /// Records held over all scopes.
    held: AtomicUsize,
    full_warned: AtomicBool,
}

/// Whom a penalty counts for a refusal of `key`: the key, or for a shared
/// `global` bucket the client's IP (no one, without an IP).
fn subject(key: &ClientKey, client_ip: Option<IpAddr>) -> Option<Cow<'_, ClientKey>> {
    match key {
        ClientKey::Global => client_ip.map(|ip| Cow::Owned(ClientKey::Ip(ip))),
        key => Some(Cow::Borrowed(key)),
    }
}

impl PenaltyBox {
    /// The box for `penalty`, or what is out of range in it, for the
    /// engine's build problems.
    pub(crate) fn new(penalty: Penalty) -> Result<Self, String> {
        if let Some(problem) = penalty.range_problem() {
            return Err(problem);
        }
        Ok(Self {
            penalty,
            shared: None,
            strikes: EventLimit::new(penalty.strikes, penalty.within),
            block_for: u64::try_from(penalty.block_for.as_nanos()).unwrap_or(u64::MAX),
            scopes: RwLock::default(),
            held: AtomicUsize::new(0),
            full_warned: AtomicBool::new(false),
        })
    }

    /// Counts strikes in `store`, shared by every instance, from now on.
    pub(crate) fn share(&mut self, store: Arc<dyn StrikeStore>) {
        self.shared = Some(store);
    }

    /// Whether strikes are counted in a store shared by every instance:
    /// then [`PenaltyBox::strike_shared`] counts them, not
    /// [`PenaltyBox::strike`].
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn rule(&self) -> StrikeRule {
        StrikeRule {
            strikes: self.penalty.strikes,
            within: self.penalty.within,
            block_for: self.penalty.block_for,
        }
    }

    fn scope(&self, name: &str) -> Option<Arc<ScopeBox>> {
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        scopes.get(name).cloned()
    }

    fn scope_or_new(&self, name: &str) -> Arc<ScopeBox> {
        if let Some(scope) = self.scope(name) {
            return scope;
        }
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(
            scopes
                .entry(name.into())
                .or_insert_with(|| Arc::new(ScopeBox::new())),
        )
    }

    /// How much longer the client behind `key` is blocked in `scope`, if it is.
    pub(crate) fn blocked(
        &self,
        scope: &str,
        key: &ClientKey,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Option<Duration> {
        let subject = subject(key, client_ip)?;
        let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
        let scope = scopes.get(scope)?;
        let until = match scope.clients.part_of(&subject).get(&*subject) {
            Some(record) => record.blocked_until,
            None => scope.overflow_until.load(Ordering::Relaxed),
        };
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// Records a refusal of the client behind `key` in `scope`; returns the
    /// block's length if this strike started one.
    /// A shared box counts nothing here: see [`PenaltyBox::strike_shared`].
    pub(crate) fn strike(
        &self,
        scope: &str,
        key: &ClientKey,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Option<Duration> {
        if self.shared.is_some() {
            return None;
        }
        self.strike_here(scope, key, client_ip, now)
    }

    /// Records a refusal of the client behind `key` in `scope` in the
    /// shared store (one round trip). A block the store answers is
    /// remembered here until it ends. When the store cannot count it, the
    /// strike is counted here, as without a shared store.
    pub(crate) async fn strike_shared(
        &self,
        scope: &str,
        key: &ClientKey,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Option<Struck> {
        let Some(store) = &self.shared else {
            return self
                .strike_here(scope, key, client_ip, now)
                .map(Struck::Started);
        };
        let subject = subject(key, client_ip)?;
        match store
            .strike(StrikeTable::Penalty(scope), &subject, self.rule())
            .await
        {
            Ok(state) => {
                let left = state.blocked_for?;
                let until = now.saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX));
                self.with_record(scope, &subject, now, |record| {
                    record.blocked_until = record.blocked_until.max(until);
                });
                Some(match state.started {
                    true => Struck::Started(self.penalty.block_for),
                    false => Struck::Blocked(left),
                })
            }
            Err(error) => {
                tracing::debug!(
                    policy = "rate_limit",
                    scope,
                    %error,
                    "a strike could not be counted in the shared penalty box; counted in this instance's memory"
                );
                self.strike_here(scope, key, client_ip, now)
                    .map(Struck::Started)
            }
        }
    }

    /// Lifts the block and forgets the strikes of `key` in `scope` in the
    /// shared store, if there is one.
    pub(crate) async fn pardon_shared(
        &self,
        scope: &str,
        key: &ClientKey,
    ) -> Result<(), StoreError> {
        if let Some(store) = &self.shared {
            store.pardon(StrikeTable::Penalty(scope), key).await?;
        }
        Ok(())
    }

    /// Counts a strike in this engine's table.
    fn strike_here(
        &self,
        scope: &str,
        key: &ClientKey,
        client_ip: Option<IpAddr>,
        now: u64,
    ) -> Option<Duration> {
        let subject = subject(key, client_ip)?;
        self.with_record(scope, &subject, now, |record| self.hit(record, now))
    }

    /// Runs `change` on the record of `subject` in `scope`: its own, added
    /// if the box has room, else the scope's pooled record.
    fn with_record<R>(
        &self,
        scope: &str,
        subject: &ClientKey,
        now: u64,
        change: impl FnOnce(&mut Record) -> R,
    ) -> R {
        let scope = self.scope_or_new(scope);
        let part = scope.clients.part_of(subject);
        if let Some(mut record) = part.get_mut(subject) {
            return change(&mut record);
        }
        if self.held.fetch_add(1, Ordering::Relaxed) >= self.penalty.max_clients {
            self.held.fetch_sub(1, Ordering::Relaxed);
            self.note_addition(&scope, now);
            if !self.full_warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    policy = "rate_limit",
                    tracked = self.penalty.max_clients,
                    "the penalty box holds as many clients as it may; the strikes of new clients are pooled per scope until old ones expire (raise it with Penalty::max_clients)"
                );
            }
            let mut pooled = scope.overflow.lock().unwrap_or_else(|p| p.into_inner());
            let answer = change(&mut pooled);
            scope
                .overflow_until
                .store(pooled.blocked_until, Ordering::Relaxed);
            return answer;
        }
        let answer = {
            let mut record = part.entry(subject.clone()).or_default();
            change(&mut record)
        };
        self.note_addition(&scope, now);
        answer
    }

    fn hit(&self, record: &mut Record, now: u64) -> Option<Duration> {
        if record.blocked_until > now || !self.strikes.hit(&mut record.strikes, now) {
            return None;
        }
        record.blocked_until = now.saturating_add(self.block_for);
        Some(self.penalty.block_for)
    }

    /// Paces the amortised eviction: one part of a scope for every eighth
    /// as many additions as the scope holds clients.
    fn note_addition(&self, scope: &ScopeBox, now: u64) {
        let added = scope.added.fetch_add(1, Ordering::Relaxed) + 1;
        let due = scope.sweep_at.load(Ordering::Relaxed);
        if added < due {
            return;
        }
        let next = added + MIN_SWEEP_INTERVAL.max(scope.clients.len() as u64) / PARTS as u64;
        if scope
            .sweep_at
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let part = scope.next_part.fetch_add(1, Ordering::Relaxed);
            scope.clients.retain_part(part, |_, record| {
                let keep =
                    record.blocked_until > now || !self.strikes.is_idle(&record.strikes, now);
                if !keep {
                    self.held.fetch_sub(1, Ordering::Relaxed);
                }
                keep
            });
        }
    }

    /// Lifts the blocks and forgets the strikes of `key`, in every scope.
    pub(crate) fn pardon(&self, key: &ClientKey) {
        let scopes: Vec<Arc<ScopeBox>> = {
            let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
            scopes.values().cloned().collect()
        };
        for scope in scopes {
            if scope.clients.part_of(key).remove(key).is_some() {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// How many clients the box holds, over all scopes.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn ip(n: u32) -> ClientKey {
        ClientKey::Ip(IpAddr::from(std::net::Ipv4Addr::from(n)))
    }

    #[test]
    fn out_of_range_penalties_are_refused_with_the_value() {
        let error = |penalty: Penalty| PenaltyBox::new(penalty).err().unwrap();
        let minute = Duration::from_secs(60);
        assert!(error(Penalty::new(2, Duration::MAX, minute)).contains("`within` of"));
        assert!(error(Penalty::new(2, minute, Duration::MAX)).contains("`block_for` of"));
        assert!(error(Penalty::new(101, minute, minute)).contains("101 strikes"));
        assert!(PenaltyBox::new(Penalty::new(100, Quota::MAX_PERIOD, Quota::MAX_PERIOD)).is_ok());
    }

    #[test]
    fn a_full_box_pools_new_clients_and_evicts_idle_ones_in_parts() {
        let penalty = Penalty::new(2, Duration::from_secs(1), Duration::from_secs(60));
        let holder = PenaltyBox::new(penalty.max_clients(100)).unwrap();
        for n in 0..100 {
            assert_eq!(holder.strike("s", &ip(n), None, 0), None);
        }
        assert_eq!(holder.held(), 100);
        // Full: two strikes of new clients block the pool, not the held ones.
        assert_eq!(holder.strike("s", &ip(1_000), None, 0), None);
        assert!(holder.strike("s", &ip(1_001), None, 0).is_some());
        assert!(holder.blocked("s", &ip(5_000), None, 0).is_some());
        assert!(holder.blocked("s", &ip(3), None, 0).is_none());
        assert_eq!(holder.held(), 100);
        // Later the held clients are idle and are evicted as others arrive,
        // never more than the bound held at once.
        for n in 0..10_000 {
            holder.strike("s", &ip(10_000 + n), None, 100 * SECOND);
            assert!(holder.held() <= 100);
        }
        // Idle clients made room for new ones.
        let scope = holder.scope("s").unwrap();
        let new_held = (10_000..20_000)
            .filter(|n| scope.clients.part_of(&ip(*n)).contains_key(&ip(*n)))
            .count();
        assert!(new_held > 0);
        assert_eq!(holder.held(), scope.clients.len());
    }
}
