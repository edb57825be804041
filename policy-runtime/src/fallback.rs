//! JSON answers for the requests no route takes: [`not_found`] (no route
//! for the path), [`method_not_allowed`] (a route, but not for that
//! method) and [`JsonFallbacks::json_fallbacks`], which installs both.
//!
//! axum answers these with an empty body of its own; this module owns the
//! two handlers that answer them as [`ErrorBody`]s instead, so that the
//! engine renders them in its [`crate::ErrorFormat`] like every other error.

use crate::ErrorBody;
use axum::Router;
use axum::http::StatusCode;

/// The handler for a path no route takes: `404`, code `NOT_FOUND`, message
/// `Not Found`. Installed with [`JsonFallbacks::json_fallbacks`], or by hand
/// with `router.fallback(not_found)`.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new()
///         .route("/", get(|| async { "ok" }))
///         .fallback(policy_runtime::not_found);
///     let response = app.oneshot(Request::get("/nowhere").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 404);
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"Not Found","code":"NOT_FOUND"}"#);
///     Ok(())
/// }
/// ```
pub async fn not_found() -> ErrorBody {
    ErrorBody::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not Found")
}

/// The handler for a route asked for a method it does not have: `405`,
/// code `METHOD_NOT_ALLOWED`, message `Method Not Allowed`. axum adds the
/// `Allow` header, listing the route's methods. Installed with
/// [`JsonFallbacks::json_fallbacks`], or by hand with
/// `router.method_not_allowed_fallback(method_not_allowed)`.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new()
///         .route("/", get(|| async { "ok" }))
///         .method_not_allowed_fallback(policy_runtime::method_not_allowed);
///     let response = app.oneshot(Request::delete("/").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 405);
///     assert_eq!(response.headers()["allow"], "GET,HEAD");
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"Method Not Allowed","code":"METHOD_NOT_ALLOWED"}"#);
///     Ok(())
/// }
/// ```
pub async fn method_not_allowed() -> ErrorBody {
    ErrorBody::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Method Not Allowed",
    )
}

/// JSON 404 and 405 answers for a router, in one call.
///
/// Call it **after the last route and before `.layer(engine)`**: axum gives
/// the 405 answer only to the routes added before the call, and the engine
/// renders in its format only the answers of what it wraps. axum's `Allow`
/// header stays on the 405.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::{Engine, ErrorFormat, JsonFallbacks};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().error_format(ErrorFormat::Simple).build()?;
///     let app = Router::new()
///         .route("/users", get(|| async { "users" }))
///         .json_fallbacks()
///         .layer(engine);
///
///     let missing = app.clone().oneshot(Request::get("/nowhere").body(Body::empty())?).await?;
///     assert_eq!(missing.status(), 404);
///     assert_eq!(axum::body::to_bytes(missing.into_body(), 1024).await?, r#"{"error":"Not Found"}"#);
///
///     let wrong = app.oneshot(Request::post("/users").body(Body::empty())?).await?;
///     assert_eq!(wrong.status(), 405);
///     assert_eq!(wrong.headers()["allow"], "GET,HEAD");
///     assert_eq!(axum::body::to_bytes(wrong.into_body(), 1024).await?, r#"{"error":"Method Not Allowed"}"#);
///     Ok(())
/// }
/// ```
pub trait JsonFallbacks: sealed::Sealed {
    /// Sets `.fallback(not_found)` and
    /// `.method_not_allowed_fallback(method_not_allowed)`; see
    /// [`JsonFallbacks`] for where the call goes.
    #[must_use]
    fn json_fallbacks(self) -> Self;
}

impl<S> JsonFallbacks for Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn json_fallbacks(self) -> Self {
        self.fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
    }
}

mod sealed {
    /// Only axum's `Router` has JSON fallbacks.
    pub trait Sealed {}
    impl<S> Sealed for axum::Router<S> {}
}
