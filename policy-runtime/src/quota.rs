//! [`Quota`]: how many requests a client may make in a period.
//!
//! This module owns the value type only. The `#[rate_limit]` macro parses the
//! limit string at compile time and emits `Quota::new` calls; enforcing a quota
//! is the job of [`crate::rate_limit`].

use std::fmt;
use std::time::Duration;

/// A number of requests allowed per period, as written in `#[rate_limit("20/hour")]`.
///
/// The in-memory store enforces it with GCRA: a client may send `count` requests
/// at once, after which one more is admitted every `period / count`.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::Quota;
///
/// let quota = Quota::new(20, Duration::from_secs(3600));
/// assert_eq!(quota.count(), 20);
/// assert_eq!(quota.to_string(), "20 per 1 hour");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
}

impl Quota {
    /// A quota of `count` requests per `period`.
    ///
    /// The macro guarantees `count > 0` and a non-zero period for every quota it
    /// emits; a zero `count` or `period` passed here by hand is raised to 1
    /// (request or nanosecond) so that a quota can never divide by zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// const LOGIN: Quota = Quota::new(5, Duration::from_secs(60));
    /// assert_eq!(LOGIN.period(), Duration::from_secs(60));
    /// ```
    pub const fn new(count: u32, period: Duration) -> Self {
        let count = if count == 0 { 1 } else { count };
        let period = if period.is_zero() {
            Duration::from_nanos(1)
        } else {
            period
        };
        Self { count, period }
    }

    /// How many requests the quota admits per period.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert_eq!(Quota::new(50, Duration::from_secs(3600)).count(), 50);
    /// ```
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The length of the period.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert_eq!(Quota::new(1, Duration::from_secs(86_400)).period().as_secs(), 86_400);
    /// ```
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The time after which one more request is admitted (`period / count`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// let quota = Quota::new(10, Duration::from_secs(60));
    /// assert_eq!(quota.replenish_interval(), Duration::from_secs(6));
    /// ```
    pub fn replenish_interval(&self) -> Duration {
        (self.period / self.count).max(Duration::from_nanos(1))
    }
}

impl fmt::Display for Quota {
    /// Formats as Flask-Limiter does: `20 per 1 hour`, `10 per 30 second`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (86_400, "day"),
            (3_600, "hour"),
            (60, "minute"),
            (1, "second"),
        ];
        let secs = self.period.as_secs();
        if self.period.subsec_nanos() == 0 && secs > 0 {
            for (size, name) in UNITS {
                if secs % size == 0 {
                    return write!(f, "{} per {} {}", self.count, secs / size, name);
                }
            }
        }
        write!(f, "{} per {:?}", self.count, self.period)
    }
}
