//! Attaching an [`Engine`] to a router: `router.layer(engine)`.
//!
//! This module owns the tower `Layer` and `Service` that make the engine the
//! current one while the handlers behind it run, where their policies find
//! it, that apply the
//! engine's default limits to routes without a policy of their own (see
//! [`crate::rate_limit::defaults`] for how those routes are told apart), and
//! that render every error response of the routes behind it in the engine's
//! [`crate::ErrorFormat`], with the request id (see [`crate::error_format`]).

use crate::error_body::RenderedError;
use crate::rate_limit::defaults::{Route, RouteProbe};
use crate::{client_ip, rate_limit, request_id, Engine, ErrorView};
use axum::body::Body;
use axum::http::uri::PathAndQuery;
use axum::http::{header, HeaderValue, Request};
use axum::response::Response;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

impl<S> Layer<S> for Engine {
    type Service = WithEngine<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithEngine {
            inner,
            engine: self.clone(),
        }
    }
}

/// A service that makes an [`Engine`] available to the policies of the
/// handlers behind it, and applies its default limits. Created by
/// `router.layer(engine)`.
///
/// ```
/// use axum::{routing::get, Router};
/// use policy_runtime::Engine;
///
/// let engine = Engine::builder().build().unwrap();
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(engine);
/// # drop(app);
/// ```
#[derive(Clone, Debug)]
pub struct WithEngine<S> {
    inner: S,
    engine: Engine,
}

thread_local! {
    /// The engine of the layer polling the current handler. Set only while a
    /// [`WithEngineFuture`] polls its inner future, so a handler's guard, which
    /// runs inside that poll, finds it without a request extension (which
    /// would cost an allocation per request).
    static CURRENT: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

/// Calls `f` with the engine of the layer polling the current handler, if
/// any. `f` must not poll a future: a layer entered while `f` runs would
/// find the engine borrowed.
pub(crate) fn with_current_engine<R>(f: impl FnOnce(Option<&Engine>) -> R) -> R {
    CURRENT.with(|current| f(current.borrow().as_ref()))
}

/// Makes an engine current for the duration of a poll, and puts the previous
/// one back afterwards, even if the poll panics.
struct Current<'a> {
    slot: &'a mut Option<Engine>,
    previous: Option<Engine>,
}

impl<'a> Current<'a> {
    fn enter(slot: &'a mut Option<Engine>) -> Self {
        let previous = CURRENT.with(|current| current.replace(slot.take()));
        Current { slot, previous }
    }
}

impl Drop for Current<'_> {
    fn drop(&mut self) {
        *self.slot = CURRENT.with(|current| current.replace(self.previous.take()));
    }
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`WithEngine`]: the inner service's own future when no
    /// default limit is involved, so the common path costs no allocation,
    /// and then the error format applied to the response.
    pub struct WithEngineFuture<F, E> {
        #[pin]
        state: State<F, E>,
        engine: Option<Engine>,
        finish: Option<Finish>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F, E> {
        // The inner service's future, untouched.
        Direct { #[pin] future: F },
        // The inner future behind a default-limit check.
        Defaults { future: BoxedResponse<E> },
    }
}

impl<F, E> WithEngineFuture<F, E> {
    fn direct(future: F, engine: Engine, finish: Option<Finish>) -> Self {
        WithEngineFuture {
            state: State::Direct { future },
            engine: Some(engine),
            finish,
        }
    }

    fn defaults(future: BoxedResponse<E>, engine: Engine, finish: Option<Finish>) -> Self {
        WithEngineFuture {
            state: State::Defaults { future },
            engine: Some(engine),
            finish,
        }
    }
}

impl<F, E> Future for WithEngineFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let current = Current::enter(this.engine);
        let result = match this.state.project() {
            StateProjection::Direct { future } => ready(future.poll(cx)),
            StateProjection::Defaults { future } => ready(future.as_mut().poll(cx)),
        };
        drop(current);
        let Some(result) = result else {
            return Poll::Pending;
        };
        Poll::Ready(match (result, this.finish.take()) {
            (Ok(response), Some(finish)) => Ok(finish.apply(response)),
            (result, _) => result,
        })
    }
}

fn ready<T>(poll: Poll<T>) -> Option<T> {
    match poll {
        Poll::Ready(value) => Some(value),
        Poll::Pending => None,
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
        if !inner.error_format.rewrites(inner.environment) {
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

    /// Renders an error response again in the engine's format; any other
    /// response is returned as it is.
    fn apply(self, mut response: Response) -> Response {
        let Some(RenderedError(body)) = response.extensions_mut().remove::<RenderedError>() else {
            return response;
        };
        let inner = &self.engine.inner;
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
        response.extensions_mut().insert(RenderedError(body));
        response
    }
}

impl<S, B> Service<Request<B>> for WithEngine<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = WithEngineFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let engine = self.engine.clone();
        let finish = Finish::of(&engine, &request);
        if engine.inner.rate_limit.defaults.is_none() {
            return WithEngineFuture::direct(self.inner.call(request), engine, finish);
        }
        match engine.inner.routes.lookup(&request) {
            Ok(Route::OwnPolicy) => {
                WithEngineFuture::direct(self.inner.call(request), engine, finish)
            }
            Ok(Route::Defaults(scope)) => {
                // The inner service was made ready; take it and leave a clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let current = engine.clone();
                WithEngineFuture::defaults(
                    Box::pin(async move {
                        let client_ip = client_ip_of(&engine, &request);
                        match rate_limit::enforce_defaults(&engine.inner, &scope, client_ip).await {
                            Err(refusal) => Ok(refusal),
                            Ok(headers) => {
                                let mut response = inner.call(request).await?;
                                if let Some(headers) = headers {
                                    headers.apply(response.headers_mut());
                                }
                                Ok(response)
                            }
                        }
                    }),
                    current,
                    finish,
                )
            }
            Err(unknown) => {
                // A route not seen yet: let it run, and learn from whether a
                // policy-wrapped handler claimed the probe.
                let probe = RouteProbe::default();
                request.extensions_mut().insert(probe.clone());
                let client_ip = client_ip_of(&engine, &request);
                let future = self.inner.call(request);
                let current = engine.clone();
                WithEngineFuture::defaults(
                    Box::pin(async move {
                        let response = future.await?;
                        if let Route::Defaults(scope) =
                            engine.inner.routes.learn(unknown, probe.claimed())
                        {
                            // Count the learning request; it has been served already.
                            if rate_limit::enforce_defaults(&engine.inner, &scope, client_ip)
                                .await
                                .is_err()
                            {
                                tracing::warn!(policy = "rate_limit", scope = &*scope, "the first request to a route without a policy was over the default limits; it was served while the route was being learned");
                            }
                        }
                        Ok(response)
                    }),
                    current,
                    finish,
                )
            }
        }
    }
}

fn client_ip_of<B>(engine: &Engine, request: &Request<B>) -> Option<std::net::IpAddr> {
    client_ip::peer_ip_in(request.extensions())
        .map(|peer| engine.inner.resolver.resolve(peer, request.headers()))
}
