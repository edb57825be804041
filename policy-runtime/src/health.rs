//! [`Health`]: a ready-made router for `/health`, `/health/live` and
//! `/health/ready`, and the readiness checks behind it.
//!
//! This module owns the three endpoints and their JSON bodies. Whether a
//! backend is reachable is the backend's business: the engine's limiter
//! store answers through [`crate::LimiterStore::ready`], and applications
//! add their own checks with [`Health::check`]. The routes a service may
//! add (`/health/ping`, `/health/detailed`, `/health/metrics`, a `/health`
//! that follows the checks) are [`optional`]'s.

mod optional;

use crate::Engine;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type ReadinessCheck = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The health endpoints of a service:
///
/// | route | answer |
/// | --- | --- |
/// | `GET /health` | 200 `{"status": "ok", "version": "<version>"}` |
/// | `GET /health/live` | 200 `{"status": "ok"}` while the process runs |
/// | `GET /health/ready` | 200 `{"checks": {"<name>": "ok", ...}, "status": "ready"}` when every check passes; else 503 `{"checks": {"<name>": "failing", ...}, "failing": ["<name>"], "status": "unavailable"}` |
///
/// Members come in alphabetical order, checks by name; `failing` lists the
/// failing checks in the order they were added. A service may also ask for
/// `/health/ping` ([`Health::ping_route`]), `/health/detailed`
/// ([`Health::detailed_route`]), `/health/metrics` ([`Health::metrics_route`],
/// feature `prometheus`), and a `/health` that answers 503 while a check
/// fails ([`Health::status_from_checks`]).
/// A failing check's error is logged at warn level, never sent: health
/// endpoints are usually reachable without a key.
///
/// ```
/// use axum::{body::Body, http::Request, Router};
/// use policy_runtime::{Engine, Health};
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().build()?;
///     let health = Health::new("1.4.2")
///         .engine(&engine) // the rate-limit store, as `rate_limit_store`
///         .check("database", || async { Ok(()) });
///     let app = Router::new().merge(health.router()).layer(engine);
///
///     let ready = app.oneshot(Request::get("/health/ready").body(Body::empty())?).await?;
///     assert_eq!(ready.status(), 200);
///     let body = axum::body::to_bytes(ready.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"checks":{"database":"ok","rate_limit_store":"ok"},"status":"ready"}"#);
///     Ok(())
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "health")))]
#[derive(Clone)]
pub struct Health {
    version: Cow<'static, str>,
    checks: Vec<(Cow<'static, str>, ReadinessCheck)>,
    optional: optional::Options,
}

impl Health {
    /// Health endpoints reporting `version`, with no readiness check yet.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: axum::Router = policy_runtime::Health::new("1.4.2").router();
    ///     let response = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    ///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
    ///     assert_eq!(body, r#"{"status":"ok","version":"1.4.2"}"#);
    ///     Ok(())
    /// }
    /// ```
    pub fn new(version: impl Into<Cow<'static, str>>) -> Self {
        Health {
            version: version.into(),
            checks: Vec::new(),
            optional: optional::Options::default(),
        }
    }

    /// Adds the engine's backends to the readiness checks: its rate-limit
    /// store, as `rate_limit_store`.
    ///
    /// ```
    /// #[tokio::main]
    /// async fn main() {
    ///     let engine = policy_runtime::Engine::builder().build().unwrap();
    ///     let health = policy_runtime::Health::new("1.0.0").engine(&engine);
    ///     // The in-memory store is always ready.
    ///     assert!(health.failing().await.is_empty());
    /// }
    /// ```
    pub fn engine(self, engine: &Engine) -> Self {
        let engine = engine.clone();
        self.check("rate_limit_store", move || {
            let engine = engine.clone();
            async move {
                engine
                    .inner
                    .rate_limits
                    .store
                    .ready()
                    .await
                    .map_err(|error| error.to_string())
            }
        })
    }

    /// Adds a readiness check: `/health/ready` answers 503 while it fails.
    ///
    /// ```
    /// #[tokio::main]
    /// async fn main() {
    ///     let health = policy_runtime::Health::new("1.0.0").check("cache", || async {
    ///         Err::<(), _>("connection refused".to_string()) // logged, never sent
    ///     });
    ///     assert_eq!(health.failing().await, ["cache"]);
    /// }
    /// ```
    pub fn check<F, Fut>(mut self, name: impl Into<Cow<'static, str>>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: ReadinessCheck = Arc::new(move || Box::pin(check()) as CheckFuture);
        self.checks.push((name.into(), check));
        self
    }

    /// Runs every readiness check: the names of those that fail, in order.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let health = policy_runtime::Health::new("1.0.0")
    ///     .check("cache", || async { Err::<(), _>("down".to_string()) });
    /// assert_eq!(health.failing().await, ["cache"]);
    /// # });
    /// ```
    pub async fn failing(&self) -> Vec<String> {
        let mut failing = Vec::new();
        for (name, check) in &self.checks {
            if let Err(error) = check().await {
                tracing::warn!(check = &**name, %error, "readiness check failed");
                failing.push(name.to_string());
            }
        }
        failing
    }

    /// Runs the checks: each one's state by name, and the failing ones in
    /// the order they were added.
    async fn states(&self) -> (Map<String, Value>, Vec<String>) {
        let failing = self.failing().await;
        let checks = self
            .checks
            .iter()
            .map(|(name, _)| {
                let state = if failing.iter().any(|f| f == name) {
                    "failing"
                } else {
                    "ok"
                };
                (name.to_string(), Value::from(state))
            })
            .collect();
        (checks, failing)
    }

    /// The router of `/health`, `/health/live` and `/health/ready`, to
    /// merge into the application's.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0").router();
    ///     let live = app.clone().oneshot(Request::get("/health/live").body(Body::empty())?).await?;
    ///     assert_eq!(axum::body::to_bytes(live.into_body(), 1024).await?, r#"{"status":"ok"}"#);
    ///     let ready = app.oneshot(Request::get("/health/ready").body(Body::empty())?).await?;
    ///     assert_eq!(axum::body::to_bytes(ready.into_body(), 1024).await?, r#"{"checks":{},"status":"ready"}"#);
    ///     Ok(())
    /// }
    /// ```
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let version = (!self.optional.without_version).then(|| self.version.clone());
        let ready = Arc::new(self);
        let health = optional::summary(&ready).unwrap_or_else(|| {
            get(move || {
                let body = match &version {
                    Some(version) => json!({"status": "ok", "version": version}),
                    None => json!({"status": "ok"}),
                };
                async move { Json(body) }
            })
        });
        let router = Router::new()
            .route("/health", health)
            .route(
                "/health/live",
                get(|| async { Json(json!({"status": "ok"})) }),
            )
            .route(
                "/health/ready",
                get({
                    let ready = ready.clone();
                    move || {
                        let health = ready.clone();
                        async move { health.readiness().await }
                    }
                }),
            );
        optional::add(router, &ready)
    }

    async fn readiness(&self) -> Response {
        let (checks, failing) = self.states().await;
        if failing.is_empty() {
            Json(json!({"status": "ready", "checks": checks})).into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "failing": failing, "checks": checks})),
            )
                .into_response()
        }
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("version", &self.version)
            .field(
                "checks",
                &self.checks.iter().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}
