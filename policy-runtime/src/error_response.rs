//! [`ApiError`]: what `#[api_error]` implements for an error enum, and how such
//! an error becomes an [`ErrorBody`] and a response.
//!
//! This module owns the 4xx-shown / 5xx-hidden rule (and its `expose` /
//! `mask` overrides) and the error log event. The wire shape is
//! [`crate::ErrorFormat`]'s; development showing hidden details is the
//! engine layer's.

use crate::{ErrorBody, Severity};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;

/// An error that knows its HTTP status and machine-readable code.
///
/// `#[api_error]` implements it, together with axum's `IntoResponse`, from the
/// `#[api(...)]` attribute on each variant. By default a 4xx response carries
/// the error's `Display` message and a 5xx response only the status's generic
/// reason (the full message and its `source()` chain are shown in development
/// only); either way the error and its source chain are logged, 5xx at error
/// level.
///
/// ```
/// use axum::http::StatusCode;
/// use policy_runtime::{api_error, ApiError, Severity};
///
/// #[api_error]
/// #[derive(Debug, thiserror::Error)]
/// enum AppError {
///     #[error("user {0} not found")]
///     #[api(status = 404, code = "USER_NOT_FOUND")]
///     UserNotFound(u64),
///     #[error("scoring service failed: {0}")]
///     #[api(status = 502, severity = "critical", category = "upstream")]
///     Upstream(String),
/// }
///
/// assert_eq!(AppError::UserNotFound(7).status(), StatusCode::NOT_FOUND);
/// assert_eq!(AppError::UserNotFound(7).code(), "USER_NOT_FOUND");
/// assert!(AppError::UserNotFound(7).exposed());
/// assert_eq!(AppError::Upstream("timeout".into()).code(), "UPSTREAM");
/// assert_eq!(AppError::Upstream("timeout".into()).severity(), Some(Severity::Critical));
/// assert!(!AppError::Upstream("timeout".into()).exposed());
/// ```
pub trait ApiError: std::error::Error {
    /// The HTTP status of this error.
    fn status(&self) -> StatusCode;

    /// The machine-readable code of this error.
    fn code(&self) -> &'static str;

    /// A short summary for the `problem` format's `title`; the status's
    /// reason phrase when `None`.
    fn title(&self) -> Option<&'static str> {
        None
    }

    /// The `detailed` format's `severity`; by status when `None`.
    fn severity(&self) -> Option<Severity> {
        None
    }

    /// The `detailed` format's `category`; by status when `None`.
    fn category(&self) -> Option<&'static str> {
        None
    }

    /// Whether clients outside development see the message, per-field
    /// errors and extension members: by default for 4xx, not for 5xx.
    fn exposed(&self) -> bool {
        !self.status().is_server_error()
    }

    /// Adds this error's per-field errors and extension members to its body.
    fn annotate(&self, body: ErrorBody) -> ErrorBody {
        body
    }

    /// The body of this error's response.
    ///
    /// ```
    /// use policy_runtime::{api_error, ApiError};
    ///
    /// #[api_error]
    /// #[derive(Debug, thiserror::Error)]
    /// enum AppError {
    ///     #[error("database unreachable")]
    ///     #[api(status = 503)]
    ///     Database,
    /// }
    ///
    /// let body = AppError::Database.error_body();
    /// assert_eq!(body.message(), "Service Unavailable");
    /// assert!(body.is_masked());
    /// ```
    fn error_body(&self) -> ErrorBody {
        let status = self.status();
        let body = if self.exposed() {
            ErrorBody::new(status, self.code(), self.to_string())
        } else {
            let generic = status.canonical_reason().unwrap_or("Internal Server Error");
            let sources = SourceChain(self).to_string();
            let detail = if sources.is_empty() {
                self.to_string()
            } else {
                format!("{self}: {sources}")
            };
            ErrorBody::new(status, self.code(), generic).with_hidden_detail(detail)
        };
        let body = match self.title() {
            Some(title) => body.with_title(title),
            None => body,
        };
        let body = match self.severity() {
            Some(severity) => body.with_severity(severity),
            None => body,
        };
        let body = match self.category() {
            Some(category) => body.with_category(category),
            None => body,
        };
        self.annotate(body)
    }
}

/// The response for an `#[api_error]` value: the rule every generated
/// `IntoResponse` impl calls. The request id is on the event through the
/// request's span (see [`crate::RequestLayer`]).
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
    } else {
        tracing::debug!(status = status.as_u16(), code, error = %error, sources = %SourceChain(error), "request refused");
    }
    error.error_body().into_response()
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
