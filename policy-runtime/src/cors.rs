//! CORS: which other sites' pages may call the API from a browser.
//!
//! This module owns the engine's CORS settings (origins, credentials,
//! methods and headers, from the builder or `CORS_ORIGINS`), their start-up
//! checks, and [`Cors`], the layer [`Engine::cors`] returns: tower-http's
//! `CorsLayer` configured from the settings, behind a check of this
//! module's that answers a preflight it would refuse with the engine's JSON
//! 403, and keeps `Access-Control-*` headers off the responses to requests
//! from origins that are not allowed.

use crate::{Engine, Environment, ErrorBody, ErrorView, request_id};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tower::{Layer, Service};
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer, ExposeHeaders};

/// The variable the allowed origins are read from, as a comma list.
pub(crate) const VARIABLE: &str = "CORS_ORIGINS";

/// How long a browser may keep a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(600);

const DEFAULT_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

const DEFAULT_HEADERS: [&str; 4] = ["content-type", "authorization", "x-api-key", "x-request-id"];

/// The response headers a page may read besides the CORS-safelisted ones:
/// the policies' own, so that a page can see its remaining quota and when
/// to retry; and [`WINDOW_HEADER`] when the engine sends it.
const EXPOSED_HEADERS: [&str; 7] = [
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
    "x-request-id",
];

/// `X-RateLimit-Window`, exposed when the engine sends it
/// ([`EngineBuilder::rate_limit_window_header`](crate::EngineBuilder::rate_limit_window_header)).
const WINDOW_HEADER: &str = "x-ratelimit-window";

/// The CORS settings as given to the builder, checked at build.
#[derive(Clone, Debug, Default)]
pub(crate) struct CorsSettings {
    origins: Vec<String>,
    credentials: bool,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
}

fn owned<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    items
        .into_iter()
        .map(|item| item.as_ref().trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

impl CorsSettings {
    pub(crate) fn set_origins<I, S>(&mut self, origins: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.origins = owned(origins);
    }

    /// `CORS_ORIGINS`: a comma list.
    pub(crate) fn read_var(&mut self, value: &str) {
        self.set_origins(value.split(','));
    }

    pub(crate) fn set_credentials(&mut self, on: bool) {
        self.credentials = on;
    }

    pub(crate) fn set_methods<I, S>(&mut self, methods: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.methods = Some(owned(methods));
    }

    pub(crate) fn set_headers<I, S>(&mut self, headers: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.headers = Some(owned(headers));
    }

    fn is_wildcard(&self) -> bool {
        self.origins.iter().any(|origin| origin == "*")
    }

    /// Every problem with the settings in `environment`.
    pub(crate) fn problems(&self, environment: Environment) -> Vec<String> {
        let mut problems = Vec::new();
        for origin in &self.origins {
            if origin != "*" && parse_origin(origin).is_none() {
                problems.push(format!(
                    "CORS origin `{origin}` is not an origin; use scheme://host[:port], such as https://app.example.com"
                ));
            }
        }
        if self.is_wildcard() && environment == Environment::Production {
            problems.push(format!(
                "CORS origin `*` lets every site call the API, which production refuses; list the allowed origins in {VARIABLE} or with `cors_origins`"
            ));
        }
        if self.is_wildcard() && self.credentials {
            problems.push(
                "CORS origin `*` cannot be combined with credentials (browsers refuse it); list the allowed origins or turn credentials off"
                    .to_owned(),
            );
        }
        for method in self.methods.iter().flatten() {
            if parse_method(method).is_none() {
                problems.push(format!(
                    "CORS method `{method}` is not an HTTP method; list methods such as GET or POST"
                ));
            }
        }
        for name in self.headers.iter().flatten() {
            if parse_header(name).is_none() {
                problems.push(format!(
                    "CORS header `{name}` is not a header name; list names such as content-type"
                ));
            }
        }
        problems
    }

    /// The settings in the form the layer uses; what does not parse (a
    /// build problem already) is left out.
    pub(crate) fn config(&self) -> CorsConfig {
        let origins = if self.is_wildcard() {
            Origins::Any
        } else {
            Origins::List(
                self.origins
                    .iter()
                    .filter_map(|o| parse_origin(o))
                    .collect(),
            )
        };
        let methods = match &self.methods {
            Some(methods) => methods.iter().filter_map(|m| parse_method(m)).collect(),
            None => DEFAULT_METHODS.to_vec(),
        };
        let headers = match &self.headers {
            Some(headers) => headers.iter().filter_map(|h| parse_header(h)).collect(),
            None => DEFAULT_HEADERS
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect(),
        };
        CorsConfig {
            origins,
            credentials: self.credentials,
            methods,
            headers,
        }
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`: no path, no
/// query, no user; in lower case, and without the scheme's default port
/// (`:443` for `https`, `:80` for `http`), which browsers leave out.
fn parse_origin(text: &str) -> Option<HeaderValue> {
    let (_, rest) = text.split_once("://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let uri: Uri = text.parse().ok()?;
    let authority = uri.authority()?;
    if uri.scheme().is_none() || authority.host().is_empty() {
        return None;
    }
    let port = authority.as_str().strip_prefix(authority.host())?;
    let port = match port {
        "" => None,
        _ => Some(port.strip_prefix(':')?.parse::<u16>().ok()?),
    };
    // Scheme and host are case-insensitive, and browsers send them in
    // lower case; they send no port when it is the scheme's default.
    let origin = text.to_ascii_lowercase();
    let origin = match (uri.scheme_str().map(str::to_ascii_lowercase), port) {
        (Some(scheme), Some(443)) if scheme == "https" => origin.trim_end_matches(":443"),
        (Some(scheme), Some(80)) if scheme == "http" => origin.trim_end_matches(":80"),
        _ => &origin,
    };
    HeaderValue::from_str(origin).ok()
}

/// A method token; `*` is not one here, the methods are listed.
fn parse_method(text: &str) -> Option<Method> {
    if text == "*" {
        return None;
    }
    Method::from_bytes(text.as_bytes()).ok()
}

/// A header name; `*` is not one here, the headers are listed.
fn parse_header(text: &str) -> Option<HeaderName> {
    if text == "*" {
        return None;
    }
    HeaderName::from_bytes(text.as_bytes()).ok()
}

/// The engine's checked CORS settings.
#[derive(Clone, Debug)]
pub(crate) struct CorsConfig {
    origins: Origins,
    credentials: bool,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
}

#[derive(Clone, Debug)]
enum Origins {
    Any,
    List(Vec<HeaderValue>),
}

impl CorsConfig {
    fn allows_origin(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::List(origins) => origins.contains(origin),
        }
    }

    fn has_no_origin(&self) -> bool {
        matches!(&self.origins, Origins::List(origins) if origins.is_empty())
    }

    /// Why a preflight is refused, if it is: its origin, method or one of
    /// its headers is not allowed.
    fn refusal(&self, origin: &HeaderValue, headers: &HeaderMap) -> Option<&'static str> {
        if !self.allows_origin(origin) {
            return Some("CORS: origin not allowed");
        }
        let method = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        if !self
            .methods
            .iter()
            .any(|allowed| allowed.as_str().as_bytes() == method.as_bytes())
        {
            return Some("CORS: method not allowed");
        }
        for value in headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(names) = value.to_str() else {
                return Some("CORS: header not allowed");
            };
            let refused = names
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .any(|name| {
                    !self
                        .headers
                        .iter()
                        .any(|allowed| allowed.as_str().eq_ignore_ascii_case(name))
                });
            if refused {
                return Some("CORS: header not allowed");
            }
        }
        None
    }

    /// tower-http's layer with these settings; `window`: the responses
    /// carry `X-RateLimit-Window`, which pages may then read.
    fn layer(&self, window: bool) -> CorsLayer {
        let origins = match &self.origins {
            Origins::Any => AllowOrigin::any(),
            Origins::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(AllowMethods::list(self.methods.iter().cloned()))
            .allow_headers(AllowHeaders::list(self.headers.iter().cloned()))
            .expose_headers(ExposeHeaders::list(
                EXPOSED_HEADERS
                    .iter()
                    .chain(window.then_some(&WINDOW_HEADER))
                    .map(|name| HeaderName::from_static(name)),
            ))
            .allow_credentials(self.credentials)
            .max_age(MAX_AGE)
    }
}

/// The CORS layer of an engine: tower-http's `CorsLayer` with the engine's
/// settings, behind a check that answers refused preflights with the
/// engine's JSON error. Made by [`Engine::cors`].
///
/// | request | answer |
/// | --- | --- |
/// | preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed origin, for allowed methods and headers | `200`, empty, with `Access-Control-Allow-Origin`, `-Methods`, `-Headers`, `-Max-Age: 600` (and `-Credentials: true` when on): the routes never see it |
/// | preflight from an origin not allowed, or for a method or header not allowed | `403`, code `CORS_FORBIDDEN`, message `CORS: origin not allowed`, `CORS: method not allowed` or `CORS: header not allowed`, in the engine's error format |
/// | other request from an allowed origin | the routes' response, with `Access-Control-Allow-Origin`, `-Expose-Headers` (the rate-limit headers, `Retry-After` and `X-Request-Id`) and `-Credentials` when on |
/// | other request from an origin not allowed, or without `Origin` | the routes' response with no `Access-Control-*` header: a browser then keeps the response from the page |
///
/// Every answer carries `Vary: origin, access-control-request-method,
/// access-control-request-headers`. Any other `OPTIONS` request is answered
/// by tower-http as a preflight too, so an `OPTIONS` route behind the layer
/// is never reached.
///
/// Add it **outermost**, after `.layer(engine)` (and after every other
/// layer that must not see preflights): a preflight is then answered before
/// any policy runs, so it is never counted by a rate limit and never needs
/// an API key, and the 403 is still in the engine's format.
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::{Engine, Environment};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder()
///         .environment(Environment::Development)
///         .cors_origins(["https://app.example.com"])
///         .build()?;
///     let app = Router::new()
///         .route("/items", get(|| async { "items" }))
///         .layer(engine.clone())
///         .layer(engine.cors());
///
///     let preflight = |origin: &str| {
///         Request::options("/items")
///             .header("origin", origin)
///             .header("access-control-request-method", "GET")
///             .body(Body::empty())
///             .unwrap()
///     };
///     let allowed = app.clone().oneshot(preflight("https://app.example.com")).await?;
///     assert_eq!(allowed.status(), 200);
///     assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
///
///     let refused = app.oneshot(preflight("https://evil.example")).await?;
///     assert_eq!(refused.status(), 403);
///     let body = axum::body::to_bytes(refused.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"CORS: origin not allowed","code":"CORS_FORBIDDEN"}"#);
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Cors {
    engine: Engine,
    layer: CorsLayer,
}

impl Engine {
    /// The CORS layer with the engine's settings ([`EngineBuilder::cors_origins`](crate::EngineBuilder::cors_origins)
    /// or `CORS_ORIGINS`, and the other `cors_*` settings); see [`Cors`].
    /// Add it after `.layer(engine)`. With no allowed origin, every
    /// cross-origin request is refused, and this call logs a warning in
    /// every environment, naming it and what to set:
    /// `` CORS is used in development with no allowed origin, so every
    /// cross-origin request is refused; list the allowed origins in
    /// CORS_ORIGINS or with `cors_origins` `` (`staging`, `production`
    /// likewise).
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::post, Router};
    /// use policy_runtime::Engine;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder()
    ///         .cors_origins(["https://app.example.com"])
    ///         .cors_allow_credentials(true)
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/orders", post(|| async { "ordered" }))
    ///         .layer(engine.clone())
    ///         .layer(engine.cors());
    ///     let request = Request::post("/orders").header("origin", "https://app.example.com");
    ///     let response = app.oneshot(request.body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    ///     assert_eq!(response.headers()["access-control-allow-credentials"], "true");
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Without an origin, the warning:
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Clone, Default)]
    /// struct Captured(Arc<Mutex<Vec<u8>>>);
    /// impl std::io::Write for Captured {
    ///     fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
    ///         self.0.lock().unwrap().extend_from_slice(bytes);
    ///         Ok(bytes.len())
    ///     }
    ///     fn flush(&mut self) -> std::io::Result<()> {
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let captured = Captured::default();
    /// let writer = captured.clone();
    /// let subscriber = tracing_subscriber::fmt()
    ///     .json()
    ///     .with_writer(move || writer.clone())
    ///     .finish();
    /// let engine = Engine::builder().environment(Environment::Development).build()?;
    /// tracing::subscriber::with_default(subscriber, || drop(engine.cors()));
    /// let line: serde_json::Value = serde_json::from_slice(&captured.0.lock().unwrap())?;
    /// assert_eq!(line["level"], "WARN");
    /// assert_eq!(
    ///     line["fields"]["message"],
    ///     "CORS is used in development with no allowed origin, so every cross-origin request is refused; \
    ///      list the allowed origins in CORS_ORIGINS or with `cors_origins`"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cors(&self) -> Cors {
        let config = &self.inner.cors;
        if config.has_no_origin() {
            // In every environment: a site's pages cannot call the API, which
            // is seldom meant where `engine.cors()` is called.
            tracing::warn!(
                "CORS is used in {} with no allowed origin, so every cross-origin request is refused; \
                 list the allowed origins in {VARIABLE} or with `cors_origins`",
                self.environment()
            );
        }
        Cors {
            engine: self.clone(),
            layer: config.layer(self.inner.rate_limits.config.window_header),
        }
    }
}

impl<S> Layer<S> for Cors {
    type Service = WithCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithCors {
            engine: self.engine.clone(),
            inner: self.layer.layer(inner),
        }
    }
}

/// The service of [`Cors`]: the preflight check, then tower-http's `Cors`
/// around the inner service.
#[derive(Clone, Debug)]
pub struct WithCors<S> {
    engine: Engine,
    inner: tower_http::cors::Cors<S>,
}

impl<S, B> Service<Request<B>> for WithCors<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CorsFuture<tower_http::cors::ResponseFuture<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // tower-http answers every preflight with a 200 and leaves the
        // refusal to the browser, with no hook for an answer of our own:
        // the preflights it would refuse are answered here first.
        let config = &self.engine.inner.cors;
        let origin = request.headers().get(header::ORIGIN);
        let preflight = request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if let (true, Some(origin)) = (preflight, origin) {
            if let Some(message) = config.refusal(origin, request.headers()) {
                tracing::debug!(
                    policy = "cors",
                    reason = message,
                    origin = ?origin,
                    "CORS preflight refused"
                );
                return CorsFuture {
                    kind: Kind::Refused {
                        response: Some(refuse(&self.engine, message, &request)),
                    },
                };
            }
        }
        let strip = !origin.is_some_and(|origin| config.allows_origin(origin));
        CorsFuture {
            kind: Kind::Passed {
                future: self.inner.call(request),
                strip,
            },
        }
    }
}

/// The 403 of a refused preflight, in the engine's error format, as the
/// engine layer renders errors (the layer is outside the engine, which
/// never sees this response).
fn refuse<B>(engine: &Engine, message: &'static str, request: &Request<B>) -> Response {
    let body = ErrorBody::new(StatusCode::FORBIDDEN, "CORS_FORBIDDEN", message);
    let inner = &engine.inner;
    let request_id = request
        .headers()
        .get(request_id::HEADER)
        .filter(|value| request_id::is_safe(value.as_bytes()))
        .and_then(|value| value.to_str().ok());
    let view = ErrorView::new(&body)
        .with_environment(inner.environment)
        .with_request_id(request_id)
        .with_instance(Some(request.uri().path()));
    let mut response = Response::new(Body::from(inner.error_format.render(&view)));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(inner.error_format.content_type()),
    );
    headers.insert(
        header::VARY,
        HeaderValue::from_static(
            "origin, access-control-request-method, access-control-request-headers",
        ),
    );
    response
}

pin_project_lite::pin_project! {
    /// The future of [`WithCors`]: a refused preflight's 403 at once, or
    /// tower-http's answer.
    pub struct CorsFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProjection]
    enum Kind<F> {
        Refused { response: Option<Response> },
        Passed {
            #[pin]
            future: F,
            // The request's origin is absent or not allowed: no
            // `Access-Control-*` header on the response.
            strip: bool,
        },
    }
}

impl<F, E> Future for CorsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            KindProjection::Passed { future, strip } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                if *strip {
                    strip_cors_headers(response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// tower-http adds `Access-Control-Allow-Credentials` and
/// `-Expose-Headers` whatever the origin (and `-Allow-Origin: *` for a
/// wildcard even without one): a response to a request without an allowed
/// origin carries none of them.
fn strip_cors_headers(headers: &mut HeaderMap) {
    for name in [
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::ACCESS_CONTROL_MAX_AGE,
    ] {
        headers.remove(name);
    }
}
