//! axum's own 404 (no route) and 405 (no such method on a route) as JSON in
//! the engine's format, over a real socket, with `Allow` kept on the 405.

mod common;

use axum::Router;
use axum::routing::{get, post};
use common::raw_http::{Server, serve};
use policy_runtime::{Engine, Environment, ErrorFormat, JsonFallbacks};

async fn users() -> &'static str {
    "users"
}

async fn start(format: ErrorFormat) -> Server {
    let engine = Engine::builder().error_format(format).build().unwrap();
    let app = Router::new()
        .route("/users", get(users).post(users))
        .route("/health", get(|| async { "ok" }))
        .json_fallbacks()
        .layer(engine);
    serve(app).await
}

#[tokio::test]
async fn no_route_is_a_json_404_in_the_compact_format() {
    let server = start(ErrorFormat::Compact).await;
    let reply = server.get("/nowhere").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, r#"{"error":"Not Found","code":"NOT_FOUND"}"#);
    // Any method.
    let reply = server.send("DELETE", "/nowhere/at/all", &[]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, r#"{"error":"Not Found","code":"NOT_FOUND"}"#);
}

#[tokio::test]
async fn no_route_is_a_json_404_in_the_simple_format() {
    let server = start(ErrorFormat::Simple).await;
    let reply = server.get("/nowhere").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, r#"{"error":"Not Found"}"#);
}

#[tokio::test]
async fn no_such_method_is_a_json_405_with_allow_in_the_compact_format() {
    let server = start(ErrorFormat::Compact).await;
    let reply = server.send("DELETE", "/users", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), "GET,HEAD,POST");
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.body,
        r#"{"error":"Method Not Allowed","code":"METHOD_NOT_ALLOWED"}"#
    );
    let reply = server.send("PUT", "/health", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), "GET,HEAD");
}

#[tokio::test]
async fn no_such_method_is_a_json_405_with_allow_in_the_simple_format() {
    let server = start(ErrorFormat::Simple).await;
    let reply = server.send("PATCH", "/users", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), "GET,HEAD,POST");
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, r#"{"error":"Method Not Allowed"}"#);
}

#[tokio::test]
async fn the_problem_format_names_the_path() {
    let server = start(ErrorFormat::problem()).await;
    let reply = server.get("/nowhere").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "Not Found",
            "instance": "/nowhere",
            "code": "NOT_FOUND",
        })
    );
}

#[tokio::test]
async fn routes_still_answer() {
    let server = start(ErrorFormat::Simple).await;
    let reply = server
        .send("POST", "/users", &[("content-length", "0")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "users");
}

/// Where the call goes matters: after `.layer(engine)` the engine does not
/// wrap the fallbacks, and they answer in the default format; a route added
/// after the call keeps axum's empty 405.
#[tokio::test]
async fn the_call_belongs_after_the_routes_and_before_the_engine() {
    let engine = Engine::builder()
        .environment(Environment::Production)
        .error_format(ErrorFormat::Simple)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/users", get(users))
        .layer(engine)
        .json_fallbacks()
        .route("/late", post(users));
    let server = serve(app).await;

    let missing = server.get("/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, r#"{"error":"Not Found","code":"NOT_FOUND"}"#);
    let wrong = server.send("DELETE", "/users", &[]).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(
        wrong.body,
        r#"{"error":"Method Not Allowed","code":"METHOD_NOT_ALLOWED"}"#
    );
    let late = server.get("/late").await;
    assert_eq!(late.status, 405);
    assert_eq!(late.header("allow"), "POST");
    assert_eq!(late.body, "");
}
