//! [`Lockout`]: shutting out a client that keeps presenting wrong API keys.
//!
//! This module owns the failure log and the lock list, per client IP (after
//! trusted-proxy resolution and IPv6 grouping, as rate limits key it), their
//! bound, and the checks of the lockout's settings. A client that presents
//! `failures` keys that are unknown, expired, revoked or malformed (sent
//! twice, over 1 KiB) within `within` is locked out for `lock_for`: every
//! key-protected request it makes gets 429 until then, even with a valid key.
//! A missing key is not a failure (it guesses nothing), nor is a valid key
//! that lacks a scope. With no key configured at all nothing is counted:
//! there is nothing to guess.
//!
//! The failure log is a strict quota's sliding log from [`gcra`], as the
//! rate limiter's penalty box keeps its strikes. Time is the engine clock's.
//!
//! **Bound.** The table holds at most [`Lockout::max_clients`] clients
//! (100,000 by default). Clients with neither a failure in the window nor a
//! lockout are swept out: once per as many new failing clients as the table
//! holds (at least 1,024), and, while the table is full, once per lockout
//! period (the longer of `within` and `lock_for`), so a sweep's cost is
//! amortised over the requests that made it due and no request pays for one
//! on its own. While the table is full, a new client's failures count in one
//! of 1,024 shared buckets, chosen by its network (IPv4 /24, IPv6 /48): the
//! lockout gets stricter (clients sharing a bucket share its failures and its
//! lockout), never off. The first time the table is full, a warning is logged.
//!
//! **Shared.** With a store that shares strikes
//! ([`LimiterStore::strike_store`](crate::LimiterStore::strike_store), as
//! [`crate::RedisStore`] does), failures are counted in that store, so every
//! instance counts toward the same lockout: one round trip per failed
//! attempt, none for an admitted request. The table above then holds the
//! lockouts this instance has learned from the store's answers (each
//! confirmed with the store before a refusal, so an unlock made through any
//! instance holds everywhere), and counts the failures the store could not
//! take (an outage), as the memory store would; a lockout counted here lasts
//! its full time.

use crate::gcra;
use crate::rate_limiting::store::{ClientKey, StoreError, StrikeRule, StrikeStore, StrikeTable};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Clients the lockout table holds at most, unless set with [`Lockout::with_max_clients`].
const DEFAULT_MAX_CLIENTS: usize = 100_000;

/// The most failures a lockout may count: each tracked client keeps one
/// timestamp per failure.
const MAX_FAILURES: u32 = 100;

/// The shortest `within` and `lock_for`.
const MIN_DURATION: Duration = Duration::from_secs(1);

/// The longest `within` and `lock_for`: 365 days.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Shared buckets for the failures of new clients while the table is full.
const OVERFLOW_BUCKETS: usize = 1024;

/// A sweep is due after at least this many new failing clients.
const SWEEP_EVERY: usize = 1024;

/// Brute-force protection: after `failures` failed API-key attempts from one
/// client IP within `within`, that client is locked out for `lock_for`.
///
/// On by default, as [`Lockout::default`]: 5 failures within 30 minutes lock
/// a client out for 30 minutes. Set another with
/// [`EngineBuilder::lockout`](crate::EngineBuilder::lockout), or turn it off
/// with [`EngineBuilder::no_lockout`](crate::EngineBuilder::no_lockout).
///
/// **Ranges**, checked by [`EngineBuilder::build`](crate::EngineBuilder::build),
/// which lists a value out of range as a problem: `failures` from 1 to 100 (0
/// is raised to 1), `within` and `lock_for` from 1 second to 365 days,
/// [`max_clients`](Lockout::with_max_clients) at least 1.
///
/// **Bound.** The lockout tracks at most [`max_clients`](Lockout::max_clients)
/// clients (100,000 by default, about 100 bytes each with 5 failures). A
/// client is forgotten once it has neither a failure in the window nor a
/// lockout. While the table is full, the failures of clients it does not
/// hold count in 1,024 buckets shared by network (IPv4 /24, IPv6 /48): the
/// lockout gets stricter, never off, and a warning is logged the first time.
///
/// **Shared.** With a `RedisStore` (feature `redis`; any store whose
/// [`strike_store`](crate::LimiterStore::strike_store) shares strikes),
/// failed attempts are counted in the store, so `failures` is the budget of
/// all instances together: one round trip per failed attempt, none for an
/// admitted request. An instance learns of a lockout started elsewhere at
/// the client's next failed attempt there (refused as locked out), and
/// confirms a lockout it learned with the store before refusing the client,
/// so [`Engine::unlock_everywhere`](crate::Engine::unlock_everywhere) lifts
/// it on every instance. When the store is unavailable, failures are counted
/// in the instance's memory and known lockouts hold, whatever the store's
/// `FailureMode`. JWT failures are counted per instance.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use policy_runtime::{require_api_key, Engine, Lockout};
/// use std::{net::SocketAddr, time::Duration};
/// use tower::ServiceExt;
///
/// #[require_api_key]
/// async fn report() -> &'static str {
///     "report"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // 2 failures within 5 minutes lock the client out for an hour.
///     let engine = Engine::builder()
///         .api_key("reporting", "reporting-key-0123456789")
///         .lockout(Lockout::new(2, Duration::from_secs(300), Duration::from_secs(3600)))
///         .build()?;
///     let app = Router::new()
///         .route("/report", get(report))
///         .layer(engine.clone())
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let with_key = |key: &str| {
///         let request = Request::get("/report").header("x-api-key", key);
///         app.clone().oneshot(request.body(Body::empty()).unwrap())
///     };
///
///     assert_eq!(with_key("guess-0123456789abcdef").await?.status(), 401);
///     assert_eq!(with_key("guess-abcdef0123456789").await?.status(), 401);
///     // Locked out now, even with a valid key.
///     let locked = with_key("reporting-key-0123456789").await?;
///     assert_eq!(locked.status(), 429);
///     assert_eq!(locked.headers()["retry-after"], "3600");
///     assert!(engine.lockout_status("192.0.2.1".parse()?).locked_for.is_some());
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    failures: u32,
    within: Duration,
    lock_for: Duration,
    max_clients: usize,
}

impl Lockout {
    /// Lock a client out for `lock_for` after `failures` failed attempts
    /// within `within`. A zero `failures` is raised to 1. Values out of range
    /// (see [`Lockout`]) are build problems.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lockout = policy_runtime::Lockout::new(3, Duration::from_secs(60), Duration::from_secs(900));
    /// assert_eq!(lockout.failures(), 3);
    ///
    /// // Out of range: the engine does not build, and says why.
    /// let error = policy_runtime::Engine::builder()
    ///     .lockout(policy_runtime::Lockout::new(3, Duration::MAX, Duration::from_secs(900)))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(error.problems()[0].contains("`within`"));
    /// ```
    pub fn new(failures: u32, within: Duration, lock_for: Duration) -> Self {
        Self {
            failures: failures.max(1),
            within,
            lock_for,
            max_clients: DEFAULT_MAX_CLIENTS,
        }
    }

    /// The same lockout, tracking at most `max_clients` clients (100,000
    /// unless set; at least 1). See [`Lockout`] for what happens when the
    /// table is full.
    ///
    /// ```
    /// let lockout = policy_runtime::Lockout::default().with_max_clients(1_000_000);
    /// assert_eq!(lockout.max_clients(), 1_000_000);
    /// ```
    pub fn with_max_clients(self, max_clients: usize) -> Self {
        Self {
            max_clients,
            ..self
        }
    }

    /// How many failures lock a client out.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Lockout::default().failures(), 5);
    /// ```
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The window in which failures are counted.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Lockout::default().within().as_secs(), 1800);
    /// ```
    pub fn within(&self) -> Duration {
        self.within
    }

    /// How long a lockout lasts.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Lockout::default().lock_for().as_secs(), 1800);
    /// ```
    pub fn lock_for(&self) -> Duration {
        self.lock_for
    }

    /// How many clients the lockout tracks at most.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Lockout::default().max_clients(), 100_000);
    /// ```
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }

    /// `5 failures within 1800s lock a client out for 1800s`, for the start-up report.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} failures within {}s lock a client out for {}s",
            self.failures,
            self.within.as_secs(),
            self.lock_for.as_secs()
        )
    }

    /// The settings out of range, each as a build problem naming the value
    /// and the range. `EngineBuilder::lockout` adds them to the builder's
    /// problems, so `build` refuses such a lockout instead of wrapping or
    /// panicking on it at run time.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.failures > MAX_FAILURES {
            problems.push(format!(
                "lockout: `failures` is {}; it must be from 1 to {MAX_FAILURES}",
                self.failures
            ));
        }
        for (name, value) in [("within", self.within), ("lock_for", self.lock_for)] {
            if !(MIN_DURATION..=MAX_DURATION).contains(&value) {
                problems.push(format!(
                    "lockout: `{name}` is {value:?}; it must be from 1s to 365 days ({}s); \
                     to turn the lockout off, use `EngineBuilder::no_lockout()`",
                    MAX_DURATION.as_secs()
                ));
            }
        }
        if self.max_clients == 0 {
            problems.push(
                "lockout: `max_clients` is 0; it must be at least 1 (the default is 100000); \
                 to turn the lockout off, use `EngineBuilder::no_lockout()`"
                    .to_owned(),
            );
        }
        problems
    }
}

impl Default for Lockout {
    /// 5 failures within 30 minutes lock a client out for 30 minutes; at most
    /// 100,000 clients are tracked.
    fn default() -> Self {
        Self::new(5, Duration::from_secs(1800), Duration::from_secs(1800))
    }
}

/// A client's lockout state, for operators: see
/// [`Engine::lockout_status`](crate::Engine::lockout_status).
///
/// ```
/// let engine = policy_runtime::Engine::builder().build().unwrap();
/// let status = engine.lockout_status("192.0.2.1".parse().unwrap());
/// assert_eq!(status, policy_runtime::LockoutStatus { failures: 0, locked_for: None });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LockoutStatus {
    /// Failed attempts counted in the current window (0 while locked out:
    /// the count starts again when the lockout ends).
    pub failures: u32,
    /// How much longer the client is locked out, if it is.
    pub locked_for: Option<Duration>,
}

/// One client's (or one shared bucket's) failures and lockout.
struct Record {
    failures: gcra::Log,
    locked_until: u64,
    /// Whether the lockout was learned from a shared store (so it is
    /// confirmed there before a refusal) rather than counted here.
    learned: bool,
}

impl Record {
    fn new() -> Self {
        Self {
            failures: gcra::Log::new(),
            locked_until: 0,
            learned: false,
        }
    }

    fn locked(&self, now: u64) -> Option<Duration> {
        (self.locked_until > now).then(|| Duration::from_nanos(self.locked_until - now))
    }
}

/// What a failed attempt came to with a shared lockout
/// ([`LockoutLog::fail_shared`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Counted; with the lockout's length when this failure started one.
    Failure(Option<Duration>),
    /// The client is locked out already (it was locked through another
    /// instance): it is refused as locked out, for this long.
    Locked(Duration),
    /// The store could not count it and fails closed: the request gets a
    /// 503 (the failure was counted in memory).
    Unavailable,
}

/// The failure logs and lockouts of one engine.
pub(crate) struct LockoutLog {
    lockout: Lockout,
    /// Where failures are counted for every instance, if anywhere: the
    /// table below then holds the lockouts learned from it, and what it
    /// could not count.
    shared: Option<Arc<dyn StrikeStore>>,
    failures: gcra::EventLimit,
    clients: DashMap<IpAddr, Record, foldhash::fast::RandomState>,
    /// Entries in `clients`; an entry is added only after reserving a place here.
    tracked: AtomicUsize,
    /// The shared buckets, made when the table is first full.
    overflow: OnceLock<Box<[Mutex<Record>]>>,
    bucket_hasher: foldhash::fast::RandomState,
    /// New failing clients since the last sweep.
    new_since_sweep: AtomicUsize,
    last_sweep: AtomicU64,
    sweeping: AtomicBool,
    full_warned: AtomicBool,
}

impl LockoutLog {
    pub(crate) fn new(lockout: Lockout) -> Self {
        Self {
            lockout,
            shared: None,
            failures: gcra::EventLimit::new(lockout.failures, lockout.within),
            clients: DashMap::default(),
            tracked: AtomicUsize::new(0),
            overflow: OnceLock::new(),
            bucket_hasher: foldhash::fast::RandomState::default(),
            new_since_sweep: AtomicUsize::new(0),
            last_sweep: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
            full_warned: AtomicBool::new(false),
        }
    }

    /// The same log, counting failures in `store` for every instance.
    pub(crate) fn shared(mut self, store: Option<Arc<dyn StrikeStore>>) -> Self {
        self.shared = store;
        self
    }

    /// Whether failures are counted in a store shared by every instance.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    pub(crate) fn settings(&self) -> Lockout {
        self.lockout
    }

    fn rule(&self) -> StrikeRule {
        StrikeRule {
            strikes: self.lockout.failures,
            within: self.lockout.within,
            block_for: self.lockout.lock_for,
        }
    }

    /// How many clients the log tracks now; never more than [`Lockout::max_clients`].
    pub(crate) fn tracked_clients(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }

    /// How much longer `client` is locked out, if it is.
    pub(crate) fn locked(&self, client: IpAddr, now: u64) -> Option<Duration> {
        if let Some(record) = self.clients.get(&client) {
            return record.locked(now);
        }
        self.bucket(client)?.locked(now)
    }

    /// Records a failed attempt by `client`; returns the lockout's length if
    /// this failure started one.
    pub(crate) fn fail(&self, client: IpAddr, now: u64) -> Option<Duration> {
        self.with_record(client, now, |record| self.strike(record, now))
    }

    /// Runs `change` on the record of `client`: its own, added if there is
    /// room, else its shared bucket.
    fn with_record<R>(&self, client: IpAddr, now: u64, change: impl FnOnce(&mut Record) -> R) -> R {
        if let Some(mut record) = self.clients.get_mut(&client) {
            return change(&mut record);
        }
        self.sweep_if_due(now);
        match self.clients.entry(client) {
            Entry::Occupied(mut entry) => return change(entry.get_mut()),
            Entry::Vacant(entry) => {
                if self.reserve() {
                    let mut record = entry.insert(Record::new());
                    return change(&mut record);
                }
            }
        }
        // The table is full: the failure counts in the client's shared bucket.
        if !self.full_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                policy = "api_key",
                max_clients = self.lockout.max_clients,
                "the API-key lockout tracks as many clients as it may; until old entries expire, \
                 failures of new clients count in buckets shared by network (IPv4 /24, IPv6 /48), \
                 so those clients may be locked out together; raise the cap with `Lockout::with_max_clients`"
            );
        }
        let buckets = self.overflow.get_or_init(|| {
            (0..OVERFLOW_BUCKETS)
                .map(|_| Mutex::new(Record::new()))
                .collect()
        });
        change(&mut lock(&buckets[self.bucket_index(client)]))
    }

    /// Counts a failed attempt of `client` in the shared store (one round
    /// trip). A lockout the store answers is remembered here until it ends,
    /// so the client's next requests are refused without a valid key
    /// getting through. When the store cannot count it, the failure is
    /// counted here, as without a shared store.
    pub(crate) async fn fail_shared(&self, client: IpAddr, now: u64) -> Counted {
        let Some(store) = &self.shared else {
            return Counted::Failure(self.fail(client, now));
        };
        let subject = ClientKey::Ip(client);
        match store
            .strike(StrikeTable::Lockout, &subject, self.rule())
            .await
        {
            Ok(state) => match state.blocked_for {
                Some(left) => {
                    self.learn(client, now, left);
                    if state.started {
                        Counted::Failure(Some(self.lockout.lock_for))
                    } else {
                        Counted::Locked(left)
                    }
                }
                None => Counted::Failure(None),
            },
            Err(error) => {
                tracing::debug!(
                    policy = "api_key",
                    client_ip = %client,
                    %error,
                    "a failed API-key attempt could not be counted in the shared lockout; counted in this instance's memory"
                );
                let locked = self.fail(client, now);
                if store.fails_closed() {
                    Counted::Unavailable
                } else {
                    Counted::Failure(locked)
                }
            }
        }
    }

    /// How much longer `client` is locked out, with a shared lockout. A
    /// lockout this instance learned from the store is confirmed there
    /// first (one round trip, on the refusal path only): lifted here when
    /// the store no longer holds it (an operator unlocked the client through
    /// another instance), kept when the store cannot answer. A lockout
    /// counted here while the store was away lasts its full time, and a
    /// client this instance knows no lockout of costs nothing.
    pub(crate) async fn locked_shared(&self, client: IpAddr, now: u64) -> Option<Duration> {
        let (known, learned) = self.known_lockout(client, now)?;
        let Some(store) = self.shared.as_ref().filter(|_| learned) else {
            // Counted here while the store was away: it lasts its full time.
            return Some(known);
        };
        let subject = ClientKey::Ip(client);
        match store
            .state(StrikeTable::Lockout, &subject, self.rule())
            .await
        {
            Ok(state) => match state.blocked_for {
                Some(left) => {
                    self.learn(client, now, left);
                    Some(left)
                }
                None => {
                    self.lift(client);
                    None
                }
            },
            Err(_) => Some(known),
        }
    }

    /// `client`'s state in the shared store (this instance's, without one).
    pub(crate) async fn status_shared(
        &self,
        client: IpAddr,
        now: u64,
    ) -> Result<LockoutStatus, StoreError> {
        let Some(store) = &self.shared else {
            return Ok(self.status(client, now));
        };
        let subject = ClientKey::Ip(client);
        let state = store
            .state(StrikeTable::Lockout, &subject, self.rule())
            .await?;
        Ok(LockoutStatus {
            failures: state.strikes,
            locked_for: state.blocked_for,
        })
    }

    /// Lifts `client`'s lockout here and in the shared store, and forgets its
    /// failures; whether there was anything to forget. Other instances
    /// confirm a lockout with the store before refusing, so it is lifted
    /// for them too.
    pub(crate) async fn unlock_shared(&self, client: IpAddr) -> Result<bool, StoreError> {
        let here = self.unlock(client);
        let Some(store) = &self.shared else {
            return Ok(here);
        };
        let there = store
            .pardon(StrikeTable::Lockout, &ClientKey::Ip(client))
            .await?;
        Ok(here || there)
    }

    /// The lockout this instance knows of for `client`, and whether it
    /// was learned from the shared store.
    fn known_lockout(&self, client: IpAddr, now: u64) -> Option<(Duration, bool)> {
        if let Some(record) = self.clients.get(&client) {
            return record.locked(now).map(|left| (left, record.learned));
        }
        let bucket = self.bucket(client)?;
        bucket.locked(now).map(|left| (left, bucket.learned))
    }

    /// Remembers that the shared store holds `client` locked out for `left`.
    fn learn(&self, client: IpAddr, now: u64, left: Duration) {
        let until = now.saturating_add(nanos(left));
        self.with_record(client, now, |record| {
            if record.locked_until <= now {
                record.learned = true;
            }
            record.locked_until = record.locked_until.max(until);
        });
    }

    /// Forgets `client`'s own record when its lockout was learned and the
    /// store no longer holds it. A shared bucket keeps its lockout: other
    /// clients may be in it.
    fn lift(&self, client: IpAddr) {
        // A learned lockout is all such a record holds: the failures went
        // to the store.
        if self
            .clients
            .remove_if(&client, |_, record| record.learned)
            .is_some()
        {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn status(&self, client: IpAddr, now: u64) -> LockoutStatus {
        if let Some(record) = self.clients.get(&client) {
            return self.status_of(&record, now);
        }
        match self.bucket(client) {
            Some(bucket) => self.status_of(&bucket, now),
            None => LockoutStatus::default(),
        }
    }

    /// Lifts a lockout and forgets the failures of `client`, and of its
    /// shared bucket if it has one (so of every client in that bucket);
    /// whether there was anything to forget.
    pub(crate) fn unlock(&self, client: IpAddr) -> bool {
        let mut forgot = false;
        if self.clients.remove(&client).is_some() {
            self.tracked.fetch_sub(1, Ordering::Relaxed);
            forgot = true;
        }
        if let Some(mut bucket) = self.bucket(client) {
            if bucket.locked_until != 0 || !bucket.failures.is_empty() {
                *bucket = Record::new();
                forgot = true;
            }
        }
        forgot
    }

    /// Counts one failure in `record`; the lockout's length if it started one.
    fn strike(&self, record: &mut Record, now: u64) -> Option<Duration> {
        if record.locked_until > now {
            return None;
        }
        if !self.failures.hit(&mut record.failures, now) {
            return None;
        }
        // `lock_for` is at most 365 days (checked at build) and `now` counts
        // from the engine's start, so this cannot overflow in practice.
        record.locked_until = now.saturating_add(nanos(self.lockout.lock_for));
        record.learned = false;
        Some(self.lockout.lock_for)
    }

    fn status_of(&self, record: &Record, now: u64) -> LockoutStatus {
        if let Some(left) = record.locked(now) {
            return LockoutStatus {
                failures: 0,
                locked_for: Some(left),
            };
        }
        let left = self.failures.left(&record.failures, now);
        LockoutStatus {
            failures: self.lockout.failures.saturating_sub(left),
            locked_for: None,
        }
    }

    /// Takes a place in the table, if there is one left.
    fn reserve(&self) -> bool {
        self.tracked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |tracked| {
                (tracked < self.lockout.max_clients).then_some(tracked + 1)
            })
            .is_ok()
    }

    /// The shared bucket of `client`, if the table has ever been full.
    fn bucket(&self, client: IpAddr) -> Option<MutexGuard<'_, Record>> {
        let buckets = self.overflow.get()?;
        Some(lock(&buckets[self.bucket_index(client)]))
    }

    fn bucket_index(&self, client: IpAddr) -> usize {
        // The client's /24 (IPv4) or /48 (IPv6), with its family.
        let network = match client {
            IpAddr::V4(v4) => (4u8, u128::from(u32::from(v4) >> 8)),
            IpAddr::V6(v6) => (6u8, u128::from(v6) >> 80),
        };
        (self.bucket_hasher.hash_one(network) % OVERFLOW_BUCKETS as u64) as usize
    }

    /// Sweeps when due: after as many new failing clients as the table holds
    /// (at least [`SWEEP_EVERY`]), or, while the table is full, once per
    /// lockout period. Each sweep visits every entry, so its cost is spread
    /// over the requests that made it due.
    fn sweep_if_due(&self, now: u64) {
        let new = self.new_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        let tracked = self.tracked.load(Ordering::Relaxed);
        let period = nanos(self.lockout.within.max(self.lockout.lock_for));
        let due = new >= tracked.max(SWEEP_EVERY)
            || (tracked >= self.lockout.max_clients
                && now.saturating_sub(self.last_sweep.load(Ordering::Relaxed)) >= period);
        if !due || self.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        self.new_since_sweep.store(0, Ordering::Relaxed);
        self.last_sweep.store(now, Ordering::Relaxed);
        self.clients.retain(|_, record| {
            let keep = record.locked_until > now || !self.failures.is_idle(&record.failures, now);
            if !keep {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
        self.sweeping.store(false, Ordering::Release);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.len()
    }
}

/// A bucket's lock; a panic while it was held leaves a record that is still valid.
fn lock(bucket: &Mutex<Record>) -> MutexGuard<'_, Record> {
    bucket.lock().unwrap_or_else(PoisonError::into_inner)
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;
    const MINUTE: u64 = 60 * SECOND;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_nth_failure_in_the_window_locks_the_client_out() {
        let log = LockoutLog::new(Lockout::new(
            3,
            Duration::from_secs(600),
            Duration::from_secs(1800),
        ));
        let client = ip("192.0.2.1");
        assert_eq!(log.fail(client, 0), None);
        assert_eq!(log.fail(client, MINUTE), None);
        assert_eq!(log.status(client, MINUTE).failures, 2);
        assert_eq!(
            log.fail(client, 2 * MINUTE),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            log.locked(client, 2 * MINUTE),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            log.locked(client, 32 * MINUTE - 1),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(log.locked(client, 32 * MINUTE), None);
        assert_eq!(log.status(client, 32 * MINUTE), LockoutStatus::default());
        // Another client is unaffected.
        assert_eq!(log.locked(ip("192.0.2.2"), 2 * MINUTE), None);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let log = LockoutLog::new(Lockout::new(
            2,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        let client = ip("192.0.2.1");
        for minute in 0..10 {
            assert_eq!(log.fail(client, minute * MINUTE), None, "minute {minute}");
        }
        assert_eq!(log.fail(client, 10 * MINUTE), None);
        assert_eq!(
            log.fail(client, 10 * MINUTE + SECOND),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn unlock_forgets_the_client() {
        let log = LockoutLog::new(Lockout::new(
            1,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        let client = ip("2001:db8::");
        assert!(log.fail(client, 0).is_some());
        assert!(log.unlock(client));
        assert_eq!(log.locked(client, 0), None);
        assert!(!log.unlock(client));
    }

    #[test]
    fn idle_clients_are_swept_so_memory_stays_bounded() {
        let log = LockoutLog::new(Lockout::new(
            5,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        for n in 0..1023u32 {
            log.fail(IpAddr::from(n.to_be_bytes()), 0);
        }
        assert_eq!(log.tracked(), 1023);
        // Two minutes later every failure has left its window: the next sweep forgets them.
        log.fail(ip("192.0.2.1"), 2 * MINUTE);
        assert_eq!(log.tracked(), 1);
    }
    #[test]
    fn a_full_table_counts_new_clients_in_shared_buckets() {
        let log = LockoutLog::new(
            Lockout::new(2, Duration::from_secs(60), Duration::from_secs(60)).with_max_clients(4),
        );
        for n in 1..=4u8 {
            assert_eq!(log.fail(IpAddr::from([10, 0, n, 1]), 0), None);
        }
        assert_eq!(log.tracked(), 4);
        // Two new clients of one /24: not tracked, but they share a bucket.
        assert_eq!(log.fail(ip("192.0.2.1"), 0), None);
        assert_eq!(log.tracked(), 4);
        assert_eq!(log.status(ip("192.0.2.200"), 0).failures, 1);
        assert_eq!(
            log.fail(ip("192.0.2.200"), SECOND),
            Some(Duration::from_secs(60))
        );
        assert!(log.locked(ip("192.0.2.1"), SECOND).is_some());
        // Tracked clients keep their own records.
        assert_eq!(log.locked(IpAddr::from([10, 0, 1, 1]), SECOND), None);
        // Unlocking a client of the bucket clears the bucket.
        assert!(log.unlock(ip("192.0.2.1")));
        assert_eq!(log.locked(ip("192.0.2.200"), SECOND), None);
        assert_eq!(log.tracked(), 4);
        assert_eq!(log.tracked.load(Ordering::Relaxed), 4);
    }

    /// A shared store whose answer the test sets: `None` fails.
    #[derive(Default)]
    struct Scripted {
        answer: Mutex<Option<StrikeState>>,
        closed: bool,
        calls: AtomicUsize,
    }

    impl Scripted {
        fn answer(&self) -> crate::StoreFuture<'_, StrikeState> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            crate::StoreFuture::ready(
                lock_answer(&self.answer).ok_or_else(|| StoreError::new("down")),
            )
        }

        fn set(&self, answer: Option<StrikeState>) {
            *self.answer.lock().unwrap() = answer;
        }
    }

    fn lock_answer(answer: &Mutex<Option<StrikeState>>) -> Option<StrikeState> {
        *answer.lock().unwrap()
    }

    impl StrikeStore for Scripted {
        fn strike<'a>(
            &'a self,
            _: StrikeTable<'a>,
            _: &'a ClientKey,
            _: StrikeRule,
        ) -> crate::StoreFuture<'a, crate::StrikeState> {
            self.answer()
        }

        fn state<'a>(
            &'a self,
            _: StrikeTable<'a>,
            _: &'a ClientKey,
            _: StrikeRule,
        ) -> crate::StoreFuture<'a, crate::StrikeState> {
            self.answer()
        }

        fn pardon<'a>(
            &'a self,
            _: StrikeTable<'a>,
            _: &'a ClientKey,
        ) -> crate::StoreFuture<'a, bool> {
            crate::StoreFuture::ready(Ok(true))
        }

        fn fails_closed(&self) -> bool {
            self.closed
        }
    }

    use crate::StrikeState;

    fn shared(store: &Arc<Scripted>) -> LockoutLog {
        let lockout = Lockout::new(2, Duration::from_secs(60), Duration::from_secs(600));
        LockoutLog::new(lockout).shared(Some(Arc::clone(store) as Arc<dyn StrikeStore>))
    }

    fn blocked(secs: u64, started: bool) -> Option<StrikeState> {
        Some(StrikeState {
            strikes: 0,
            blocked_for: Some(Duration::from_secs(secs)),
            started,
        })
    }

    #[tokio::test]
    async fn a_shared_lockout_is_learned_confirmed_and_lifted_when_the_store_lifts_it() {
        let store = Arc::new(Scripted::default());
        let log = shared(&store);
        let client = ip("192.0.2.1");
        // A counted failure touches nothing here.
        store.set(Some(StrikeState::default()));
        assert_eq!(log.fail_shared(client, 0).await, Counted::Failure(None));
        assert_eq!(log.tracked(), 0);
        // No known lockout: no question to the store.
        assert_eq!(log.locked_shared(client, 0).await, None);
        assert_eq!(store.calls.load(Ordering::Relaxed), 1);
        // The store started one: learned here.
        store.set(blocked(600, true));
        assert_eq!(
            log.fail_shared(client, 0).await,
            Counted::Failure(Some(Duration::from_secs(600)))
        );
        assert_eq!(log.locked(client, SECOND), Some(Duration::from_secs(599)));
        // Confirmed before a refusal; kept while the store cannot answer.
        assert_eq!(
            log.locked_shared(client, SECOND).await,
            Some(Duration::from_secs(600))
        );
        store.set(None);
        assert!(log.locked_shared(client, 2 * SECOND).await.is_some());
        // Lifted elsewhere: forgotten here.
        store.set(Some(StrikeState::default()));
        assert_eq!(log.locked_shared(client, 3 * SECOND).await, None);
        assert_eq!(log.tracked(), 0);
        assert_eq!(log.tracked_clients(), 0);
        // A failure by a client locked through another instance.
        store.set(blocked(30, false));
        assert_eq!(
            log.fail_shared(client, 0).await,
            Counted::Locked(Duration::from_secs(30))
        );
    }

    #[tokio::test]
    async fn failures_the_store_cannot_take_are_counted_here_and_their_lockout_lasts() {
        let store = Arc::new(Scripted::default());
        let log = shared(&store);
        let client = ip("192.0.2.1");
        assert_eq!(log.fail_shared(client, 0).await, Counted::Failure(None));
        assert_eq!(
            log.fail_shared(client, SECOND).await,
            Counted::Failure(Some(Duration::from_secs(600)))
        );
        // Back, and holding nothing: the lockout counted here still holds.
        store.set(Some(StrikeState::default()));
        let calls = store.calls.load(Ordering::Relaxed);
        assert!(log.locked_shared(client, 2 * SECOND).await.is_some());
        assert_eq!(store.calls.load(Ordering::Relaxed), calls);

        let closed = Arc::new(Scripted {
            closed: true,
            ..Scripted::default()
        });
        let log = shared(&closed);
        assert_eq!(log.fail_shared(client, 0).await, Counted::Unavailable);
        assert_eq!(log.fail_shared(client, SECOND).await, Counted::Unavailable);
        assert!(log.locked(client, 2 * SECOND).is_some());
    }

    #[test]
    fn settings_out_of_range_are_problems_naming_the_value() {
        let minute = Duration::from_secs(60);
        assert!(Lockout::default().problems().is_empty());
        let problems = Lockout::new(101, Duration::from_millis(999), Duration::MAX)
            .with_max_clients(0)
            .problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("`failures` is 101"));
        assert!(problems[1].contains("`within` is 999ms"));
        assert!(problems[2].contains("`lock_for` is 18446744073709551615.999999999s"));
        assert!(problems[3].contains("`max_clients` is 0"));
        assert!(
            Lockout::new(100, minute, MAX_DURATION)
                .problems()
                .is_empty()
        );
    }
}
