//! [`Health`]: a ready-made router for `/health`, `/health/live` and
//! `/health/ready`, and the readiness checks behind it.
//!
//! This module owns the three endpoints and their JSON bodies, and running
//! the checks behind them: each within a timeout, one run at a time shared
//! by the requests that wait for it, since health routes are public. Whether
//! a backend is reachable is the backend's business: the engine's limiter
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type ReadinessCheck = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The outcome of one run of the checks: each one's state by name, and the
/// failing ones in the order they were added.
type Outcome = (Map<String, Value>, Vec<String>);

/// The routes' runs of the checks.
#[derive(Default)]
struct Runs {
    /// How many runs have ended: a request that sees it change while it
    /// waits for `last` arrived during the run that ended.
    ended: AtomicU64,
    /// The last run's outcome and when it ended; locked while a run is
    /// under way, so that the requests arriving meanwhile wait for it.
    last: Mutex<Option<(Instant, Outcome)>>,
}

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
/// Since anyone may call them, the routes bound what a call costs: a check
/// that has not answered within 2 s ([`Health::check_timeout`]) fails, and
/// the requests that arrive while the checks run wait for that run and share
/// its answer, so a burst of requests runs each check once. A service whose
/// checks are costly can reuse one run for longer with
/// [`Health::cache_for`].
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
    check_timeout: Duration,
    cache_for: Duration,
    runs: Arc<Runs>,
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
            check_timeout: Duration::from_secs(2),
            cache_for: Duration::ZERO,
            runs: Arc::default(),
        }
    }

    /// How long one check may take: one that has not answered by then
    /// fails (logged as timed out). 2 s by default; a zero timeout is taken
    /// as 1 ms.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[tokio::main]
    /// async fn main() {
    ///     let health = policy_runtime::Health::new("1.0.0")
    ///         .check_timeout(Duration::from_millis(50))
    ///         .check("database", || std::future::pending()); // never answers
    ///     assert_eq!(health.failing().await, ["database"]);
    /// }
    /// ```
    pub fn check_timeout(mut self, timeout: Duration) -> Self {
        self.check_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long the routes reuse one run of the checks: a request within
    /// `ttl` of the end of the last run gets its answer without running the
    /// checks again. Off (zero) by default, when only the requests that
    /// arrive during a run share it. For checks that cost the backend
    /// something (a database query, say), since the routes are public.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let health = policy_runtime::Health::new("1.0.0")
    ///     .cache_for(Duration::from_secs(5))
    ///     .check("database", || async { Ok(()) });
    /// let app: axum::Router = health.router();
    /// ```
    pub fn cache_for(mut self, ttl: Duration) -> Self {
        self.cache_for = ttl;
        self
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

    /// Runs every readiness check, each within the timeout: the names of
    /// those that fail, in order. Unlike the routes, every call runs them.
    /// The timeout is Tokio's timer, so the runtime needs it (as
    /// `#[tokio::main]` and axum's servers have it; a runtime built by hand
    /// needs `enable_time()`).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let health = policy_runtime::Health::new("1.0.0")
    ///     .check("cache", || async { Err::<(), _>("down".to_string()) });
    /// assert_eq!(health.failing().await, ["cache"]);
    /// # });
    /// ```
    pub async fn failing(&self) -> Vec<String> {
        let mut failing = Vec::new();
        for (name, check) in &self.checks {
            let error = match tokio::time::timeout(self.check_timeout, check()).await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error,
                Err(_) => format!("no answer within {:?}", self.check_timeout),
            };
            tracing::warn!(check = &**name, %error, "readiness check failed");
            failing.push(name.to_string());
        }
        failing
    }

    /// The checks' states for the routes: the last run's when it ended
    /// after this request arrived (the request waited for it) or within
    /// [`Health::cache_for`] before; else a new run, which the requests
    /// arriving meanwhile wait for.
    async fn states(&self) -> Outcome {
        let arrived = Instant::now();
        let ended_before = self.runs.ended.load(Ordering::Acquire);
        let mut last = self.runs.last.lock().await;
        if let Some((ended_at, outcome)) = &*last {
            let waited_for_it = self.runs.ended.load(Ordering::Acquire) != ended_before;
            let fresh = !self.cache_for.is_zero() && *ended_at + self.cache_for >= arrived;
            if waited_for_it || fresh {
                return outcome.clone();
            }
        }
        let outcome = self.run().await;
        *last = Some((Instant::now(), outcome.clone()));
        self.runs.ended.fetch_add(1, Ordering::Release);
        outcome
    }

    /// Runs the checks: each one's state by name, and the failing ones in
    /// the order they were added.
    async fn run(&self) -> Outcome {
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
        // A run of its own: a clone of this `Health`, which may hold other
        // checks, must not answer for it.
        let ready = Arc::new(Health {
            runs: Arc::default(),
            ..self
        });
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
            .field("check_timeout", &self.check_timeout)
            .field("cache_for", &self.cache_for)
            .finish()
    }
}
