//! The JWT policy's refusals: 401 with `WWW-Authenticate: Bearer` (RFC 6750)
//! and 403 `insufficient_scope`, each a JSON [`ErrorBody`] so every error
//! format applies.

use axum::http::HeaderValue;

/// `Bearer error="invalid_token", error_description="<description>"`. The
/// description is one of this module's fixed texts, so it never needs
/// escaping.
pub(crate) fn www_authenticate_invalid(description: &'static str) -> HeaderValue {
    HeaderValue::try_from(format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}
