//! [`Metrics`]: the Prometheus recorder and its exposition text (feature
//! `prometheus`).
//!
//! This module owns installing `metrics-exporter-prometheus` as the
//! process-wide `metrics` recorder, with the latency buckets of
//! `http_request_duration_seconds`, and serving its text. What is recorded,
//! and when, is the parent module's.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static INSTALLED: OnceLock<Metrics> = OnceLock::new();

/// Latency buckets, in seconds: from 5 ms to the 30 s a request may take.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide Prometheus recorder: install it once at start-up, serve
/// [`Metrics::render`] (or [`Metrics::scrape`]) on `/metrics` behind an API
/// key.
///
/// The policies count their decisions and store errors, and the
/// `RequestLayer` (feature `request-layer`) counts requests, through the
/// `metrics` facade: this recorder is one way to keep them, an
/// application's own `metrics` recorder is another.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{response::Response, routing::get, Router};
/// use policy_runtime::{require_api_key, ApiKey, Engine, Metrics};
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
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let scrape = || {
///         let request = Request::get("/metrics").header("x-api-key", "scraper-key-0123456789abcdef");
///         app.clone().oneshot(request.body(Body::empty()).unwrap())
///     };
///
///     assert_eq!(scrape().await?.status(), 200);
///     let text = axum::body::to_bytes(scrape().await?.into_body(), 1 << 20).await?;
///     let text = String::from_utf8(text.to_vec())?;
///     assert!(text.contains(r#"policy_decisions_total{policy="api_key",outcome="allow""#), "{text}");
///     Ok(())
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
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
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
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
