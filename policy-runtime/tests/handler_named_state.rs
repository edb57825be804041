//! Handlers whose attribute names the router's state (`state = AppState`):
//! every argument is extracted by its own extractor for that state, with the
//! same rejections and policies as any policy-wrapped handler.

mod common;

use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{from, send};
use policy_runtime::{ApiKeyId, Engine, rate_limit, require_api_key};
use serde::Deserialize;
use serde_json::json;

const KEY: &str = "sk_live_named_state_test_key_00000001";

#[derive(Clone)]
struct AppState {
    db: Db,
    greeting: &'static str,
}

#[derive(Clone)]
struct Db(&'static str);

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

/// An extractor of the application's that needs its whole state, and may
/// refuse.
struct CurrentUser(String);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match parts.headers.get("x-user") {
            Some(user) => Ok(CurrentUser(format!(
                "{} {}",
                state.greeting,
                user.to_str().unwrap_or("?")
            ))),
            None => Err((StatusCode::FORBIDDEN, "who are you?")),
        }
    }
}

#[derive(Deserialize)]
struct Paging {
    page: u32,
}

#[derive(Deserialize)]
struct Note {
    text: String,
}

#[rate_limit("2/minute", state = AppState)]
async fn report(
    State(db): State<Db>,
    user: CurrentUser,
    Path(id): Path<u32>,
    Query(paging): Query<Paging>,
) -> String {
    format!("{} {} {id} {}", db.0, user.0, paging.page)
}

#[require_api_key(state = AppState)]
async fn note(key: ApiKeyId, State(state): State<AppState>, Json(note): Json<Note>) -> String {
    format!("{} {} {}", key.name(), state.greeting, note.text)
}

#[rate_limit("100/minute", state = AppState)]
async fn me(user: CurrentUser) -> String {
    user.0
}

fn app() -> Router {
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    Router::new()
        .route("/report/{id}", get(report))
        .route("/note", post(note))
        .route("/me", get(me))
        .with_state(AppState {
            db: Db("main-db"),
            greeting: "hello",
        })
        .layer(engine)
}

#[tokio::test]
async fn every_argument_is_extracted_for_the_named_state() {
    let app = app();
    let request = || from("192.0.2.1", "GET", "/report/7?page=3").header("x-user", "ada");
    let reply = send(&app, request().body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "main-db hello ada 7 3");
    assert_eq!(reply.header("x-ratelimit-limit"), "2");
    let reply = send(&app, request().body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The policies run first, as for any policy-wrapped handler.
    let reply = send(&app, request().body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);

    let reply = send(
        &app,
        from("192.0.2.2", "GET", "/me")
            .header("x-user", "grace")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello grace")
    );
}

#[tokio::test]
async fn rejections_are_the_same_as_without_a_named_state() {
    let app = app();
    // The application's own rejection, as its type renders it.
    let reply = send(
        &app,
        from("192.0.2.3", "GET", "/report/7?page=3")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::FORBIDDEN, "who are you?")
    );
    // axum's rejections, as the engine's error bodies.
    let reply = send(
        &app,
        from("192.0.2.4", "GET", "/report/seven?page=3")
            .header("x-user", "ada")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "INVALID_PATH");
    let note = |body: &'static str| {
        from("192.0.2.5", "POST", "/note")
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let reply = send(&app, note(r#"{"text": "hi"}"#)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "client hello hi")
    );
    let reply = send(&app, note("{not json")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["code"], "INVALID_JSON");
    // The key check still comes before the body is read.
    let reply = send(
        &app,
        from("192.0.2.5", "POST", "/note")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json(),
        json!({"error": "Missing API key", "code": "UNAUTHORIZED"})
    );
}
