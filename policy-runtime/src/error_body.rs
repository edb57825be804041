//! [`ErrorBody`]: the one JSON error shape every rejection and every
//! `#[api_error]` response uses.
//!
//! This module owns the wire format only. Policies decide *when* to reject and
//! add their own headers; they never build a JSON body by hand.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;

/// A JSON error response: `{"error": "<message>", "code": "<CODE>"}` with a status.
///
/// `error` is a human-readable message and `code` a stable, machine-readable
/// identifier such as `RATE_LIMITED` or `UNAUTHORIZED`. Policy rejections and
/// `#[api_error]` enums render through this type, so a client sees one shape
/// for every failure.
///
/// ```
/// use axum::http::StatusCode;
/// use axum::response::IntoResponse;
/// use policy_runtime::ErrorBody;
///
/// let response = ErrorBody::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such user").into_response();
/// assert_eq!(response.status(), StatusCode::NOT_FOUND);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    #[serde(skip)]
    status: StatusCode,
    error: Cow<'static, str>,
    code: Cow<'static, str>,
}

impl ErrorBody {
    /// An error body with a status, a machine-readable code and a message.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "email is required");
    /// assert_eq!(body.to_json(), r#"{"error":"email is required","code":"VALIDATION_ERROR"}"#);
    /// ```
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error: message.into(),
            code: code.into(),
        }
    }

    /// The HTTP status of the response.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::FORBIDDEN, "FORBIDDEN", "no").status(), StatusCode::FORBIDDEN);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::GONE, "GONE", "moved").code(), "GONE");
    /// ```
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::GONE, "GONE", "moved").message(), "moved");
    /// ```
    pub fn message(&self) -> &str {
        &self.error
    }

    /// The body as a JSON string.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let json = ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing API key").to_json();
    /// assert_eq!(json, r#"{"error":"missing API key","code":"UNAUTHORIZED"}"#);
    /// ```
    pub fn to_json(&self) -> String {
        // Two string fields cannot fail to serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl IntoResponse for ErrorBody {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.to_json()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
