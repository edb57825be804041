//! The rate-limit response headers: `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
//! `X-RateLimit-Reset` (epoch seconds) and, on a 429, `Retry-After` (seconds).
//!
//! This module owns turning a [`Decision`] into header values; it does not decide.

use super::store::Decision;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(crate) static X_RATELIMIT_REMAINING: HeaderName =
    HeaderName::from_static("x-ratelimit-remaining");
pub(crate) static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The header values of one decision, computed once and copied onto the response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateLimitHeaders {
    limit: u32,
    remaining: u32,
    reset_epoch_secs: u64,
    retry_after_secs: Option<u64>,
}

impl RateLimitHeaders {
    pub(crate) fn new(decision: &Decision) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            limit: decision.quota.count(),
            remaining: decision.remaining,
            reset_epoch_secs: ceil_secs(now + decision.reset_after),
            // Rounded up so that a client retrying at the advertised time succeeds.
            retry_after_secs: (!decision.allowed).then(|| ceil_secs(decision.retry_after).max(1)),
        }
    }

    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }

    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(X_RATELIMIT_LIMIT.clone(), HeaderValue::from(self.limit));
        headers.insert(
            X_RATELIMIT_REMAINING.clone(),
            HeaderValue::from(self.remaining),
        );
        headers.insert(
            X_RATELIMIT_RESET.clone(),
            HeaderValue::from(self.reset_epoch_secs),
        );
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let decision = Decision {
            allowed: false,
            quota: Quota::new(1, Duration::from_secs(10)),
            remaining: 0,
            reset_after: Duration::from_millis(9_001),
            retry_after: Duration::from_millis(1),
        };
        let mut headers = HeaderMap::new();
        RateLimitHeaders::new(&decision).apply(&mut headers);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["x-ratelimit-limit"], "1");
        assert_eq!(headers["x-ratelimit-remaining"], "0");

        let decision = Decision {
            retry_after: Duration::from_millis(2_500),
            ..decision
        };
        let mut headers = HeaderMap::new();
        RateLimitHeaders::new(&decision).apply(&mut headers);
        assert_eq!(headers["retry-after"], "3");
    }

    #[test]
    fn allowed_responses_carry_no_retry_after() {
        let decision = Decision {
            allowed: true,
            quota: Quota::new(5, Duration::from_secs(10)),
            remaining: 4,
            reset_after: Duration::from_secs(2),
            retry_after: Duration::ZERO,
        };
        let mut headers = HeaderMap::new();
        RateLimitHeaders::new(&decision).apply(&mut headers);
        assert!(headers.get("retry-after").is_none());
        assert_eq!(headers["x-ratelimit-remaining"], "4");
    }
}
