//! Two body-reading extractors, also inside `Option` and with paths: each one
//! before the last is an error on its type.

use axum::extract::{Json, Path, State};
use axum::{routing::post, Router};
use policy_runtime::{require_api_key, Engine};

#[derive(Clone)]
pub struct AppState;

#[require_api_key]
async fn upload(
    State(_state): State<AppState>,
    note: Option<Json<String>>,
    Path(id): Path<u32>,
    raw: axum::body::Bytes,
    text: String,
) -> String {
    format!("{id} {:?} {} {text}", note.map(|n| n.0), raw.len())
}

fn main() {
    let _app: Router = Router::new()
        .route("/{id}", post(upload))
        .with_state(AppState)
        .layer(Engine::builder().build().unwrap());
}
