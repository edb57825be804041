//! The rate-limit response headers, in two families:
//!
//! - legacy: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//!   (epoch seconds) and, on a 429, `Retry-After` (seconds);
//! - IETF draft-ietf-httpapi-ratelimit-headers-10 structured fields:
//!   `RateLimit-Policy: "50/3600s";q=50;w=3600` listing every quota that
//!   applies, and `RateLimit: "50/3600s";r=49;t=72` for the decisive one.
//!
//! With [`EngineBuilder::rate_limit_window_header`](crate::EngineBuilder::rate_limit_window_header),
//! the legacy family also carries `X-RateLimit-Window`: the period, in whole
//! seconds, of the quota the other `X-RateLimit-*` headers describe.
//!
//! `Retry-After` goes on every 429 whatever the style. This module owns
//! turning a [`Decision`] into header values; it does not decide.
//!
//! These headers go on nearly every response, so their values are cheap to
//! make: the values of a list of quotas (the policy list, each limit, the
//! start of each `RateLimit` value) are made once per list
//! ([`QuotaHeaders`]), whose reference the caller keeps; the reset second is
//! remembered, small counts come from a table, and the others are written
//! with `itoa` into a per-thread buffer that many values share, so a value
//! costs no allocation of its own.

use super::store::Decision;
use crate::Quota;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
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
static X_RATELIMIT_WINDOW: HeaderName = HeaderName::from_static("x-ratelimit-window");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// Which rate-limit header families responses carry.
///
/// ```
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{routing::get, Router};
/// use policy_runtime::{rate_limit, Engine, HeaderStyle};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[rate_limit("20/hour")]
/// async fn score() -> &'static str {
///     "scored"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().rate_limit_headers(HeaderStyle::Ietf).build()?;
///     let app = Router::new()
///         .route("/score", get(score))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let response = app.oneshot(Request::get("/score").body(Body::empty())?).await?;
///     assert_eq!(response.headers()["ratelimit-policy"], r#""20/3600s";q=20;w=3600"#);
///     assert_eq!(response.headers()["ratelimit"], r#""20/3600s";r=19;t=180"#);
///     assert!(response.headers().get("x-ratelimit-limit").is_none());
///     Ok(())
/// }
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

/// The header values of one decision: the numbers of the decision, and the
/// values of its quotas that are the same on every response.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateLimitHeaders {
    style: HeaderStyle,
    /// Whether the legacy family carries `X-RateLimit-Window`.
    window: bool,
    allowed: bool,
    remaining: u32,
    /// The decisive quota's values.
    decisive: &'static QuotaValues,
    /// Every quota that applies, for `RateLimit-Policy`.
    quotas: &'static QuotaHeaders,
    /// `RateLimit`'s `t`: seconds until the window resets, or until a
    /// refused client may retry.
    t_secs: u64,
    reset_epoch_secs: u64,
    /// `Retry-After`, on a refusal.
    retry_secs: u64,
}

impl RateLimitHeaders {
    /// The headers of `decision` under the quotas `quotas` (every quota the
    /// checks applied, in order); with `window`, the legacy family carries
    /// `X-RateLimit-Window` too.
    pub(crate) fn new(
        style: HeaderStyle,
        window: bool,
        decision: &Decision,
        quotas: &'static QuotaHeaders,
    ) -> Self {
        let reset_epoch_secs = if matches!(style, HeaderStyle::Legacy | HeaderStyle::Both) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO);
            ceil_secs(now + decision.reset_after)
        } else {
            0
        };
        let t = if decision.allowed {
            decision.reset_after
        } else {
            decision.retry_after
        };
        Self {
            style,
            window,
            allowed: decision.allowed,
            remaining: decision.remaining,
            decisive: quotas.values_of(&decision.quota),
            quotas,
            t_secs: ceil_secs(t),
            reset_epoch_secs,
            // Rounded up so that a client retrying at the advertised time succeeds.
            retry_secs: ceil_secs(decision.retry_after).max(1),
        }
    }

    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Shows `units` given back to the decisive quota (a conditional limit's
    /// reservation that the response did not count).
    pub(crate) fn give_back(&mut self, units: u32) {
        if self.allowed {
            self.remaining = self.remaining.saturating_add(units);
        }
    }

    pub(crate) fn apply(&self, headers: &mut HeaderMap) {
        if self.style == HeaderStyle::Both {
            // Five fields (six with the window) and the `Content-Length`
            // axum adds outgrow a map with a field or two: grow it once now,
            // before the fields are in.
            headers.reserve(6 + usize::from(self.window));
        }
        if matches!(self.style, HeaderStyle::Legacy | HeaderStyle::Both) {
            headers.insert(X_RATELIMIT_LIMIT.clone(), self.decisive.limit.clone());
            headers.insert(
                X_RATELIMIT_REMAINING.clone(),
                number(u64::from(self.remaining)),
            );
            headers.insert(
                X_RATELIMIT_RESET.clone(),
                repeated_number(&LAST_RESET, self.reset_epoch_secs),
            );
            if self.window {
                headers.insert(X_RATELIMIT_WINDOW.clone(), self.decisive.window.clone());
            }
        }
        if matches!(self.style, HeaderStyle::Ietf | HeaderStyle::Both) {
            headers.insert(RATELIMIT_POLICY.clone(), self.quotas.policy.clone());
            let value = shared_value(|value| {
                let mut digits = itoa::Buffer::new();
                value.extend_from_slice(self.decisive.ratelimit_start);
                value.extend_from_slice(digits.format(self.remaining).as_bytes());
                value.extend_from_slice(b";t=");
                value.extend_from_slice(digits.format(self.t_secs).as_bytes());
            });
            headers.insert(RATELIMIT.clone(), value);
        }
        if !self.allowed {
            headers.insert(header::RETRY_AFTER, number(self.retry_secs));
        }
    }
}

/// The header values of a list of quotas that are the same on every
/// response: made once per distinct list (see [`QuotaHeaders::of`]) and
/// kept for the life of the process, so a response only copies them.
#[derive(Debug)]
pub(crate) struct QuotaHeaders {
    /// `RateLimit-Policy`: every quota of the list.
    policy: HeaderValue,
    /// Each quota's own values, in the list's order.
    each: Box<[QuotaValues]>,
}

/// The values of one quota that are the same on every response.
#[derive(Debug)]
pub(crate) struct QuotaValues {
    quota: Quota,
    /// `X-RateLimit-Limit`.
    limit: HeaderValue,
    /// `X-RateLimit-Window`: the period in whole seconds, rounded up.
    window: HeaderValue,
    /// The start of the `RateLimit` value, up to its remaining count: `"50/3600s";r=`.
    ratelimit_start: &'static [u8],
    /// The message and JSON body of a 429 this quota decided, once one was made.
    refusal: OnceLock<(&'static str, &'static [u8])>,
}

impl QuotaValues {
    /// The message and JSON body of a 429 this quota decided, made by `render` the first time.
    pub(crate) fn refusal(
        &self,
        render: impl FnOnce(Quota) -> (&'static str, &'static [u8]),
    ) -> (&'static str, &'static [u8]) {
        *self.refusal.get_or_init(|| render(self.quota))
    }
}

impl QuotaHeaders {
    /// The values of `quotas`. The lists are those written in the program or
    /// configured at start-up, so the cache they are kept in stays small;
    /// callers on the request path keep the reference they get instead of
    /// asking again.
    pub(crate) fn of(quotas: &[Quota]) -> &'static QuotaHeaders {
        static CACHE: OnceLock<QuotaCache> = OnceLock::new();
        let cache = CACHE.get_or_init(QuotaCache::default);
        if let Some(found) = cache.get(quotas) {
            return *found;
        }
        let made: &'static QuotaHeaders = Box::leak(Box::new(QuotaHeaders::render(quotas)));
        *cache
            .entry(quotas.iter().copied().collect())
            .or_insert(made)
    }

    fn render(quotas: &[Quota]) -> Self {
        let mut policy = String::new();
        for quota in quotas {
            if !policy.is_empty() {
                policy.push_str(", ");
            }
            let _ = write!(
                policy,
                "{};q={};w={}",
                name(quota),
                quota.count(),
                window_secs(quota)
            );
        }
        QuotaHeaders {
            policy: leaked_value(policy),
            each: quotas
                .iter()
                .map(|quota| QuotaValues {
                    quota: *quota,
                    // On static bytes, as a large count written by `number`
                    // would pin a per-thread buffer for the life of the process.
                    limit: leaked_value(quota.count().to_string()),
                    window: leaked_value(window_secs(quota).to_string()),
                    ratelimit_start: Box::leak(
                        format!("{};r=", name(quota))
                            .into_bytes()
                            .into_boxed_slice(),
                    ),
                    refusal: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// The values of `quota`, one of the list's as a rule; a store that
    /// answers with another quota gets values made for it alone.
    pub(crate) fn values_of(&'static self, quota: &Quota) -> &'static QuotaValues {
        match self.each.iter().find(|values| values.quota == *quota) {
            Some(values) => values,
            None => &QuotaHeaders::of(std::slice::from_ref(quota)).each[0],
        }
    }
}

type Quotas = SmallVec<[Quota; 4]>;
type QuotaCache = DashMap<Quotas, &'static QuotaHeaders, foldhash::fast::RandomState>;

/// A value kept for the life of the process, as the cache entry holding it
/// is anyway: a value on static bytes is copied onto each response without
/// touching a reference count.
fn leaked_value(value: String) -> HeaderValue {
    let value: &'static str = Box::leak(value.into_boxed_str());
    HeaderValue::from_maybe_shared(bytes::Bytes::from_static(value.as_bytes()))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
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
    static LAST_RESET: RefCell<(u64, HeaderValue)> = const { RefCell::new((0, HeaderValue::from_static(""))) };
}

/// The bytes `write` appends, as a header value held in this thread's shared
/// buffer: the value takes a reference to the buffer instead of an
/// allocation of its own, and a new buffer is started when one is full.
/// `write` must append visible ASCII only and at most [`LONGEST_VALUE`] bytes.
fn shared_value(write: impl FnOnce(&mut BytesMut)) -> HeaderValue {
    // Under 1 KiB: glibc's allocator serves a block this small from its
    // per-thread cache, where a larger one first merges its free lists.
    const BUFFER: usize = 960;
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
        RateLimitHeaders::new(style, false, decision, QuotaHeaders::of(&quotas))
            .apply(&mut headers);
        headers
    }

    #[test]
    fn the_values_of_a_list_of_quotas_are_made_once() {
        let quotas = [
            Quota::new(5, Duration::from_secs(10)),
            Quota::new(100, Duration::from_secs(3600)),
        ];
        let first = QuotaHeaders::of(&quotas);
        assert!(std::ptr::eq(first, QuotaHeaders::of(&quotas.clone())));
        assert!(!std::ptr::eq(first, QuotaHeaders::of(&quotas[..1])));
        assert_eq!(
            first.policy,
            "\"5/10s\";q=5;w=10, \"100/3600s\";q=100;w=3600"
        );
        let second = first.values_of(&quotas[1]);
        assert_eq!(second.limit, "100");
        assert_eq!(second.ratelimit_start, b"\"100/3600s\";r=");
        // A quota that is not in the list gets values of its own.
        let other = Quota::new(7, Duration::from_secs(60));
        assert_eq!(first.values_of(&other).limit, "7");
    }

    #[test]
    fn the_window_is_the_decisive_quotas_period_in_the_legacy_family_only() {
        let quotas = [
            Quota::new(5, Duration::from_millis(9_500)),
            Quota::new(100, Duration::from_secs(3600)),
        ];
        let window = |style, on, decision: &Decision| {
            let mut headers = HeaderMap::new();
            RateLimitHeaders::new(style, on, decision, QuotaHeaders::of(&quotas))
                .apply(&mut headers);
            headers
                .get("x-ratelimit-window")
                .map(|value| value.to_str().unwrap().to_owned())
        };
        let admitted = Decision {
            allowed: true,
            quota: quotas[1],
            remaining: 99,
            reset_after: Duration::from_secs(36),
            retry_after: Duration::ZERO,
        };
        let refused = Decision {
            allowed: false,
            quota: quotas[0],
            remaining: 0,
            reset_after: Duration::from_millis(1_900),
            retry_after: Duration::from_millis(1_900),
        };
        for style in [HeaderStyle::Legacy, HeaderStyle::Both] {
            assert_eq!(window(style, true, &admitted).as_deref(), Some("3600"));
            // A period of 9.5 s is a window of 10.
            assert_eq!(window(style, true, &refused).as_deref(), Some("10"));
            assert_eq!(window(style, false, &admitted), None);
        }
        for style in [HeaderStyle::Ietf, HeaderStyle::None] {
            assert_eq!(window(style, true, &admitted), None);
            assert_eq!(window(style, true, &refused), None);
        }
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
                RateLimitHeaders::new(
                    HeaderStyle::Both,
                    false,
                    &decision,
                    QuotaHeaders::of(&[quota]),
                )
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
