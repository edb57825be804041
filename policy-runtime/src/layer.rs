//! Attaching an [`Engine`] to a router: `router.layer(engine)`.
//!
//! This module owns the tower `Layer` and `Service` that put the engine in
//! each request's extensions, where the policies of the handlers behind it
//! find it (see [`crate::guard`]), and that render every error response of
//! those routes in the engine's [`crate::ErrorFormat`], with the request id
//! (see [`crate::error_format`]).
//!
//! The engine travels with the request, not with the task that polls it, so
//! middleware that spawns, buffers, times out or nests the inner service
//! changes nothing: a handler's policies run with the innermost engine
//! layered around its route, and with none (a 500 and an error in the log)
//! when no engine wraps it.

use crate::error_body::RenderedError;
use crate::request_limits::{self, Arrival, RequestTimer};
use crate::{Engine, ErrorView, request_id};
use axum::body::Body;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

impl<S> Layer<S> for Engine {
    type Service = WithEngine<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.warn_of_unused_default_limits();
        WithEngine {
            inner,
            engine: self.clone(),
        }
    }
}

impl Engine {
    /// Default limits that no route takes are a configuration mistake: say
    /// so, once per engine, when the engine is layered.
    fn warn_of_unused_default_limits(&self) {
        use std::sync::atomic::Ordering;
        let inner = &self.inner;
        if inner.rate_limits.config.defaults.is_some()
            && !inner.default_limits_layered.load(Ordering::Relaxed)
            && !inner.unused_defaults_reported.swap(true, Ordering::Relaxed)
            && !crate::handler_policy::every_policy()
                .into_iter()
                .any(crate::engine::adds_to_defaults)
        {
            tracing::warn!(
                "the engine has default limits but no route takes them; add \
                 `.route_layer(engine.default_limits())` after the routes without a `#[rate_limit]` of their own"
            );
        }
    }
}

/// A service that hands an [`Engine`] to the policies of the handlers behind
/// it, in the request's extensions. Created by `router.layer(engine)`.
///
/// ```
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use policy_runtime::{rate_limit, Engine, ErrorFormat};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[rate_limit("1/hour")]
/// async fn once() -> &'static str {
///     "ok"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().error_format(ErrorFormat::Simple).build()?;
///     let app = Router::new()
///         .route("/", get(once))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     app.clone().oneshot(Request::get("/").body(Body::empty())?).await?;
///     let refused = app.oneshot(Request::get("/").body(Body::empty())?).await?;
///     // The engine's error format applies to the routes it wraps.
///     let body = axum::body::to_bytes(refused.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"Too Many Requests: 1 per 1 hour"}"#);
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug)]
pub struct WithEngine<S> {
    inner: S,
    engine: Engine,
}

pin_project_lite::pin_project! {
    /// The future of [`WithEngine`]: the inner service's own future, then the
    /// error format applied to the response; with request limits, the
    /// engine's own refusal or the request's timer beside it.
    pub struct WithEngineFuture<F> {
        #[pin]
        state: State<F>,
        finish: Option<Finish>,
        timer: Option<Box<RequestTimer>>,
        // Whether the engine has a body limit, whose plain-text 413s from
        // axum's extractors it answers in its format.
        json_413: bool,
    }
}

pin_project_lite::pin_project! {
    /// Where a request behind the engine layer is.
    #[project = StateProjection]
    enum State<F> {
        /// Inside the layer: routing, extractors, handler.
        Running { #[pin] future: F },
        /// Refused by the engine layer itself (a body over the limit).
        Refused { response: Option<Response> },
        /// Stopped by its timer; the inner future is dropped.
        Stopped,
    }
}

impl<F, E> Future for WithEngineFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let response = match this.state.as_mut().project() {
            StateProjection::Running { future } => match future.poll(cx) {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    let Some(timer) = this.timer else {
                        return Poll::Pending;
                    };
                    let timed_out = std::task::ready!(timer.poll_expired(cx));
                    // The request's future (extractors and handler) stops here.
                    this.state.set(State::Stopped);
                    Ok(timed_out)
                }
            },
            StateProjection::Refused { response } => match response.take() {
                Some(refused) => Ok(refused),
                None => return Poll::Pending,
            },
            StateProjection::Stopped => return Poll::Pending,
        };
        Poll::Ready(response.map(|mut response| {
            if *this.json_413 && request_limits::is_plain_payload_too_large(&response) {
                // axum's own body-limit rejection in a handler the policies
                // do not wrap: answered as the engine answers it.
                response = request_limits::too_large_response();
            }
            // An error response is rendered by the engine closest to its
            // route, which takes the body it was rendered from out of the
            // response: engines layered further out find none and leave it
            // alone.
            let Some(RenderedError(body)) = response.extensions_mut().remove::<RenderedError>()
            else {
                return response;
            };
            match this.finish.take() {
                Some(finish) => finish.apply(response, body),
                None => response,
            }
        }))
    }
}

/// What rendering an error response again needs of its request: only built
/// when the engine's format or environment differs from the default
/// rendering, so the default costs nothing.
struct Finish {
    engine: Engine,
    request_id: Option<HeaderValue>,
    /// The path, for the `problem` format's `instance`.
    path: Option<PathAndQuery>,
}

impl Finish {
    fn of<B>(engine: &Engine, request: &Request<B>) -> Option<Finish> {
        let inner = &engine.inner;
        if !inner.rewrites_errors() {
            return None;
        }
        let wants_path = matches!(
            inner.error_format,
            crate::ErrorFormat::Problem { .. } | crate::ErrorFormat::Custom(_)
        );
        Some(Finish {
            engine: engine.clone(),
            request_id: request
                .headers()
                .get(request_id::HEADER)
                .filter(|value| request_id::is_safe(value.as_bytes()))
                .cloned(),
            path: wants_path
                .then(|| request.uri().path_and_query().cloned())
                .flatten(),
        })
    }

    /// Renders an error response again in the engine's format, from the
    /// body it was rendered from.
    fn apply(self, mut response: Response, mut body: crate::ErrorBody) -> Response {
        let inner = &self.engine.inner;
        if inner.hides_field_errors {
            body.clear_field_errors();
        }
        let view = ErrorView::new(&body)
            .with_environment(inner.environment)
            .with_request_id(self.request_id.as_ref().and_then(|id| id.to_str().ok()))
            .with_instance(self.path.as_ref().map(PathAndQuery::path));
        let json = inner.error_format.render(&view);
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(inner.error_format.content_type()),
        );
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(json);
        response
    }
}

impl<S, B> Service<Request<B>> for WithEngine<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = WithEngineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let finish = Finish::of(&self.engine, &request);
        let Some(limits) = self.engine.inner.request_limits.active.as_deref() else {
            // An engine layered inside another replaces it: a handler runs
            // with the engine closest to its route.
            request.extensions_mut().insert(self.engine.clone());
            return WithEngineFuture {
                state: State::Running {
                    future: self.inner.call(request),
                },
                finish,
                timer: None,
                json_413: false,
            };
        };
        let json_413 = limits.body.is_some();
        let Arrival { refused, timer } = limits.arrive(&mut request);
        let state = match refused {
            Some(response) => State::Refused {
                response: Some(response),
            },
            None => {
                request.extensions_mut().insert(self.engine.clone());
                State::Running {
                    future: self.inner.call(request),
                }
            }
        };
        WithEngineFuture {
            state,
            finish,
            timer,
            json_413,
        }
    }
}
