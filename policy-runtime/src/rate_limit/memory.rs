//! [`MemoryStore`]: rate-limit state in this process, with governor's GCRA.
//!
//! This module owns the in-memory backend: one governor keyed limiter per
//! (scope, quota), created on first use. It does not touch HTTP or logging.

use super::store::{ClientKey, Decision, LimitRequest, LimiterStore, StoreFuture};
use crate::Quota;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

type KeyedLimiter<C> =
    governor::RateLimiter<ClientKey, DashMapStateStore<ClientKey>, C, StateInformationMiddleware>;

/// The limiters of one scope, one per quota, in declaration order.
struct ScopeLimiters<C: Clock> {
    quotas: &'static [Quota],
    limiters: Vec<KeyedLimiter<C>>,
}

/// Rate-limit state held in this process: exact for one instance, lost on restart.
///
/// Uses governor's GCRA: `N/period` lets a burst of `N` through, then one more
/// request every `period / N`. Tests can pass governor's `FakeRelativeClock` to
/// [`MemoryStore::with_clock`] and move time by hand.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::FakeRelativeClock;
/// use policy_runtime::{ClientKey, LimitRequest, LimiterStore, MemoryStore, Quota};
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
    scopes: RwLock<HashMap<&'static str, Arc<ScopeLimiters<C>>>>,
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

impl<C: Clock + Clone> MemoryStore<C> {
    /// A store on the given clock, typically governor's `FakeRelativeClock` in tests.
    ///
    /// ```
    /// use policy_runtime::FakeRelativeClock;
    ///
    /// let store = policy_runtime::MemoryStore::with_clock(FakeRelativeClock::default());
    /// # drop(store);
    /// ```
    pub fn with_clock(clock: C) -> Self {
        Self {
            clock,
            scopes: RwLock::new(HashMap::new()),
        }
    }

    fn scope(&self, scope: &'static str, quotas: &'static [Quota]) -> Arc<ScopeLimiters<C>> {
        if let Some(found) = self.read_scope(scope, quotas) {
            return found;
        }
        let mut scopes = self
            .scopes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = scopes
            .entry(scope)
            .or_insert_with(|| Arc::new(self.new_scope(quotas)));
        if !same_quotas(entry.quotas, quotas) {
            // Two handlers sharing a scope name with different quotas: the
            // later definition replaces the earlier one rather than mixing them.
            *entry = Arc::new(self.new_scope(quotas));
        }
        Arc::clone(entry)
    }

    fn read_scope(
        &self,
        scope: &'static str,
        quotas: &'static [Quota],
    ) -> Option<Arc<ScopeLimiters<C>>> {
        let scopes = self
            .scopes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        scopes
            .get(scope)
            .filter(|found| same_quotas(found.quotas, quotas))
            .cloned()
    }

    fn new_scope(&self, quotas: &'static [Quota]) -> ScopeLimiters<C> {
        let limiters = quotas
            .iter()
            .map(|quota| {
                KeyedLimiter::new(
                    to_governor(quota),
                    DashMapStateStore::default(),
                    self.clock.clone(),
                )
            })
            .collect();
        ScopeLimiters { quotas, limiters }
    }
}

fn to_governor(quota: &Quota) -> governor::Quota {
    let burst = NonZeroU32::new(quota.count()).unwrap_or(NonZeroU32::MIN);
    governor::Quota::with_period(quota.replenish_interval())
        .unwrap_or_else(|| governor::Quota::per_second(burst))
        .allow_burst(burst)
}

impl<C: Clock + Clone> LimiterStore for MemoryStore<C>
where
    C: Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    fn check<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a> {
        let scope = self.scope(request.scope, request.quotas);
        let mut decisive: Option<Decision> = None;
        for (quota, limiter) in scope.quotas.iter().zip(&scope.limiters) {
            let interval = quota.replenish_interval();
            match limiter.check_key(request.key) {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    let decision = Decision {
                        allowed: true,
                        quota: *quota,
                        remaining,
                        reset_after: interval * (quota.count() - remaining.min(quota.count())),
                        retry_after: Duration::ZERO,
                    };
                    if decisive.is_none_or(|best| remaining < best.remaining) {
                        decisive = Some(decision);
                    }
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    let refill = interval * (quota.count() - 1);
                    return StoreFuture::ready(Ok(Decision {
                        allowed: false,
                        quota: *quota,
                        remaining: 0,
                        reset_after: wait + refill,
                        retry_after: wait,
                    }));
                }
            }
        }
        match decisive {
            Some(decision) => StoreFuture::ready(Ok(decision)),
            None => StoreFuture::ready(Err(super::store::StoreError::new(
                "a rate-limit policy declared no quota",
            ))),
        }
    }
}

fn same_quotas(a: &'static [Quota], b: &'static [Quota]) -> bool {
    std::ptr::eq(a, b) || a == b
}
