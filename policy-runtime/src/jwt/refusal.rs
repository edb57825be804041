//! The JWT policy's refusals: 401 with `WWW-Authenticate: Bearer` (RFC 6750)
//! and 403 `insufficient_scope`, each a JSON [`ErrorBody`] so every error
//! format applies.

use super::validate::Failure;
use crate::ErrorBody;
use crate::api_key::scope::KeyRequirement;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `Bearer error="invalid_token", error_description="<description>"`. The
/// description is one of [`Failure::description`]'s fixed texts, so it never
/// needs escaping.
pub(crate) fn www_authenticate_invalid(description: &'static str) -> HeaderValue {
    HeaderValue::try_from(format!(
        "Bearer error=\"invalid_token\", error_description=\"{description}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

/// No bearer token: 401 with a bare `WWW-Authenticate: Bearer` (RFC 6750
/// section 3.1: no error code when the request has no credentials).
pub(crate) fn missing() -> Response {
    let mut response = ErrorBody::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "Missing bearer token",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// A token that failed validation: 401 `invalid_token`, saying why.
pub(crate) fn invalid(failure: Failure) -> Response {
    let description = failure.description();
    let mut response =
        ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", description).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        www_authenticate_invalid(description),
    );
    response
}

/// A valid token without the scopes: 403 `insufficient_scope`, with the
/// scopes the endpoint needs (space-separated, as RFC 6750 section 3 has it).
pub(crate) fn insufficient_scope(requirement: &KeyRequirement, missing: &str) -> Response {
    let mut response = ErrorBody::new(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        format!("Forbidden: {missing}"),
    )
    .into_response();
    let scopes = match requirement {
        KeyRequirement::Any => String::new(),
        KeyRequirement::Scope(scope) => (*scope).to_owned(),
        KeyRequirement::AnyOf(scopes) | KeyRequirement::AllOf(scopes) => scopes.join(" "),
    };
    // Scope names are `[A-Za-z0-9_.:-]` (checked where they are written),
    // so the quoted value needs no escaping.
    if let Ok(value) = HeaderValue::try_from(format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scopes}\""
    )) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
