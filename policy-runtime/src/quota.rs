//! [`Quota`]: how many requests a client may make in a period.
//!
//! This module owns the value type and the run-time parsing of limit strings
//! (for limits defined in the engine builder or the environment). The grammar
//! is the one `#[rate_limit]` checks at compile time: both use
//! `policy_grammar::quota`. Enforcing a quota is [`crate::rate_limiting`]'s job.

use policy_grammar::quota as grammar;
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
    burst: u32,
    mode: Mode,
}

/// How a quota is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mode {
    /// GCRA, the default.
    Gcra,
    /// A log of admission times: exactly `count` in any window.
    Strict,
    /// Two fixed-window counters, the previous one weighted.
    Sliding,
}

/// A limit string that does not parse, or a quota out of the supported
/// range (see [`Quota::validate`]), with the reason.
///
/// ```
/// let error = policy_runtime::Quota::parse_list("20/fortnight").unwrap_err();
/// assert!(error.to_string().contains("unknown time unit `fortnight`"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QuotaError(String);

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
        Self {
            count,
            period,
            burst: count,
            mode: Mode::Gcra,
        }
    }

    /// Parses a limit string with the grammar of `#[rate_limit]`: `"20/hour"`,
    /// `"20 per hour"`, `"200/day; 50/hour"`, `"10 per 5 minutes"`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// let quotas = Quota::parse_list("200/day; 50/hour").unwrap();
    /// assert_eq!(quotas, [Quota::new(200, Duration::from_secs(86_400)), Quota::new(50, Duration::from_secs(3_600))]);
    /// assert!(Quota::parse_list("0/hour").is_err());
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<Quota>, QuotaError> {
        let specs = grammar::parse_limits(text).map_err(QuotaError)?;
        specs
            .into_iter()
            .map(|spec| Quota::new(spec.count, Duration::from_secs(spec.period_secs)).validate())
            .collect()
    }

    /// The longest supported period, 3,650 days (about ten years). A burst
    /// must replenish within it too: `burst × period / count` at most this.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Quota::MAX_PERIOD.as_secs(), 3_650 * 86_400);
    /// ```
    pub const MAX_PERIOD: Duration = Duration::from_secs(grammar::MAX_PERIOD_SECS);

    /// The quota itself if it is within the supported range, or what is out
    /// of it: a period longer than [`Quota::MAX_PERIOD`], or a burst that
    /// takes longer than that to replenish. [`Quota::parse_list`] and
    /// `#[rate_limit]` refuse such quotas; one built by hand and passed to a
    /// store directly is enforced as if its period or burst were at the
    /// limit of the range, never more leniently.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// let day = Duration::from_secs(86_400);
    /// assert!(Quota::new(1, day).with_burst(3_650).validate().is_ok());
    /// let error = Quota::new(1, day).with_burst(220_000).validate().unwrap_err();
    /// assert!(error.to_string().contains("a burst of 220000"));
    /// ```
    pub fn validate(self) -> Result<Self, QuotaError> {
        match grammar::range_problem(self.count, self.period.as_nanos(), self.burst) {
            Some(problem) => Err(QuotaError(format!("{self}: {problem}"))),
            None => Ok(self),
        }
    }

    /// The same quota, admitting a burst of `burst` requests at once instead of
    /// `count` (the rate stays `count` per period). A zero burst is raised to 1.
    /// The burst must replenish within [`Quota::MAX_PERIOD`]; check a burst
    /// that comes from configuration with [`Quota::validate`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// let quota = Quota::new(10, Duration::from_secs(1)).with_burst(30);
    /// assert_eq!(quota.burst(), 30);
    /// ```
    pub const fn with_burst(self, burst: u32) -> Self {
        Self {
            burst: if burst == 0 { 1 } else { burst },
            ..self
        }
    }

    /// The same quota in strict mode: at most `count` requests in any window
    /// of length `period`, kept as a log of the last `count` request times.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert!(Quota::new(5, Duration::from_secs(3600)).strict().is_strict());
    /// ```
    pub const fn strict(self) -> Self {
        Self {
            mode: Mode::Strict,
            ..self
        }
    }

    /// The same quota counted by a sliding window counter (the `limits`
    /// library's "sliding window counter"): two counters per client, the
    /// requests of the current fixed window of length `period` and of the
    /// previous one, the previous weighted by how much of it still overlaps
    /// the last `period`. A request is admitted when the weighted count plus
    /// its cost is at most `count`. Constant memory per client whatever the
    /// count, unlike [`Quota::strict`]; approximate: exact when the previous
    /// window's requests were spread evenly, and at worst `2 × count` in a
    /// window of length `period` that straddles two fixed windows (never
    /// more than `count` within one fixed window).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// let quota = Quota::new(10_000, Duration::from_secs(3600)).sliding();
    /// assert!(quota.is_sliding());
    /// assert!(!quota.is_strict());
    /// ```
    pub const fn sliding(self) -> Self {
        Self {
            mode: Mode::Sliding,
            burst: self.count,
            ..self
        }
    }

    /// Whether the quota is counted by a sliding window counter (see
    /// [`Quota::sliding`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert!(!Quota::new(20, Duration::from_secs(3600)).is_sliding());
    /// ```
    pub const fn is_sliding(&self) -> bool {
        matches!(self.mode, Mode::Sliding)
    }

    /// How many requests may arrive at once (the count, unless set with
    /// [`Quota::with_burst`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert_eq!(Quota::new(20, Duration::from_secs(3600)).burst(), 20);
    /// ```
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether the quota is strict (see [`Quota::strict`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::Quota;
    ///
    /// assert!(!Quota::new(20, Duration::from_secs(3600)).is_strict());
    /// ```
    pub const fn is_strict(&self) -> bool {
        matches!(self.mode, Mode::Strict)
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
