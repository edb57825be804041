//! [`SecurityHeaders`]: the response headers a JSON API sends on every
//! response, as one layer.
//!
//! This module owns the preset (`nosniff`, `X-Frame-Options: DENY`, no
//! referrer, a content security policy that loads nothing, and HSTS where
//! the [`Environment`] calls for it), the changes an application makes to
//! it, and the tower `Layer` and `Service` that set the headers on every
//! response a handler did not set them on.

use crate::{Engine, Environment};
use axum::http::{HeaderName, HeaderValue, Request, Response, header};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The security headers of a JSON API, set on every response (200, 4xx and
/// 5xx alike) by one layer: `router.layer(engine.security_headers())`.
///
/// | header | value | sent |
/// | --- | --- | --- |
/// | `X-Content-Type-Options` | `nosniff` | always |
/// | `X-Frame-Options` | `DENY` | always |
/// | `Referrer-Policy` | `no-referrer` | always |
/// | `Content-Security-Policy` | `default-src 'none'; frame-ancestors 'none'` | always |
/// | `Strict-Transport-Security` | `max-age=31536000; includeSubDomains` | production; staging with [`SecurityHeaders::hsts_in_staging`] |
///
/// The content security policy loads nothing and may be framed by nothing:
/// right for JSON, wrong for HTML pages (give those routes their own with
/// [`SecurityHeaders::header`]). A header the handler (or a layer inside
/// this one) set itself is kept: the handler's value wins. Add the layer
/// after `.layer(engine)`, so that the engine's JSON errors carry the
/// headers too.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::Engine;
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().build()?; // production
///     let app = Router::new()
///         .route("/", get(|| async { "ok" }))
///         .layer(engine.clone())
///         .layer(engine.security_headers());
///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
///     let headers = response.headers();
///     assert_eq!(headers["x-content-type-options"], "nosniff");
///     assert_eq!(headers["x-frame-options"], "DENY");
///     assert_eq!(headers["referrer-policy"], "no-referrer");
///     assert_eq!(headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
///     assert_eq!(headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    environment: Environment,
    hsts_in_staging: bool,
    /// The preset with the application's changes, HSTS included whatever
    /// the environment: whether it is sent is decided when the layer wraps
    /// a service, so that the order of the calls does not matter.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// The preset for `environment`: HSTS in production only.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Environment, SecurityHeaders};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: Router = Router::new()
    ///         .route("/", get(|| async { "ok" }))
    ///         .layer(SecurityHeaders::for_environment(Environment::Development));
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["x-frame-options"], "DENY");
    ///     assert!(response.headers().get("strict-transport-security").is_none());
    ///     Ok(())
    /// }
    /// ```
    pub fn for_environment(environment: Environment) -> Self {
        let preset = [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
            (
                header::STRICT_TRANSPORT_SECURITY,
                "max-age=31536000; includeSubDomains",
            ),
        ];
        SecurityHeaders {
            environment,
            hsts_in_staging: false,
            headers: preset
                .into_iter()
                .map(|(name, value)| (name, HeaderValue::from_static(value)))
                .collect(),
        }
    }

    /// Sends `Strict-Transport-Security` in staging too (it is never sent
    /// in development, where the service is usually reached over plain
    /// HTTP on `localhost`, and a browser would remember it).
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Environment, SecurityHeaders};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let headers = SecurityHeaders::for_environment(Environment::Staging).hsts_in_staging(true);
    ///     let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(headers);
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn hsts_in_staging(mut self, on: bool) -> Self {
        self.hsts_in_staging = on;
        self
    }

    /// Sets `name` to `value`: changes a header of the preset, or adds one.
    /// `Strict-Transport-Security` keeps its rule: its value is only sent
    /// where HSTS is (see [`SecurityHeaders::hsts_in_staging`]).
    ///
    /// ```
    /// use axum::http::{header, HeaderValue};
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Environment, SecurityHeaders};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let headers = SecurityHeaders::for_environment(Environment::Production)
    ///         .header(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin"))
    ///         .header(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=63072000; includeSubDomains; preload"));
    ///     let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(headers);
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["referrer-policy"], "strict-origin");
    ///     assert_eq!(response.headers()["strict-transport-security"], "max-age=63072000; includeSubDomains; preload");
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        match self.headers.iter_mut().find(|(known, _)| *known == name) {
            Some((_, known)) => *known = value,
            None => self.headers.push((name, value)),
        }
        self
    }

    /// Drops `name` from the preset.
    ///
    /// ```
    /// use axum::http::header;
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Environment, SecurityHeaders};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let headers = SecurityHeaders::for_environment(Environment::Production)
    ///         .without(header::X_FRAME_OPTIONS);
    ///     let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(headers);
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert!(response.headers().get("x-frame-options").is_none());
    ///     assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    ///     Ok(())
    /// }
    /// ```
    #[must_use]
    pub fn without(mut self, name: HeaderName) -> Self {
        self.headers.retain(|(known, _)| *known != name);
        self
    }

    /// Whether HSTS is sent in this environment.
    fn sends_hsts(&self) -> bool {
        match self.environment {
            Environment::Production => true,
            Environment::Staging => self.hsts_in_staging,
            Environment::Development => false,
        }
    }

    /// The headers that are sent, in order.
    fn sent(&self) -> Arc<[(HeaderName, HeaderValue)]> {
        let hsts = self.sends_hsts();
        self.headers
            .iter()
            .filter(|(name, _)| hsts || name != header::STRICT_TRANSPORT_SECURITY)
            .cloned()
            .collect()
    }
}

impl Engine {
    /// The security headers for the engine's environment (HSTS in
    /// production only); see [`SecurityHeaders`]. Add the layer after
    /// `.layer(engine)`, so that the engine's error responses carry them too.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Engine, Environment};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().environment(Environment::Staging).build()?;
    ///     let app = Router::new()
    ///         .route("/", get(|| async { "ok" }))
    ///         .layer(engine.clone())
    ///         .layer(engine.security_headers());
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    ///     assert!(response.headers().get("strict-transport-security").is_none());
    ///     Ok(())
    /// }
    /// ```
    pub fn security_headers(&self) -> SecurityHeaders {
        SecurityHeaders::for_environment(self.environment())
    }
}

impl<S> Layer<S> for SecurityHeaders {
    type Service = WithSecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithSecurityHeaders {
            inner,
            headers: self.sent(),
        }
    }
}

// Written here rather than as tower-http's `SetResponseHeaderLayer`s: that
// layer sets one header, and each header would be one more layer in the
// service's type, fixed when the code is compiled. A preset whose members
// are changed or dropped at run time is a list, applied by one service.

/// The service of [`SecurityHeaders`]: the inner service, then the headers
/// it did not set.
#[derive(Clone, Debug)]
pub struct WithSecurityHeaders<S> {
    inner: S,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, B, ResBody> Service<Request<B>> for WithSecurityHeaders<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SecurityHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        SecurityHeadersFuture {
            future: self.inner.call(request),
            headers: self.headers.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`WithSecurityHeaders`]: the inner service's own
    /// future, then the headers set on its response.
    pub struct SecurityHeadersFuture<F> {
        #[pin]
        future: F,
        headers: Arc<[(HeaderName, HeaderValue)]>,
    }
}

impl<F, ResBody, E> Future for SecurityHeadersFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        let target = response.headers_mut();
        for (name, value) in this.headers.iter() {
            // The handler's own value wins.
            target.entry(name).or_insert_with(|| value.clone());
        }
        Poll::Ready(Ok(response))
    }
}
