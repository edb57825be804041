//! `RequestLayer::id_prefix` over a real Router: generated ids are the
//! prefix and 32 hex digits, in `x-request-id`, in a Detailed error body's
//! `request_id` and in the request's log span; incoming ids are kept or
//! replaced by the same rule as without a prefix.
#![cfg(feature = "request-layer")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Logs, Reply, from, send};
use policy_runtime::{Engine, Environment, ErrorFormat, RequestLayer, require_api_key};

#[require_api_key]
async fn reports() -> &'static str {
    "reports"
}

fn app(layer: RequestLayer) -> Router {
    let engine = Engine::builder()
        .environment(Environment::Production)
        .api_key("client", "client-key-0123456789")
        .error_format(ErrorFormat::Detailed)
        .build()
        .unwrap();
    Router::new()
        .route("/reports", get(reports))
        .route("/items", get(|| async { "items" }))
        .layer(engine)
        .layer(layer)
}

async fn call(app: &Router, path: &str, ids: &[&str]) -> Reply {
    let mut request = from("192.0.2.1", "GET", path);
    for id in ids {
        request = request.header("x-request-id", *id);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

/// `req_` and 32 lower-case hex digits.
fn assert_prefixed(id: &str) {
    let hex = id
        .strip_prefix("req_")
        .unwrap_or_else(|| panic!("no prefix: {id}"));
    assert_eq!(hex.len(), 32, "{id}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
}

#[tokio::test]
async fn a_generated_id_has_the_prefix_in_the_header_and_the_error_body() {
    let app = app(RequestLayer::new().id_prefix("req_").unwrap());
    let refused = call(&app, "/reports", &[]).await;
    assert_eq!(refused.status, 401);
    let id = refused.header("x-request-id").to_owned();
    assert_prefixed(&id);
    let body = refused.json();
    assert_eq!(body["request_id"], id.as_str());
    assert_eq!(body["error_code"], "UNAUTHORIZED");

    let admitted = call(&app, "/items", &[]).await;
    assert_eq!(admitted.status, 200);
    assert_prefixed(admitted.header("x-request-id"));
    // A new id each time.
    assert_ne!(admitted.header("x-request-id"), id);
}

#[tokio::test]
async fn the_generated_id_is_the_one_in_the_request_span() {
    let (logs, _guard) = Logs::capture();
    let app = app(RequestLayer::new().id_prefix("req_").unwrap());
    let reply = call(&app, "/items", &[]).await;
    let id = reply.header("x-request-id");
    let finished = logs.containing("INFO", "request finished");
    assert_eq!(finished.len(), 1, "{}", logs.text());
    assert_eq!(finished[0]["span"]["request_id"], id);
}

#[tokio::test]
async fn incoming_ids_follow_the_same_rule_with_a_prefix() {
    let app = app(RequestLayer::new().id_prefix("req_").unwrap());
    // A safe id is kept as it is, prefix or not.
    let kept = call(&app, "/reports", &["client-42.a_B"]).await;
    assert_eq!(kept.header("x-request-id"), "client-42.a_B");
    assert_eq!(kept.json()["request_id"], "client-42.a_B");
    let longest = "a".repeat(128);
    assert_eq!(
        call(&app, "/items", &[&longest])
            .await
            .header("x-request-id"),
        longest
    );
    // An unsafe, too long or repeated id is replaced by a generated one.
    for ids in [
        vec!["has space"],
        vec!["quote\"injection"],
        vec![&*"a".repeat(129)],
        vec!["one", "two"],
    ] {
        let reply = call(&app, "/reports", &ids).await;
        let id = reply.header("x-request-id");
        assert_prefixed(id);
        assert_eq!(reply.json()["request_id"], id, "{ids:?}");
    }
}

#[tokio::test]
async fn without_a_prefix_ids_are_hyphenated_uuids() {
    let app = app(RequestLayer::new());
    let id = call(&app, "/items", &[])
        .await
        .header("x-request-id")
        .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    let groups: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
    // Version 4.
    assert_eq!(&id[14..15], "4", "{id}");
    assert_eq!(
        format!("{:?}", RequestLayer::new()),
        "RequestLayer { slow: 5s }"
    );
}

#[tokio::test]
async fn an_empty_prefix_leaves_the_hex_digits() {
    let app = app(RequestLayer::new().id_prefix("").unwrap());
    let id = call(&app, "/items", &[])
        .await
        .header("x-request-id")
        .to_owned();
    assert_prefixed(&format!("req_{id}"));
}

#[test]
fn a_prefix_with_other_characters_is_refused() {
    let refused = RequestLayer::new().id_prefix("req id:").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the request id prefix `req id:` is not 0 to 96 characters of [A-Za-z0-9._-]"
    );
}

#[test]
fn a_prefix_may_have_96_characters_but_not_97() {
    assert!(RequestLayer::new().id_prefix("p".repeat(96)).is_ok());
    assert!(RequestLayer::new().id_prefix("p".repeat(97)).is_err());
}
