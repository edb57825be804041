//! Attaching an [`Engine`] to a router: `router.layer(engine)`.
//!
//! This module owns the tower `Layer` and `Service` that put the engine on
//! every request, where the handlers' policies find it, and that apply the
//! engine's default limits to routes without a policy of their own (see
//! [`crate::rate_limit::defaults`] for how those routes are told apart).

use crate::rate_limit::defaults::{Route, RouteProbe};
use crate::{client_ip, rate_limit, Engine};
use axum::http::Request;
use axum::response::Response;
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

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`WithEngine`]: the inner service's own future when no
    /// default limit is involved, so the common path costs no allocation.
    #[project = WithEngineFutureProjection]
    #[allow(missing_docs)] // the fields of the two variants are the futures they name
    pub enum WithEngineFuture<F, E> {
        /// The inner service's future, untouched.
        Direct { #[pin] future: F },
        /// The inner future behind a default-limit check.
        Defaults { future: BoxedResponse<E> },
    }
}

impl<F, E> Future for WithEngineFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            WithEngineFutureProjection::Direct { future } => future.poll(cx),
            WithEngineFutureProjection::Defaults { future } => future.as_mut().poll(cx),
        }
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
        request.extensions_mut().insert(engine.clone());
        if engine.inner.rate_limit.defaults.is_none() {
            return WithEngineFuture::Direct {
                future: self.inner.call(request),
            };
        }
        let (route, key) = engine.inner.routes.lookup(&request);
        match route {
            Some(Route::OwnPolicy) => WithEngineFuture::Direct {
                future: self.inner.call(request),
            },
            Some(Route::Defaults(scope)) => {
                // The inner service was made ready; take it and leave a clone.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                WithEngineFuture::Defaults {
                    future: Box::pin(async move {
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
                }
            }
            None => {
                // A route not seen yet: let it run, and learn from whether a
                // policy-wrapped handler claimed the probe.
                let probe = RouteProbe::default();
                request.extensions_mut().insert(probe.clone());
                let client_ip = client_ip_of(&engine, &request);
                let future = self.inner.call(request);
                WithEngineFuture::Defaults {
                    future: Box::pin(async move {
                        let response = future.await?;
                        if let Route::Defaults(scope) =
                            engine.inner.routes.learn(key, probe.claimed())
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
                }
            }
        }
    }
}

fn client_ip_of<B>(engine: &Engine, request: &Request<B>) -> Option<std::net::IpAddr> {
    client_ip::peer_ip_in(request.extensions())
        .map(|peer| engine.inner.resolver.resolve(peer, request.headers()))
}
