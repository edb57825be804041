//! [`Metrics`]: Prometheus metrics of requests and policy decisions.
//!
//! This module owns the metric names and labels, installing the
//! process-wide recorder (`metrics-exporter-prometheus`, which also writes
//! the exposition text) and the few functions every other module calls to
//! record: [`decision`], [`store_error`] and [`request`]. Until
//! [`Metrics::install`] runs, those functions return at once, so metrics
//! that are off cost one relaxed atomic load.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route` |
//! | `policy_decisions_total` | counter | `policy` (`rate_limit`, `api_key`), `outcome` (`allowed`, `exempt`, `rate_limited`, `rejected`, `auth_failed`), `reason`, `scope` |
//! | `policy_store_errors_total` | counter | `store` |

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Latency buckets, in seconds: from 5 ms to the 30 s a request may take.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder: install it once at start-up, serve
/// [`Metrics::render`] (or [`Metrics::scrape`]) on `/metrics` behind an API
/// key.
///
/// Requests are counted by [`crate::RequestLayer`]; policy decisions and
/// store errors by the policies themselves.
///
/// ```
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{response::Response, routing::get, Router};
/// use policy_runtime::{require_api_key, ApiKey, Engine, Metrics, RequestLayer};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[require_api_key(scope = "metrics")]
/// async fn metrics() -> Response {
///     Metrics::scrape()
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     Metrics::install()?;
///     let engine = Engine::builder()
///         .api_key_with(ApiKey::new("prometheus", "scraper-key-0123456789abcdef").scopes(["metrics"]))
///         .build()?;
///     let app = Router::new()
///         .route("/metrics", get(metrics))
///         .layer(engine)
///         .layer(RequestLayer::new())
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let scrape = || {
///         let request = Request::get("/metrics").header("x-api-key", "scraper-key-0123456789abcdef");
///         app.clone().oneshot(request.body(Body::empty()).unwrap())
///     };
///
///     assert_eq!(scrape().await?.status(), 200);
///     let text = axum::body::to_bytes(scrape().await?.into_body(), 1 << 20).await?;
///     let text = String::from_utf8(text.to_vec())?;
///     assert!(text.contains(r#"http_requests_total{method="GET",route="/metrics",status="200"} 1"#));
///     assert!(text.contains(r#"policy_decisions_total{policy="api_key""#));
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// Another metrics recorder is installed in the process already.
///
/// ```
/// let error = policy_runtime::MetricsError::new("a recorder is already installed");
/// assert!(error.to_string().contains("already installed"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("could not install the Prometheus metrics recorder: {message}")]
pub struct MetricsError {
    message: String,
}

impl MetricsError {
    /// An error with a message.
    ///
    /// ```
    /// let error = policy_runtime::MetricsError::new("no");
    /// assert_eq!(error.to_string(), "could not install the Prometheus metrics recorder: no");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        MetricsError {
            message: message.into(),
        }
    }
}

impl Metrics {
    /// Installs the Prometheus recorder for the whole process, or returns
    /// the one installed before. Fails only when another `metrics` recorder
    /// is installed already.
    ///
    /// ```
    /// let metrics = policy_runtime::Metrics::install().unwrap();
    /// let again = policy_runtime::Metrics::install().unwrap();
    /// assert_eq!(metrics.render(), again.render());
    /// ```
    pub fn install() -> Result<Metrics, MetricsError> {
        static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(metrics) = INSTALLED.get() {
            return Ok(metrics.clone());
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("http_request_duration_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .map_err(|error| MetricsError::new(error.to_string()))?
            .install_recorder()
            .map_err(|error| MetricsError::new(error.to_string()))?;
        let metrics = INSTALLED.get_or_init(|| Metrics { handle });
        ENABLED.store(true, Ordering::Relaxed);
        Ok(metrics.clone())
    }

    /// The recorder [`Metrics::install`] installed, if it ran.
    ///
    /// ```
    /// policy_runtime::Metrics::install().unwrap();
    /// assert!(policy_runtime::Metrics::installed().is_some());
    /// ```
    pub fn installed() -> Option<Metrics> {
        INSTALLED.get().cloned()
    }

    /// Every metric in the Prometheus text exposition format.
    ///
    /// ```
    /// let metrics = policy_runtime::Metrics::install().unwrap();
    /// metrics::counter!("jobs_done_total").increment(2); // any `metrics` macro records here
    /// assert!(metrics.render().contains("jobs_done_total 2"));
    /// ```
    pub fn render(&self) -> String {
        // Upkeep drains histogram samples; a scrape is the natural time.
        self.handle.run_upkeep();
        self.handle.render()
    }

    /// The response of a `/metrics` endpoint: the exposition text, or a 503
    /// error when [`Metrics::install`] never ran.
    ///
    /// ```
    /// policy_runtime::Metrics::install().unwrap();
    /// let response = policy_runtime::Metrics::scrape();
    /// assert_eq!(response.status(), axum::http::StatusCode::OK);
    /// ```
    pub fn scrape() -> Response {
        match Metrics::installed() {
            Some(metrics) => metrics.into_response(),
            None => crate::ErrorBody::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "METRICS_DISABLED",
                "Metrics are not enabled; call Metrics::install at start-up",
            )
            .into_response(),
        }
    }
}

impl IntoResponse for Metrics {
    fn into_response(self) -> Response {
        let mut response = self.render().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Whether a recorder is installed.
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts one policy decision: `policy` (`rate_limit`, `api_key`), its
/// `outcome`, the `reason` of a refusal (`none` otherwise) and the `scope`
/// (the rate-limit scope, or the handler for API keys). The one place
/// policies record decisions; call it next to the decision's log event.
#[inline]
pub(crate) fn decision(
    policy: &'static str,
    outcome: &'static str,
    reason: &'static str,
    scope: &str,
) {
    if !enabled() {
        return;
    }
    ::metrics::counter!(
        "policy_decisions_total",
        "policy" => policy,
        "outcome" => outcome,
        "reason" => reason,
        "scope" => scope.to_owned(),
    )
    .increment(1);
}

/// Counts one failure of a store backend to answer.
#[inline]
pub(crate) fn store_error(store: &'static str) {
    if !enabled() {
        return;
    }
    ::metrics::counter!("policy_store_errors_total", "store" => store).increment(1);
}

/// Counts one finished request and its latency.
pub(crate) fn request(method: &Method, route: &str, status: StatusCode, latency: Duration) {
    let method = method_label(method);
    let route = route.to_owned();
    ::metrics::counter!(
        "http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status.as_str().to_owned(),
    )
    .increment(1);
    ::metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
    )
    .record(latency.as_secs_f64());
}

/// Standard methods as static labels; any other method is `other`, so a
/// client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
