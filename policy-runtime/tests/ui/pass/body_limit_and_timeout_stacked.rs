//! `#[body_limit]` and `#[timeout]` stacked with the other policies in any
//! order, or alone, compiling without a warning and giving the handler's
//! policy their values whatever their place.
#![deny(warnings)]

use axum::routing::{get, post};
use axum::Router;
use policy_runtime::__private::{Check, Policy};
use policy_runtime::{body_limit, rate_limit, require_api_key, timeout, ApiKeyId, Engine};
use std::time::Duration;

#[require_api_key]
#[rate_limit("20/hour", key = api_key)]
#[body_limit("1MB")]
#[timeout("30s")]
pub async fn limits_last(key: ApiKeyId, body: String) -> String {
    format!("{} {body}", key.name())
}

#[timeout("2 minutes")]
#[require_api_key(scope = "admin")]
#[body_limit("512 KiB")]
#[rate_limit("20/hour")]
pub async fn limits_first(body: String) -> String {
    body
}

#[policy_runtime::body_limit("16mib")]
pub async fn body_limit_alone(body: axum::body::Bytes) -> String {
    body.len().to_string()
}

#[rate_limit("5/minute")]
pub async fn neither() {}

fn main() {
    let last = <__PolicyOf_limits_last as Policy>::POLICY;
    assert_eq!(last.body_limit, Some(1_000_000));
    assert_eq!(last.timeout, Some(Duration::from_secs(30)));
    assert!(matches!(
        last.checks,
        [Check::ApiKey(_), Check::RateLimit(_)]
    ));

    let first = <__PolicyOf_limits_first as Policy>::POLICY;
    assert_eq!(first.body_limit, Some(512 * 1024));
    assert_eq!(first.timeout, Some(Duration::from_secs(120)));
    assert!(matches!(
        first.checks,
        [Check::ApiKey(_), Check::RateLimit(_)]
    ));

    let alone = <__PolicyOf_body_limit_alone as Policy>::POLICY;
    assert_eq!(alone.body_limit, Some(16 << 20));
    assert_eq!(alone.timeout, None);
    assert!(alone.checks.is_empty());

    let none = <__PolicyOf_neither as Policy>::POLICY;
    assert_eq!((none.body_limit, none.timeout), (None, None));

    let engine = Engine::builder()
        .api_key("ui-pass", "ui-pass-key-0123456789abcdef")
        .build()
        .unwrap();
    let _app: Router = Router::new()
        .route("/last", post(limits_last))
        .route("/first", post(limits_first))
        .route("/alone", post(body_limit_alone))
        .route("/neither", get(neither))
        .layer(engine);
}
