//! [`Lockout`]: shutting out a client that keeps presenting wrong API keys.
//!
//! This module owns the failure log and the lock list, per client IP (after
//! trusted-proxy resolution and IPv6 grouping, as rate limits key it). A
//! client that presents `failures` keys that are unknown, expired, revoked or
//! malformed (sent twice, over 1 KiB) within `within` is locked out for
//! `lock_for`: every key-protected request it makes gets 429 until then, even
//! with a valid key. A missing key is not a failure (it guesses nothing), nor
//! is a valid key that lacks a scope. With no key configured at all nothing
//! is counted: there is nothing to guess.
//!
//! The failure log is a strict quota's sliding log from [`gcra`], as the
//! rate limiter's penalty box keeps its strikes. Time is the engine clock's.

use crate::rate_limit::gcra;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Clients tracked at most; beyond this, new clients' failures are not
/// counted until a sweep makes room (clients already tracked still are).
const MAX_CLIENTS: usize = 100_000;

/// Brute-force protection: after `failures` failed API-key attempts from one
/// client IP within `within`, that client is locked out for `lock_for`.
///
/// On by default, as [`Lockout::default`]: 5 failures within 30 minutes lock
/// a client out for 30 minutes. Set another with
/// [`EngineBuilder::lockout`](crate::EngineBuilder::lockout), or turn it off
/// with [`EngineBuilder::no_lockout`](crate::EngineBuilder::no_lockout).
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{Engine, Lockout};
///
/// // 10 failures within 5 minutes lock the client out for an hour.
/// let engine = Engine::builder()
///     .lockout(Lockout::new(10, Duration::from_secs(300), Duration::from_secs(3600)))
///     .build()?;
/// # drop(engine);
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    failures: u32,
    within: Duration,
    lock_for: Duration,
}

impl Lockout {
    /// Lock a client out for `lock_for` after `failures` failed attempts
    /// within `within`. A zero `failures` is raised to 1.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lockout = policy_runtime::Lockout::new(3, Duration::from_secs(60), Duration::from_secs(900));
    /// assert_eq!(lockout.failures(), 3);
    /// ```
    pub fn new(failures: u32, within: Duration, lock_for: Duration) -> Self {
        Self {
            failures: failures.max(1),
            within,
            lock_for,
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
}

impl Default for Lockout {
    /// 5 failures within 30 minutes lock a client out for 30 minutes.
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

struct Record {
    failures: gcra::Log,
    locked_until: u64,
}

/// The failure logs and lockouts of one engine.
pub(crate) struct LockoutLog {
    lockout: Lockout,
    failures: gcra::EventLimit,
    clients: DashMap<IpAddr, Record, foldhash::fast::RandomState>,
    added: AtomicU64,
    full_warned: AtomicBool,
}

impl LockoutLog {
    pub(crate) fn new(lockout: Lockout) -> Self {
        Self {
            lockout,
            failures: gcra::EventLimit::new(lockout.failures, lockout.within),
            clients: DashMap::default(),
            added: AtomicU64::new(0),
            full_warned: AtomicBool::new(false),
        }
    }

    pub(crate) fn settings(&self) -> Lockout {
        self.lockout
    }

    /// How much longer `client` is locked out, if it is.
    pub(crate) fn locked(&self, client: IpAddr, now: u64) -> Option<Duration> {
        let record = self.clients.get(&client)?;
        (record.locked_until > now).then(|| Duration::from_nanos(record.locked_until - now))
    }

    /// Records a failed attempt by `client`; returns the lockout's length if
    /// this failure started one.
    pub(crate) fn fail(&self, client: IpAddr, now: u64) -> Option<Duration> {
        if self.added.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.sweep(now);
        }
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&client) {
            self.sweep(now);
            if self.clients.len() >= MAX_CLIENTS {
                if !self.full_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        policy = "api_key",
                        tracked = MAX_CLIENTS,
                        "the API-key lockout tracks as many clients as it may; failures of new clients are not counted until old ones expire"
                    );
                }
                return None;
            }
        }
        let mut record = self.clients.entry(client).or_insert_with(|| Record {
            failures: gcra::Log::new(),
            locked_until: 0,
        });
        if record.locked_until > now {
            return None;
        }
        if !self.failures.hit(&mut record.failures, now) {
            return None;
        }
        record.locked_until = now.saturating_add(nanos(self.lockout.lock_for));
        Some(self.lockout.lock_for)
    }

    pub(crate) fn status(&self, client: IpAddr, now: u64) -> LockoutStatus {
        let Some(record) = self.clients.get(&client) else {
            return LockoutStatus::default();
        };
        if record.locked_until > now {
            return LockoutStatus {
                failures: 0,
                locked_for: Some(Duration::from_nanos(record.locked_until - now)),
            };
        }
        let left = self.failures.left(&record.failures, now);
        LockoutStatus {
            failures: self.lockout.failures.saturating_sub(left),
            locked_for: None,
        }
    }

    /// Lifts a lockout and forgets the failures of `client`; whether there was anything to forget.
    pub(crate) fn unlock(&self, client: IpAddr) -> bool {
        self.clients.remove(&client).is_some()
    }

    /// Forgets clients that are neither locked out nor have a failure in the window.
    fn sweep(&self, now: u64) {
        self.clients.retain(|_, record| {
            record.locked_until > now || !self.failures.is_idle(&record.failures, now)
        });
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.clients.len()
    }
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
}
