//! `#[axum::debug_handler]` stacked below the policies: each mistake is still
//! one error on the user's code, with no duplicate from `debug_handler`.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use policy_runtime::{rate_limit, require_api_key, Engine};
use std::rc::Rc;

pub struct Report;

#[derive(Clone)]
pub struct AppState;

async fn load() {}

#[rate_limit("5/minute")]
#[axum::debug_handler]
async fn report() -> Report {
    Report
}

#[require_api_key]
#[rate_limit("5/minute")]
#[axum::debug_handler]
async fn not_send() -> String {
    let shared = Rc::new(1);
    load().await;
    shared.to_string()
}

#[rate_limit("5/minute")]
#[axum::debug_handler]
async fn body_first(State(_state): State<AppState>, body: String, Path(id): Path<u32>) -> String {
    format!("{id} {body}")
}

fn main() {
    let _app: Router = Router::new()
        .route("/report", get(report))
        .route("/not-send", get(not_send))
        .route("/{id}", post(body_first))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
