//! [`ErrorBody`]: the one error value every rejection and every
//! `#[api_error]` response is built from, and its default JSON shape.
//!
//! This module owns what an error says (status, code, message, and the
//! optional title, severity, category, per-field errors, extension members
//! and the detail hidden from clients) and the default wire format,
//! `{"error": "...", "code": "..."}`. Policies decide *when* to reject and
//! add their own headers; they never build a JSON body by hand. The other
//! wire formats are [`crate::error_format`]'s; the engine layer re-renders a
//! response in them because [`ErrorBody::into_response`] keeps the body in
//! the response's extensions.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// An error response: a status, a machine-readable code and a message, in the
/// engine's error format (by default `{"error": "<message>", "code": "<CODE>"}`).
///
/// `error` is a human-readable message and `code` a stable, machine-readable
/// identifier such as `RATE_LIMITED` or `UNAUTHORIZED`. Policy rejections,
/// extractor rejections and `#[api_error]` enums render through this type, so
/// a client sees one shape for every failure. The optional parts (title,
/// severity, category, per-field errors, extension members) appear in the
/// formats that have a place for them; see [`crate::ErrorFormat`].
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorBody {
    status: StatusCode,
    error: Cow<'static, str>,
    code: Cow<'static, str>,
    /// Boxed so that the common body (status, code, message) stays small and
    /// costs no allocation for parts it does not have.
    extra: Option<Box<Extra>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Extra {
    title: Option<Cow<'static, str>>,
    severity: Option<Severity>,
    category: Option<Cow<'static, str>>,
    errors: Vec<FieldError>,
    extensions: serde_json::Map<String, serde_json::Value>,
    hidden_detail: Option<String>,
}

/// How serious an error is, for the `detailed` format's `severity`.
///
/// By default 5xx errors are [`Severity::High`] and 4xx errors
/// [`Severity::Medium`].
///
/// ```
/// use policy_runtime::Severity;
///
/// assert_eq!(Severity::Critical.as_str(), "critical");
/// assert_eq!("low".parse::<Severity>(), Ok(Severity::Low));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Expected and harmless, such as a lookup of something absent.
    Low,
    /// The client must change its request.
    Medium,
    /// The service failed.
    High,
    /// The service failed in a way someone must look at now.
    Critical,
}

impl Severity {
    /// The name as it appears in a body: `low`, `medium`, `high` or `critical`.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Severity::High.as_str(), "high");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "`{text}` is not a severity; use low, medium, high or critical"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request, as in a validation error.
///
/// Shown as `{"field", "message", "code"}` in the `compact` and `detailed`
/// formats and as `{"detail", "pointer"}` (a JSON pointer such as
/// `/address/city` for the field `address.city`) in the `problem` format.
///
/// ```
/// use policy_runtime::FieldError;
///
/// let error = FieldError::new("email", "value_error.email", "not a valid email address");
/// assert_eq!(error.field(), "email");
/// assert_eq!(error.pointer(), "/email");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FieldError {
    field: Cow<'static, str>,
    message: Cow<'static, str>,
    code: Cow<'static, str>,
}

impl FieldError {
    /// A problem with `field` (dotted for nested fields, as in `address.city`):
    /// a machine-readable `code` and a message.
    ///
    /// ```
    /// let error = policy_runtime::FieldError::new("age", "range", "must be at least 18");
    /// assert_eq!(error.message(), "must be at least 18");
    /// ```
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: code.into(),
        }
    }

    /// The field, dotted for nested fields.
    ///
    /// ```
    /// assert_eq!(policy_runtime::FieldError::new("a.b", "x", "y").field(), "a.b");
    /// ```
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The machine-readable code.
    ///
    /// ```
    /// assert_eq!(policy_runtime::FieldError::new("a", "required", "y").code(), "required");
    /// ```
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message.
    ///
    /// ```
    /// assert_eq!(policy_runtime::FieldError::new("a", "x", "is required").message(), "is required");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field as a JSON pointer (RFC 6901) into the request body:
    /// `address.city` is `/address/city`, `items[2]` is `/items/2`.
    ///
    /// ```
    /// use policy_runtime::FieldError;
    ///
    /// assert_eq!(FieldError::new("items[2].sku", "x", "y").pointer(), "/items/2/sku");
    /// assert_eq!(FieldError::new("", "x", "y").pointer(), "");
    /// ```
    pub fn pointer(&self) -> String {
        let mut pointer = String::with_capacity(self.field.len() + 1);
        for segment in self
            .field
            .split(['.', '['])
            .map(|segment| segment.trim_end_matches(']'))
            .filter(|segment| !segment.is_empty())
        {
            pointer.push('/');
            // RFC 6901 escapes: `~` as `~0`, `/` as `~1`.
            pointer.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        pointer
    }
}

/// Member names the formats use themselves; an extension member cannot take one.
pub(crate) use policy_grammar::reserved_members::RESERVED_MEMBERS;

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
            extra: None,
        }
    }

    /// The 500 sent when the policies themselves cannot decide (a
    /// configuration or deployment fault, logged where it is found).
    pub(crate) fn internal_error() -> Response {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal Server Error",
        )
        .into_response()
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Sets a short summary for the `problem` format's `title` (by default
    /// the status's reason phrase). Ignored when the problem `type` is
    /// `about:blank`, where RFC 9457 wants the reason phrase.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::PAYMENT_REQUIRED, "OUT_OF_CREDIT", "you have 0 credits")
    ///     .with_title("You do not have enough credit");
    /// assert_eq!(body.title(), Some("You do not have enough credit"));
    /// ```
    #[must_use]
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.extra().title = Some(title.into());
        self
    }

    /// Sets the `detailed` format's `severity`.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, Severity};
    ///
    /// let body = ErrorBody::new(StatusCode::BAD_GATEWAY, "UPSTREAM", "Bad Gateway")
    ///     .with_severity(Severity::Critical);
    /// assert_eq!(body.severity(), Severity::Critical);
    /// ```
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.extra().severity = Some(severity);
        self
    }

    /// Sets the `detailed` format's `category`, such as `validation`.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::CONFLICT, "TAKEN", "name taken").with_category("business");
    /// assert_eq!(body.category(), "business");
    /// ```
    #[must_use]
    pub fn with_category(mut self, category: impl Into<Cow<'static, str>>) -> Self {
        self.extra().category = Some(category.into());
        self
    }

    /// Adds a problem with one field of the request.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, FieldError};
    ///
    /// let body = ErrorBody::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", "invalid input")
    ///     .with_field_error(FieldError::new("email", "value_error.email", "not an email address"));
    /// assert_eq!(
    ///     body.to_json(),
    ///     r#"{"error":"invalid input","code":"VALIDATION_ERROR","details":[{"field":"email","message":"not an email address","code":"value_error.email"}]}"#
    /// );
    /// ```
    #[must_use]
    pub fn with_field_error(mut self, error: FieldError) -> Self {
        self.extra().errors.push(error);
        self
    }

    /// Adds several problems with fields of the request.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, FieldError};
    ///
    /// let body = ErrorBody::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "invalid input")
    ///     .with_field_errors([FieldError::new("a", "required", "a is required"), FieldError::new("b", "required", "b is required")]);
    /// assert_eq!(body.field_errors().len(), 2);
    /// ```
    #[must_use]
    pub fn with_field_errors(mut self, errors: impl IntoIterator<Item = FieldError>) -> Self {
        let mut errors = errors.into_iter().peekable();
        if errors.peek().is_some() {
            self.extra().errors.extend(errors);
        }
        self
    }

    /// Adds an extension member: `name` with `value` as JSON, a top-level
    /// member in the `problem` and `detailed` formats. Names the formats use
    /// themselves (`type`, `code`, `message`, `details`, ...) and values that
    /// do not serialise are left out, with a warning in the log.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::PAYMENT_REQUIRED, "OUT_OF_CREDIT", "no credit left")
    ///     .with_extension("balance", 30)
    ///     .with_extension("accounts", ["/account/12345"]);
    /// assert_eq!(body.extensions()["balance"], 30);
    /// ```
    #[must_use]
    pub fn with_extension(mut self, name: &str, value: impl Serialize) -> Self {
        if RESERVED_MEMBERS.contains(&name) {
            tracing::warn!(
                member = name,
                "an error's extension member uses a reserved name and is left out"
            );
            return self;
        }
        match serde_json::to_value(value) {
            Ok(value) => {
                self.extra().extensions.insert(name.to_owned(), value);
            }
            Err(error) => {
                tracing::warn!(member = name, %error, "an error's extension member does not serialise and is left out");
            }
        }
        self
    }

    /// Hides the message from clients: `detail` (say, the full error with its
    /// sources) is shown instead of the message in development only, and in
    /// staging and production the body carries only the message given to
    /// [`ErrorBody::new`], with no per-field errors or extension members.
    /// `#[api_error]` does this for 5xx variants.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::INTERNAL_SERVER_ERROR, "DB", "Internal Server Error")
    ///     .with_hidden_detail("connection to db:5432 refused");
    /// assert!(body.is_masked());
    /// assert_eq!(body.to_json(), r#"{"error":"Internal Server Error","code":"DB"}"#);
    /// ```
    #[must_use]
    pub fn with_hidden_detail(mut self, detail: impl Into<String>) -> Self {
        self.extra().hidden_detail = Some(detail.into());
        self
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

    /// The human-readable message, as clients outside development see it.
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

    /// The title set with [`ErrorBody::with_title`].
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::GONE, "GONE", "moved").title(), None);
    /// ```
    pub fn title(&self) -> Option<&str> {
        self.extra.as_ref()?.title.as_deref()
    }

    /// The severity: as set, or `high` for 5xx and `medium` for 4xx.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::{ErrorBody, Severity};
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::BAD_GATEWAY, "UPSTREAM", "x").severity(), Severity::High);
    /// ```
    pub fn severity(&self) -> Severity {
        match self.extra.as_ref().and_then(|extra| extra.severity) {
            Some(severity) => severity,
            None if self.status.is_server_error() => Severity::High,
            None => Severity::Medium,
        }
    }

    /// The category: as set, or one named after the status (`validation`
    /// for 400 and 422, `authentication` for 401, `authorization` for 403,
    /// `not_found`, `conflict`, `rate_limit` for 429, `unavailable` for 503,
    /// else `client` or `server`).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert_eq!(ErrorBody::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "x").category(), "rate_limit");
    /// ```
    pub fn category(&self) -> &str {
        if let Some(category) = self.extra.as_ref().and_then(|e| e.category.as_deref()) {
            return category;
        }
        match self.status.as_u16() {
            400 | 413 | 415 | 422 => "validation",
            401 => "authentication",
            403 => "authorization",
            404 => "not_found",
            409 => "conflict",
            429 => "rate_limit",
            503 => "unavailable",
            500..=599 => "server",
            _ => "client",
        }
    }

    /// The problems with fields of the request.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert!(ErrorBody::new(StatusCode::GONE, "GONE", "moved").field_errors().is_empty());
    /// ```
    pub fn field_errors(&self) -> &[FieldError] {
        match &self.extra {
            Some(extra) => &extra.errors,
            None => &[],
        }
    }

    /// The extension members, by name.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let body = ErrorBody::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no user").with_extension("user_id", 7);
    /// assert_eq!(body.extensions().len(), 1);
    /// ```
    pub fn extensions(&self) -> &serde_json::Map<String, serde_json::Value> {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
            std::sync::OnceLock::new();
        match &self.extra {
            Some(extra) => &extra.extensions,
            None => EMPTY.get_or_init(serde_json::Map::new),
        }
    }

    /// Whether the message is hidden from clients outside development (see
    /// [`ErrorBody::with_hidden_detail`]).
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// assert!(!ErrorBody::new(StatusCode::GONE, "GONE", "moved").is_masked());
    /// ```
    pub fn is_masked(&self) -> bool {
        self.hidden_detail().is_some()
    }

    /// Drops the per-field errors, for an engine that hides them.
    pub(crate) fn clear_field_errors(&mut self) {
        if let Some(extra) = self.extra.as_mut() {
            extra.errors.clear();
        }
    }

    pub(crate) fn hidden_detail(&self) -> Option<&str> {
        self.extra.as_ref()?.hidden_detail.as_deref()
    }

    /// The body in the default (`compact`) format as a JSON string:
    /// `{"error": "...", "code": "..."}`, with `details` when it has per-field
    /// errors. Hidden details are never in it.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use policy_runtime::ErrorBody;
    ///
    /// let json = ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "missing API key").to_json();
    /// assert_eq!(json, r#"{"error":"missing API key","code":"UNAUTHORIZED"}"#);
    /// ```
    pub fn to_json(&self) -> String {
        // Strings and a list of strings cannot fail to serialise.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The default (`compact`) format; see [`ErrorBody::to_json`].
impl Serialize for ErrorBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let errors = self.field_errors();
        let show_errors = !errors.is_empty() && !self.is_masked();
        let mut map = serializer.serialize_map(Some(2 + usize::from(show_errors)))?;
        map.serialize_entry("error", &self.error)?;
        map.serialize_entry("code", &self.code)?;
        if show_errors {
            map.serialize_entry("details", errors)?;
        }
        map.end()
    }
}

/// The body a response was rendered from, kept in its extensions so that the
/// engine layer can render it again in the engine's format.
#[derive(Clone, Debug)]
pub(crate) struct RenderedError(pub(crate) ErrorBody);

impl IntoResponse for ErrorBody {
    /// The response in the default format, `application/json`. Behind an
    /// engine (`router.layer(engine)`), it is rendered again in the engine's
    /// [`crate::ErrorFormat`] on its way out.
    fn into_response(self) -> Response {
        let json = self.to_json();
        self.respond(Body::from(json), HeaderMap::new())
    }
}

impl ErrorBody {
    /// The response of this body, whose default rendering ([`ErrorBody::to_json`])
    /// is `json`, with `headers` and the JSON content type.
    pub(crate) fn respond(self, json: Body, mut headers: HeaderMap) -> Response {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let mut response = Response::new(json);
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response.extensions_mut().insert(RenderedError(self));
        response
    }
}
