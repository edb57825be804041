//! `state = AppState` on a policy attribute: an argument that is not an
//! extractor for that state is one error on its type, a `State<T>` whose `T`
//! is not `FromRef<AppState>` too, and the router reports nothing more.

use axum::extract::{Path, State};
use axum::{routing::get, Router};
use policy_runtime::{rate_limit, require_api_key, Engine};

#[derive(Clone)]
pub struct AppState;

#[derive(Clone)]
pub struct Other;

pub struct Db;

#[rate_limit("5/minute", state = AppState)]
async fn report(State(_other): State<Other>, _db: Db, Path(id): Path<u32>) -> String {
    id.to_string()
}

#[require_api_key(state = AppState)]
async fn last(_db: Db) -> String {
    String::new()
}

fn main() {
    let _app: Router = Router::new()
        .route("/report/{id}", get(report))
        .route("/last", get(last))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
