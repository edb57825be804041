//! Default limits: a route layer for the routes whose handlers have no
//! `#[rate_limit]` of their own.
//!
//! This module owns [`DefaultLimits`], the layer [`Engine::default_limits`]
//! returns, and the scope each route's defaults are counted in. Which routes
//! take the defaults is said in code, by the router the layer wraps, not
//! learned from traffic: every request to such a route is checked before
//! anything behind the layer runs, from the first one on, concurrent first
//! requests included.
//!
//! A route's scope is `default:<route>`, its matched path (`/users/{id}`),
//! so its methods share one bucket per client (HEAD is GET's, as axum runs
//! the GET handler for it) and nothing a client sends, method or path,
//! names a new scope. The scopes are as many as the routes the layer wraps,
//! plus `default:<unmatched>` for requests it sees without a matched route
//! (a router's fallback, or the layer put around a whole router).

use crate::engine::{DefaultLimitsCounted, DefaultsShown};
use crate::forward::{forward, take_ready};
use crate::{Engine, client_ip};
use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The scope of requests that reach the layer without a matched route.
const UNMATCHED: &str = "default:<unmatched>";

/// A route layer that applies an engine's default limits
/// ([`crate::EngineBuilder::default_limits`]) to the routes it wraps. Made by
/// [`Engine::default_limits`]; add it with `Router::route_layer` after the
/// routes that take the defaults, and add the routes with a policy of their
/// own after it.
///
/// ```
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use policy_runtime::{rate_limit, Engine};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// async fn about() -> &'static str { "about" }
/// async fn items() -> &'static str { "items" }
///
/// #[rate_limit("5/minute")]
/// async fn search() -> &'static str { "found" }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().default_limits("200/day; 50/hour").build()?;
///     let app = Router::new()
///         .route("/about", get(about))
///         .route("/items", get(items))
///         .route_layer(engine.default_limits()) // the two routes above
///         .route("/search", get(search))        // its own limit instead
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let limit = |uri: &'static str| {
///         let app = app.clone();
///         async move {
///             let response = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
///             response.headers()["x-ratelimit-limit"].to_str().unwrap().to_owned()
///         }
///     };
///     assert_eq!(limit("/about").await, "50");
///     assert_eq!(limit("/items").await, "50");
///     assert_eq!(limit("/search").await, "5");
///     Ok(())
/// }
/// ```
///
/// Each route counts per client IP in its own scope, `default:<route>`.
/// A refused request gets the same 429 as a handler's own limit, and an
/// admitted one the rate-limit headers. Exempt clients
/// ([`crate::EngineBuilder::exempt_ips`]) are not counted.
#[derive(Clone)]
pub struct DefaultLimits {
    engine: Engine,
    scopes: Arc<RouteScopes>,
}

impl std::fmt::Debug for DefaultLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultLimits").finish_non_exhaustive()
    }
}

/// The scope names of the routes a layer has seen, made once per route.
/// Keyed by matched path, which the application's routes define: it holds
/// at most one entry per route the layer wraps.
struct RouteScopes {
    routes: RwLock<HashMap<Box<str>, Arc<str>, foldhash::fast::RandomState>>,
    /// `default:<unmatched>`, made once rather than per request.
    unmatched: Arc<str>,
}

impl Default for RouteScopes {
    fn default() -> Self {
        RouteScopes {
            routes: RwLock::default(),
            unmatched: Arc::from(UNMATCHED),
        }
    }
}

impl RouteScopes {
    fn of(&self, route: Option<&MatchedPath>) -> Arc<str> {
        let Some(route) = route.map(MatchedPath::as_str) else {
            return Arc::clone(&self.unmatched);
        };
        if let Some(scope) = self
            .routes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(route)
        {
            return Arc::clone(scope);
        }
        let mut scopes = self
            .routes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(
            scopes
                .entry(Box::from(route))
                .or_insert_with(|| Arc::from(format!("default:{route}"))),
        )
    }
}

impl Engine {
    /// The layer that applies this engine's default limits to the routes it
    /// wraps; see [`DefaultLimits`]. Without default limits configured it
    /// lets every request through, and a warning says so.
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::Engine;
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().default_limits("50/hour").build()?;
    ///     let app = Router::new()
    ///         .route("/", get(|| async { "home" }))
    ///         .route_layer(engine.default_limits())
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let response = app.oneshot(Request::get("/").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["x-ratelimit-remaining"], "49");
    ///     Ok(())
    /// }
    /// ```
    pub fn default_limits(&self) -> DefaultLimits {
        self.inner
            .default_limits_layered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if self.inner.rate_limits.config.defaults.is_none() {
            tracing::warn!(
                "`engine.default_limits()` was layered but the engine has no default limits, so it lets every request through; \
                 set them with `EngineBuilder::default_limits(\"200/day; 50/hour\")` or RATELIMIT_DEFAULT"
            );
        }
        DefaultLimits {
            engine: self.clone(),
            scopes: Arc::default(),
        }
    }
}

impl<S> Layer<S> for DefaultLimits {
    type Service = WithDefaultLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithDefaultLimits {
            inner,
            limits: self.clone(),
        }
    }
}

/// The service of [`DefaultLimits`].
#[derive(Clone)]
pub struct WithDefaultLimits<S> {
    inner: S,
    limits: DefaultLimits,
}

impl<S> std::fmt::Debug for WithDefaultLimits<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithDefaultLimits").finish_non_exhaustive()
    }
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for WithDefaultLimits<S>
where
    S: Service<Request<B>, Response = axum::http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxedResponse<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        let limits = self.limits.clone();
        Box::pin(async move {
            let engine = &limits.engine;
            let Some(defaults) = engine.inner.rate_limits.config.defaults.as_deref() else {
                return forward(inner, request, None).await;
            };
            // The layer applies the limits of the engine that made it, as
            // the routes it wraps were chosen for that engine.
            let scope = limits.scopes.of(request.extensions().get::<MatchedPath>());
            let client_ip = client_ip::peer_ip_in(request.extensions())
                .map(|peer| engine.inner.resolver.resolve(peer, request.headers()));
            let counted = engine
                .inner
                .rate_limits
                .enforce_defaults(defaults, &scope, client_ip, &engine.inner.resolver)
                .await;
            match counted {
                Err(refusal) => Ok(refusal),
                Ok(headers) => {
                    let mut request = request;
                    request
                        .extensions_mut()
                        .insert(DefaultLimitsCounted(headers));
                    let mut response = forward(inner, request, None).await?;
                    // A handler with `add_to_defaults` showed them with its own.
                    if let Some(headers) = headers.filter(|_| {
                        response
                            .extensions_mut()
                            .remove::<DefaultsShown>()
                            .is_none()
                    }) {
                        headers.apply(response.headers_mut());
                    }
                    Ok(response)
                }
            }
        })
    }
}
