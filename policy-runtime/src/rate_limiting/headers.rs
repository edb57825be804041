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
//!
//! These headers go on nearly every response, so their values are cheap to
//! make: values that repeat (the policy list, the limit, the reset second)
//! are remembered, small counts come from a table, and the others are written
//! with `itoa` into a per-thread buffer that many values share, so a value
//! costs no allocation of its own.

use super::store::Decision;
use crate::Quota;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use bytes::BytesMut;
use dashmap::DashMap;
use smallvec::SmallVec;
use std::cell::RefCell;
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
        quotas: impl Iterator<Item = &'q Quota> + Clone,
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
        if self.style == HeaderStyle::Both {
            // Five fields and the `Content-Length` axum adds outgrow a map
            // with a field or two: grow it once now, before the fields are in.
            headers.reserve(6);
        }
        if matches!(self.style, HeaderStyle::Legacy | HeaderStyle::Both) {
            headers.insert(
                X_RATELIMIT_LIMIT.clone(),
                repeated_number(&LAST_LIMIT, u64::from(decision.quota.count())),
            );
            headers.insert(
                X_RATELIMIT_REMAINING.clone(),
                number(u64::from(decision.remaining)),
            );
            headers.insert(
                X_RATELIMIT_RESET.clone(),
                repeated_number(&LAST_RESET, self.reset_epoch_secs),
            );
        }
        if let Some(policies) = &self.policies {
            headers.insert(RATELIMIT_POLICY.clone(), policies.clone());
            let t = if decision.allowed {
                decision.reset_after
            } else {
                decision.retry_after
            };
            let quota = &decision.quota;
            let value = shared_value(|value| {
                let mut digits = itoa::Buffer::new();
                value.extend_from_slice(b"\"");
                value.extend_from_slice(digits.format(quota.count()).as_bytes());
                value.extend_from_slice(b"/");
                value.extend_from_slice(digits.format(window_secs(quota)).as_bytes());
                value.extend_from_slice(b"s\";r=");
                value.extend_from_slice(digits.format(decision.remaining).as_bytes());
                value.extend_from_slice(b";t=");
                value.extend_from_slice(digits.format(ceil_secs(t)).as_bytes());
            });
            headers.insert(RATELIMIT.clone(), value);
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
/// cache stays small. Each thread remembers the last list it saw, which is
/// the one asked for again whenever a route takes consecutive requests.
fn policy_header<'q>(quotas: impl Iterator<Item = &'q Quota> + Clone) -> HeaderValue {
    static CACHE: OnceLock<PolicyCache> = OnceLock::new();
    thread_local! {
        static LAST: RefCell<Option<(Quotas, HeaderValue)>> = const { RefCell::new(None) };
    }
    // Compared in place: the list is copied only when it is not the last one.
    let last = LAST.with(|last| match &*last.borrow() {
        Some((seen, value)) if seen.iter().eq(quotas.clone()) => Some(value.clone()),
        _ => None,
    });
    if let Some(value) = last {
        return value;
    }
    let quotas: Quotas = quotas.copied().collect();
    let cache = CACHE.get_or_init(PolicyCache::default);
    let value = match cache.get(&quotas) {
        Some(value) => value.clone(),
        None => render_policies(&quotas, cache),
    };
    LAST.with(|last| *last.borrow_mut() = Some((quotas, value.clone())));
    value
}

type Quotas = SmallVec<[Quota; 4]>;
type PolicyCache = DashMap<Quotas, HeaderValue, foldhash::fast::RandomState>;

/// Renders a `RateLimit-Policy` value and files it in `cache`.
fn render_policies(quotas: &Quotas, cache: &PolicyCache) -> HeaderValue {
    let mut value = String::new();
    for quota in quotas {
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
    // Kept for the life of the process, as the cache entry is anyway: a
    // value on static bytes is copied onto each response without touching a
    // reference count.
    let value: &'static str = Box::leak(value.into_boxed_str());
    let value = HeaderValue::from_maybe_shared(bytes::Bytes::from_static(value.as_bytes()))
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    cache.insert(quotas.clone(), value.clone());
    value
}

/// A number as a header value; the small ones, the common case for counts,
/// come from a table built once.
fn number(n: u64) -> HeaderValue {
    const TABLE: u64 = 4096;
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    if n >= TABLE {
        return shared_value(|value| {
            value.extend_from_slice(itoa::Buffer::new().format(n).as_bytes())
        });
    }
    let table = SMALL.get_or_init(|| {
        (0..TABLE)
            .map(|n| HeaderValue::from_static(Box::leak(n.to_string().into_boxed_str())))
            .collect()
    });
    table[n as usize].clone()
}

/// A number that repeats from one request to the next (a route's limit, the
/// second a window resets) as a header value, remembered per thread and per
/// use (`slot`).
fn repeated_number(
    slot: &'static std::thread::LocalKey<RefCell<(u64, HeaderValue)>>,
    n: u64,
) -> HeaderValue {
    slot.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != n || last.1.is_empty() {
            *last = (n, number(n));
        }
        last.1.clone()
    })
}

thread_local! {
    static LAST_LIMIT: RefCell<(u64, HeaderValue)> = const { RefCell::new((0, HeaderValue::from_static(""))) };
    static LAST_RESET: RefCell<(u64, HeaderValue)> = const { RefCell::new((0, HeaderValue::from_static(""))) };
}

/// The bytes `write` appends, as a header value held in this thread's shared
/// buffer: the value takes a reference to the buffer instead of an
/// allocation of its own, and a new buffer is started when one is full.
/// `write` must append visible ASCII only and at most [`LONGEST_VALUE`] bytes.
fn shared_value(write: impl FnOnce(&mut BytesMut)) -> HeaderValue {
    const BUFFER: usize = 4096;
    thread_local! {
        static BUFFER_OF_THREAD: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    }
    BUFFER_OF_THREAD.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        if buffer.capacity() - buffer.len() < LONGEST_VALUE {
            *buffer = BytesMut::with_capacity(BUFFER);
        }
        write(&mut buffer);
        HeaderValue::from_maybe_shared(buffer.split().freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    })
}

/// The longest value written with [`shared_value`]: a `RateLimit` value with
/// every number at its largest, `"4294967295/18446744073709551615s";r=…;t=…`.
const LONGEST_VALUE: usize = 96;

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

    #[test]
    fn large_numbers_stay_right_across_many_responses_sharing_buffers() {
        // Enough responses to fill several per-thread buffers, every value
        // kept alive to the end, so a value written into a shared buffer
        // can be seen to stay intact while later ones are written.
        let quota = Quota::new(4_000_000_000, Duration::from_secs(1));
        let rendered: Vec<(u32, HeaderMap)> = (0..500u32)
            .map(|i| {
                let remaining = 3_999_999_999 - i * 7_919;
                let decision = Decision {
                    allowed: true,
                    quota,
                    remaining,
                    reset_after: Duration::from_millis(1_500),
                    retry_after: Duration::ZERO,
                };
                let mut headers = HeaderMap::new();
                RateLimitHeaders::new(HeaderStyle::Both, &decision, [quota].iter())
                    .apply(&mut headers);
                (remaining, headers)
            })
            .collect();
        for (remaining, headers) in &rendered {
            assert_eq!(headers["x-ratelimit-limit"], "4000000000");
            assert_eq!(
                headers["x-ratelimit-remaining"],
                remaining.to_string().as_str()
            );
            assert_eq!(
                headers["ratelimit"],
                format!("\"4000000000/1s\";r={remaining};t=2").as_str()
            );
            assert_eq!(
                headers["ratelimit-policy"],
                "\"4000000000/1s\";q=4000000000;w=1"
            );
        }
    }

    #[test]
    fn the_longest_ratelimit_value_fits_the_reserved_room() {
        let mut value = BytesMut::new();
        value.extend_from_slice(
            format!(
                "\"{}/{}s\";r={};t={}",
                u32::MAX,
                u64::MAX,
                u32::MAX,
                u64::MAX
            )
            .as_bytes(),
        );
        assert!(value.len() <= LONGEST_VALUE, "{}", value.len());
    }
}
