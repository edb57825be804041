//! [`ErrorFormat`]: the wire shapes an [`ErrorBody`] can take, chosen once on
//! the engine, and [`ErrorView`], an error as one client may see it.
//!
//! This module owns the formats (`compact`, `simple`, `detailed`, `problem`
//! and custom ones through [`ErrorRenderer`]) and the masking rule: a masked
//! error shows its hidden detail, per-field errors and extension members in
//! development only. It never decides when to reject, and it never reads a
//! request: the engine layer ([`crate::layer`]) hands it the request id, the
//! path and the environment.

use crate::error_body::{FieldError, Severity};
use crate::{Environment, ErrorBody};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// The shape of every error response of an engine: `#[api_error]` errors,
/// policy rejections (401, 403, 429, 503, 400, 500) and extractor rejections.
/// Set with [`EngineBuilder::error_format`](crate::EngineBuilder::error_format).
///
/// | format | body | content type |
/// | --- | --- | --- |
/// | `Compact` (default) | `{"error": "<message>", "code": "<CODE>"}`, plus `details` when there are per-field errors | `application/json` |
/// | `Simple` | `{"error": "<message>"}` | `application/json` |
/// | `Detailed` | `{"error": true, "error_code", "message", "details": [{"field", "message", "code"}], "timestamp", "request_id", "severity", "category"}` and extension members | `application/json` |
/// | `Problem` | RFC 9457: `type`, `title`, `status`, `detail`, `instance`, and `code`, `request_id`, `errors: [{"detail", "pointer"}]` and extension members | `application/problem+json` |
/// | `Custom` | what an [`ErrorRenderer`] makes | the renderer's |
///
/// ```
/// use policy_runtime::{Engine, ErrorFormat};
///
/// let engine = Engine::builder()
///     .error_format(ErrorFormat::problem_with_type_base("https://errors.example.com/"))
///     .build()
///     .unwrap();
/// assert_eq!(engine.error_format().content_type(), "application/problem+json");
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ErrorFormat {
    /// `{"error": "<message>", "code": "<CODE>"}`: the default, unchanged
    /// from earlier releases.
    #[default]
    Compact,
    /// `{"error": "<message>"}`, as Flask backends answer.
    Simple,
    /// `{"error": true, "error_code": ..., "message": ..., "details": [...],
    /// "timestamp": ..., "request_id": ..., "severity": ..., "category": ...}`,
    /// as FastAPI services answer.
    Detailed,
    /// RFC 9457 problem details, as `application/problem+json`.
    Problem {
        /// The base URI the code is appended to for `type`; `about:blank`
        /// when `None`.
        type_base: Option<Cow<'static, str>>,
    },
    /// A team's own envelope.
    Custom(Arc<dyn ErrorRenderer>),
}

/// A custom error envelope, for [`ErrorFormat::custom`].
///
/// The renderer sees the error as the client may see it: in staging and
/// production a masked error's hidden detail, per-field errors and extension
/// members are already gone from the [`ErrorView`].
///
/// ```
/// use policy_runtime::{Engine, ErrorFormat, ErrorRenderer, ErrorView};
///
/// struct Envelope;
///
/// impl ErrorRenderer for Envelope {
///     fn render(&self, error: &ErrorView<'_>) -> serde_json::Value {
///         serde_json::json!({
///             "ok": false,
///             "failure": { "kind": error.code(), "text": error.message() },
///             "trace": error.request_id(),
///         })
///     }
/// }
///
/// let format = ErrorFormat::custom(Envelope);
/// let body = policy_runtime::ErrorBody::new(axum::http::StatusCode::NOT_FOUND, "NO_USER", "no user 7");
/// assert_eq!(
///     format.render(&ErrorView::new(&body).with_request_id(Some("req-1"))),
///     r#"{"failure":{"kind":"NO_USER","text":"no user 7"},"ok":false,"trace":"req-1"}"#
/// );
/// let engine = Engine::builder().error_format(format).build().unwrap();
/// assert_eq!(engine.error_format().content_type(), "application/json");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an error renderer",
    note = "implement `policy_runtime::ErrorRenderer` for it: `fn render(&self, error: &ErrorView<'_>) -> serde_json::Value`"
)]
pub trait ErrorRenderer: Send + Sync + 'static {
    /// The body of one error response.
    fn render(&self, error: &ErrorView<'_>) -> serde_json::Value;

    /// The `content-type` of the body; `application/json` by default.
    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

impl ErrorFormat {
    /// RFC 9457 problem details with `type` `about:blank`.
    ///
    /// ```
    /// let format = policy_runtime::ErrorFormat::problem();
    /// assert_eq!(format.content_type(), "application/problem+json");
    /// ```
    pub fn problem() -> Self {
        ErrorFormat::Problem { type_base: None }
    }

    /// RFC 9457 problem details whose `type` is `base` followed by the
    /// error's code, as `https://errors.example.com/RATE_LIMITED`.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorFormat, ErrorView};
    ///
    /// let format = ErrorFormat::problem_with_type_base("https://errors.example.com/");
    /// let body = ErrorBody::new(StatusCode::NOT_FOUND, "NO_USER", "no user 7");
    /// let json: serde_json::Value = serde_json::from_str(&format.render(&ErrorView::new(&body))).unwrap();
    /// assert_eq!(json["type"], "https://errors.example.com/NO_USER");
    /// ```
    pub fn problem_with_type_base(base: impl Into<Cow<'static, str>>) -> Self {
        ErrorFormat::Problem {
            type_base: Some(base.into()),
        }
    }

    /// A custom envelope; see [`ErrorRenderer`].
    ///
    /// ```
    /// use policy_runtime::{ErrorFormat, ErrorRenderer, ErrorView};
    ///
    /// struct CodeOnly;
    /// impl ErrorRenderer for CodeOnly {
    ///     fn render(&self, error: &ErrorView<'_>) -> serde_json::Value {
    ///         serde_json::json!({ "code": error.code() })
    ///     }
    /// }
    /// let format = ErrorFormat::custom(CodeOnly);
    /// let body = policy_runtime::ErrorBody::new(axum::http::StatusCode::NOT_FOUND, "NO_USER", "no user 7");
    /// assert_eq!(format.render(&ErrorView::new(&body)), r#"{"code":"NO_USER"}"#);
    /// ```
    pub fn custom(renderer: impl ErrorRenderer) -> Self {
        ErrorFormat::Custom(Arc::new(renderer))
    }

    /// The `content-type` of bodies in this format.
    ///
    /// ```
    /// assert_eq!(policy_runtime::ErrorFormat::Detailed.content_type(), "application/json");
    /// ```
    pub fn content_type(&self) -> &'static str {
        match self {
            ErrorFormat::Problem { .. } => "application/problem+json",
            ErrorFormat::Custom(renderer) => renderer.content_type(),
            _ => "application/json",
        }
    }

    /// The body of one error response in this format.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorFormat, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Missing API key");
    /// assert_eq!(ErrorFormat::Simple.render(&ErrorView::new(&body)), r#"{"error":"Missing API key"}"#);
    /// ```
    pub fn render(&self, error: &ErrorView<'_>) -> String {
        let json = match self {
            ErrorFormat::Compact => serde_json::to_string(&Compact::of(error)),
            ErrorFormat::Simple => serde_json::to_string(&Simple {
                error: error.message(),
            }),
            ErrorFormat::Detailed => serde_json::to_string(&Detailed::of(error)),
            ErrorFormat::Problem { type_base } => {
                serde_json::to_string(&Problem::of(error, type_base.as_deref()))
            }
            ErrorFormat::Custom(renderer) => serde_json::to_string(&renderer.render(error)),
        };
        // Strings, numbers and JSON values cannot fail to serialise.
        json.unwrap_or_default()
    }

    /// Whether a response already in the default format must be rendered
    /// again for this format, or for the environment.
    pub(crate) fn rewrites(&self, environment: Environment) -> bool {
        !matches!(self, ErrorFormat::Compact) || environment.exposes_server_errors()
    }
}

impl fmt::Debug for ErrorFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorFormat::Compact => f.write_str("Compact"),
            ErrorFormat::Simple => f.write_str("Simple"),
            ErrorFormat::Detailed => f.write_str("Detailed"),
            ErrorFormat::Problem { type_base } => f
                .debug_struct("Problem")
                .field("type_base", type_base)
                .finish(),
            ErrorFormat::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// An error as one client may see it: the [`ErrorBody`], masked or not for
/// the environment, with the request's id, path and time.
///
/// ```
/// use axum::http::StatusCode;
/// use policy_runtime::{Environment, ErrorBody, ErrorView};
///
/// let body = ErrorBody::new(StatusCode::INTERNAL_SERVER_ERROR, "DB", "Internal Server Error")
///     .with_hidden_detail("connection refused");
/// assert_eq!(ErrorView::new(&body).message(), "Internal Server Error");
/// let dev = ErrorView::new(&body).with_environment(Environment::Development);
/// assert_eq!(dev.message(), "connection refused");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ErrorView<'a> {
    body: &'a ErrorBody,
    environment: Environment,
    request_id: Option<&'a str>,
    instance: Option<&'a str>,
    timestamp: SystemTime,
}

impl<'a> ErrorView<'a> {
    /// The error as a production client sees it, now, with no request id.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).request_id(), None);
    /// ```
    pub fn new(body: &'a ErrorBody) -> Self {
        ErrorView {
            body,
            environment: Environment::Production,
            request_id: None,
            instance: None,
            timestamp: SystemTime::now(),
        }
    }

    /// In this environment: development shows what a masked error hides.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{Environment, ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// let view = ErrorView::new(&body).with_environment(Environment::Staging);
    /// assert_eq!(view.environment(), Environment::Staging);
    /// ```
    #[must_use]
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// For the request with this id.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).with_request_id(Some("req-1")).request_id(), Some("req-1"));
    /// ```
    #[must_use]
    pub fn with_request_id(mut self, request_id: Option<&'a str>) -> Self {
        self.request_id = request_id;
        self
    }

    /// For the request to this path (the `problem` format's `instance`).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).with_instance(Some("/users/7")).instance(), Some("/users/7"));
    /// ```
    #[must_use]
    pub fn with_instance(mut self, instance: Option<&'a str>) -> Self {
        self.instance = instance;
        self
    }

    /// At this time (the `detailed` format's `timestamp`).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// let view = ErrorView::new(&body).with_timestamp(UNIX_EPOCH + Duration::from_secs(86_400));
    /// assert_eq!(view.timestamp_rfc3339(), "1970-01-02T00:00:00Z");
    /// ```
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Whether what a masked error hides is shown: in development only.
    fn reveals(&self) -> bool {
        !self.body.is_masked() || self.environment.exposes_server_errors()
    }

    /// The error itself, with everything it holds; render only what the
    /// other methods return.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).body().code(), "GONE");
    /// ```
    pub fn body(&self) -> &'a ErrorBody {
        self.body
    }

    /// The HTTP status.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).status(), StatusCode::GONE);
    /// ```
    pub fn status(&self) -> axum::http::StatusCode {
        self.body.status()
    }

    /// The machine-readable code.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).code(), "GONE");
    /// ```
    pub fn code(&self) -> &'a str {
        self.body.code()
    }

    /// The message to show: a masked error's hidden detail in development,
    /// else the message.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).message(), "moved");
    /// ```
    pub fn message(&self) -> &'a str {
        match self.body.hidden_detail() {
            Some(detail) if self.environment.exposes_server_errors() => detail,
            _ => self.body.message(),
        }
    }

    /// The title: as set on the error, else the status's reason phrase.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "slow down");
    /// assert_eq!(ErrorView::new(&body).title(), "Too Many Requests");
    /// ```
    pub fn title(&self) -> &'a str {
        self.body.title().unwrap_or_else(|| self.reason())
    }

    fn reason(&self) -> &'static str {
        self.status().canonical_reason().unwrap_or("Error")
    }

    /// The severity (see [`ErrorBody::severity`]).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView, Severity};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).severity(), Severity::Medium);
    /// ```
    pub fn severity(&self) -> Severity {
        self.body.severity()
    }

    /// The category (see [`ErrorBody::category`]).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "no key");
    /// assert_eq!(ErrorView::new(&body).category(), "authentication");
    /// ```
    pub fn category(&self) -> &'a str {
        self.body.category()
    }

    /// The per-field errors to show: none for a masked error outside development.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView, FieldError};
    ///
    /// let body = ErrorBody::new(StatusCode::BAD_REQUEST, "INVALID", "invalid")
    ///     .with_field_error(FieldError::new("name", "required", "name is required"));
    /// assert_eq!(ErrorView::new(&body).field_errors().len(), 1);
    /// ```
    pub fn field_errors(&self) -> &'a [FieldError] {
        if self.reveals() {
            self.body.field_errors()
        } else {
            &[]
        }
    }

    /// The extension members to show: none for a masked error outside development.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::INTERNAL_SERVER_ERROR, "DB", "Internal Server Error")
    ///     .with_extension("shard", 3)
    ///     .with_hidden_detail("shard 3 is down");
    /// assert!(ErrorView::new(&body).extensions().is_empty());
    /// ```
    pub fn extensions(&self) -> &'a serde_json::Map<String, serde_json::Value> {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
            std::sync::OnceLock::new();
        if self.reveals() {
            self.body.extensions()
        } else {
            EMPTY.get_or_init(serde_json::Map::new)
        }
    }

    /// The request's id, when known.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert!(ErrorView::new(&body).request_id().is_none());
    /// ```
    pub fn request_id(&self) -> Option<&'a str> {
        self.request_id
    }

    /// The request's path, when known.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert!(ErrorView::new(&body).instance().is_none());
    /// ```
    pub fn instance(&self) -> Option<&'a str> {
        self.instance
    }

    /// The environment the error is shown in.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{Environment, ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert_eq!(ErrorView::new(&body).environment(), Environment::Production);
    /// ```
    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// When the error happened.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert!(ErrorView::new(&body).timestamp() <= std::time::SystemTime::now());
    /// ```
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// When the error happened, as RFC 3339 UTC to the second, such as
    /// `2027-01-01T12:00:00Z`.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, ErrorView};
    ///
    /// let body = ErrorBody::new(StatusCode::GONE, "GONE", "moved");
    /// assert!(ErrorView::new(&body).timestamp_rfc3339().ends_with('Z'));
    /// ```
    pub fn timestamp_rfc3339(&self) -> String {
        crate::timestamp::format(self.timestamp)
    }
}

#[derive(Serialize)]
struct Compact<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [FieldError],
}

impl<'a> Compact<'a> {
    fn of(error: &ErrorView<'a>) -> Self {
        Compact {
            error: error.message(),
            code: error.code(),
            details: error.field_errors(),
        }
    }
}

#[derive(Serialize)]
struct Simple<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct Detailed<'a> {
    error: bool,
    error_code: &'a str,
    message: &'a str,
    details: &'a [FieldError],
    timestamp: String,
    request_id: Option<&'a str>,
    severity: &'static str,
    category: &'a str,
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl<'a> Detailed<'a> {
    fn of(error: &ErrorView<'a>) -> Self {
        Detailed {
            error: true,
            error_code: error.code(),
            message: error.message(),
            details: error.field_errors(),
            timestamp: error.timestamp_rfc3339(),
            request_id: error.request_id(),
            severity: error.severity().as_str(),
            category: error.category(),
            extensions: error.extensions(),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ProblemError<'a>>,
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

/// One per-field error as RFC 9457's example has them.
#[derive(Serialize)]
struct ProblemError<'a> {
    detail: &'a str,
    pointer: String,
}

impl<'a> Problem<'a> {
    fn of(error: &ErrorView<'a>, type_base: Option<&'a str>) -> Self {
        let (kind, title) = match type_base {
            Some(base) => (Cow::Owned(format!("{base}{}", error.code())), error.title()),
            // RFC 9457 4.2.1: with `about:blank` the title is the reason phrase.
            None => (Cow::Borrowed("about:blank"), error.reason()),
        };
        Problem {
            kind,
            title,
            status: error.status().as_u16(),
            detail: error.message(),
            instance: error.instance(),
            code: error.code(),
            request_id: error.request_id(),
            errors: error
                .field_errors()
                .iter()
                .map(|field| ProblemError {
                    detail: field.message(),
                    pointer: format!("#{}", field.pointer()),
                })
                .collect(),
            extensions: error.extensions(),
        }
    }
}
