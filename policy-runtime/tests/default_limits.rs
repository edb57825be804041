//! Default limits: an explicit route layer for the routes without a limit of
//! their own. They limit from the first request, concurrent ones included;
//! a handler's own limits are never charged them; nothing a client sends
//! (methods, paths) names new state; nested engines keep their own rules.

mod common;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use common::{Logs, from, send};
use policy_runtime::{Engine, ManualClock, rate_limit, require_api_key};
use std::time::Duration;

const KEY: &str = "default-limits-key-0123456789";

async fn plain() -> &'static str {
    "plain"
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(300)).await;
    "slow"
}

#[rate_limit("5/minute")]
async fn own_limit() -> &'static str {
    "own"
}

#[rate_limit("5/hour")]
async fn own_hourly() -> &'static str {
    "own"
}

#[rate_limit(exempt)]
async fn health() -> &'static str {
    "ok"
}

#[require_api_key]
async fn key_only() -> &'static str {
    "keyed"
}

fn engine(clock: &ManualClock, defaults: &str) -> Engine {
    Engine::builder()
        .clock(clock.clone())
        .default_limits(defaults)
        .api_key("k", KEY)
        .build()
        .unwrap()
}

fn app(clock: &ManualClock) -> Router {
    let engine = engine(clock, "2/minute");
    Router::new()
        .route("/plain", get(plain))
        .route("/plain/{id}", get(plain))
        .route("/any", any(plain))
        .route_layer(engine.default_limits())
        .route("/own", get(own_limit))
        .route("/health", get(health))
        .route("/key-only", get(key_only))
        .layer(engine)
}

fn request(ip: &str, method: &str, uri: &str) -> axum::http::Request<Body> {
    from(ip, method, uri)
        .header("x-api-key", KEY)
        .body(Body::empty())
        .unwrap()
}

async fn statuses(app: &Router, ip: &str, uri: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send(app, request(ip, "GET", uri)).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn routes_under_the_layer_are_limited_from_the_first_request() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let first = send(&app, request("192.0.2.1", "GET", "/plain")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-ratelimit-limit"), "2");
    assert_eq!(first.header("x-ratelimit-remaining"), "1");
    assert_eq!(statuses(&app, "192.0.2.1", "/plain", 2).await, [200, 429]);
    let refused = send(&app, request("192.0.2.1", "GET", "/plain")).await;
    assert_eq!(
        refused.json(),
        serde_json::json!({"error": "Too Many Requests: 2 per 1 minute", "code": "RATE_LIMITED"})
    );
    assert_eq!(refused.header("retry-after"), "30");
    // Per route and per client.
    assert_eq!(
        statuses(&app, "192.0.2.2", "/plain", 3).await,
        [200, 200, 429]
    );
    // One route, one count, whatever the path parameters.
    assert_eq!(statuses(&app, "192.0.2.1", "/plain/7", 1).await, [200]);
    assert_eq!(statuses(&app, "192.0.2.1", "/plain/8", 2).await, [200, 429]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(statuses(&app, "192.0.2.1", "/plain", 2).await, [200, 429]);
}

#[tokio::test]
async fn concurrent_first_requests_to_a_slow_route_are_limited() {
    // Before: a route was unlimited until its first response, so 50
    // concurrent requests to a slow handler under a 1/hour default all ran.
    let engine = engine(&ManualClock::new(), "1/hour");
    let app = Router::new()
        .route("/slow", get(slow))
        .route_layer(engine.default_limits())
        .layer(engine);
    let replies = futures_util::future::join_all(
        (0..50).map(|_| send(&app, request("192.0.2.1", "GET", "/slow"))),
    )
    .await;
    let admitted = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((admitted, refused), (1, 49));
}

#[tokio::test]
async fn a_handlers_own_limits_are_never_charged_the_defaults() {
    let clock = ManualClock::new();
    let app = app(&clock);
    assert_eq!(
        statuses(&app, "192.0.2.1", "/own", 6).await,
        [200, 200, 200, 200, 200, 429]
    );
    let refused = send(&app, request("192.0.2.1", "GET", "/own")).await;
    assert_eq!(refused.json()["error"], "Too Many Requests: 5 per 1 minute");
    // A key policy alone is a policy of its own too: no defaults.
    assert_eq!(
        statuses(&app, "192.0.2.1", "/key-only", 4).await,
        [200, 200, 200, 200]
    );
}

#[tokio::test]
async fn exempt_handlers_are_not_limited() {
    let clock = ManualClock::new();
    let app = app(&clock);
    assert_eq!(statuses(&app, "192.0.2.1", "/health", 10).await, [200; 10]);
    let reply = send(&app, request("192.0.2.1", "GET", "/health")).await;
    assert!(reply.headers.get("x-ratelimit-limit").is_none());
}

async fn refuse_first(request: Request, next: Next) -> Response {
    use std::sync::atomic::{AtomicBool, Ordering};
    static REFUSED: AtomicBool = AtomicBool::new(false);
    if !REFUSED.swap(true, Ordering::SeqCst) {
        return (StatusCode::UNAUTHORIZED, "first refused").into_response();
    }
    next.run(request).await
}

#[tokio::test]
async fn a_handler_with_its_own_limit_behind_a_refusing_route_layer_gets_only_its_own() {
    // Before: the engine learned from the first response whether a route had
    // a policy; a route layer refusing that request marked the route as
    // unprotected for good, and the defaults were charged on top.
    let engine = engine(&ManualClock::new(), "1/hour");
    let app = Router::new()
        .route("/plain", get(plain))
        .route_layer(engine.default_limits())
        .route("/own", get(own_hourly))
        .route_layer(middleware::from_fn(refuse_first))
        .layer(engine);
    assert_eq!(statuses(&app, "192.0.2.1", "/own", 1).await, [401]);
    assert_eq!(
        statuses(&app, "192.0.2.1", "/own", 6).await,
        [200, 200, 200, 200, 200, 429]
    );
    let refused = send(&app, request("192.0.2.1", "GET", "/own")).await;
    assert_eq!(refused.json()["error"], "Too Many Requests: 5 per 1 hour");
}

#[tokio::test]
async fn nested_engines_give_each_handler_its_own_engines_rules() {
    // Before: the outer engine's defaults applied on top of a nested
    // handler's own 5/hour (200, 200, 429, ...).
    let clock = ManualClock::new();
    let outer = engine(&clock, "2/hour");
    let inner = Engine::builder()
        .clock(clock.clone())
        .api_key("k", KEY)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/plain", get(plain))
        .route_layer(outer.default_limits())
        .nest(
            "/api",
            Router::new().route("/own", get(own_hourly)).layer(inner),
        )
        .layer(outer);
    assert_eq!(
        statuses(&app, "192.0.2.1", "/api/own", 6).await,
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&app, "192.0.2.1", "/plain", 3).await,
        [200, 200, 429]
    );
}

#[tokio::test]
async fn methods_share_their_routes_count_and_name_no_new_state() {
    let clock = ManualClock::new();
    let engine = engine(&clock, "2/hour");
    let app = Router::new()
        .route("/any", any(plain))
        .route("/get", get(plain))
        .route_layer(engine.default_limits())
        .layer(engine.clone());
    let mut seen = Vec::new();
    for method in ["GET", "GET"] {
        seen.push(
            send(&app, request("192.0.2.1", method, "/any"))
                .await
                .status
                .as_u16(),
        );
    }
    // Before: each new method was a new route with a fresh count.
    for n in 0..2000 {
        let method = format!("GET{n}");
        seen.push(
            send(&app, request("192.0.2.1", &method, "/any"))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(&seen[..2], [200, 200]);
    assert!(seen[2..].iter().all(|status| *status == 429));
    // HEAD is GET's: axum runs the GET handler for it.
    let head_then_get: Vec<u16> = {
        let mut out = Vec::new();
        for method in ["HEAD", "GET", "GET"] {
            out.push(
                send(&app, request("192.0.2.2", method, "/get"))
                    .await
                    .status
                    .as_u16(),
            );
        }
        out
    };
    assert_eq!(head_then_get, [200, 200, 429]);
    // One scope per route, however many methods were tried.
    let scopes: Vec<String> = engine
        .rate_limit_stats()
        .into_iter()
        .map(|stats| stats.scope)
        .collect();
    assert_eq!(scopes, ["default:/any", "default:/get"]);
}

#[tokio::test]
async fn requests_without_connect_info_are_refused_with_the_fix_in_the_log() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let app = app(&clock);
    let request = axum::http::Request::get("/plain")
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["code"], "INTERNAL_ERROR");
    assert!(logs.text().contains("connect info"), "{}", logs.text());
}

#[tokio::test]
async fn default_limits_that_no_route_takes_are_reported_once() {
    let (logs, _guard) = Logs::capture();
    let engine = engine(&ManualClock::new(), "2/hour");
    let _app: Router = Router::new()
        .route("/a", get(plain))
        .route("/b", get(plain))
        .layer(engine);
    assert_eq!(
        logs.count(
            "WARN",
            "the engine has default limits but no route takes them"
        ),
        1,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn a_handler_with_its_own_limit_under_the_layer_is_reported_once() {
    let (logs, _guard) = Logs::capture();
    let engine = engine(&ManualClock::new(), "2/hour");
    // A mistake: `/own` is added before the layer, so the layer wraps it.
    let app = Router::new()
        .route("/own", get(own_hourly))
        .route_layer(engine.default_limits())
        .layer(engine);
    // Charged both: the defaults (2/hour) refuse the third request.
    assert_eq!(
        statuses(&app, "192.0.2.1", "/own", 3).await,
        [200, 200, 429]
    );
    let errors: Vec<_> = logs.containing("ERROR", "runs under `engine.default_limits()`");
    assert_eq!(errors.len(), 1, "{}", logs.text());
    assert!(
        errors[0]["fields"]["handler"]
            .as_str()
            .unwrap()
            .ends_with("::own_hourly")
    );
}
