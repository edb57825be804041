//! Turning a request into the [`ClientKey`] a limit counts against.
//!
//! This module owns key resolution for every `key = ...` form and the refusal
//! sent when a key is missing. It must never let a client pick another
//! client's key: long or non-UTF-8 header values are hashed into a form no
//! plain value can take.

use super::spec::{KeySource, OnMissingKey, RateLimitSpec};
use super::store::ClientKey;
use crate::client_ip::{ClientIpResolver, MISSING_CONNECT_INFO_FIX};
use crate::{ApiKeyId, ErrorBody};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

/// Header values longer than this are keyed by their digest.
const MAX_PLAIN_HEADER_KEY: usize = 128;

/// What key resolution can see of a request.
pub(crate) struct KeyContext<'r> {
    pub(crate) parts: &'r Parts,
    /// The client address after trusted-proxy resolution, grouped for keying.
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) api_key: Option<&'r ApiKeyId>,
    /// The claims of the JWT that admitted the request, if one did.
    #[cfg(feature = "jwt")]
    pub(crate) claims: Option<&'r crate::jwt::claims::VerifiedClaims>,
    pub(crate) resolver: &'r ClientIpResolver,
    /// Whether the engine renders error responses again in its own format:
    /// then a refusal carries the body it was rendered from.
    pub(crate) renders_errors: bool,
}

/// The key of one limit for this request, or the response refusing it.
pub(crate) fn resolve(
    spec: &RateLimitSpec,
    context: &KeyContext<'_>,
) -> Result<ClientKey, Response> {
    let missing = match &spec.key {
        KeySource::Ip => return ip_key(spec, context),
        KeySource::Global => return Ok(ClientKey::Global),
        KeySource::ApiKey => match context.api_key {
            Some(id) => return Ok(ClientKey::ApiKey(id.name_arc())),
            None => "an API key",
        },
        KeySource::Header(name) => match context.parts.headers.get(*name) {
            Some(value) if !value.as_bytes().is_empty() => {
                return Ok(ClientKey::Header(header_key(value.as_bytes())));
            }
            _ => name,
        },
        KeySource::Custom(key_of) => {
            return match key_of(context.parts) {
                Ok(key) => Ok(ClientKey::Custom(Arc::from(key))),
                Err(refusal) => Err(refusal.into_response()),
            };
        }
        KeySource::Subject => {
            #[cfg(feature = "jwt")]
            if let Some(sub) = context.claims.and_then(|claims| claim_text(claims, "sub")) {
                return Ok(ClientKey::Subject(header_key(sub.as_bytes())));
            }
            match context.api_key {
                Some(id) => return Ok(ClientKey::ApiKey(id.name_arc())),
                None => "a JWT with a `sub` claim",
            }
        }
        KeySource::Claim(name) => {
            #[cfg(feature = "jwt")]
            if let Some(value) = context.claims.and_then(|claims| claim_text(claims, name)) {
                return Ok(ClientKey::Claim(header_key(value.as_bytes())));
            }
            name
        }
    };
    match spec.on_missing {
        OnMissingKey::Ip => ip_key(spec, context),
        OnMissingKey::Reject => {
            tracing::warn!(
                policy = "rate_limit",
                scope = spec.scope,
                key_kind = kind(&spec.key),
                outcome = "deny",
                reason = "missing_key",
                "rate-limit key missing"
            );
            crate::metrics::decision("rate_limit", "deny", "missing_key", spec.scope);
            let message = if matches!(spec.key, KeySource::Header(_)) {
                format!("This endpoint needs the `{missing}` header")
            } else if matches!(spec.key, KeySource::Claim(_)) {
                format!("This endpoint needs a JWT with the `{missing}` claim")
            } else {
                format!("This endpoint needs {missing}")
            };
            Err(
                ErrorBody::new(StatusCode::BAD_REQUEST, "MISSING_RATE_LIMIT_KEY", message)
                    .into_response(),
            )
        }
    }
}

fn ip_key(spec: &RateLimitSpec, context: &KeyContext<'_>) -> Result<ClientKey, Response> {
    match context.client_ip {
        Some(ip) => Ok(ClientKey::Ip(context.resolver.group(ip))),
        None => {
            tracing::error!(
                policy = "rate_limit",
                scope = spec.scope,
                outcome = "error",
                "{MISSING_CONNECT_INFO_FIX}"
            );
            Err(ErrorBody::internal_error())
        }
    }
}

/// A claim as text: a string as is, a number in its JSON form; anything
/// else (an object, an array, a boolean, null) counts as missing.
#[cfg(feature = "jwt")]
fn claim_text(claims: &crate::jwt::claims::VerifiedClaims, name: &str) -> Option<String> {
    match claims.get(name)? {
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A header value as a key: as sent when it is short UTF-8, else a digest
/// behind a NUL byte, which no header value can contain.
fn header_key(value: &[u8]) -> Arc<str> {
    match std::str::from_utf8(value) {
        Ok(text) if text.len() <= MAX_PLAIN_HEADER_KEY => Arc::from(text),
        _ => {
            let digest = Sha256::digest(value);
            let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
            Arc::from(format!("\0sha256:{hex}"))
        }
    }
}

/// The `key_kind` log field of a key source.
pub(crate) fn kind(source: &KeySource) -> &'static str {
    match source {
        KeySource::Ip => "ip",
        KeySource::ApiKey => "api_key",
        KeySource::Global => "global",
        KeySource::Header(_) => "header",
        KeySource::Custom(_) => "custom",
        KeySource::Subject => "subject",
        KeySource::Claim(_) => "claim",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_or_binary_header_values_cannot_collide_with_plain_ones() {
        let plain = header_key(b"tenant-7");
        assert_eq!(&*plain, "tenant-7");
        let long = header_key(&[b'a'; 200]);
        assert!(long.starts_with("\0sha256:"));
        let binary = header_key(&[0xff, 0xfe]);
        assert!(binary.starts_with("\0sha256:"));
        assert_ne!(long, binary);
    }
}
