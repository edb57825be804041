//! The rate-limit response headers, in two families:
//!
//! - legacy: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//!   (epoch seconds) and, on a 429, `Retry-After` (seconds);
//! - IETF draft-ietf-httpapi-ratelimit-headers-10 structured fields:
//!   `RateLimit-Policy: "50/3600s";q=50;w=3600` listing every quota that
//!   applies, and `RateLimit: "50/3600s";r=49;t=72` for the decisive one.
//!
//! `Retry-After` goes on every 429 whatever the style. This module owns
//! turning a [`Decision`] into header values; it does not decide.

use super::store::Decision;
use crate::Quota;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use dashmap::DashMap;
use smallvec::SmallVec;
use std::fmt::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Which rate-limit header families responses carry.
///
/// ```
/// use policy_runtime::{Engine, HeaderStyle};
///
/// let engine = Engine::builder().rate_limit_headers(HeaderStyle::Ietf).build().unwrap();
/// # drop(engine);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeaderStyle {
    /// `X-RateLimit-*` and `Retry-After`.
    Legacy,
    /// `RateLimit-Policy` and `RateLimit` (IETF draft -10), and `Retry-After` on a 429.
    Ietf,
    /// Both families (the default).
    #[default]
    Both,
    /// Only `Retry-After` on a 429.
    None,
}

/// The header values of one decision, computed once and copied onto the response.
#[derive(Clone, Debug)]
pub(crate) struct RateLimitHeaders {
    style: HeaderStyle,
    decision: Decision,
    reset_epoch_secs: u64,
    /// The `RateLimit-Policy` value, when the IETF family is on.
    policies: Option<HeaderValue>,
}

impl RateLimitHeaders {
    pub(crate) fn new<'q>(
        style: HeaderStyle,
        decision: &Decision,
        quotas: impl Iterator<Item = &'q Quota>,
    ) -> Self {
        let reset_epoch_secs = if matches!(style, HeaderStyle::Legacy | HeaderStyle::Both) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            ceil_secs(now + decision.reset_after)
        } else {
            0
        };
        let policies =
            matches!(style, HeaderStyle::Ietf | HeaderStyle::Both).then(|| policy_header(quotas));
        Self {
            style,
            decision: *decision,
            reset_epoch_secs,
            policies,
        }
    }

    pub(crate) fn remaining(&self) -> u32 {
        self.decision.remaining
    }

    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        let decision = &self.decision;
        if matches!(self.style, HeaderStyle::Legacy | HeaderStyle::Both) {
            headers.insert(
                X_RATELIMIT_LIMIT.clone(),
                number(u64::from(decision.quota.count())),
            );
            headers.insert(
                X_RATELIMIT_REMAINING.clone(),
                number(u64::from(decision.remaining)),
            );
            headers.insert(X_RATELIMIT_RESET.clone(), epoch(self.reset_epoch_secs));
        }
        if let Some(policies) = &self.policies {
            headers.insert(RATELIMIT_POLICY.clone(), policies.clone());
            let t = if decision.allowed {
                decision.reset_after
            } else {
                decision.retry_after
            };
            let mut value = String::with_capacity(48);
            let quota = &decision.quota;
            let _ = write!(
                value,
                "\"{}/{}s\";r={};t={}",
                quota.count(),
                window_secs(quota),
                decision.remaining,
                ceil_secs(t)
            );
            // Handing over the string's buffer avoids a copy.
            if let Ok(value) = HeaderValue::from_maybe_shared(axum::body::Bytes::from(value)) {
                headers.insert(RATELIMIT.clone(), value);
            }
        }
        if !decision.allowed {
            // Rounded up so that a client retrying at the advertised time succeeds.
            let secs = ceil_secs(decision.retry_after).max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

/// The `RateLimit-Policy` value of a list of quotas. It depends only on the
/// quotas, so it is rendered once per distinct list and then shared: the
/// lists are those written in the program or configured at start-up, so the
/// cache stays small.
fn policy_header<'q>(quotas: impl Iterator<Item = &'q Quota>) -> HeaderValue {
    type Cache = DashMap<SmallVec<[Quota; 4]>, HeaderValue, foldhash::fast::RandomState>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let quotas: SmallVec<[Quota; 4]> = quotas.copied().collect();
    if let Some(value) = cache.get(&quotas) {
        return value.clone();
    }
    let mut value = String::new();
    for quota in &quotas {
        if !value.is_empty() {
            value.push_str(", ");
        }
        let _ = write!(
            value,
            "{};q={};w={}",
            name(quota),
            quota.count(),
            window_secs(quota)
        );
    }
    let value = HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""));
    cache.insert(quotas, value.clone());
    value
}

/// A number as a header value; the small ones, the common case for counts,
/// come from a table built once, so they cost no allocation.
fn number(n: u64) -> HeaderValue {
    const TABLE: u64 = 4096;
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    if n >= TABLE {
        return HeaderValue::from(n);
    }
    let table = SMALL.get_or_init(|| {
        (0..TABLE)
            .map(|n| HeaderValue::from_static(Box::leak(n.to_string().into_boxed_str())))
            .collect()
    });
    table[n as usize].clone()
}

/// An epoch second as a header value, remembered per thread: requests in the
/// same second share one value.
fn epoch(secs: u64) -> HeaderValue {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, HeaderValue)> =
            const { std::cell::RefCell::new((0, HeaderValue::from_static("0"))) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, HeaderValue::from(secs));
        }
        last.1.clone()
    })
}

/// The policy name of a quota in the IETF headers: `"<count>/<seconds>s"`.
fn name(quota: &Quota) -> String {
    format!("\"{}/{}s\"", quota.count(), window_secs(quota))
}

fn window_secs(quota: &Quota) -> u64 {
    ceil_secs(quota.period())
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(allowed: bool, remaining: u32, retry_after: Duration) -> Decision {
        Decision {
            allowed,
            quota: Quota::new(5, Duration::from_secs(10)),
            remaining,
            reset_after: Duration::from_millis(9_001),
            retry_after,
        }
    }

    fn render(style: HeaderStyle, decision: &Decision) -> HeaderMap {
        let quotas = [
            Quota::new(5, Duration::from_secs(10)),
            Quota::new(100, Duration::from_secs(3600)),
        ];
        let mut headers = HeaderMap::new();
        RateLimitHeaders::new(style, decision, quotas.iter()).apply(&mut headers);
        headers
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let headers = render(
            HeaderStyle::Legacy,
            &decision(false, 0, Duration::from_millis(1)),
        );
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["x-ratelimit-limit"], "5");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        let headers = render(
            HeaderStyle::None,
            &decision(false, 0, Duration::from_millis(2_500)),
        );
        assert_eq!(headers["retry-after"], "3");
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn ietf_fields_list_every_policy_and_the_decisive_state() {
        let headers = render(HeaderStyle::Ietf, &decision(true, 4, Duration::ZERO));
        assert_eq!(
            headers["ratelimit-policy"],
            "\"5/10s\";q=5;w=10, \"100/3600s\";q=100;w=3600"
        );
        assert_eq!(headers["ratelimit"], "\"5/10s\";r=4;t=10");
        assert!(headers.get("x-ratelimit-limit").is_none());
        assert!(headers.get("retry-after").is_none());

        let headers = render(
            HeaderStyle::Both,
            &decision(false, 0, Duration::from_millis(1_500)),
        );
        assert_eq!(headers["ratelimit"], "\"5/10s\";r=0;t=2");
        assert_eq!(headers["retry-after"], "2");
        assert_eq!(headers["x-ratelimit-remaining"], "0");
    }
}
