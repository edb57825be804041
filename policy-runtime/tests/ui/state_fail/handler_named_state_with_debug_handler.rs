//! `state = AppState` with `#[axum::debug_handler]` stacked below: an
//! argument that is not an extractor for that state is still one error, on
//! its type, with none from `debug_handler` and none at the router.

use axum::extract::State;
use axum::{routing::get, Router};
use policy_runtime::{rate_limit, Engine};

#[derive(Clone)]
pub struct AppState;

pub struct Db;

#[rate_limit("5/minute", state = AppState)]
#[axum::debug_handler]
async fn report(State(_state): State<AppState>, _db: Db) -> String {
    String::new()
}

fn main() {
    let _app: Router = Router::new()
        .route("/report", get(report))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
