//! `state = AppState` on a policy attribute: handlers whose arguments are
//! extractors for that state, including ones of the user's own that need
//! it, a substate through `FromRef`, and `#[tracing::instrument]` and
//! `#[axum::debug_handler]` stacked below.

use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{rate_limit, require_api_key, ApiKeyId, Engine};
use serde::Deserialize;

#[derive(Clone)]
pub struct AppState {
    db: Db,
}

#[derive(Clone, Debug)]
pub struct Db;

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

/// An extractor that needs the whole state.
#[derive(Debug)]
pub struct CurrentUser;

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = StatusCode;

    async fn from_request_parts(_: &mut Parts, _: &AppState) -> Result<Self, StatusCode> {
        Ok(CurrentUser)
    }
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    page: u32,
}

#[rate_limit("5/minute", state = AppState)]
async fn report(
    State(_db): State<Db>,
    user: CurrentUser,
    Path(id): Path<u32>,
    Query(paging): Query<Paging>,
) -> String {
    format!("{user:?} {id} {}", paging.page)
}

#[require_api_key(state = AppState)]
#[rate_limit("5/minute")]
#[tracing::instrument(skip(state))]
async fn upload(key: ApiKeyId, state: State<AppState>, Json(body): Json<Vec<u8>>) -> String {
    let _ = &state.db;
    format!("{} {}", key.name(), body.len())
}

#[rate_limit("5/minute", state = AppState)]
#[axum::debug_handler]
async fn nothing() -> &'static str {
    "ok"
}

#[rate_limit("5/minute", state = AppState)]
async fn user_last(user: CurrentUser) -> String {
    format!("{user:?}")
}

fn main() {
    let _app: Router = Router::new()
        .route("/report/{id}", get(report))
        .route("/upload", post(upload))
        .route("/nothing", get(nothing))
        .route("/me", get(user_last))
        .with_state(AppState { db: Db })
        .layer(
            Engine::builder()
                .api_key("client", "sk_live_named_state_example_key_0001")
                .build()
                .unwrap(),
        );
}
