//! A body-reading extractor before the last argument: one error, on its type;
//! none at the router.

use axum::extract::Path;
use axum::{routing::post, Router};
use policy_runtime::{rate_limit, Engine};

#[rate_limit("5/minute")]
async fn body_first(body: String, Path(id): Path<u32>) -> String {
    format!("{id} {body}")
}

fn main() {
    let _app: Router = Router::new()
        .route("/{id}", post(body_first))
        .layer(Engine::builder().build().unwrap());
}
