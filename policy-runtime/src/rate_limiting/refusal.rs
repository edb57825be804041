//! The 429 a rate limit answers with: its JSON body and its headers.
//!
//! This module owns building the refusal response. Its message and its
//! default rendering depend only on why the request was refused (which quota,
//! or a penalty block), so each is rendered once and then shared: a client
//! hammering a limit costs no formatting and no serialisation per request.
//! Which requests are refused is [`super::RateLimits::judge`]'s business.

use super::headers::{HeaderStyle, RateLimitHeaders};
use super::store::Decision;
use crate::{ErrorBody, Quota};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
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

/// Fields a 429 carries besides its own headers: the content type, the
/// `RateLimit` family, `Retry-After`, and the `Content-Length` axum adds.
/// Sized once, the header map never grows.
const FIELDS: usize = 8;

/// The 429 response for `reason`, with the rate-limit headers of `decision`.
pub(crate) fn too_many_requests<'q>(
    style: HeaderStyle,
    reason: Reason,
    decision: &Decision,
    quotas: impl Iterator<Item = &'q Quota> + Clone,
) -> Response {
    let (message, json) = rendered(reason);
    let mut headers = HeaderMap::with_capacity(FIELDS);
    RateLimitHeaders::new(style, decision, quotas).apply(&mut headers);
    body(message).respond(Body::from(Bytes::from_static(json)), headers)
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
    static RENDERED: OnceLock<DashMap<Reason, (&'static str, &'static [u8])>> = OnceLock::new();
    let rendered = RENDERED.get_or_init(DashMap::new);
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
