//! The optional routes of [`Health`]: `/health/ping`, `/health/detailed`,
//! `/health/metrics` (feature `prometheus`), and a `/health` that answers
//! 503 while a check fails, as FastAPI and hosting-platform backends serve
//! them.
//!
//! This module owns those routes, the methods that ask for them and their
//! JSON bodies. The checks, and the three routes every [`Health`] serves,
//! are its parent's; nothing here sends a check's error (it is logged by
//! [`Health::failing`]), since health routes are usually public.

use super::Health;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// Which optional routes a [`Health`] serves.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Options {
    status_from_checks: bool,
    /// `/health` leaves the version out ([`Health::without_version`]).
    pub(super) without_version: bool,
    ping: bool,
    detailed: bool,
    #[cfg(feature = "prometheus")]
    metrics: bool,
}

impl Health {
    /// Makes `/health` run the checks: 200
    /// `{"checks":{"<name>":"ok",...},"status":"ok","version":"<version>"}`
    /// when every check passes, else 503
    /// `{"checks":{"<name>":"failing",...},"status":"degraded","version":"<version>"}`,
    /// for platforms whose health probe reads `/health` alone.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let database_up = Arc::new(AtomicBool::new(true));
    ///     let up = database_up.clone();
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0")
    ///         .check("database", move || {
    ///             let up = up.load(Ordering::Relaxed);
    ///             async move { if up { Ok(()) } else { Err("connection refused".to_owned()) } }
    ///         })
    ///         .status_from_checks()
    ///         .router();
    ///     let health = || app.clone().oneshot(Request::get("/health").body(Body::empty()).unwrap());
    ///
    ///     let ok = health().await?;
    ///     assert_eq!(ok.status(), 200);
    ///     let body = axum::body::to_bytes(ok.into_body(), 1024).await?;
    ///     assert_eq!(body, r#"{"checks":{"database":"ok"},"status":"ok","version":"1.0.0"}"#);
    ///
    ///     database_up.store(false, Ordering::Relaxed);
    ///     let degraded = health().await?;
    ///     assert_eq!(degraded.status(), 503);
    ///     let body = axum::body::to_bytes(degraded.into_body(), 1024).await?;
    ///     assert_eq!(body, r#"{"checks":{"database":"failing"},"status":"degraded","version":"1.0.0"}"#);
    ///     Ok(())
    /// }
    /// ```
    pub fn status_from_checks(mut self) -> Self {
        self.optional.status_from_checks = true;
        self
    }

    /// Leaves the version out of `/health`: `{"status":"ok"}`, as Flask
    /// backends answer (with [`Health::status_from_checks`], the checks and
    /// the status alone).
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0").without_version().router();
    ///     let health = app.clone().oneshot(Request::get("/health").body(Body::empty())?).await?;
    ///     assert_eq!(axum::body::to_bytes(health.into_body(), 1024).await?, r#"{"status":"ok"}"#);
    ///
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0")
    ///         .check("database", || async { Ok(()) })
    ///         .status_from_checks()
    ///         .without_version()
    ///         .router();
    ///     let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    ///     let body = axum::body::to_bytes(health.into_body(), 1024).await?;
    ///     assert_eq!(body, r#"{"checks":{"database":"ok"},"status":"ok"}"#);
    ///     Ok(())
    /// }
    /// ```
    pub fn without_version(mut self) -> Self {
        self.optional.without_version = true;
        self
    }

    /// Adds `GET /health/ping`: 200 `{"ping":"pong"}`, running no check.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0").ping_route().router();
    ///     let ping = app.oneshot(Request::get("/health/ping").body(Body::empty())?).await?;
    ///     assert_eq!(axum::body::to_bytes(ping.into_body(), 1024).await?, r#"{"ping":"pong"}"#);
    ///     Ok(())
    /// }
    /// ```
    pub fn ping_route(mut self) -> Self {
        self.optional.ping = true;
        self
    }

    /// Adds `GET /health/detailed`: the checks, the version and the seconds
    /// since the router was made; 200 with `"status":"ok"`, or 503 with
    /// `"status":"degraded"` and the failing checks in `failing`, in the
    /// order they were added:
    /// `{"checks":{"cache":"failing"},"failing":["cache"],"status":"degraded","uptime_seconds":0,"version":"1.0.0"}`.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0")
    ///         .check("cache", || async { Err::<(), _>("connection refused".to_owned()) })
    ///         .detailed_route()
    ///         .router();
    ///     let detailed = app.oneshot(Request::get("/health/detailed").body(Body::empty())?).await?;
    ///     assert_eq!(detailed.status(), 503);
    ///     let body: serde_json::Value =
    ///         serde_json::from_slice(&axum::body::to_bytes(detailed.into_body(), 1024).await?)?;
    ///     assert_eq!(body["checks"], serde_json::json!({"cache": "failing"}));
    ///     assert_eq!(body["failing"], serde_json::json!(["cache"]));
    ///     assert_eq!(body["status"], "degraded");
    ///     assert!(body["uptime_seconds"].is_u64());
    ///     Ok(())
    /// }
    /// ```
    pub fn detailed_route(mut self) -> Self {
        self.optional.detailed = true;
        self
    }

    /// Adds `GET /health/metrics`: the Prometheus text of
    /// [`Metrics::scrape`](crate::Metrics::scrape) (a 503 JSON error until
    /// [`Metrics::install`](crate::Metrics::install) ran). Like every health
    /// route it needs no key; put [`Metrics::scrape`](crate::Metrics::scrape)
    /// behind `#[require_api_key]` on a route of your own instead where the
    /// metrics must stay private.
    ///
    /// ```
    /// use axum::{body::Body, http::Request};
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     policy_runtime::Metrics::install()?;
    ///     let app: axum::Router = policy_runtime::Health::new("1.0.0").metrics_route().router();
    ///     let metrics = app.oneshot(Request::get("/health/metrics").body(Body::empty())?).await?;
    ///     assert_eq!(metrics.status(), 200);
    ///     assert!(metrics.headers()["content-type"].to_str()?.starts_with("text/plain"));
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics_route(mut self) -> Self {
        self.optional.metrics = true;
        self
    }
}

/// The `/health` route that runs the checks, when asked for.
pub(super) fn summary<S>(health: &Arc<Health>) -> Option<MethodRouter<S>>
where
    S: Clone + Send + Sync + 'static,
{
    if !health.optional.status_from_checks {
        return None;
    }
    let health = health.clone();
    Some(get(move || {
        let health = health.clone();
        async move {
            let (checks, failing) = health.states().await;
            let mut body = json!({"checks": checks});
            if !health.optional.without_version {
                body["version"] = Value::from(&*health.version);
            }
            respond(failing.is_empty(), body)
        }
    }))
}

/// Adds the optional routes that were asked for.
pub(super) fn add<S>(mut router: Router<S>, health: &Arc<Health>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let options = health.optional;
    if options.ping {
        router = router.route(
            "/health/ping",
            get(|| async { Json(json!({"ping": "pong"})) }),
        );
    }
    if options.detailed {
        let health = health.clone();
        let started = Instant::now();
        router = router.route(
            "/health/detailed",
            get(move || {
                let health = health.clone();
                async move {
                    let (checks, failing) = health.states().await;
                    let mut body = json!({
                        "checks": checks,
                        "uptime_seconds": started.elapsed().as_secs(),
                        "version": health.version,
                    });
                    if !failing.is_empty() {
                        body["failing"] = Value::from(failing.clone());
                    }
                    respond(failing.is_empty(), body)
                }
            }),
        );
    }
    #[cfg(feature = "prometheus")]
    if options.metrics {
        router = router.route(
            "/health/metrics",
            get(|| async { crate::Metrics::scrape() }),
        );
    }
    router
}

/// 200 with `"status":"ok"`, or 503 with `"status":"degraded"`.
fn respond(healthy: bool, mut body: Value) -> Response {
    if healthy {
        body["status"] = Value::from("ok");
        Json(body).into_response()
    } else {
        body["status"] = Value::from("degraded");
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
