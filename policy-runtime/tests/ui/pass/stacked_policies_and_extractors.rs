//! Stacked policies, every extractor kind, documented public handlers, other
//! attributes, and no warning at all.
#![deny(warnings)]

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{rate_limit, require_api_key, ApiKeyId, Engine};
use serde::Deserialize;

#[derive(Clone)]
pub struct AppState;

#[derive(Deserialize)]
pub struct Paging {
    pub page: u32,
}

#[derive(Deserialize)]
pub struct Note {
    pub text: String,
}

pub mod handlers {
    use super::*;

    /// Documented, public, with every extractor kind.
    #[rate_limit("200/day; 50/hour")]
    #[require_api_key]
    #[allow(clippy::unused_async)]
    pub async fn create(
        State(_state): State<AppState>,
        Path(id): Path<u32>,
        Query(paging): Query<Paging>,
        key: ApiKeyId,
        Json(note): Json<Note>,
    ) -> String {
        format!("{id} {} {} {}", paging.page, key.name(), note.text)
    }

    #[policy_runtime::require_api_key]
    #[policy_runtime::rate_limit("10 per 5 minutes")]
    #[axum::debug_handler]
    pub(crate) async fn fully_qualified(
        mut body: String,
    ) -> Result<String, std::convert::Infallible> {
        body.push('!');
        Ok(body)
    }

    #[rate_limit("1/s")]
    pub async fn returns_impl_trait() -> impl axum::response::IntoResponse {
        "ok"
    }

    #[rate_limit("5/minute")]
    pub async fn generic<S: Clone + Send + Sync + 'static>(
        State(_state): State<S>,
    ) -> &'static str {
        "ok"
    }
}

fn main() {
    let engine = Engine::builder()
        .api_key("ui-pass", "ui-pass-key-0123456789abcdef")
        .build()
        .unwrap();
    let _app: Router = Router::new()
        .route("/notes/{id}", post(handlers::create))
        .route("/qualified", post(handlers::fully_qualified))
        .route("/impl", get(handlers::returns_impl_trait))
        .route("/generic", get(handlers::generic::<AppState>))
        .with_state(AppState)
        .layer(engine);
}
