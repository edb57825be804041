//! The error responses and headers the policies add to an operation: the
//! schema of the engine's error format, examples rendered by that format
//! from the bodies the policies answer with, and the rate-limit headers of
//! the engine's [`HeaderStyle`].

use crate::{Environment, ErrorBody, ErrorFormat, ErrorView, HeaderStyle};
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};
use utoipa::openapi::RefOr;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Ref, Schema};

/// The name of the error schema in `components.schemas`.
pub(crate) const ERROR_SCHEMA: &str = "PolicyError";

/// The time the examples of the `detailed` format show, so that a document
/// is the same every time it is made: 2026-01-01T00:00:00Z.
const EXAMPLE_TIME: Duration = Duration::from_secs(1_767_225_600);

/// The JSON Schema of `format`'s error bodies.
pub(crate) fn error_schema(format: &ErrorFormat) -> Schema {
    let field_errors = json!({
        "type": "array",
        "description": "The per-field errors of a validation error.",
        "items": {
            "type": "object",
            "required": ["field", "message", "code"],
            "properties": {
                "field": {"type": "string", "description": "The field, dotted for nested fields."},
                "message": {"type": "string"},
                "code": {"type": "string"}
            }
        }
    });
    let schema = match format {
        ErrorFormat::Compact => json!({
            "type": "object",
            "description": "An error: `{\"error\": \"<message>\", \"code\": \"<CODE>\"}`.",
            "required": ["error", "code"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, for people."},
                "code": {"type": "string", "description": "A stable, machine-readable code, such as `RATE_LIMITED`."},
                "details": field_errors
            }
        }),
        ErrorFormat::Simple => json!({
            "type": "object",
            "description": "An error: `{\"error\": \"<message>\"}`.",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "description": "What went wrong, for people."}
            }
        }),
        ErrorFormat::Detailed => json!({
            "type": "object",
            "description": "An error, with its code, severity, category and time; extension members may follow.",
            "required": ["error", "error_code", "message", "details", "timestamp", "request_id", "severity", "category"],
            "properties": {
                "error": {"type": "boolean", "description": "Always `true`."},
                "error_code": {"type": "string", "description": "A stable, machine-readable code, such as `RATE_LIMITED`."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "details": field_errors,
                "timestamp": {"type": "string", "format": "date-time"},
                "request_id": {"type": ["string", "null"]},
                "severity": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
                "category": {"type": "string"}
            }
        }),
        ErrorFormat::Problem { .. } => json!({
            "type": "object",
            "description": "RFC 9457 problem details; extension members may follow.",
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {
                "type": {"type": "string", "format": "uri-reference"},
                "title": {"type": "string"},
                "status": {"type": "integer", "format": "int32"},
                "detail": {"type": "string", "description": "What went wrong, for people."},
                "instance": {"type": "string", "description": "The request's path."},
                "code": {"type": "string", "description": "A stable, machine-readable code, such as `RATE_LIMITED`."},
                "request_id": {"type": "string"},
                "errors": {
                    "type": "array",
                    "description": "The per-field errors of a validation error.",
                    "items": {
                        "type": "object",
                        "required": ["detail", "pointer"],
                        "properties": {
                            "detail": {"type": "string"},
                            "pointer": {"type": "string", "description": "A JSON pointer into the request body."}
                        }
                    }
                }
            }
        }),
        ErrorFormat::Custom(_) => json!({
            "type": "object",
            "description": "The service's own error envelope: see the examples."
        }),
    };
    // A fixed document that utoipa's own types read.
    serde_json::from_value(schema).unwrap_or_default()
}

/// How a document's examples are rendered: the engine's format and
/// environment.
#[derive(Clone, Copy)]
pub(crate) struct Renderer<'a> {
    pub(crate) format: &'a ErrorFormat,
    pub(crate) environment: Environment,
}

impl Renderer<'_> {
    /// `body` as a response in this format to a request for `path`.
    pub(crate) fn render(&self, body: &ErrorBody, path: &str) -> Value {
        let view = ErrorView::new(body)
            .with_environment(self.environment)
            .with_instance(Some(path))
            .with_timestamp(UNIX_EPOCH + EXAMPLE_TIME);
        serde_json::from_str(&self.format.render(&view)).unwrap_or(Value::Null)
    }

    /// Adds one example per named body to every content of `response`,
    /// keeping the examples it has: a second kind of refusal with a status
    /// already documented by this operation's policies.
    pub(crate) fn add_examples(
        &self,
        response: &mut Response,
        examples: &[(String, ErrorBody)],
        path: &str,
    ) {
        for content in response.content.values_mut() {
            for (name, body) in examples {
                content.examples.entry(name.clone()).or_insert_with(|| {
                    RefOr::T(
                        ExampleBuilder::new()
                            .summary(body.message().to_owned())
                            .value(Some(self.render(body, path)))
                            .build(),
                    )
                });
            }
        }
    }

    /// An error response: `description`, the error schema, and one example
    /// per named body.
    pub(crate) fn response(
        &self,
        description: &str,
        examples: &[(String, ErrorBody)],
        path: &str,
    ) -> ResponseBuilder {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ERROR_SCHEMA)))
            .examples_from_iter(examples.iter().map(|(name, body)| {
                (
                    name.clone(),
                    ExampleBuilder::new()
                        .summary(body.message().to_owned())
                        .value(Some(self.render(body, path))),
                )
            }))
            .build();
        ResponseBuilder::new()
            .description(description)
            .content(self.format.content_type(), content)
    }
}

/// An integer or string header with a description.
fn header(kind: &str, description: &str) -> utoipa::openapi::header::Header {
    let schema: Schema = serde_json::from_value(json!({ "type": kind })).unwrap_or_default();
    HeaderBuilder::new()
        .schema(schema)
        .description(Some(description))
        .build()
}

/// The rate-limit headers of `style` (with `X-RateLimit-Window` when
/// `window`), by name, as every response of a rate-limited operation
/// carries them.
pub(crate) fn rate_limit_headers(
    style: HeaderStyle,
    window: bool,
) -> Vec<(&'static str, utoipa::openapi::header::Header)> {
    let mut headers = Vec::new();
    if matches!(style, HeaderStyle::Legacy | HeaderStyle::Both) {
        headers.push((
            "X-RateLimit-Limit",
            header(
                "integer",
                "The requests the deciding quota admits in its period.",
            ),
        ));
        headers.push((
            "X-RateLimit-Remaining",
            header("integer", "The requests left before the limit refuses."),
        ));
        headers.push((
            "X-RateLimit-Reset",
            header(
                "integer",
                "When the quota is whole again, in seconds since the Unix epoch.",
            ),
        ));
        if window {
            headers.push((
                "X-RateLimit-Window",
                header("integer", "The deciding quota's period, in seconds."),
            ));
        }
    }
    if matches!(style, HeaderStyle::Ietf | HeaderStyle::Both) {
        headers.push((
            "RateLimit-Policy",
            header(
                "string",
                "Every quota that applies (draft-ietf-httpapi-ratelimit-headers), as in `\"20/3600s\";q=20;w=3600`.",
            ),
        ));
        headers.push((
            "RateLimit",
            header(
                "string",
                "The deciding quota's remaining requests and seconds until it resets (draft-ietf-httpapi-ratelimit-headers), as in `\"20/3600s\";r=19;t=180`.",
            ),
        ));
    }
    headers
}

/// `Retry-After`, on every 429.
pub(crate) fn retry_after() -> utoipa::openapi::header::Header {
    header(
        "integer",
        "Seconds to wait before retrying; a retry after them is admitted.",
    )
}

/// `WWW-Authenticate`, on a 401 (and the 403 of a JWT's scopes).
pub(crate) fn www_authenticate() -> utoipa::openapi::header::Header {
    header(
        "string",
        "The authentication scheme, as in `Bearer realm=\"api\"` (RFC 6750).",
    )
}

/// Adds `headers` to `response`, keeping any the document already has.
pub(crate) fn add_headers(
    response: &mut Response,
    headers: &[(&'static str, utoipa::openapi::header::Header)],
) {
    for (name, header) in headers {
        response
            .headers
            .entry((*name).to_owned())
            .or_insert_with(|| header.clone());
    }
}

/// The response of `status` in `responses`, made by `make` when absent.
pub(crate) fn entry(
    responses: &mut utoipa::openapi::Responses,
    status: u16,
    make: impl FnOnce() -> Response,
) -> Option<&mut Response> {
    match responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| RefOr::T(make()))
    {
        RefOr::T(response) => Some(response),
        RefOr::Ref(_) => None,
    }
}
