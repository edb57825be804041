//! Extractor rejections as [`ErrorBody`] responses: drop-in [`Json`],
//! [`Path`], [`Query`] and [`Form`] extractors, and the wrapper the policy
//! macros put around every argument of a policy-wrapped handler.
//!
//! This module owns the mapping of axum's rejections (a body that is not
//! JSON, a field of the wrong type, a bad path or query parameter, a form
//! that does not deserialise, a body over the size limit) to a status, a
//! code and a message. Which wire format the body then takes is the engine's
//! business ([`crate::ErrorFormat`]).
//!
//! | rejection | status | `code` |
//! | --- | --- | --- |
//! | JSON that is not syntactically valid | 400 | `INVALID_JSON` |
//! | JSON of the wrong shape (with `details` naming the field) | 422 | `VALIDATION_ERROR` |
//! | a missing or wrong `Content-Type` | 415 | `UNSUPPORTED_MEDIA_TYPE` |
//! | a body over the size limit (the engine's, the handler's `#[body_limit]`, or axum's `DefaultBodyLimit`) | 413 | `PAYLOAD_TOO_LARGE` |
//! | a path parameter that does not parse | 400 | `INVALID_PATH` |
//! | a query string that does not deserialise | 400 | `INVALID_QUERY` |
//! | a form that does not deserialise | 400 or 422 | `INVALID_FORM` |
//! | a body that cannot be read | 400 | `INVALID_BODY` |
//! | a server-side extractor failure (say, path parameters on a route without any) | 500 | `INTERNAL_ERROR`, with the reason phrase as message |

use crate::ErrorBody;
use axum::extract::rejection::{
    BytesRejection, FormRejection, JsonRejection, PathRejection, QueryRejection, StringRejection,
};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// The response for an extractor's rejection: an [`ErrorBody`] for axum's
/// own rejections, any other rejection as its type renders it.
pub(crate) fn reject<R: IntoResponse + 'static>(rejection: R) -> Response {
    match error_body(&rejection) {
        Some(body) => {
            tracing::debug!(
                status = body.status().as_u16(),
                code = body.code(),
                error = body.message(),
                "request refused by an extractor"
            );
            body.into_response()
        }
        None => rejection.into_response(),
    }
}

fn error_body(rejection: &dyn Any) -> Option<ErrorBody> {
    if let Some(rejection) = rejection.downcast_ref::<JsonRejection>() {
        return Some(json_body(rejection));
    }
    if let Some(rejection) = rejection.downcast_ref::<PathRejection>() {
        return Some(body(
            rejection.status(),
            "INVALID_PATH",
            rejection.body_text(),
        ));
    }
    if let Some(rejection) = rejection.downcast_ref::<QueryRejection>() {
        return Some(body(
            rejection.status(),
            "INVALID_QUERY",
            rejection.body_text(),
        ));
    }
    if let Some(rejection) = rejection.downcast_ref::<FormRejection>() {
        return Some(body(
            rejection.status(),
            "INVALID_FORM",
            rejection.body_text(),
        ));
    }
    if let Some(rejection) = rejection.downcast_ref::<BytesRejection>() {
        return Some(body(
            rejection.status(),
            "INVALID_BODY",
            rejection.body_text(),
        ));
    }
    if let Some(rejection) = rejection.downcast_ref::<StringRejection>() {
        return Some(body(
            rejection.status(),
            "INVALID_BODY",
            rejection.body_text(),
        ));
    }
    None
}

/// A body by status: size and media-type failures have their own codes, and
/// server-side failures hide their message.
fn body(status: StatusCode, code: &'static str, message: String) -> ErrorBody {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        status if status.is_server_error() => "INTERNAL_ERROR",
        _ => code,
    };
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // One message for a body over the limit, whether its `Content-Length`
        // said so (refused by the engine) or its bytes did (refused here).
        return ErrorBody::new(status, code, crate::request_limits::PAYLOAD_TOO_LARGE);
    }
    if status.is_server_error() {
        tracing::error!(
            status = status.as_u16(),
            error = %message,
            "an extractor failed on the server side"
        );
        let reason = status.canonical_reason().unwrap_or("Internal Server Error");
        return ErrorBody::new(status, code, reason).with_hidden_detail(message);
    }
    ErrorBody::new(status, code, message)
}

fn json_body(rejection: &JsonRejection) -> ErrorBody {
    let (status, text) = (rejection.status(), rejection.body_text());
    match rejection {
        JsonRejection::JsonDataError(_) => match field_error(rejection) {
            Some(field) => ErrorBody::new(
                status,
                "VALIDATION_ERROR",
                "Failed to deserialize the JSON body into the target type",
            )
            .with_field_error(field),
            None => ErrorBody::new(status, "VALIDATION_ERROR", text),
        },
        JsonRejection::JsonSyntaxError(_) => body(status, "INVALID_JSON", text),
        _ => body(status, "INVALID_BODY", text),
    }
}

/// The field a JSON body failed on, from serde's error and its path.
fn field_error(rejection: &JsonRejection) -> Option<crate::FieldError> {
    let mut source = std::error::Error::source(rejection);
    while let Some(error) = source {
        if let Some(error) = error.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let path = error.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let message = error.inner().to_string();
            // serde_json ends its messages with the position, which the
            // field already says better.
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            let (field, code) = match message.strip_prefix("missing field `") {
                Some(rest) => {
                    let name = rest.split('`').next().unwrap_or_default();
                    let field = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    (field, "missing_field")
                }
                None => (path, serde_code(&message)),
            };
            return Some(crate::FieldError::new(field, code, message));
        }
        source = error.source();
    }
    None
}

fn serde_code(message: &str) -> &'static str {
    for (prefix, code) in [
        ("invalid type", "invalid_type"),
        ("invalid value", "invalid_value"),
        ("invalid length", "invalid_length"),
        ("unknown field", "unknown_field"),
        ("unknown variant", "unknown_variant"),
        ("duplicate field", "duplicate_field"),
    ] {
        if message.starts_with(prefix) {
            return code;
        }
    }
    "invalid"
}

/// Wraps an argument of a policy-wrapped handler that is not its last: runs
/// `T`'s extractor and turns axum's rejections into [`ErrorBody`] responses.
///
/// An error that names `Extracted<T>` or `ExtractedLast<T>` is about the
/// handler's argument of type `T`: it is not an extractor for the router's
/// state. Its type implements neither `FromRequestParts` nor `FromRequest`
/// (take `Path<u32>`, not `u32`), or it needs a state (`State<S>`, or an
/// extractor of your own) that is neither the router's nor `FromRef` of it,
/// or, as `Extracted<T>`, it reads the request body but is not the last
/// argument.
#[doc(hidden)]
pub struct Extracted<T>(pub T);

impl<S, T> FromRequestParts<S> for Extracted<T>
where
    S: Send + Sync,
    T: FromRequestParts<S>,
    T::Rejection: 'static,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match T::from_request_parts(parts, state).await {
            Ok(value) => Ok(Extracted(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

/// Wraps the last argument of a policy-wrapped handler, which may read the
/// body; see [`Extracted`].
#[doc(hidden)]
pub struct ExtractedLast<T>(pub T);

/// The `M` of `FromRequest<S, M>` for [`ExtractedLast`]: whatever `T`'s is.
#[doc(hidden)]
pub struct Via<M>(PhantomData<fn() -> M>);

impl<S, T, M> FromRequest<S, Via<M>> for ExtractedLast<T>
where
    S: Send + Sync,
    T: FromRequest<S, M>,
    T::Rejection: 'static,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match T::from_request(request, state).await {
            Ok(value) => Ok(ExtractedLast(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

// `#[instrument]` stacked on a policy-wrapped handler records the arguments
// as the user's types show them.
impl<T: fmt::Debug> fmt::Debug for Extracted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: fmt::Debug> fmt::Debug for ExtractedLast<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! newtype_traits {
    ($name:ident) => {
        impl<T> Deref for $name<T> {
            type Target = T;

            fn deref(&self) -> &T {
                &self.0
            }
        }

        impl<T> DerefMut for $name<T> {
            fn deref_mut(&mut self) -> &mut T {
                &mut self.0
            }
        }

        impl<T: fmt::Debug> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl<T: Clone> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name(self.0.clone())
            }
        }
    };
}

/// axum's `Json` whose rejections are [`ErrorBody`] responses in the
/// engine's format. Use it in handlers without a policy attribute (policy-
/// wrapped handlers get this for every extractor already).
///
/// ```
/// use axum::{body::Body, http::Request, routing::post, Router};
/// use policy_runtime::extract::Json;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Signup {
///     email: String,
/// }
///
/// async fn signup(Json(signup): Json<Signup>) -> Json<Signup> {
///     Json(signup)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new().route("/signup", post(signup));
///     let request = Request::post("/signup").header("content-type", "application/json");
///     let response = app.oneshot(request.body(Body::from(r#"{"email":7}"#))?).await?;
///     assert_eq!(response.status(), 422);
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(
///         body,
///         r#"{"error":"Failed to deserialize the JSON body into the target type","code":"VALIDATION_ERROR","details":[{"field":"email","message":"invalid type: integer `7`, expected a string","code":"invalid_type"}]}"#
///     );
///     Ok(())
/// }
/// ```
pub struct Json<T>(pub T);

newtype_traits!(Json);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// axum's `Path` whose rejections are [`ErrorBody`] responses in the
/// engine's format.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::extract::Path;
/// use tower::ServiceExt;
///
/// async fn user(Path(id): Path<u64>) -> String {
///     format!("user {id}")
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new().route("/users/{id}", get(user));
///     let response = app.oneshot(Request::get("/users/abc").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 400);
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"Invalid URL: Cannot parse `abc` to a `u64`","code":"INVALID_PATH"}"#);
///     Ok(())
/// }
/// ```
pub struct Path<T>(pub T);

newtype_traits!(Path);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    axum::extract::Path<T>: FromRequestParts<S, Rejection = PathRejection>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

/// axum's `Query` whose rejections are [`ErrorBody`] responses in the
/// engine's format.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::extract::Query;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Page {
///     page: u32,
/// }
///
/// async fn list(Query(page): Query<Page>) -> String {
///     format!("page {}", page.page)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new().route("/items", get(list));
///     let response = app.oneshot(Request::get("/items?page=x").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 400);
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(
///         body,
///         r#"{"error":"Failed to deserialize query string: page: invalid digit found in string","code":"INVALID_QUERY"}"#
///     );
///     Ok(())
/// }
/// ```
pub struct Query<T>(pub T);

newtype_traits!(Query);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}

/// axum's `Form` whose rejections are [`ErrorBody`] responses in the
/// engine's format.
///
/// ```
/// use axum::{body::Body, http::Request, routing::post, Router};
/// use policy_runtime::extract::Form;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Login {
///     user: String,
/// }
///
/// async fn login(Form(login): Form<Login>) -> String {
///     format!("hello {}", login.user)
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new().route("/login", post(login));
///     let response = app.oneshot(Request::post("/login").body(Body::from("user=ada"))?).await?;
///     assert_eq!(response.status(), 415); // no form content type
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(
///         body,
///         r#"{"error":"Form requests must have `Content-Type: application/x-www-form-urlencoded`","code":"UNSUPPORTED_MEDIA_TYPE"}"#
///     );
///     Ok(())
/// }
/// ```
pub struct Form<T>(pub T);

newtype_traits!(Form);

impl<S, T> FromRequest<S> for Form<T>
where
    S: Send + Sync,
    axum::Form<T>: FromRequest<S, Rejection = FormRejection>,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(request, state).await {
            Ok(axum::Form(value)) => Ok(Form(value)),
            Err(rejection) => Err(reject(rejection)),
        }
    }
}
