//! Arguments that can never be extractors (a primitive instead of
//! `Path<u32>`, a reference, an `Option` of a primitive): one error each, on
//! its type; none at the router.

use axum::extract::State;
use axum::{routing::get, Router};
use policy_runtime::{rate_limit, require_api_key, Engine};

#[derive(Clone)]
pub struct AppState;

#[rate_limit("5/minute")]
async fn item(id: u32) -> String {
    id.to_string()
}

#[require_api_key]
async fn search(State(_state): State<AppState>, page: Option<u64>, name: &str) -> String {
    format!("{page:?} {name}")
}

fn main() {
    let _app: Router = Router::new()
        .route("/{id}", get(item))
        .route("/search", get(search))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
