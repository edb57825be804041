//! Attaching an [`Engine`] to a router: `router.layer(engine)`.
//!
//! This module owns the tower `Layer` and `Service` that put the engine on
//! every request, where the handlers' policies find it. It runs no policy.

use crate::Engine;
use axum::http::Request;
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
/// handlers behind it. Created by `router.layer(engine)`.
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

impl<S, B> Service<Request<B>> for WithEngine<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.engine.clone());
        self.inner.call(request)
    }
}
