//! `#[utoipa::path]` above or below the policy attributes, with the
//! handler's own extractors, routed by `utoipa_axum::routes!` and listed in
//! `#[openapi(paths(...))]`: compiling without a warning, with or without
//! `policy_runtime`'s feature `utoipa`, and utoipa reading the handler's own
//! signature (its `Path` parameter), never the wrapper's.
#![deny(warnings)]

use axum::extract::{Path, Query};
use axum::Json;
use policy_runtime::{body_limit, rate_limit, require_api_key, ApiKeyId};
use serde::Deserialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Note {
    pub text: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct Paging {
    pub page: Option<u32>,
}

/// Below the policies: utoipa sees `Path<u32>`, `Query<Paging>` and `Json<Note>`.
#[rate_limit("20/hour")]
#[require_api_key]
#[body_limit("1KB")]
#[utoipa::path(post, path = "/notes/{id}", params(Paging), request_body = Note, responses((status = 200, body = String)))]
pub async fn below(
    key: ApiKeyId,
    Path(id): Path<u32>,
    Query(paging): Query<Paging>,
    Json(note): Json<Note>,
) -> String {
    format!("{} {id} {:?} {}", key.name(), paging.page, note.text)
}

/// Above the policies: utoipa reads the function before they wrap it.
#[utoipa::path(get, path = "/words/{id}", responses((status = 200, body = String)))]
#[rate_limit("200/day; 50/hour")]
pub async fn above(Path(id): Path<u32>) -> String {
    id.to_string()
}

/// A private handler below one policy, with an `impl Trait` return type.
#[policy_runtime::rate_limit("1/second")]
#[utoipa::path(get, path = "/ping")]
async fn ping() -> impl axum::response::IntoResponse {
    "pong"
}

#[derive(OpenApi)]
#[openapi(paths(below, above, ping))]
struct ApiDoc;

fn main() {
    let (router, spec): (axum::Router, _) = OpenApiRouter::new()
        .routes(routes!(below))
        .routes(routes!(above))
        .routes(routes!(ping))
        .split_for_parts();
    drop(router);
    let derived = ApiDoc::openapi();
    for openapi in [spec, derived] {
        let below = openapi
            .paths
            .get_path_operation("/notes/{id}", utoipa::openapi::HttpMethod::Post)
            .expect("the handler below the policies is documented");
        let names: Vec<&str> = below
            .parameters
            .iter()
            .flatten()
            .map(|parameter| parameter.name.as_str())
            .collect();
        assert_eq!(names, ["page", "id"]);
        assert!(below.request_body.is_some());
        let above = openapi
            .paths
            .get_path_operation("/words/{id}", utoipa::openapi::HttpMethod::Get)
            .expect("the handler above the policies is documented");
        assert_eq!(above.parameters.as_ref().map(Vec::len), Some(1));
        assert!(openapi
            .paths
            .get_path_operation("/ping", utoipa::openapi::HttpMethod::Get)
            .is_some());
    }
}
