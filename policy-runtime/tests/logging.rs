//! One `tracing` event per policy decision, with the documented fields, and
//! never a secret.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{Engine, rate_limit, require_api_key};

const SECRET: &str = "super-secret-key-value-0123456789";

#[rate_limit("1/minute")]
#[require_api_key]
async fn guarded() -> &'static str {
    "ok"
}

fn app() -> Router {
    let engine = Engine::builder()
        .api_key("billing", SECRET)
        .build()
        .unwrap();
    Router::new().route("/guarded", get(guarded)).layer(engine)
}

#[tokio::test]
async fn every_decision_is_one_event_with_its_fields() {
    let (logs, _guard) = Logs::capture();
    let app = app();
    let request = |key: &str| {
        from("203.0.113.9", "GET", "/guarded")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };

    assert_eq!(send(&app, request(SECRET)).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, request(SECRET)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let app2 = self::app();
    assert_eq!(
        send(&app2, request("wrong-key-but-also-secretish"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let rate = logs.policy_events("rate_limit");
    assert_eq!(rate.len(), 3, "{}", logs.text());
    assert_eq!(rate[0]["level"], "DEBUG");
    assert_eq!(rate[0]["fields"]["outcome"], "allow");
    assert_eq!(rate[0]["fields"]["scope"], "logging::guarded");
    assert_eq!(rate[0]["fields"]["client_ip"], "203.0.113.9");
    assert_eq!(rate[0]["fields"]["limit"], "1 per 1 minute");
    assert_eq!(rate[1]["level"], "WARN");
    assert_eq!(rate[1]["fields"]["outcome"], "deny");
    assert_eq!(rate[1]["fields"]["scope"], "logging::guarded");

    let keys = logs.policy_events("api_key");
    assert_eq!(keys.len(), 2, "{}", logs.text());
    assert_eq!(keys[0]["level"], "DEBUG");
    assert_eq!(keys[0]["fields"]["outcome"], "allow");
    assert_eq!(keys[0]["fields"]["key_id"], "billing");
    assert_eq!(keys[0]["fields"]["client_ip"], "203.0.113.9");
    assert_eq!(keys[0]["fields"]["scope"], "logging::guarded");
    assert_eq!(keys[1]["level"], "WARN");
    assert_eq!(keys[1]["fields"]["outcome"], "deny");
    assert_eq!(keys[1]["fields"]["reason"], "invalid");

    let text = logs.text();
    assert!(!text.contains(SECRET), "a key was logged: {text}");
    assert!(
        !text.contains("super-secret"),
        "part of a key was logged: {text}"
    );
    assert!(
        !text.contains("wrong-key"),
        "a presented key was logged: {text}"
    );
}
