//! [`RequestLayer`]: a request id, one span and one log event per request,
//! and request metrics, from tower-http's request-id and trace layers.
//!
//! This module owns how those layers are put together and what the span and
//! the closing event hold: `method`, the matched `route`, `request_id`,
//! `status` and `latency_ms`, with a warning for slow requests. The rule for
//! incoming ids is [`crate::request_id`]'s; metric names are
//! [`crate::metrics`]'.

use crate::request_id;
use axum::body::{Body, HttpBody};
use axum::extract::MatchedPath;
use axum::http::{HeaderValue, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::{Layer, Service};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::request_id::{
    MakeRequestId, MakeRequestUuid, PropagateRequestId, RequestId, SetRequestId,
};
use tower_http::trace::{MakeSpan, OnResponse, Trace, TraceLayer};
use tracing::Span;

/// Gives every request an id, one `tracing` span and metrics.
///
/// - **Request id**: an incoming `x-request-id` of at most 128 characters
///   of `[A-Za-z0-9._-]` is kept, any other is replaced by a new UUID v4
///   (tower-http's `SetRequestId`), or by a prefixed one with
///   [`RequestLayer::id_prefix`] (`req_9f0c…`). The id is returned in
///   `x-request-id` (`PropagateRequestId`) and put in error bodies by the
///   engine layer.
/// - **Span** (tower-http's `Trace`): one `request` span at info level with
///   `method`, `route` (the matched route, such as `/users/{id}`),
///   `request_id`, and once answered `status` and `latency_ms`. Every event
///   logged while the request runs carries them.
/// - **Log**: one `request finished` event at info level; a warning,
///   `slow request`, when the answer took at least the slow threshold (5 s
///   by default).
/// - **Metrics**, through the `metrics` facade into whatever recorder is
///   installed (such as `Metrics::install`'s, feature `prometheus`):
///   `http_requests_total` by method, route and status,
///   `http_request_duration_seconds` by method and route.
///
/// Add it with `Router::layer` after the engine, so that it runs first and
/// sees the matched route:
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use policy_runtime::{Engine, RequestLayer};
/// use std::time::Duration;
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().build()?;
///     let app = Router::new()
///         .route("/users/{id}", get(|| async { "user" }))
///         .layer(engine)
///         .layer(RequestLayer::new().slow_threshold(Duration::from_secs(2)));
///
///     // A request without an id gets a new UUID v4, returned in the response.
///     let response = app.clone().oneshot(Request::get("/users/7").body(Body::empty())?).await?;
///     assert_eq!(response.headers()["x-request-id"].len(), 36);
///     // A safe id is kept.
///     let request = Request::get("/users/7").header("x-request-id", "req-42");
///     let response = app.oneshot(request.body(Body::empty())?).await?;
///     assert_eq!(response.headers()["x-request-id"], "req-42");
///     Ok(())
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "request-layer")))]
#[derive(Clone)]
pub struct RequestLayer {
    slow: Duration,
    ids: MakeId,
}

impl Default for RequestLayer {
    fn default() -> Self {
        RequestLayer {
            slow: Duration::from_secs(5),
            ids: MakeId::default(),
        }
    }
}

impl std::fmt::Debug for RequestLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut layer = f.debug_struct("RequestLayer");
        layer.field("slow", &self.slow);
        if let Some(prefix) = &self.ids.prefix {
            layer.field("id_prefix", prefix);
        }
        layer.finish()
    }
}

/// The longest prefix [`RequestLayer::id_prefix`] takes: with the 32 hex
/// digits after it, a generated id stays within the 128 characters an
/// incoming id may have.
const MAX_PREFIX_LEN: usize = 96;

/// Makes the ids of requests that came without a safe one: a UUID v4 as
/// tower-http makes it, or, with a prefix, the prefix and the UUID's 32 hex
/// digits.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct MakeId {
    prefix: Option<Arc<str>>,
}

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, request: &Request<B>) -> Option<RequestId> {
        // tower-http's generator (on the `uuid` crate it already brings)
        // rather than a random source of our own; its hyphens are left out.
        let uuid = MakeRequestUuid.make_request_id(request)?;
        let Some(prefix) = &self.prefix else {
            return Some(uuid);
        };
        let mut id = Vec::with_capacity(prefix.len() + 32);
        id.extend_from_slice(prefix.as_bytes());
        id.extend(
            uuid.header_value()
                .as_bytes()
                .iter()
                .filter(|&&byte| byte != b'-'),
        );
        HeaderValue::from_maybe_shared(axum::body::Bytes::from(id))
            .ok()
            .map(RequestId::new)
    }
}

impl RequestLayer {
    /// Request ids, spans, a log event per request and request metrics,
    /// with slow requests at 5 s.
    ///
    /// ```
    /// let layer = policy_runtime::RequestLayer::new();
    /// assert_eq!(format!("{layer:?}"), "RequestLayer { slow: 5s }");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs a warning for requests that take at least `threshold`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let layer = policy_runtime::RequestLayer::new().slow_threshold(Duration::from_millis(500));
    /// assert_eq!(format!("{layer:?}"), "RequestLayer { slow: 500ms }");
    /// ```
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow = threshold;
        self
    }

    /// Generates ids as `prefix` followed by the 32 lower-case hex digits
    /// of a new UUID v4, such as `req_3f2a9c0e5b7d4e1fa8c26b0d9e4f7a13`,
    /// instead of the UUID in its hyphenated form. Only the ids the layer
    /// makes change: an incoming `x-request-id` is kept or replaced as
    /// before, by the same rule.
    ///
    /// A prefix is 0 to 96 characters of `[A-Za-z0-9._-]`, so that a
    /// generated id is always one the layer would keep if a client sent it
    /// back; any other is an [`InvalidIdPrefix`] error naming it.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::{Engine, RequestLayer};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let layer = RequestLayer::new().id_prefix("req_")?;
    ///     assert_eq!(format!("{layer:?}"), r#"RequestLayer { slow: 5s, id_prefix: "req_" }"#);
    ///     let app = Router::new()
    ///         .route("/", get(|| async { "ok" }))
    ///         .layer(Engine::builder().build()?)
    ///         .layer(layer);
    ///
    ///     let response = app.clone().oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     let id = response.headers()["x-request-id"].to_str()?;
    ///     let hex = id.strip_prefix("req_").expect("the prefix");
    ///     assert_eq!(hex.len(), 32);
    ///     assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    ///
    ///     // An incoming id is kept as it is.
    ///     let request = Request::get("/").header("x-request-id", "client-7");
    ///     let response = app.oneshot(request.body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["x-request-id"], "client-7");
    ///
    ///     let refused = RequestLayer::new().id_prefix("req id:").unwrap_err();
    ///     assert_eq!(
    ///         refused.to_string(),
    ///         "the request id prefix `req id:` is not 0 to 96 characters of [A-Za-z0-9._-]"
    ///     );
    ///     Ok(())
    /// }
    /// ```
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Result<Self, InvalidIdPrefix> {
        let prefix = prefix.into();
        if prefix.len() > MAX_PREFIX_LEN
            || !(prefix.is_empty() || request_id::is_safe(prefix.as_bytes()))
        {
            return Err(InvalidIdPrefix { prefix });
        }
        self.ids.prefix = Some(prefix.into());
        Ok(self)
    }
}

/// A request id prefix that [`RequestLayer::id_prefix`] refuses: more than
/// 96 characters, or one outside `[A-Za-z0-9._-]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request id prefix `{prefix}` is not 0 to {MAX_PREFIX_LEN} characters of [A-Za-z0-9._-]"
)]
pub struct InvalidIdPrefix {
    prefix: String,
}

type Traced<S> = Trace<
    RequestMetrics<S>,
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    (),
    RequestEnd,
    (),
    (),
    (),
>;

type Stack<S> = SetRequestId<PropagateRequestId<Traced<S>>, MakeId>;

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let traced = TraceLayer::new_for_http()
            .make_span_with(RequestSpan)
            .on_request(())
            .on_response(RequestEnd { slow: self.slow })
            .on_body_chunk(())
            .on_eos(())
            .on_failure(())
            .layer(RequestMetrics { inner });
        let header = request_id::HEADER;
        RequestService {
            inner: SetRequestId::new(
                PropagateRequestId::new(traced, header.clone()),
                header,
                self.ids.clone(),
            ),
        }
    }
}

/// The service of [`RequestLayer`].
///
/// ```
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new()
///         .route("/", get(|| async { "ok" }))
///         .layer(policy_runtime::RequestLayer::new());
///     // An id that is not 1 to 128 characters of [A-Za-z0-9._-] is replaced.
///     let request = Request::get("/").header("x-request-id", "not safe!");
///     let response = app.oneshot(request.body(Body::empty())?).await?;
///     assert_ne!(response.headers()["x-request-id"], "not safe!");
///     Ok(())
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "request-layer")))]
#[derive(Clone)]
pub struct RequestService<S> {
    inner: Stack<S>,
}

impl<S> std::fmt::Debug for RequestService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestService").finish_non_exhaustive()
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for RequestService<S>
where
    S: Service<Request<ReqBody>, Response = Response<Body>>,
    S::Error: std::fmt::Display + 'static,
    ReqBody: HttpBody,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = RequestFuture<<Stack<S> as Service<Request<ReqBody>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        request_id::drop_unsafe(request.headers_mut());
        RequestFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`RequestService`].
    #[cfg_attr(docsrs, doc(cfg(feature = "request-layer")))]
    pub struct RequestFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for RequestFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|result| result.map(|response| response.map(Body::new)))
    }
}

/// The `request` span of one request.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        tracing::info_span!(
            "request",
            method = %request.method(),
            route,
            request_id = request_id::of(request.headers()),
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }
}

/// The closing event of one request.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct RequestEnd {
    slow: Duration,
}

impl<B> OnResponse<B> for RequestEnd {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &Span) {
        let status = response.status().as_u16();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        span.record("status", status);
        span.record("latency_ms", latency_ms);
        if latency >= self.slow {
            let threshold_ms = u64::try_from(self.slow.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(status, latency_ms, threshold_ms, "slow request");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    }
}

/// Counts requests and their latency by route.
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestMetrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let start = Some(Start {
            method: crate::metrics::method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            at: Instant::now(),
        });
        RequestMetricsFuture {
            inner: self.inner.call(request),
            start,
        }
    }
}

struct Start {
    method: &'static str,
    route: Option<MatchedPath>,
    at: Instant,
}

pin_project_lite::pin_project! {
    #[doc(hidden)]
    pub struct RequestMetricsFuture<F> {
        #[pin]
        inner: F,
        start: Option<Start>,
    }
}

impl<F, B, E> Future for RequestMetricsFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.inner.poll(cx) {
            Poll::Ready(result) => result,
            Poll::Pending => return Poll::Pending,
        };
        if let (Some(start), Ok(response)) = (this.start.take(), &result) {
            let route = start
                .route
                .as_ref()
                .map_or("unmatched", MatchedPath::as_str);
            crate::metrics::request(start.method, route, response.status(), start.at.elapsed());
        }
        Poll::Ready(result)
    }
}
