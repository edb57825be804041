//! `#[axum::debug_handler]` stacked below the policies on handlers that take
//! `State<T>`: it checks them against that state, as it would without the
//! policies, and they compile with no warning.
#![deny(warnings)]

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{rate_limit, require_api_key, ApiKeyId, Engine};

#[derive(Clone)]
pub struct AppState {
    pub greeting: &'static str,
}

#[rate_limit("5/minute")]
#[require_api_key]
#[axum::debug_handler]
pub async fn greet(
    State(state): State<AppState>,
    Path(name): Path<String>,
    key: ApiKeyId,
    Json(note): Json<String>,
) -> String {
    format!("{} {name} from {}: {note}", state.greeting, key.name())
}

#[rate_limit("5/minute")]
#[axum::debug_handler]
pub async fn twice(State(first): State<AppState>, State(second): State<AppState>) -> String {
    format!("{} {}", first.greeting, second.greeting)
}

#[rate_limit("5/minute")]
#[axum::debug_handler(state = AppState)]
pub async fn explicit(State(state): State<AppState>) -> &'static str {
    state.greeting
}

fn main() {
    let _app: Router = Router::new()
        .route("/greet/{name}", post(greet))
        .route("/twice", get(twice))
        .route("/explicit", get(explicit))
        .with_state(AppState { greeting: "hello" })
        .layer(
            Engine::builder()
                .api_key("ui-pass", "ui-pass-key-0123456789abcdef")
                .build()
                .unwrap(),
        );
}
