//! Handlers with a generic or concrete state, `impl IntoResponse` returns,
//! body readers in last place (also in `Option` and `Result`), and futures
//! that hold a non-`Send` value only between `.await`s: they compile, with no
//! warning, behind the assertions on the user's code.
#![deny(warnings)]

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequestParts, Json, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use policy_runtime::{rate_limit, require_api_key, Engine};
use std::rc::Rc;

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
}

#[derive(Clone)]
pub struct Pool;

impl FromRef<AppState> for Pool {
    fn from_ref(state: &AppState) -> Pool {
        state.pool.clone()
    }
}

/// An extractor that needs the application's state, as axum recommends.
pub struct CurrentUser;

impl<S> FromRequestParts<S> for CurrentUser
where
    Pool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = StatusCode;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, StatusCode> {
        let _pool = Pool::from_ref(state);
        Ok(CurrentUser)
    }
}

/// An extractor for one concrete state only.
pub struct Tenant;

impl FromRequestParts<AppState> for Tenant {
    type Rejection = StatusCode;

    async fn from_request_parts(_: &mut Parts, _: &AppState) -> Result<Self, StatusCode> {
        Ok(Tenant)
    }
}

async fn tick() {}

#[rate_limit("5/minute")]
pub async fn generic_state<S: Clone + Send + Sync + 'static>(
    State(_state): State<S>,
    body: String,
) -> impl IntoResponse {
    body
}

#[rate_limit("5/minute")]
pub async fn generic_where<S>(State(_state): State<S>) -> impl IntoResponse + use<S>
where
    S: Clone + Send + Sync + 'static,
{
    StatusCode::NO_CONTENT
}

#[require_api_key]
pub async fn concrete_state(
    State(state): State<AppState>,
    State(_pool): State<Pool>,
    _user: CurrentUser,
    _tenant: Tenant,
    Path(id): Path<u32>,
    note: Option<Json<String>>,
) -> Result<impl IntoResponse, StatusCode> {
    let _ = state.pool;
    Ok(format!("{id} {:?}", note.map(|n| n.0)))
}

#[rate_limit("5/minute")]
pub async fn result_body(note: Result<Json<String>, JsonRejection>) -> (StatusCode, String) {
    match note {
        Ok(Json(note)) => (StatusCode::OK, note),
        Err(rejection) => (rejection.status(), rejection.body_text()),
    }
}

#[rate_limit("5/minute")]
pub async fn whole_request(Path(id): Path<u32>, request: Request) -> String {
    format!("{id} {}", request.uri())
}

#[rate_limit("5/minute")]
pub async fn rc_between_awaits() -> String {
    tick().await;
    let len = {
        let shared = Rc::new(String::from("ok"));
        shared.len()
    };
    tick().await;
    len.to_string()
}

#[rate_limit("5/minute")]
pub async fn no_return() {}

fn main() {
    let state = AppState { pool: Pool };
    let _app: Router = Router::new()
        .route("/generic", post(generic_state::<AppState>))
        .route("/where", get(generic_where::<AppState>))
        .route("/concrete/{id}", post(concrete_state))
        .route("/result", post(result_body))
        .route("/request/{id}", post(whole_request))
        .route("/rc", get(rc_between_awaits))
        .route("/unit", get(no_return))
        .with_state(state)
        .layer(
            Engine::builder()
                .api_key("ui-pass", "ui-pass-key-0123456789abcdef")
                .build()
                .unwrap(),
        );
}
