//! `#[require_api_key]` against a real Router: both headers, wrong and missing
//! keys, the identity extractor, and keys from the environment.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{assert_unauthorized, from, send};
use policy_runtime::{ApiKeyId, Engine, require_api_key};

const MOBILE_KEY: &str = "mobile-app-key-0123456789abcdef";
const PARTNER_KEY: &str = "partner-key-fedcba9876543210";

#[require_api_key]
async fn whoami(key: ApiKeyId) -> String {
    format!("hello {}", key.name())
}

fn app() -> Router {
    let engine = Engine::builder()
        .api_key("mobile-app", MOBILE_KEY)
        .api_key("partner", PARTNER_KEY)
        .build()
        .unwrap();
    Router::new().route("/me", get(whoami)).layer(engine)
}

fn request(headers: &[(&str, &str)]) -> axum::http::Request<Body> {
    let mut builder = from("192.0.2.10", "GET", "/me");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_key_in_x_api_key_is_accepted_and_named() {
    let reply = send(&app(), request(&[("x-api-key", MOBILE_KEY)])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "hello mobile-app");
}

#[tokio::test]
async fn a_bearer_token_is_accepted_whatever_the_scheme_case() {
    let reply = send(
        &app(),
        request(&[("authorization", &format!("Bearer {PARTNER_KEY}"))]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "hello partner");
    let reply = send(
        &app(),
        request(&[("authorization", &format!("bearer {PARTNER_KEY}"))]),
    )
    .await;
    assert_eq!(reply.body, "hello partner");
}

#[tokio::test]
async fn a_missing_key_gets_401() {
    assert_unauthorized(&send(&app(), request(&[])).await, "Missing API key");
    assert_unauthorized(
        &send(&app(), request(&[("x-api-key", "")])).await,
        "Missing API key",
    );
    assert_unauthorized(
        &send(&app(), request(&[("authorization", "Bearer ")])).await,
        "Missing API key",
    );
    assert_unauthorized(
        &send(
            &app(),
            request(&[("authorization", &format!("Basic {MOBILE_KEY}"))]),
        )
        .await,
        "Missing API key",
    );
}

#[tokio::test]
async fn a_wrong_key_gets_401() {
    assert_unauthorized(
        &send(&app(), request(&[("x-api-key", "guess")])).await,
        "Invalid API key",
    );
    // A prefix of a real key, and a real key with a suffix, are both wrong.
    assert_unauthorized(
        &send(&app(), request(&[("x-api-key", &MOBILE_KEY[..20])])).await,
        "Invalid API key",
    );
    assert_unauthorized(
        &send(
            &app(),
            request(&[("authorization", &format!("Bearer {MOBILE_KEY}x"))]),
        )
        .await,
        "Invalid API key",
    );
    // Keys are compared as sent: surrounding whitespace makes a different key.
    let padded = axum::http::HeaderValue::from_bytes(format!("{MOBILE_KEY} ").as_bytes()).unwrap();
    let mut request = request(&[]);
    request.headers_mut().insert("x-api-key", padded);
    assert_unauthorized(&send(&app(), request).await, "Invalid API key");
}

#[tokio::test]
async fn a_non_utf8_key_is_refused_without_a_panic() {
    let mut request = request(&[]);
    request.headers_mut().insert(
        "x-api-key",
        axum::http::HeaderValue::from_bytes(&[0xff, 0xfe, b'k']).unwrap(),
    );
    assert_unauthorized(&send(&app(), request).await, "Invalid API key");
}

#[tokio::test]
async fn keys_come_from_environment_variables() {
    let vars = [
        (
            "API_KEYS".to_string(),
            "list-key-one-0123456789, list-key-two-0123456789".to_string(),
        ),
        (
            "API_KEY_1".to_string(),
            "numbered-key-0123456789".to_string(),
        ),
    ];
    let engine = Engine::builder().api_keys_from_vars(vars).build().unwrap();
    let app = Router::new().route("/me", get(whoami)).layer(engine);
    for (key, name) in [
        ("list-key-one-0123456789", "API_KEYS#1"),
        ("list-key-two-0123456789", "API_KEYS#2"),
        ("numbered-key-0123456789", "API_KEY_1"),
    ] {
        let reply = send(&app, request(&[("x-api-key", key)])).await;
        assert_eq!(reply.body, format!("hello {name}"));
    }
}

#[tokio::test]
async fn a_bad_key_configuration_lists_every_problem() {
    let error = Engine::builder()
        .api_key("a", "")
        .api_key("b", "shared-secret-0123456789")
        .api_key("c", "shared-secret-0123456789")
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "API key `a` is empty",
            "API key `c` has the same value as API key `b`; give each client its own key",
        ]
    );
}

#[tokio::test]
async fn a_handler_taking_the_identity_without_the_policy_gets_a_clear_500() {
    async fn unprotected(key: ApiKeyId) -> String {
        key.name().to_owned()
    }
    let app = Router::new().route("/me", get(unprotected));
    let reply = send(&app, request(&[("x-api-key", MOBILE_KEY)])).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["code"], "INTERNAL_ERROR");
}
