//! What a [`super::RedisStore`] does when Redis fails, and knowing when it does.
//!
//! This module owns the failure modes ([`FailureMode`]), sorting errors into
//! "Redis is away" and "this key holds bad data", and the outage state: an
//! outage is logged once at `warn` when it starts and once at `info` when it
//! ends. While Redis is away, requests skip it and go straight to the failure
//! mode, except for one probe every retry interval, which ends the outage when
//! it succeeds. Readiness checks answer from this state too, and ask Redis
//! at most once per retry interval.

use ::redis::{ErrorKind, RedisError, ServerErrorKind};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a [`crate::RedisStore`] answers when it cannot use Redis: the server
/// is down, unreachable or slower than the timeout, or the client's key holds
/// data the store did not write.
///
/// The default is [`FailureMode::FallbackToMemory`].
///
/// The modes apply to the quotas. The API-key lockout and the penalty box,
/// which the store shares between instances too, are never turned off by an
/// outage: every lockout and block an instance knows of holds until it ends,
/// and the failures and strikes Redis cannot take are counted in the
/// instance's memory (per instance, as with the memory store), in every
/// mode. With [`FailureMode::Closed`] a failed API-key or JWT attempt that Redis
/// cannot count is answered `503` as well.
///
/// ```
/// use policy_runtime::{FailureMode, RedisStore};
///
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379")
///     .failure_mode(FailureMode::Closed)
///     .build()?;
/// assert_eq!(store.failure_mode(), FailureMode::Closed);
/// # Ok::<(), policy_runtime::RedisConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureMode {
    /// Admit every request (fail open). Clients are not limited at all until
    /// Redis is back; the outage is logged.
    ///
    /// ```
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .failure_mode(policy_runtime::FailureMode::Open)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(store.failure_mode(), policy_runtime::FailureMode::Open);
    /// ```
    Open,
    /// Refuse every request (fail closed): the store answers an error, so the
    /// policy responds `503` with `{"error":"Service Unavailable","code":"SERVICE_UNAVAILABLE"}`.
    ///
    /// ```
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .failure_mode(policy_runtime::FailureMode::Closed)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(store.failure_mode(), policy_runtime::FailureMode::Closed);
    /// ```
    Closed,
    /// Count in a [`crate::MemoryStore`] in this process until Redis is back
    /// (the default). Limits hold per instance instead of across instances:
    /// with `k` instances a client may get up to `k` times its quota during
    /// an outage. Each outage starts with fresh in-memory state, which the
    /// store releases when Redis is back; meanwhile it is bounded as a
    /// [`crate::MemoryStore`] is (idle clients are evicted).
    ///
    /// ```
    /// assert_eq!(policy_runtime::FailureMode::default(), policy_runtime::FailureMode::FallbackToMemory);
    /// ```
    #[default]
    FallbackToMemory,
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureMode::Open => "fail open",
            FailureMode::Closed => "fail closed",
            FailureMode::FallbackToMemory => "fall back to in-memory limits",
        })
    }
}

/// Why a Redis call failed, which decides whether the store enters an outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The server is down, unreachable, too slow or refusing work: every key
    /// is affected.
    Unavailable,
    /// Redis is up but refused this check: the client's key holds something
    /// the store did not write (only this key is affected, until someone
    /// deletes it), or the reply could not be read.
    Rejected,
}

impl Failure {
    pub(super) fn of(error: &RedisError) -> Self {
        match error.kind() {
            // The script's own errors about the data at the key, and Redis'
            // WRONGTYPE when a command meets a key of another type.
            ErrorKind::Extension
                if matches!(
                    error.code(),
                    Some("POLICYDATA") | Some("POLICYARGS") | Some("WRONGTYPE")
                ) =>
            {
                Failure::Rejected
            }
            // A reply the store cannot read came from the data, not the link.
            ErrorKind::UnexpectedReturnType => Failure::Rejected,
            // `ERR` from a script carries the command error that stopped it,
            // e.g. WRONGTYPE wrapped by an older server.
            ErrorKind::Server(ServerErrorKind::ResponseError)
                if error.detail().is_some_and(|d| d.contains("WRONGTYPE")) =>
            {
                Failure::Rejected
            }
            _ => Failure::Unavailable,
        }
    }
}

/// Tracks whether Redis is usable and logs the transitions.
pub(super) struct Outage {
    /// Whether the last attempt failed with [`Failure::Unavailable`] (the
    /// lowest bit) and how many outages started before the current or the
    /// next one (the other bits), changed together in one atomic step so
    /// that whoever sees an outage also sees which one it is: the state is
    /// `2n + 1` during the outage of epoch `n`, `2n` between outage `n - 1`
    /// and outage `n`.
    state: AtomicU64,
    /// When the current outage started, in microseconds since `epoch`.
    since: AtomicU64,
    /// When the next probe may go to Redis, in microseconds since `epoch`.
    next_probe: AtomicU64,
    /// When the next readiness check may ask Redis, in microseconds since
    /// `epoch`: the others answer from `down`.
    next_ready_ping: AtomicU64,
    epoch: Instant,
    retry_interval: Duration,
    mode: FailureMode,
}

/// Permission to call Redis for one request.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub(super) struct Attempt {
    /// Whether Redis was thought to be away when the call started: only such
    /// a call (a probe) can end an outage, so that a reply that was already
    /// on its way when Redis failed does not end an outage that just began.
    probe: bool,
}

impl Outage {
    pub(super) fn new(retry_interval: Duration, mode: FailureMode) -> Self {
        Self {
            state: AtomicU64::new(0),
            since: AtomicU64::new(0),
            next_probe: AtomicU64::new(0),
            next_ready_ping: AtomicU64::new(0),
            epoch: Instant::now(),
            retry_interval,
            mode,
        }
    }

    /// Whether Redis answered the last call (true before the first one).
    pub(super) fn is_available(&self) -> bool {
        self.state.load(Ordering::Acquire) & 1 == 0
    }

    /// The epoch of the outage under way, or of the next one while Redis is
    /// up: every request that an outage degrades sees the same epoch,
    /// whenever it learnt of the outage.
    pub(super) fn epoch(&self) -> u64 {
        self.state.load(Ordering::Acquire) >> 1
    }

    /// Whether this request may call Redis: always when Redis is up, and for
    /// one request per retry interval while it is away.
    pub(super) fn attempt(&self) -> Option<Attempt> {
        if self.is_available() {
            return Some(Attempt { probe: false });
        }
        let now = self.now_micros();
        let due = self.next_probe.load(Ordering::Acquire);
        if now < due {
            return None;
        }
        self.next_probe
            .compare_exchange(
                due,
                now + self.interval_micros(),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()
            .map(|_| Attempt { probe: true })
    }

    /// Whether this readiness check should ask Redis: one per retry
    /// interval, whether Redis is up or away, so that an outage no request
    /// ran into is still noticed (and its end too), while readiness probes,
    /// which are public and unlimited, cost at most one round trip per
    /// interval between them. The others answer from [`Outage::is_available`].
    pub(super) fn readiness_ping_due(&self) -> bool {
        let now = self.now_micros();
        let due = self.next_ready_ping.load(Ordering::Acquire);
        now >= due
            && self
                .next_ready_ping
                .compare_exchange(
                    due,
                    now.saturating_add(self.interval_micros()),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
    }

    /// An explicit check (a readiness probe) may always call Redis.
    pub(super) fn forced_attempt(&self) -> Attempt {
        Attempt { probe: true }
    }

    /// Redis answered. Ends the outage if this call was a probe; returns
    /// the epoch of the outage it ended.
    pub(super) fn succeeded(&self, attempt: Attempt) -> Option<u64> {
        if !attempt.probe {
            return None;
        }
        let ended = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & 1 == 1).then_some(state + 1)
            })
            .ok()
            .map(|state| state >> 1);
        if ended.is_some() {
            let lasted = Duration::from_micros(
                self.now_micros()
                    .saturating_sub(self.since.load(Ordering::Acquire)),
            );
            tracing::info!(
                store = "redis",
                outage_ms = u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                "Redis is reachable again; rate limits are shared across instances again"
            );
        }
        ended
    }

    /// Redis could not be used. Returns whether this call started an outage.
    pub(super) fn failed(&self, error: &RedisError) -> bool {
        let now = self.now_micros();
        self.next_probe
            .store(now + self.interval_micros(), Ordering::Release);
        if self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & 1 == 0).then_some(state + 1)
            })
            .is_err()
        {
            return false;
        }
        self.since.store(now, Ordering::Release);
        tracing::warn!(
            store = "redis",
            %error,
            failure_mode = %self.mode,
            retry_interval_ms = u64::try_from(self.retry_interval.as_millis()).unwrap_or(u64::MAX),
            "Redis is unavailable for rate limiting; until it is back the store will {}",
            self.mode
        );
        true
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn interval_micros(&self) -> u64 {
        u64::try_from(self.retry_interval.as_micros()).unwrap_or(u64::MAX / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> RedisError {
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()
    }

    #[test]
    fn connection_errors_are_outages_and_wrong_types_are_bad_data() {
        assert_eq!(Failure::of(&io_error()), Failure::Unavailable);
        let wrong_type = RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "unexpected reply from the rate-limit script",
        ));
        assert_eq!(Failure::of(&wrong_type), Failure::Rejected);
    }

    #[test]
    fn an_outage_starts_once_and_only_a_probe_ends_it() {
        let outage = Outage::new(Duration::from_secs(3600), FailureMode::Open);
        let before = outage.attempt().unwrap();
        assert_eq!(outage.epoch(), 0);
        assert!(outage.failed(&io_error()));
        assert!(!outage.failed(&io_error()));
        assert!(!outage.is_available());
        assert_eq!(outage.epoch(), 0);
        // A reply that was in flight when Redis failed does not end the outage.
        assert_eq!(outage.succeeded(before), None);
        assert!(!outage.is_available());
        // No probe before the retry interval has passed.
        assert!(outage.attempt().is_none());
        assert_eq!(outage.succeeded(outage.forced_attempt()), Some(0));
        assert!(outage.is_available());
        assert_eq!(outage.succeeded(outage.forced_attempt()), None);
        // The next outage has the next epoch.
        assert_eq!(outage.epoch(), 1);
        assert!(outage.failed(&io_error()));
        assert_eq!(outage.epoch(), 1);
    }

    #[test]
    fn one_readiness_ping_per_retry_interval() {
        let outage = Outage::new(Duration::from_secs(3600), FailureMode::Open);
        assert!(outage.readiness_ping_due());
        assert!((0..100).all(|_| !outage.readiness_ping_due()));
        let always = Outage::new(Duration::ZERO, FailureMode::Open);
        assert!(always.readiness_ping_due());
    }

    #[test]
    fn one_probe_per_retry_interval() {
        let outage = Outage::new(Duration::ZERO, FailureMode::Closed);
        assert!(outage.failed(&io_error()));
        let probe = outage.attempt().unwrap();
        assert!(probe.probe);
    }
}
