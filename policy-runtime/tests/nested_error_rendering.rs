//! Error responses behind nested engines: the engine closest to a route
//! renders its errors, in its own format, and the engines layered further out
//! leave them as they are, whether the closest one keeps the default rendering
//! or renders again.

mod common;

use axum::Router;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{Engine, ErrorFormat, rate_limit, require_api_key};

#[rate_limit("1/minute")]
async fn limited() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

fn engine(format: ErrorFormat) -> Engine {
    Engine::builder()
        .api_key("nested", "nested-client-key-0123456789")
        .error_format(format)
        .build()
        .unwrap()
}

/// `inner` wraps the routes, `outer` the router that nests them.
fn app(inner: ErrorFormat, outer: ErrorFormat) -> Router {
    let routes = Router::new()
        .route("/limited", get(limited))
        .route("/keyed", get(keyed))
        .layer(engine(inner));
    Router::new().nest("/api", routes).layer(engine(outer))
}

#[tokio::test]
async fn the_closest_engine_renders_and_an_outer_one_leaves_the_error_alone() {
    // The closest engine keeps the default rendering; the outer one's problem
    // format is not applied on top of it.
    let app_compact_inside = app(ErrorFormat::Compact, ErrorFormat::problem());
    send(
        &app_compact_inside,
        from("192.0.2.1", "GET", "/api/limited")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    let refused = send(
        &app_compact_inside,
        from("192.0.2.1", "GET", "/api/limited")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(refused.json()["code"], "RATE_LIMITED");
    assert!(refused.json().get("type").is_none(), "{}", refused.json());
    let unauthorized = send(
        &app_compact_inside,
        from("192.0.2.1", "GET", "/api/keyed")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.json()["code"], "UNAUTHORIZED");
    assert!(unauthorized.json().get("type").is_none());

    // The closest engine renders in the problem format; the outer one's
    // default rendering does not undo it.
    let app_problem_inside = app(ErrorFormat::problem(), ErrorFormat::Compact);
    send(
        &app_problem_inside,
        from("192.0.2.1", "GET", "/api/limited")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    let refused = send(
        &app_problem_inside,
        from("192.0.2.1", "GET", "/api/limited")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    assert_eq!(refused.json()["status"], 429);
    assert_eq!(refused.header("retry-after"), "60");
    let unauthorized = send(
        &app_problem_inside,
        from("192.0.2.1", "GET", "/api/keyed")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(
        unauthorized.header("content-type"),
        "application/problem+json"
    );
}
