//! [`ApiError`]: what `#[api_error]` implements for an error enum, and how such
//! an error becomes a response.
//!
//! This module owns the 4xx-shown / 5xx-hidden rule and the error log event.
//! The JSON shape itself is [`crate::ErrorBody`]'s.

use crate::ErrorBody;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;

/// An error that knows its HTTP status and machine-readable code.
///
/// `#[api_error]` implements it, together with axum's `IntoResponse`, from the
/// `#[api(status = ..., code = "...")]` attribute on each variant. A 4xx
/// response carries the error's `Display` message; a 5xx response carries only
/// the status's generic reason, while the full error and its `source()` chain
/// are logged at error level.
///
/// ```
/// use axum::http::StatusCode;
/// use policy_runtime::{api_error, ApiError};
///
/// #[api_error]
/// #[derive(Debug, thiserror::Error)]
/// enum AppError {
///     #[error("user {0} not found")]
///     #[api(status = 404, code = "USER_NOT_FOUND")]
///     UserNotFound(u64),
///     #[error("scoring service failed: {0}")]
///     #[api(status = 502)]
///     Upstream(String),
/// }
///
/// assert_eq!(AppError::UserNotFound(7).status(), StatusCode::NOT_FOUND);
/// assert_eq!(AppError::UserNotFound(7).code(), "USER_NOT_FOUND");
/// assert_eq!(AppError::Upstream("timeout".into()).code(), "UPSTREAM");
/// ```
pub trait ApiError: std::error::Error {
    /// The HTTP status of this error.
    fn status(&self) -> StatusCode;
    /// The machine-readable code of this error.
    fn code(&self) -> &'static str;
}

/// The response for an `#[api_error]` value: the rule every generated
/// `IntoResponse` impl calls.
pub(crate) fn respond<E: ApiError + ?Sized>(error: &E) -> Response {
    let status = error.status();
    let code = error.code();
    if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            code,
            error = %error,
            sources = %SourceChain(error),
            "request failed"
        );
        let generic = status.canonical_reason().unwrap_or("Internal Server Error");
        ErrorBody::new(status, code, generic).into_response()
    } else {
        tracing::debug!(status = status.as_u16(), code, error = %error, "request refused");
        ErrorBody::new(status, code, error.to_string()).into_response()
    }
}

/// Formats an error's `source()` chain as `cause: cause of cause: ...`.
struct SourceChain<'a, E: ?Sized>(&'a E);

impl<E: std::error::Error + ?Sized> std::fmt::Display for SourceChain<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut next = self.0.source();
        let mut first = true;
        while let Some(source) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{source}")?;
            first = false;
            next = source.source();
        }
        Ok(())
    }
}
