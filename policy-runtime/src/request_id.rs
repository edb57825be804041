//! Request ids: which incoming `x-request-id` values are kept, and the
//! header they travel in.
//!
//! This module owns the rule only (at most 128 characters of
//! `[A-Za-z0-9._-]`); setting, generating and returning the header is
//! tower-http's `SetRequestId` and `PropagateRequestId`, put together by
//! [`crate::RequestLayer`]. An id that breaks the rule is dropped and a new
//! one generated, so that no client can inject text into logs or bodies.

#[cfg(feature = "request-layer")]
use axum::http::HeaderMap;
use axum::http::HeaderName;

/// The header a request id travels in, on requests and responses (a
/// `HeaderName`, so that a lookup does not parse the name each time).
pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A request id longer than this is replaced.
const MAX_LEN: usize = 128;

/// Whether an incoming request id is short and plain enough to keep.
pub(crate) fn is_safe(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops an incoming `x-request-id` that breaks the rule, or that is sent
/// more than once, so that a fresh one is generated.
#[cfg(feature = "request-layer")]
pub(crate) fn drop_unsafe(headers: &mut HeaderMap) {
    let mut values = headers.get_all(HEADER).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => return,
        (Some(value), None) => is_safe(value.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(HEADER);
    }
}

/// The request's id, when it has a safe one.
#[cfg(feature = "request-layer")]
pub(crate) fn of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(HEADER)
        .filter(|value| is_safe(value.as_bytes()))
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_safe() {
        assert!(is_safe(b"req-42.a_B"));
        assert!(is_safe(&[b'a'; 128]));
        assert!(!is_safe(&[b'a'; 129]));
        assert!(!is_safe(b"has space"));
        assert!(!is_safe(b"quote\"injection"));
        assert!(!is_safe(b""));
    }

    #[cfg(feature = "request-layer")]
    #[test]
    fn unsafe_or_repeated_ids_are_dropped() {
        use axum::http::HeaderValue;

        let mut headers = HeaderMap::new();
        headers.insert(HEADER, HeaderValue::from_static("abc-1"));
        drop_unsafe(&mut headers);
        assert_eq!(of(&headers), Some("abc-1"));

        headers.insert(HEADER, HeaderValue::from_static("quote\"injection"));
        drop_unsafe(&mut headers);
        assert!(headers.get(HEADER).is_none());

        headers.append(HEADER, HeaderValue::from_static("a"));
        headers.append(HEADER, HeaderValue::from_static("b"));
        drop_unsafe(&mut headers);
        assert!(headers.get(HEADER).is_none());

        headers.insert(HEADER, HeaderValue::from_bytes(&[b'a'; 129]).unwrap());
        drop_unsafe(&mut headers);
        assert!(headers.get(HEADER).is_none());
    }
}
