//! A router with no engine attached: limits still work, no key is accepted,
//! and one warning says how to attach an engine. (Its own test binary: the
//! fallback engine is process-wide.)

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::{from, send, Logs};
use policy_runtime::{rate_limit, require_api_key};

#[rate_limit("2/hour")]
async fn limited() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

#[tokio::test]
async fn without_an_engine_limits_apply_keys_are_refused_and_one_warning_is_logged() {
    let (logs, _guard) = Logs::capture();
    let app = Router::new()
        .route("/limited", get(limited))
        .route("/keyed", get(keyed));

    let request = |uri: &str| {
        from("192.0.2.50", "GET", uri)
            .header("x-api-key", "any-key-at-all-0123456789")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, request("/limited")).await.status, StatusCode::OK);
    assert_eq!(send(&app, request("/limited")).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, request("/limited")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..2 {
        let reply = send(&app, request("/keyed")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["code"], "UNAUTHORIZED");
    }

    let warnings: Vec<_> = logs
        .events()
        .into_iter()
        .filter(|event| {
            event["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("no policy engine attached"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{}", logs.text());
    assert_eq!(warnings[0]["level"], "WARN");
    assert!(warnings[0]["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("router.layer(policy_runtime::Engine::builder().build()?)"));
}
