//! Request ids, the request span and its log events, Prometheus metrics and
//! the health endpoints, through a real Router.
#![cfg(all(feature = "request-layer", feature = "prometheus", feature = "health"))]

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use common::app_error::{AppError, DatabaseDown};
use common::{Logs, Reply, from, send};
use policy_runtime::{
    ApiKey, ClientKey, Decision, Engine, ErrorFormat, Health, LimitRequest, LimiterStore, Metrics,
    RequestLayer, StoreError, StoreFuture, rate_limit, require_api_key,
};
use std::time::Duration;

const SCRAPER_KEY: &str = "scraper-key-0123456789abcdef";
const CLIENT_KEY: &str = "client-key-0123456789abcdef";

#[rate_limit("2/minute")]
async fn user(Path(id): Path<u64>) -> Result<&'static str, AppError> {
    tracing::info!(id, "looking the user up");
    if id == 500 {
        return Err(AppError::Profile(DatabaseDown));
    }
    Err(AppError::UserNotFound { id })
}

/// Only the metrics test calls it, so other tests running at the same
/// time do not change its counters.
#[rate_limit("2/minute")]
async fn metered(Path(id): Path<u64>) -> Result<&'static str, AppError> {
    Err(AppError::UserNotFound { id })
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(30)).await;
    "done"
}

#[require_api_key(scope = "metrics")]
async fn metrics() -> Response {
    Metrics::scrape()
}

fn engine(format: ErrorFormat) -> Engine {
    Engine::builder()
        .api_key_with(ApiKey::new("prometheus", SCRAPER_KEY).scopes(["metrics"]))
        .api_key("client", CLIENT_KEY)
        .error_format(format)
        .build()
        .unwrap()
}

fn app(engine: Engine) -> Router {
    Router::new()
        .route("/users/{id}", get(user))
        .route("/metered/{id}", get(metered))
        .route("/keyed", get(keyed))
        .route("/slow", get(slow))
        .route("/metrics", get(metrics))
        .layer(engine)
        .layer(RequestLayer::new().slow_threshold(Duration::from_millis(20)))
}

fn get_with_id(uri: &str, id: Option<&str>) -> axum::http::Request<Body> {
    let mut builder = from("192.0.2.1", "GET", uri);
    if let Some(id) = id {
        builder = builder.header("x-request-id", id);
    }
    builder.body(Body::empty()).unwrap()
}

fn is_uuid_v4(id: &str) -> bool {
    id.len() == 36 && id.as_bytes()[14] == b'4' && id.bytes().filter(|b| *b == b'-').count() == 4
}

#[tokio::test]
async fn request_ids_are_kept_when_safe_generated_otherwise_and_in_error_bodies() {
    let app = app(engine(ErrorFormat::Detailed));

    let reply = send(&app, get_with_id("/users/7", Some("client-id_42.a"))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("x-request-id"), "client-id_42.a");
    assert_eq!(reply.json()["request_id"], "client-id_42.a");

    for unsafe_id in ["has space", "quote\"d", &"a".repeat(129)] {
        let reply = send(&app, get_with_id("/users/7", Some(unsafe_id))).await;
        let id = reply.header("x-request-id").to_owned();
        assert!(is_uuid_v4(&id), "{id}");
        assert_eq!(reply.json()["request_id"], id.as_str());
    }

    let reply = send(&app, get_with_id("/users/7", None)).await;
    let id = reply.header("x-request-id").to_owned();
    assert!(is_uuid_v4(&id), "{id}");
    assert_eq!(reply.json()["request_id"], id.as_str());

    // Successful responses carry the id too.
    let reply = send(
        &app,
        from("192.0.2.9", "GET", "/keyed")
            .header("x-api-key", CLIENT_KEY)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(is_uuid_v4(reply.header("x-request-id")));
}

#[tokio::test]
async fn every_event_of_a_request_carries_its_id_in_one_span() {
    let (logs, _guard) = Logs::capture();
    let app = app(engine(ErrorFormat::Compact));

    let reply = send(&app, get_with_id("/users/500", Some("req-logs-1"))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.header("x-request-id"), "req-logs-1");

    let events = logs.events();
    let of_request: Vec<_> = events
        .iter()
        .filter(|event| event["span"]["request_id"] == "req-logs-1")
        .collect();
    let message = |event: &serde_json::Value| {
        event["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    // The handler's own event, the policy's decision, the 5xx with its
    // sources at error level, and the closing event.
    assert!(
        of_request
            .iter()
            .any(|e| message(e) == "looking the user up"),
        "{}",
        logs.text()
    );
    assert!(
        of_request
            .iter()
            .any(|e| e["fields"]["policy"] == "rate_limit"),
        "{}",
        logs.text()
    );
    let failure = of_request
        .iter()
        .find(|e| e["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error event in {}", logs.text()));
    assert_eq!(
        failure["fields"]["sources"],
        "connection to db-primary.internal:5432 refused"
    );
    let finished = of_request
        .iter()
        .find(|e| message(e) == "request finished")
        .unwrap_or_else(|| panic!("no closing event in {}", logs.text()));
    assert_eq!(finished["level"], "INFO");
    assert_eq!(finished["fields"]["status"], 500);
    assert!(finished["fields"]["latency_ms"].is_u64());
    assert_eq!(finished["span"]["name"], "request");
    assert_eq!(finished["span"]["method"], "GET");
    assert_eq!(finished["span"]["route"], "/users/{id}");
    // Every event of the request is in the span.
    let outside: Vec<_> = events
        .iter()
        .filter(|e| {
            e["fields"]["policy"] == "rate_limit" && e["span"]["request_id"] != "req-logs-1"
        })
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[tokio::test]
async fn slow_requests_log_a_warning() {
    let (logs, _guard) = Logs::capture();
    let app = app(engine(ErrorFormat::Compact));
    let reply = send(&app, get_with_id("/slow", Some("req-slow-1"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let warning = logs
        .events()
        .into_iter()
        .find(|e| e["fields"]["message"] == "slow request")
        .unwrap_or_else(|| panic!("no slow-request warning in {}", logs.text()));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["fields"]["threshold_ms"], 20);
    assert!(warning["fields"]["latency_ms"].as_u64().unwrap() >= 20);
    assert_eq!(warning["span"]["request_id"], "req-slow-1");
    assert_eq!(warning["span"]["route"], "/slow");
}

/// The value of the sample of `name` whose labels include every pair, or 0.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn scrape(app: &Router) -> String {
    let reply = send(
        app,
        from("192.0.2.50", "GET", "/metrics")
            .header("x-api-key", SCRAPER_KEY)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    reply.body
}

#[tokio::test]
async fn metrics_count_requests_latency_and_policy_decisions() {
    Metrics::install().unwrap();
    let app = app(engine(ErrorFormat::Compact));

    // The scrape endpoint is protected by a scoped key.
    let anonymous = send(&app, get_with_id("/metrics", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong_scope: Reply = send(
        &app,
        from("192.0.2.51", "GET", "/metrics")
            .header("x-api-key", CLIENT_KEY)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong_scope.status, StatusCode::FORBIDDEN);

    let before = scrape(&app).await;
    let user_404 = [
        ("method", "GET"),
        ("route", "/metered/{id}"),
        ("status", "404"),
    ];
    let user_429 = [
        ("method", "GET"),
        ("route", "/metered/{id}"),
        ("status", "429"),
    ];
    let allowed = [
        ("policy", "rate_limit"),
        ("outcome", "allow"),
        ("scope", "observability::metered"),
    ];
    let limited = [
        ("policy", "rate_limit"),
        ("outcome", "deny"),
        ("reason", "limit_exceeded"),
        ("scope", "observability::metered"),
    ];
    let missing_key = [
        ("policy", "api_key"),
        ("outcome", "deny"),
        ("reason", "missing"),
    ];

    let client = |uri: &str| {
        from("198.51.100.77", "GET", uri)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(
            send(&app, client("/metered/1")).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        send(&app, client("/metered/1")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, client("/keyed")).await.status,
        StatusCode::UNAUTHORIZED
    );

    let after = scrape(&app).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(delta("http_requests_total", &user_404), 2.0, "{after}");
    assert_eq!(delta("http_requests_total", &user_429), 1.0, "{after}");
    assert_eq!(
        delta(
            "http_request_duration_seconds_count",
            &[("route", "/metered/{id}")]
        ),
        3.0,
        "{after}"
    );
    assert!(
        after.contains("http_request_duration_seconds_bucket{"),
        "{after}"
    );
    assert_eq!(delta("policy_decisions_total", &allowed), 2.0, "{after}");
    assert_eq!(delta("policy_decisions_total", &limited), 1.0, "{after}");
    assert!(
        delta("policy_decisions_total", &missing_key) >= 1.0,
        "{after}"
    );
}

/// A store whose backend is down.
struct DownStore;

impl LimiterStore for DownStore {
    fn check<'a>(&'a self, _requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }

    fn peek<'a>(&'a self, _request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }

    fn reset<'a>(&'a self, _scope: &'a str, _key: &'a ClientKey) -> StoreFuture<'a, ()> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
}

#[tokio::test]
async fn store_errors_are_counted_and_answered_503_in_the_format() {
    let metrics = Metrics::install().unwrap();
    let engine = Engine::builder()
        .api_key("client", CLIENT_KEY)
        .limiter_store(DownStore)
        .error_format(ErrorFormat::problem())
        .build()
        .unwrap();
    let app = app(engine);
    let before = sample(
        &metrics.render(),
        "policy_store_errors_total",
        &[("store", "rate_limit")],
    );
    let reply = send(&app, get_with_id("/users/1", Some("req-store-1"))).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(reply.json()["request_id"], "req-store-1");
    let after = sample(
        &metrics.render(),
        "policy_store_errors_total",
        &[("store", "rate_limit")],
    );
    assert_eq!(after - before, 1.0);
}

#[tokio::test]
async fn health_reports_status_liveness_and_readiness() {
    let engine = Engine::builder()
        .api_key("client", CLIENT_KEY)
        .build()
        .unwrap();
    let health = Health::new("1.2.3")
        .engine(&engine)
        .check("database", || async { Ok(()) });
    let app = Router::new().merge(health.router()).layer(engine);

    let reply = send(&app, get_with_id("/health", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, r#"{"status":"ok","version":"1.2.3"}"#);
    let reply = send(&app, get_with_id("/health/live", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, r#"{"status":"ok"}"#);
    let reply = send(&app, get_with_id("/health/ready", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ready", "checks": {"rate_limit_store": "ok", "database": "ok"}})
    );
}

#[tokio::test]
async fn readiness_names_the_failing_checks_and_never_their_errors() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder()
        .api_key("client", CLIENT_KEY)
        .limiter_store(DownStore)
        .build()
        .unwrap();
    let health = Health::new("1.2.3")
        .engine(&engine)
        .check("cache", || async { Ok(()) })
        .check("search", || async {
            Err("search.internal:9200 timed out".to_owned())
        });
    let app = Router::new().merge(health.router()).layer(engine);

    let reply = send(&app, get_with_id("/health/ready", None)).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "status": "unavailable",
            "failing": ["rate_limit_store", "search"],
            "checks": {"rate_limit_store": "failing", "cache": "ok", "search": "failing"}
        })
    );
    assert!(!reply.body.contains("9200"));
    // Liveness does not depend on the backends.
    assert_eq!(
        send(&app, get_with_id("/health/live", None)).await.status,
        StatusCode::OK
    );
    let warnings: Vec<_> = logs
        .events()
        .into_iter()
        .filter(|e| e["fields"]["message"] == "readiness check failed")
        .collect();
    assert_eq!(warnings.len(), 2, "{}", logs.text());
    assert_eq!(warnings[1]["fields"]["check"], "search");
    assert_eq!(
        warnings[1]["fields"]["error"],
        "search.internal:9200 timed out"
    );
}
