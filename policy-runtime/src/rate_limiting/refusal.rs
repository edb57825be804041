//! The 429 a rate limit answers with: its JSON body and its headers.
//!
//! This module owns building the refusal response. Its message and its
//! default rendering depend only on why the request was refused (which quota,
//! or a penalty block), so each is rendered once and then shared: a client
//! hammering a limit costs no formatting and no serialisation per request.
//! Which requests are refused is [`super::RateLimits::judge`]'s business.

use super::headers::{HeaderStyle, QuotaHeaders, RateLimitHeaders};
use super::store::Decision;
use crate::{ErrorBody, Quota};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use dashmap::DashMap;
use std::sync::OnceLock;

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Reason {
    /// The quota has no room left for it.
    Exceeded(Quota),
    /// The client sits in the penalty box after repeated violations.
    Blocked,
}

/// The fields a 429 carries: the content type, the `Content-Length` axum
/// adds, `Retry-After` and the rate-limit headers of `style` (and
/// `X-RateLimit-Window` with `window`). Sized once, the header map never
/// grows, and is no larger than it needs.
fn fields(style: HeaderStyle, window: bool) -> usize {
    3 + match style {
        HeaderStyle::Both => 5 + usize::from(window),
        HeaderStyle::Legacy => 3 + usize::from(window),
        HeaderStyle::Ietf => 2,
        HeaderStyle::None => 0,
    }
}

/// The 429 response for `reason`, with the rate-limit headers of `decision`
/// (and `X-RateLimit-Window` with `window`).
/// With `keeps_body`, the response carries the body it was rendered from,
/// for an engine that renders errors again in its own format; an engine
/// that keeps the default rendering has no use for it.
pub(crate) fn too_many_requests(
    style: HeaderStyle,
    window: bool,
    reason: Reason,
    decision: &Decision,
    quotas: &'static QuotaHeaders,
    keeps_body: bool,
) -> Response {
    let (message, json) = match reason {
        // Kept with the quota's header values: no lookup per refusal.
        Reason::Exceeded(quota) => quotas
            .values_of(&quota)
            .refusal(|quota| rendered(Reason::Exceeded(quota))),
        Reason::Blocked => rendered(reason),
    };
    let mut headers = HeaderMap::with_capacity(fields(style, window));
    RateLimitHeaders::new(style, window, decision, quotas).apply(&mut headers);
    let json = Body::from(Bytes::from_static(json));
    if keeps_body {
        return body(message).respond(json, headers);
    }
    // What `ErrorBody::respond` makes, without the body in the extensions.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = Response::new(json);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    *response.headers_mut() = headers;
    response
}

/// The refusal's body: the one its cached JSON is rendered from and the one
/// the response carries for other formats, so the two always agree.
fn body(message: &'static str) -> ErrorBody {
    ErrorBody::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message)
}

/// The message and default JSON rendering of a refusal for `reason`, made
/// once per reason. Quotas are those written in the program or configured at
/// start-up, so there are few, and each pair is kept for the life of the
/// process.
fn rendered(reason: Reason) -> (&'static str, &'static [u8]) {
    type Rendered = DashMap<Reason, (&'static str, &'static [u8]), foldhash::fast::RandomState>;
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    let rendered = RENDERED.get_or_init(Rendered::default);
    if let Some(pair) = rendered.get(&reason) {
        return *pair;
    }
    let message = match reason {
        Reason::Exceeded(quota) => format!("Too Many Requests: {quota}"),
        Reason::Blocked => "Too Many Requests: blocked after repeated violations".to_owned(),
    };
    let message: &'static str = Box::leak(message.into_boxed_str());
    let json = body(message).to_json();
    let pair = (message, &*Box::leak(json.into_bytes().into_boxed_slice()));
    *rendered.entry(reason).or_insert(pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_refusal_without_its_body_is_the_same_response_but_for_the_extension() {
        let quota = Quota::new(3, Duration::from_secs(60));
        let decision = Decision {
            allowed: false,
            quota,
            remaining: 0,
            reset_after: Duration::from_secs(20),
            retry_after: Duration::from_millis(19_500),
        };
        let quotas = QuotaHeaders::of(&[quota]);
        let styles = [
            HeaderStyle::Both,
            HeaderStyle::Legacy,
            HeaderStyle::Ietf,
            HeaderStyle::None,
        ];
        for (style, window) in styles
            .into_iter()
            .flat_map(|style| [(style, false), (style, true)])
        {
            let refuse = |keeps_body| {
                too_many_requests(
                    style,
                    window,
                    Reason::Exceeded(quota),
                    &decision,
                    quotas,
                    keeps_body,
                )
            };
            let (kept, plain) = (refuse(true), refuse(false));
            let legacy = matches!(style, HeaderStyle::Both | HeaderStyle::Legacy);
            assert_eq!(
                plain.headers().get("x-ratelimit-window").is_some(),
                window && legacy,
                "{style:?}"
            );
            assert_eq!(plain.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(kept.status(), plain.status());
            assert_eq!(kept.headers(), plain.headers(), "{style:?}");
            assert_eq!(plain.headers()["content-type"], "application/json");
            assert_eq!(plain.headers()["retry-after"], "20");
            // With `Content-Length` still to come, the map has room for it.
            assert!(
                plain.headers().len() < plain.headers().capacity(),
                "{style:?}"
            );
            assert!(
                kept.extensions()
                    .get::<crate::error_body::RenderedError>()
                    .is_some()
            );
            assert!(
                plain
                    .extensions()
                    .get::<crate::error_body::RenderedError>()
                    .is_none()
            );
        }
    }

    #[test]
    fn a_refusal_is_rendered_once_per_reason() {
        let quota = Quota::new(3, Duration::from_secs(60));
        let first = rendered(Reason::Exceeded(quota));
        assert_eq!(first.0, "Too Many Requests: 3 per 1 minute");
        assert_eq!(
            first.1,
            br#"{"error":"Too Many Requests: 3 per 1 minute","code":"RATE_LIMITED"}"#
        );
        // The same bytes again, not a copy.
        assert!(std::ptr::eq(first.1, rendered(Reason::Exceeded(quota)).1));
        let blocked = rendered(Reason::Blocked);
        assert_eq!(
            blocked.0,
            "Too Many Requests: blocked after repeated violations"
        );
    }
}
