//! Time: the [`Clock`] trait, the real [`SystemClock`], the [`ManualClock`]
//! that tests move by hand, and the engine's choice between the two.
//!
//! This module owns reading "now" for every piece of state that ages: the
//! in-memory store's limits ([`crate::MemoryStore`] is generic over a
//! [`Clock`]), penalty blocks and the API-key lockout (which read the
//! engine's clock, [`EngineClock`]). Which store runs on which clock is the
//! engine builder's choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic source of time for rate limits, penalties and lockouts.
///
/// [`now_nanos`](Clock::now_nanos) is the time since the clock's own origin,
/// a fixed point in the past, in nanoseconds; only differences between two
/// readings matter, and a reading never goes back. [`SystemClock`] is the
/// real clock; [`ManualClock`] moves only when a test moves it.
///
/// Nanoseconds in a `u64` rather than a `Duration`: the in-memory store reads
/// the clock on every request and counts in nanoseconds, so no conversion
/// is made there.
///
/// ```
/// use policy_runtime::{Clock, MemoryStore};
///
/// /// A clock that stands still at one minute.
/// struct Frozen;
///
/// impl Clock for Frozen {
///     fn now_nanos(&self) -> u64 {
///         60_000_000_000
///     }
/// }
///
/// assert_eq!(Frozen.now_nanos(), 60_000_000_000);
/// let store = MemoryStore::with_clock(Frozen);
/// # drop(store);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since the clock's origin; never less than an earlier
    /// reading.
    fn now_nanos(&self) -> u64;
}

/// The real monotonic clock, cheap enough to read on every request.
///
/// It reads the CPU's time-stamp counter through the `quanta` crate where
/// that counter is reliable (constant rate, in step across cores), and the
/// operating system's monotonic clock otherwise: a few nanoseconds a
/// reading instead of a system call. Its origin is the moment it was made.
///
/// ```
/// use policy_runtime::{Clock, SystemClock};
///
/// let clock = SystemClock::new();
/// let first = clock.now_nanos();
/// assert!(clock.now_nanos() >= first);
/// ```
#[derive(Clone, Debug)]
pub struct SystemClock {
    clock: quanta::Clock,
    /// The raw reading at which the clock was made.
    origin: u64,
}

impl SystemClock {
    /// A clock whose origin is now.
    ///
    /// ```
    /// use policy_runtime::{Clock, SystemClock};
    ///
    /// // Its origin is now: less than a minute has passed.
    /// assert!(SystemClock::new().now_nanos() < 60_000_000_000);
    /// ```
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        SystemClock { clock, origin }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    /// Nanoseconds since the clock was made.
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// A clock that stands still until it is moved by hand, for tests.
///
/// Clones share one time: keep a clone, give another to
/// [`MemoryStore::with_clock`](crate::MemoryStore::with_clock) or
/// [`EngineBuilder::clock`](crate::EngineBuilder::clock), and
/// [`advance`](ManualClock::advance) it. It starts at zero.
///
/// ```
/// use policy_runtime::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// assert_eq!(shared.now_nanos(), 0);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(shared.now_nanos(), 90_000_000_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    ///
    /// ```
    /// use policy_runtime::{Clock, ManualClock};
    ///
    /// assert_eq!(ManualClock::new().now_nanos(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock, and every clone of it, `by` forward (stopping at
    /// about 584 years).
    ///
    /// ```
    /// use policy_runtime::{Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(1500));
    /// clock.advance(Duration::from_millis(500));
    /// assert_eq!(clock.now_nanos(), 2_000_000_000);
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // A closure that always returns `Some` cannot fail.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    /// Nanoseconds since zero.
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

/// The engine's clock: the clock of its penalty blocks, its API-key lockout
/// and its default in-memory store.
#[derive(Clone, Debug)]
pub(crate) enum EngineClock {
    System(SystemClock),
    Manual(ManualClock),
}

impl EngineClock {
    pub(crate) fn real() -> Self {
        EngineClock::System(SystemClock::new())
    }

    /// Nanoseconds since the clock was made (real) or since its zero (manual).
    pub(crate) fn now(&self) -> u64 {
        match self {
            EngineClock::System(clock) => clock.now_nanos(),
            EngineClock::Manual(clock) => clock.now_nanos(),
        }
    }
}
