//! A future that is not `Send`: one error, on the `fn` name, naming the value
//! held across the `.await`; none at the router.

use axum::{routing::get, Router};
use policy_runtime::{rate_limit, Engine};
use std::rc::Rc;

async fn load() -> u32 {
    7
}

#[rate_limit("5/minute")]
async fn not_send() -> String {
    let shared = Rc::new(1);
    let loaded = load().await;
    format!("{shared} {loaded}")
}

fn main() {
    let _app: Router = Router::new()
        .route("/", get(not_send))
        .layer(Engine::builder().build().unwrap());
}
