//! `state = ...` is given once per handler, on a handler without generics,
//! and takes a type.

use axum::extract::State;
use policy_runtime::{rate_limit, require_api_key};

#[derive(Clone)]
pub struct AppState;

#[require_api_key(state = AppState)]
#[rate_limit("5/minute", state = AppState)]
async fn twice() -> &'static str {
    "ok"
}

#[rate_limit("5/minute", state = AppState)]
async fn generic<S: Clone + Send + Sync + 'static>(State(_state): State<S>) -> &'static str {
    "ok"
}

#[rate_limit("5/minute", state = "AppState")]
async fn not_a_type() -> &'static str {
    "ok"
}

fn main() {}
