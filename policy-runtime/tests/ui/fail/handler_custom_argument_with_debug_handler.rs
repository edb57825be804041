//! A type of the user's that is not an extractor can only be judged against
//! the router's state, so the router reports it; `#[axum::debug_handler(state
//! = ...)]` below the policies adds an error on the argument, first.

use axum::extract::State;
use axum::{routing::get, Router};
use policy_runtime::{rate_limit, Engine};

#[derive(Clone)]
pub struct AppState;

pub struct Db;

#[rate_limit("5/minute")]
#[axum::debug_handler(state = AppState)]
async fn report(State(_state): State<AppState>, _db: Db) -> String {
    String::new()
}

fn main() {
    let _app: Router = Router::new()
        .route("/report", get(report))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
