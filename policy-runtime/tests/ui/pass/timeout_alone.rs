//! `#[timeout]` alone wraps the handler: its policy has the timeout and no check.
#![deny(warnings)]

use axum::routing::get;
use axum::Router;
use policy_runtime::__private::Policy;
use policy_runtime::{timeout, Engine};
use std::time::Duration;

#[timeout("500ms")]
pub async fn quick() -> &'static str {
    "quick"
}

fn main() {
    let policy = <__PolicyOf_quick as Policy>::POLICY;
    assert_eq!(policy.timeout, Some(Duration::from_millis(500)));
    assert_eq!(policy.body_limit, None);
    assert!(policy.checks.is_empty());
    assert!(policy.handler.ends_with("::quick"), "{}", policy.handler);

    let _app: Router = Router::new()
        .route("/quick", get(quick))
        .layer(Engine::builder().build().unwrap());
}
