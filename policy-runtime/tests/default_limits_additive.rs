//! `#[rate_limit(.., add_to_defaults)]`: a handler's own limit on top of the
//! engine's default limits instead of in their place, over a real Router
//! on a fake clock: under the default-limits layer (charged once, no error
//! logged) and outside it (the handler charges the defaults itself, in the
//! route's default scope).

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{Engine, ManualClock, ScopeStats, rate_limit};
use std::time::Duration;

#[rate_limit("2/minute", add_to_defaults)]
async fn search() -> &'static str {
    "found"
}

#[rate_limit("2/minute")]
async fn replaces() -> &'static str {
    "own only"
}

async fn plain() -> &'static str {
    "plain"
}

fn engine(clock: &ManualClock, defaults: Option<&str>) -> Engine {
    let mut builder = Engine::builder().clock(clock.clone());
    if let Some(defaults) = defaults {
        builder = builder.default_limits(defaults);
    }
    builder.build().unwrap()
}

/// `/search` and `/plain` under the default-limits layer, `/outside` (the
/// same handler) and `/replaces` after it.
fn app(engine: &Engine) -> Router {
    Router::new()
        .route("/search", get(search))
        .route("/plain", get(plain))
        .route_layer(engine.default_limits())
        .route("/outside", get(search))
        .route("/replaces", get(replaces))
        .layer(engine.clone())
}

/// Status and `x-ratelimit-limit` of one `GET uri` from `ip`.
async fn call(app: &Router, ip: &str, uri: &str) -> (u16, String) {
    let reply = send(app, from(ip, "GET", uri).body(Body::empty()).unwrap()).await;
    let limit = reply
        .headers
        .get("x-ratelimit-limit")
        .map_or_else(String::new, |value| value.to_str().unwrap().to_owned());
    (reply.status.as_u16(), limit)
}

#[tokio::test]
async fn under_the_layer_both_limits_apply_and_the_defaults_are_charged_once() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let engine = engine(&clock, Some("5/hour"));
    let app = app(&engine);
    let ip = "192.0.2.1";
    // Its own 2/minute refuses first, and its headers show the tighter of
    // the two (1 of 2 left against 4 of 5)...
    assert_eq!(call(&app, ip, "/search").await, (200, "2".to_owned()));
    assert_eq!(call(&app, ip, "/search").await, (200, "2".to_owned()));
    let refused = send(
        &app,
        from(ip, "GET", "/search").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["error"], "Too Many Requests: 2 per 1 minute");
    // The refusal's headers are its own limit's, not the layer's.
    assert_eq!(refused.header("x-ratelimit-limit"), "2");
    assert_eq!(refused.header("x-ratelimit-remaining"), "0");
    // ...and, spaced out, the defaults (5/hour, one more every 12 minutes):
    // charged once per request, the refused one included, as the layer
    // counted it before the handler's own limit refused. Charged twice, the
    // first spaced request would already be refused.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        clock.advance(Duration::from_secs(60));
        statuses.push(call(&app, ip, "/search").await);
    }
    assert_eq!(
        statuses,
        [
            (200, "5".to_owned()),
            (200, "5".to_owned()),
            (429, "5".to_owned()),
            (429, "5".to_owned())
        ]
    );
    // Intended, so not the logged mistake of a handler with its own limit
    // under the layer.
    assert!(
        logs.containing("ERROR", "runs under `engine.default_limits()`")
            .is_empty(),
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn outside_the_layer_the_handler_charges_the_defaults_in_the_routes_default_scope() {
    let clock = ManualClock::new();
    let engine = engine(&clock, Some("3/hour"));
    let app = app(&engine);
    let ip = "192.0.2.2";
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(call(&app, ip, "/outside").await.0);
        clock.advance(Duration::from_secs(60));
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let refused = send(
        &app,
        from(ip, "GET", "/outside").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(refused.json()["error"], "Too Many Requests: 3 per 1 hour");
    // A handler without `add_to_defaults` outside the layer has only its own.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(call(&app, ip, "/replaces").await.0);
        clock.advance(Duration::from_secs(60));
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200]);
    let stats = engine.rate_limit_stats();
    assert!(
        stats.contains(&ScopeStats {
            scope: "default:/outside".to_owned(),
            allowed: 3,
            rejected: 2,
        }),
        "{stats:?}"
    );
    // The route's default scope is its own: `/plain` under the layer is untouched.
    assert_eq!(call(&app, ip, "/plain").await, (200, "3".to_owned()));
}

#[tokio::test]
async fn without_default_limits_only_the_handlers_own_limit_applies() {
    let clock = ManualClock::new();
    let engine = engine(&clock, None);
    let app = Router::new()
        .route("/search", get(search))
        .layer(engine.clone());
    let ip = "192.0.2.3";
    assert_eq!(call(&app, ip, "/search").await, (200, "2".to_owned()));
    assert_eq!(call(&app, ip, "/search").await, (200, "2".to_owned()));
    assert_eq!(call(&app, ip, "/search").await.0, 429);
    assert!(
        engine
            .rate_limit_stats()
            .iter()
            .all(|stats| !stats.scope.starts_with("default:"))
    );
}

#[tokio::test]
async fn defaults_added_outside_the_layer_do_not_warn_that_no_route_takes_them() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let engine = engine(&clock, Some("3/hour"));
    let app = Router::new().route("/outside", get(search)).layer(engine);
    assert_eq!(call(&app, "192.0.2.4", "/outside").await.0, 200);
    assert_eq!(
        logs.count(
            "WARN",
            "the engine has default limits but no route takes them"
        ),
        0,
        "{}",
        logs.text()
    );
}
