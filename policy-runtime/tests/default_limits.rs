//! Default limits: they cover routes without `#[rate_limit]`, a handler's own
//! limits replace them, and `#[rate_limit(exempt)]` opts out.

mod common;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use common::{from, send};
use policy_runtime::{rate_limit, require_api_key, Engine, FakeRelativeClock};
use std::time::Duration;

async fn plain() -> &'static str {
    "plain"
}

#[rate_limit("5/minute")]
async fn own_limit() -> &'static str {
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

fn app(clock: &FakeRelativeClock) -> Router {
    let engine = Engine::builder()
        .clock(clock.clone())
        .default_limits("2/minute")
        .api_key("k", "default-limits-key-0123456789")
        .build()
        .unwrap();
    Router::new()
        .route("/plain", get(plain))
        .route("/plain/{id}", get(plain))
        .route("/own", get(own_limit))
        .route("/health", get(health))
        .route("/key-only", get(key_only))
        .layer(engine)
}

fn get_from(ip: &str, uri: &str) -> axum::http::Request<Body> {
    from(ip, "GET", uri)
        .header("x-api-key", "default-limits-key-0123456789")
        .body(Body::empty())
        .unwrap()
}

async fn statuses(app: &Router, ip: &str, uri: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(send(app, get_from(ip, uri)).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn routes_without_a_limit_of_their_own_get_the_defaults() {
    let clock = FakeRelativeClock::default();
    let app = app(&clock);
    // The first request teaches the engine the route has no policy; it counts.
    assert_eq!(
        statuses(&app, "192.0.2.1", "/plain", 4).await,
        [200, 200, 429, 429]
    );
    let refused = send(&app, get_from("192.0.2.1", "/plain")).await;
    assert_eq!(refused.json()["error"], "Too Many Requests: 2 per 1 minute");
    assert_eq!(refused.header("retry-after"), "30");
    // Per route and per client.
    assert_eq!(
        statuses(&app, "192.0.2.2", "/plain", 3).await,
        [200, 200, 429]
    );
    assert_eq!(
        statuses(&app, "192.0.2.1", "/plain/7", 3).await,
        [200, 200, 429]
    );
    let allowed = send(&app, get_from("192.0.2.3", "/plain/8")).await;
    assert_eq!(allowed.header("x-ratelimit-limit"), "2");
    clock.advance(Duration::from_secs(30));
    assert_eq!(statuses(&app, "192.0.2.1", "/plain", 2).await, [200, 429]);
}

#[tokio::test]
async fn a_handlers_own_limits_replace_the_defaults() {
    let clock = FakeRelativeClock::default();
    let app = app(&clock);
    assert_eq!(
        statuses(&app, "192.0.2.1", "/own", 6).await,
        [200, 200, 200, 200, 200, 429]
    );
    // A key policy alone is a policy of its own too: defaults do not apply.
    assert_eq!(
        statuses(&app, "192.0.2.1", "/key-only", 4).await,
        [200, 200, 200, 200]
    );
}

#[tokio::test]
async fn exempt_handlers_opt_out_of_the_defaults() {
    let clock = FakeRelativeClock::default();
    let app = app(&clock);
    assert_eq!(statuses(&app, "192.0.2.1", "/health", 10).await, [200; 10]);
    let reply = send(&app, get_from("192.0.2.1", "/health")).await;
    assert!(reply.headers.get("x-ratelimit-limit").is_none());
}
