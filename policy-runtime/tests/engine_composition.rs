//! The engine travels with the request: every way real apps compose routers
//! and middleware gives the same answers, and a policy-wrapped handler that
//! no engine wraps is refused with a 500 that names the fix.

mod common;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{ApiKeyId, Engine, ErrorFormat, rate_limit, require_api_key};
use std::time::Duration;
use tower::ServiceBuilder;

const KEY: &str = "composition-engine-key-0123456789";

#[rate_limit("3/hour")]
#[require_api_key]
async fn keyed(key: ApiKeyId) -> String {
    format!("hello {}", key.name())
}

#[rate_limit("3/hour")]
async fn stateful(State(greeting): State<&'static str>) -> &'static str {
    greeting
}

fn engine() -> Engine {
    Engine::builder().api_key("app", KEY).build().unwrap()
}

fn request(ip: &str, uri: &str) -> axum::http::Request<Body> {
    from(ip, "GET", uri)
        .header("x-api-key", KEY)
        .body(Body::empty())
        .unwrap()
}

/// Four requests from one client: three admitted with the key, then a 429.
/// Each call uses a client of its own (`keyed` counts one state however
/// many routes serve it).
async fn assert_keyed_and_limited(app: &Router, uri: &str) {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(10);
    let n = NEXT.fetch_add(2, Ordering::Relaxed);
    let (client, other) = (format!("198.51.100.{n}"), format!("198.51.100.{}", n + 1));
    for remaining in ["2", "1", "0"] {
        let reply = send(app, request(&client, uri)).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.body);
        assert_eq!(reply.body, "hello app");
        assert_eq!(reply.header("x-ratelimit-remaining"), remaining);
    }
    let refused = send(app, request(&client, uri)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{uri}");
    assert_eq!(refused.json()["code"], "RATE_LIMITED");
    // Another client has its own count.
    let other = send(app, request(&other, uri)).await;
    assert_eq!(other.status, StatusCode::OK, "{uri}");
}

async fn spawn_next(request: Request, next: Next) -> Response {
    tokio::spawn(next.run(request)).await.unwrap()
}

async fn pass(request: Request, next: Next) -> Response {
    next.run(request).await
}

#[tokio::test]
async fn middleware_that_spawns_the_handler_below_the_engine_keeps_it() {
    // Before: the guard looked for its engine in a thread-local set while
    // the engine layer polled, so a handler spawned onto another task found
    // none and a valid key got 401.
    let app = Router::new()
        .route("/v", get(keyed))
        .layer(middleware::from_fn(spawn_next))
        .layer(engine());
    assert_keyed_and_limited(&app, "/v").await;
}

#[tokio::test]
async fn spawning_middleware_behind_trusted_proxies_counts_each_client() {
    // Before: the fallback engine had no trusted proxies, so every client
    // behind the proxy shared the proxy's count.
    let engine = Engine::builder()
        .api_key("app", KEY)
        .trusted_proxies(["10.0.0.0/8"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/v", get(keyed))
        .layer(middleware::from_fn(spawn_next))
        .layer(engine);
    let via_proxy = |client: &str| {
        from("10.0.0.1", "GET", "/v")
            .header("x-api-key", KEY)
            .header("x-forwarded-for", client)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(
            send(&app, via_proxy("203.0.113.1")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&app, via_proxy("203.0.113.1")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, via_proxy("203.0.113.2")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn middleware_above_and_below_the_engine_and_route_layers_change_nothing() {
    let app = Router::new()
        .route("/v", get(keyed))
        .route_layer(middleware::from_fn(pass))
        .layer(middleware::from_fn(spawn_next))
        .layer(engine())
        .layer(middleware::from_fn(spawn_next))
        .layer(middleware::from_fn(pass));
    assert_keyed_and_limited(&app, "/v").await;
}

fn handle_error(error: tower::BoxError) -> std::future::Ready<(StatusCode, String)> {
    std::future::ready((StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

#[tokio::test]
async fn buffer_and_timeout_below_the_engine_change_nothing() {
    let app = Router::new().route("/v", get(keyed)).layer(
        ServiceBuilder::new()
            .layer(engine())
            .layer(HandleErrorLayer::new(handle_error))
            .buffer(16)
            .timeout(Duration::from_secs(5)),
    );
    assert_keyed_and_limited(&app, "/v").await;
}

#[tokio::test]
async fn nest_merge_and_with_state_change_nothing() {
    let api = Router::new().route("/v", get(keyed));
    let stateful_routes = Router::new()
        .route("/s", get(stateful))
        .with_state("stateful");
    let app = Router::new()
        .nest("/api", api.clone())
        .merge(Router::new().route("/merged", get(keyed)))
        .merge(stateful_routes)
        .layer(engine());
    assert_keyed_and_limited(&app, "/api/v").await;
    assert_keyed_and_limited(&app, "/merged").await;
    let statuses: Vec<u16> =
        futures_util::future::join_all((0..4).map(|_| send(&app, request("192.0.2.7", "/s"))))
            .await
            .iter()
            .map(|reply| reply.status.as_u16())
            .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1);

    // An engine inside a nested router, the outer router without one.
    let app = Router::new().nest(
        "/api",
        Router::new().route("/v", get(keyed)).layer(engine()),
    );
    assert_keyed_and_limited(&app, "/api/v").await;
}

#[tokio::test]
async fn nested_engines_give_each_handler_its_own_engines_rules() {
    // The inner engine knows the key and renders errors as RFC 9457; the
    // outer one knows no key and renders them compactly.
    let inner = Engine::builder()
        .api_key("app", KEY)
        .error_format(ErrorFormat::problem())
        .build()
        .unwrap();
    let outer = Engine::builder()
        .api_key("other", "outer-engine-key-0123456789")
        .build()
        .unwrap();
    let app = Router::new()
        .route("/outer", get(keyed))
        .nest("/inner", Router::new().route("/v", get(keyed)).layer(inner))
        .layer(outer);
    for _ in 0..3 {
        assert_eq!(
            send(&app, request("192.0.2.9", "/inner/v")).await.status,
            StatusCode::OK
        );
    }
    let refused = send(&app, request("192.0.2.9", "/inner/v")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    let outer_reply = send(&app, request("192.0.2.7", "/outer")).await;
    assert_eq!(outer_reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(outer_reply.header("content-type"), "application/json");
}

#[tokio::test]
async fn a_handler_without_an_engine_answers_500_and_each_time_logs_the_fix() {
    let (logs, _guard) = Logs::capture();
    // `/late` is added after `.layer(engine)`, so no engine wraps it.
    let app = Router::new()
        .route("/v", get(keyed))
        .layer(engine())
        .route("/late", get(keyed));
    assert_eq!(
        send(&app, request("192.0.2.7", "/v")).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        let reply = send(&app, request("192.0.2.7", "/late")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            reply.json(),
            serde_json::json!({"error": "Internal Server Error", "code": "INTERNAL_ERROR"})
        );
    }
    let errors: Vec<_> = logs.containing("ERROR", "ran without a policy engine");
    assert_eq!(errors.len(), 2, "{}", logs.text());
    let message = errors[0]["fields"]["message"].as_str().unwrap();
    assert!(message.contains(".layer(engine)"), "{message}");
    assert!(
        errors[0]["fields"]["handler"]
            .as_str()
            .unwrap()
            .ends_with("::keyed")
    );

    // A router with no engine at all: no limit is counted with settings the
    // application did not choose, and no key is checked.
    let bare = Router::new().route("/v", get(keyed));
    for _ in 0..5 {
        let reply = send(&bare, request("192.0.2.7", "/v")).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

async fn refuse_without_token(request: Request, next: Next) -> Response {
    if request.headers().contains_key("x-token") {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "no token").into_response()
    }
}

#[tokio::test]
async fn a_refusing_route_layer_in_front_of_the_guard_changes_nothing() {
    let app = Router::new()
        .route("/v", get(keyed))
        .route_layer(middleware::from_fn(refuse_without_token))
        .layer(engine());
    let refused = send(&app, request("192.0.2.7", "/v")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let with_token = |ip: &str| {
        from(ip, "GET", "/v")
            .header("x-api-key", KEY)
            .header("x-token", "t")
            .body(Body::empty())
            .unwrap()
    };
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(send(&app, with_token("192.0.2.7")).await.status.as_u16());
        }
        out
    };
    assert_eq!(statuses, [200, 200, 200, 429]);
}
