//! Policy decisions reach whatever `metrics` recorder the application uses,
//! without `Metrics::install` and without the `prometheus` feature: here
//! metrics-util's `DebuggingRecorder`, set for the test's thread only.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, send};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use policy_runtime::{Engine, rate_limit, require_api_key};

#[rate_limit("1/minute")]
async fn limited() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

fn app() -> Router {
    let engine = Engine::builder()
        .api_key("client", "client-key-0123456789abcdef")
        .build()
        .unwrap();
    Router::new()
        .route("/limited", get(limited))
        .route("/keyed", get(keyed))
        .layer(engine)
}

async fn status(app: &Router, uri: &str) -> StatusCode {
    send(
        app,
        from("192.0.2.9", "GET", uri).body(Body::empty()).unwrap(),
    )
    .await
    .status
}

/// Every `policy_decisions_total` counter the recorder holds, as its labels
/// (`policy`, `outcome`, `reason`, `scope`, in that order) and value; taking
/// them resets them.
fn decisions(snapshotter: &Snapshotter) -> Vec<([String; 4], u64)> {
    let mut found: Vec<([String; 4], u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            key.kind() == MetricKind::Counter && key.key().name() == "policy_decisions_total"
        })
        .map(|(key, _, _, value)| {
            let label = |name: &str| {
                key.key()
                    .labels()
                    .find(|label| label.key() == name)
                    .map_or_else(String::new, |label| label.value().to_owned())
            };
            let DebugValue::Counter(count) = value else {
                panic!("policy_decisions_total is a counter");
            };
            let labels = ["policy", "outcome", "reason", "scope"].map(label);
            (labels, count)
        })
        .filter(|(_, count)| *count > 0)
        .collect();
    found.sort();
    found
}

fn labels(policy: &str, outcome: &str, reason: &str, scope: &str) -> [String; 4] {
    [policy, outcome, reason, scope].map(str::to_owned)
}

#[tokio::test]
async fn an_applications_recorder_counts_every_decision_with_its_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let app = app();

    assert_eq!(status(&app, "/limited").await, StatusCode::OK);
    assert_eq!(
        status(&app, "/limited").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, "/limited").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);

    assert_eq!(
        decisions(&snapshotter),
        [
            (
                labels("api_key", "deny", "missing", "metrics_recorder::keyed"),
                1
            ),
            (
                labels("rate_limit", "allow", "none", "metrics_recorder::limited"),
                1
            ),
            (
                labels(
                    "rate_limit",
                    "deny",
                    "limit_exceeded",
                    "metrics_recorder::limited"
                ),
                2
            ),
        ]
    );
}

#[tokio::test]
async fn a_new_recorder_gets_the_decisions_made_after_it_is_set() {
    let app = app();
    let first = DebuggingRecorder::new();
    let first_counts = first.snapshotter();
    let second = DebuggingRecorder::new();
    let second_counts = second.snapshotter();
    let denied = labels("api_key", "deny", "missing", "metrics_recorder::keyed");

    // No recorder: nothing to count into, and nothing fails.
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);

    let guard = metrics::set_default_local_recorder(&first);
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);
    drop(guard);
    let guard = metrics::set_default_local_recorder(&second);
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);
    drop(guard);
    let _guard = metrics::set_default_local_recorder(&first);
    assert_eq!(status(&app, "/keyed").await, StatusCode::UNAUTHORIZED);

    assert_eq!(decisions(&first_counts), [(denied.clone(), 2)]);
    assert_eq!(decisions(&second_counts), [(denied, 2)]);
}

#[cfg(feature = "request-layer")]
#[tokio::test]
async fn the_request_layer_counts_requests_into_the_applications_recorder() {
    use policy_runtime::RequestLayer;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _recorder = metrics::set_default_local_recorder(&recorder);
    let app = app().layer(RequestLayer::new());

    assert_eq!(status(&app, "/limited").await, StatusCode::OK);
    assert_eq!(
        status(&app, "/limited").await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let mut requests: Vec<(String, String)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let labels: Vec<String> = key
                .key()
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(count) => count.to_string(),
                DebugValue::Histogram(samples) => format!("{} samples", samples.len()),
                DebugValue::Gauge(_) => return None,
            };
            key.key().name().starts_with("http_").then(|| {
                (
                    format!("{}{{{}}}", key.key().name(), labels.join(",")),
                    value,
                )
            })
        })
        .collect();
    requests.sort();
    assert_eq!(
        requests,
        [
            (
                "http_request_duration_seconds{method=GET,route=/limited}".to_owned(),
                "2 samples".to_owned()
            ),
            (
                "http_requests_total{method=GET,route=/limited,status=200}".to_owned(),
                "1".to_owned()
            ),
            (
                "http_requests_total{method=GET,route=/limited,status=429}".to_owned(),
                "1".to_owned()
            ),
        ]
    );
}
