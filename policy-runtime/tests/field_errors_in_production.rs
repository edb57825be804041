//! `EngineBuilder::field_errors_in_production(false)`: per-field errors
//! leave production responses (an `#[api_error]` error and an extractor
//! rejection, in the detailed, compact and problem formats), and stay in
//! staging and development, and by default.

mod common;

use axum::body::Body;
use axum::routing::post;
use axum::{Json, Router};
use common::{from, send};
use policy_runtime::{Engine, Environment, ErrorFormat, FieldError, rate_limit};
use serde_json::json;

#[policy_runtime::api_error]
#[derive(Debug, thiserror::Error)]
enum SignupError {
    #[error("invalid signup")]
    #[api(status = 422, code = "VALIDATION_ERROR")]
    Invalid {
        #[api(errors)]
        errors: Vec<FieldError>,
    },
}

async fn invalid() -> Result<&'static str, SignupError> {
    Err(SignupError::Invalid {
        errors: vec![FieldError::new(
            "email",
            "value_error.email",
            "not a valid email address",
        )],
    })
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Signup {
    email: String,
}

#[rate_limit("100/minute")]
async fn signup(Json(_signup): Json<Signup>) -> &'static str {
    "ok"
}

fn app(environment: Environment, format: ErrorFormat, shown: Option<bool>) -> Router {
    let mut builder = Engine::builder()
        .environment(environment)
        .error_format(format);
    if let Some(shown) = shown {
        builder = builder.field_errors_in_production(shown);
    }
    Router::new()
        .route("/invalid", post(invalid))
        .route("/signup", post(signup))
        .layer(builder.build().unwrap())
}

async fn post_json(app: &Router, uri: &str, body: &'static str) -> serde_json::Value {
    let request = from("192.0.2.1", "POST", uri)
        .header("content-type", "application/json")
        .header("x-request-id", "req-1")
        .body(Body::from(body))
        .unwrap();
    let reply = send(app, request).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    reply.json()
}

const EMAIL: &str = "not a valid email address";

#[tokio::test]
async fn production_sends_detailed_errors_without_their_fields() {
    let app = app(Environment::Production, ErrorFormat::Detailed, Some(false));
    let body = post_json(&app, "/invalid", "{}").await;
    assert_eq!(body["error_code"], "VALIDATION_ERROR");
    assert_eq!(body["message"], "invalid signup");
    assert_eq!(body["details"], json!([]));
    assert_eq!(body["request_id"], "req-1");
    assert_eq!(body["category"], "validation");

    let body = post_json(&app, "/signup", r#"{"email":5}"#).await;
    assert_eq!(body["error_code"], "VALIDATION_ERROR");
    assert_eq!(body["details"], json!([]));
}

#[tokio::test]
async fn production_sends_compact_and_problem_errors_without_their_fields() {
    let compact = app(Environment::Production, ErrorFormat::Compact, Some(false));
    assert_eq!(
        post_json(&compact, "/invalid", "{}").await,
        json!({"error": "invalid signup", "code": "VALIDATION_ERROR"})
    );
    let problem = app(Environment::Production, ErrorFormat::problem(), Some(false));
    let body = post_json(&problem, "/signup", r#"{"email":5}"#).await;
    assert_eq!(body["code"], "VALIDATION_ERROR");
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn staging_development_and_the_default_keep_the_fields() {
    for app in [
        app(Environment::Staging, ErrorFormat::Detailed, Some(false)),
        app(Environment::Development, ErrorFormat::Detailed, Some(false)),
        app(Environment::Production, ErrorFormat::Detailed, None),
        app(Environment::Production, ErrorFormat::Detailed, Some(true)),
    ] {
        let body = post_json(&app, "/invalid", "{}").await;
        assert_eq!(
            body["details"],
            json!([{"field": "email", "message": EMAIL, "code": "value_error.email"}])
        );
        let body = post_json(&app, "/signup", r#"{"email":5}"#).await;
        assert_eq!(body["details"][0]["field"], "email");
    }
}
