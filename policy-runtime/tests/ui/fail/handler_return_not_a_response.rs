//! A return type that is not a response: one error, on the return type.

use axum::{routing::get, Router};
use policy_runtime::{rate_limit, Engine};

pub struct Report {
    pub pages: u32,
}

#[rate_limit("5/minute")]
async fn report() -> Report {
    Report { pages: 3 }
}

fn main() {
    let _app: Router = Router::new()
        .route("/report", get(report))
        .layer(Engine::builder().build().unwrap());
}
