//! The API-key policy: read the presented key, verify it, answer 401 or go on.
//!
//! This module owns where a key is read from (`X-API-Key`, or
//! `Authorization: Bearer <key>`), the 401 response and the decision's log
//! event. Key storage is [`store`]'s business.

pub(crate) mod id;
pub(crate) mod store;

use crate::ErrorBody;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use id::ApiKeyId;
use std::net::IpAddr;
use store::ApiKeyStore;

/// Checks one `#[require_api_key]` policy; on success returns the key's identity.
pub(crate) fn enforce(
    keys: &ApiKeyStore,
    scope: &'static str,
    parts: &Parts,
    client_ip: Option<IpAddr>,
) -> Result<ApiKeyId, Response> {
    let client_ip = client_ip.map(tracing::field::display);
    let Some(presented) = presented_key(parts) else {
        tracing::warn!(
            policy = "api_key",
            scope,
            client_ip,
            reason = "missing",
            outcome = "deny",
            "API key missing"
        );
        return Err(unauthorized("Missing API key"));
    };
    match keys.verify(presented) {
        Some(id) => {
            tracing::debug!(
                policy = "api_key",
                scope,
                client_ip,
                key_id = id.name(),
                outcome = "allow",
                "API key accepted"
            );
            Ok(id.clone())
        }
        None => {
            tracing::warn!(
                policy = "api_key",
                scope,
                client_ip,
                reason = "invalid",
                outcome = "deny",
                "API key invalid"
            );
            Err(unauthorized("Invalid API key"))
        }
    }
}

/// The key bytes from `X-API-Key`, else from `Authorization: Bearer`. Values
/// are compared as sent: no trimming, no decoding, and an empty value counts
/// as no key.
fn presented_key(parts: &Parts) -> Option<&[u8]> {
    if let Some(value) = parts.headers.get("x-api-key") {
        return non_empty(value.as_bytes());
    }
    let authorization = parts.headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = split_once(authorization, b' ')?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    non_empty(token)
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn non_empty(bytes: &[u8]) -> Option<&[u8]> {
    (!bytes.is_empty()).then_some(bytes)
}

fn unauthorized(message: &'static str) -> Response {
    let mut response =
        ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"api\""),
    );
    response
}
