//! `#[api_error]` enums as utoipa responses: each variant's status, code and
//! an example body, for `#[utoipa::path(responses(AppError))]`.
//!
//! The macro writes `utoipa::IntoResponses` for the enum from one
//! [`ApiErrorDoc`] per variant (inside `__private::utoipa_impl!`, which keeps
//! it only when this crate's `utoipa` feature is on). Alone, the responses
//! show the default (`compact`) format; [`crate::Engine::document`] renders
//! them again in the engine's format, from the variants kept in each
//! response's `x-api-error` extension.

use super::responses::{ERROR_SCHEMA, Renderer};
use crate::ErrorBody;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Ref;

/// The extension that keeps an `#[api_error]` response's variants.
pub(crate) const EXTENSION: &str = "x-api-error";

/// One variant of an `#[api_error]` enum, as the macro describes it.
#[derive(Clone, Copy, Debug)]
pub struct ApiErrorDoc {
    /// The variant's status.
    pub status: u16,
    /// The variant's code.
    pub code: &'static str,
    /// The message a client sees: the variant's `#[error("...")]` text when
    /// it is shown; `None` when it is masked (the status's reason is shown)
    /// or has no such text.
    pub message: Option<&'static str>,
    /// The variant's `title`, if any.
    pub title: Option<&'static str>,
}

impl ApiErrorDoc {
    fn body(&self) -> ErrorBody {
        body(
            self.status,
            self.code.to_owned(),
            self.message.map(str::to_owned),
            self.title.map(str::to_owned),
        )
    }

    fn to_json(self) -> Value {
        json!({
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "title": self.title,
        })
    }
}

/// The body a client sees for a variant.
fn body(status: u16, code: String, message: Option<String>, title: Option<String>) -> ErrorBody {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message =
        message.unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    let body = ErrorBody::new(status, code, message);
    match title {
        Some(title) => body.with_title(title),
        None => body,
    }
}

/// The responses of an `#[api_error]` enum: one per status, with an example
/// per variant (named by its code), in the default format.
pub fn api_error_responses(variants: &[ApiErrorDoc]) -> BTreeMap<String, RefOr<Response>> {
    let renderer = Renderer {
        format: &crate::ErrorFormat::Compact,
        environment: crate::Environment::Production,
    };
    let mut by_status: BTreeMap<u16, Vec<ApiErrorDoc>> = BTreeMap::new();
    for variant in variants {
        by_status.entry(variant.status).or_default().push(*variant);
    }
    by_status
        .into_iter()
        .map(|(status, variants)| {
            let docs = variants.iter().map(|variant| variant.to_json()).collect();
            let bodies: Vec<ErrorBody> = variants.iter().map(ApiErrorDoc::body).collect();
            let mut response = response(&renderer, status, &bodies, None);
            response.extensions = Some([(EXTENSION, Value::Array(docs))].into_iter().collect());
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// The response of `variants`, all of one status. With a schema reference
/// (the engine's document), the error schema is a component; alone it is
/// written inline.
fn response(
    renderer: &Renderer<'_>,
    status: u16,
    bodies: &[ErrorBody],
    path: Option<&str>,
) -> Response {
    let description = StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Error");
    let schema: RefOr<utoipa::openapi::schema::Schema> = match path {
        Some(_) => Ref::from_schema_name(ERROR_SCHEMA).into(),
        None => RefOr::T(super::responses::error_schema(renderer.format)),
    };
    let content = ContentBuilder::new()
        .schema(Some(schema))
        .examples_from_iter(bodies.iter().map(|body| {
            (
                body.code().to_owned(),
                ExampleBuilder::new()
                    .summary(body.message().to_owned())
                    .value(Some(renderer.render(body, path.unwrap_or("/")))),
            )
        }))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content(renderer.format.content_type(), content)
        .build()
}

/// Renders an `#[api_error]` response again in the engine's format, for a
/// request to `path`. Whether it is one: its `x-api-error` extension.
pub(crate) fn render_again(renderer: &Renderer<'_>, response: &mut Response, path: &str) -> bool {
    let Some(Value::Array(docs)) = response
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get(EXTENSION))
    else {
        return false;
    };
    let bodies: Vec<ErrorBody> = docs.iter().filter_map(from_json).collect();
    let Some(status) = bodies.first().map(|body| body.status().as_u16()) else {
        return false;
    };
    let extensions: Option<Extensions> = response.extensions.take();
    *response = self::response(renderer, status, &bodies, Some(path));
    response.extensions = extensions;
    true
}

/// A variant's body back from the extension.
fn from_json(value: &Value) -> Option<ErrorBody> {
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(body(
        u16::try_from(value.get("status")?.as_u64()?).ok()?,
        text("code")?,
        text("message"),
        text("title"),
    ))
}
