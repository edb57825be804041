//! A `Result` whose error type is not a response: one error, on the return
//! type, naming the type that is not.

use axum::{routing::get, Router};
use policy_runtime::{rate_limit, require_api_key, Engine};

#[derive(Debug)]
pub struct DbError;

#[rate_limit("5/minute")]
#[require_api_key]
async fn lookup() -> Result<String, DbError> {
    Err(DbError)
}

fn main() {
    let _app: Router = Router::new()
        .route("/lookup", get(lookup))
        .layer(Engine::builder().build().unwrap());
}
