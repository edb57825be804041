//! Several policies on one handler, every extractor kind, the body left unread
//! on a refusal, and stacking with `#[axum::debug_handler]` and
//! `#[tracing::instrument]`.

mod common;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{from, send};
use policy_runtime::{ApiKeyId, Engine, rate_limit, require_api_key};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const KEY: &str = "composition-test-key-0123456789";

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[derive(Deserialize)]
struct Paging {
    page: u32,
}

#[derive(Deserialize)]
struct Note {
    text: String,
}

/// Every extractor kind: state, path, query, the key identity, and a JSON body last.
#[rate_limit("5/minute")]
#[require_api_key]
pub(crate) async fn everything(
    State(state): State<AppState>,
    Path(id): Path<u32>,
    Query(paging): Query<Paging>,
    key: ApiKeyId,
    Json(note): Json<Note>,
) -> String {
    format!(
        "{} {} #{id} page {} says {}",
        state.greeting,
        key.name(),
        paging.page,
        note.text
    )
}

#[rate_limit("1/hour")]
#[require_api_key]
async fn limit_first() -> &'static str {
    "ok"
}

#[require_api_key]
#[rate_limit("1/hour")]
async fn key_first() -> &'static str {
    "ok"
}

#[rate_limit("1/hour")]
async fn body_reader(body: Bytes) -> String {
    format!("{} bytes", body.len())
}

#[rate_limit("10/minute")]
#[require_api_key]
#[axum::debug_handler(state = AppState)]
async fn debug_checked(State(state): State<AppState>, key: ApiKeyId) -> String {
    format!("{} {}", state.greeting, key.name())
}

#[tracing::instrument(skip_all, fields(handler = "instrumented_above"))]
#[rate_limit("10/minute")]
async fn instrumented_above(Path(id): Path<u32>) -> String {
    tracing::info!("inside");
    format!("item {id}")
}

#[rate_limit("10/minute")]
#[tracing::instrument(skip_all, fields(handler = "instrumented_below"))]
async fn instrumented_below(Path(id): Path<u32>) -> String {
    tracing::info!("inside");
    format!("item {id}")
}

fn app() -> Router {
    let engine = Engine::builder().api_key("tester", KEY).build().unwrap();
    Router::new()
        .route("/notes/{id}", post(everything))
        .route("/limit-first", get(limit_first))
        .route("/key-first", get(key_first))
        .route("/upload", post(body_reader))
        .route("/debug", get(debug_checked))
        .route("/above/{id}", get(instrumented_above))
        .route("/below/{id}", get(instrumented_below))
        .with_state(AppState { greeting: "hi" })
        .layer(engine)
}

fn with_key(method: &str, uri: &str) -> axum::http::request::Builder {
    from("192.0.2.20", method, uri).header("x-api-key", KEY)
}

#[tokio::test]
async fn every_extractor_kind_keeps_working() {
    let request = with_key("POST", "/notes/7?page=2")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"text":"hello"}"#))
        .unwrap();
    let reply = send(&app(), request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "hi tester #7 page 2 says hello");
    assert_eq!(reply.header("x-ratelimit-limit"), "5");
    assert_eq!(reply.header("x-ratelimit-remaining"), "4");

    // axum's own rejections still come from the extractors behind the guard.
    let request = with_key("POST", "/notes/7?page=2")
        .header("content-type", "application/json")
        .body(Body::from("not json"))
        .unwrap();
    assert_eq!(send(&app(), request).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_top_attribute_runs_first() {
    let app = app();
    let anonymous = |uri: &str| from("192.0.2.21", "GET", uri).body(Body::empty()).unwrap();
    let keyed = |uri: &str| {
        from("192.0.2.21", "GET", uri)
            .header("x-api-key", KEY)
            .body(Body::empty())
            .unwrap()
    };

    // Rate limit on top: the anonymous request uses up the limit, then gets 401.
    assert_eq!(
        send(&app, anonymous("/limit-first")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, keyed("/limit-first")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Key check on top: anonymous requests are refused before they count.
    for _ in 0..3 {
        assert_eq!(
            send(&app, anonymous("/key-first")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(send(&app, keyed("/key-first")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, keyed("/key-first")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// A body that records whether anyone read it.
fn watched_body(read: &Arc<AtomicBool>) -> Body {
    let read = Arc::clone(read);
    let stream = futures_util::stream::once(async move {
        read.store(true, Ordering::SeqCst);
        Ok::<_, Infallible>(Bytes::from_static(b"payload"))
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn a_refused_request_never_has_its_body_read() {
    let app = app();

    let read = Arc::new(AtomicBool::new(false));
    let request = from("192.0.2.22", "POST", "/upload")
        .body(watched_body(&read))
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.body, "7 bytes");
    assert!(
        read.load(Ordering::SeqCst),
        "an admitted request's body is read"
    );

    let read = Arc::new(AtomicBool::new(false));
    let request = from("192.0.2.22", "POST", "/upload")
        .body(watched_body(&read))
        .unwrap();
    assert_eq!(
        send(&app, request).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(!read.load(Ordering::SeqCst), "the 429 read the body");

    let read = Arc::new(AtomicBool::new(false));
    let request = from("192.0.2.23", "POST", "/notes/1?page=1")
        .header("content-type", "application/json")
        .body(watched_body(&read))
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::UNAUTHORIZED);
    assert!(!read.load(Ordering::SeqCst), "the 401 read the body");
}

#[tokio::test]
async fn debug_handler_and_instrument_stack_with_the_policies() {
    let (logs, _guard) = common::Logs::capture();
    let app = app();

    let reply = send(&app, with_key("GET", "/debug").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "hi tester");
    assert_eq!(reply.header("x-ratelimit-limit"), "10");

    for (uri, span) in [
        ("/above/3", "instrumented_above"),
        ("/below/3", "instrumented_below"),
    ] {
        let reply = send(
            &app,
            from("192.0.2.24", "GET", uri).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "item 3");
        assert_eq!(reply.header("x-ratelimit-remaining"), "9");
        let inside = logs.events().into_iter().find(|event| {
            event["fields"]["message"] == "inside" && event["span"]["handler"] == span
        });
        assert!(
            inside.is_some(),
            "no event inside the `{span}` span: {}",
            logs.text()
        );
    }
}
