//! axum's extractor rejections come out as `ErrorBody` responses, in the
//! engine's format, both in policy-wrapped handlers (every argument is
//! wrapped by the macro) and in plain handlers that use
//! `policy_runtime::extract`.

mod common;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use common::{Reply, from, send};
use policy_runtime::{Engine, ErrorFormat, extract, rate_limit};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Paging {
    page: u32,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Signup {
    email: String,
    age: u8,
}

#[rate_limit("1000/minute")]
async fn create(
    Path(id): Path<u32>,
    Query(paging): Query<Paging>,
    Json(signup): Json<Signup>,
) -> String {
    format!("{id} {} {}", paging.page, signup.email)
}

#[rate_limit("1000/minute")]
async fn form(Form(paging): Form<Paging>) -> String {
    paging.page.to_string()
}

async fn plain_create(
    extract::Path(id): extract::Path<u32>,
    extract::Query(paging): extract::Query<Paging>,
    extract::Json(signup): extract::Json<Signup>,
) -> String {
    format!("{id} {} {}", paging.page, signup.email)
}

async fn plain_form(extract::Form(paging): extract::Form<Paging>) -> String {
    paging.page.to_string()
}

/// A policy-wrapped handler may use the drop-in extractors too.
#[rate_limit("1000/minute")]
async fn wrapped_drop_in(extract::Json(signup): extract::Json<Signup>) -> String {
    signup.email
}

fn routes() -> Router {
    Router::new()
        .route("/wrapped/{id}", post(create))
        .route("/wrapped-form", post(form))
        .route("/plain/{id}", post(plain_create))
        .route("/plain-form", post(plain_form))
        .route("/drop-in", post(wrapped_drop_in))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(64))
}

fn app(format: ErrorFormat) -> Router {
    let engine = Engine::builder().error_format(format).build().unwrap();
    routes().layer(engine)
}

async fn post_to(app: &Router, uri: &str, content_type: &str, body: &str) -> Reply {
    send(
        app,
        from("192.0.2.1", "POST", uri)
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

/// Each rejection kind, with its status and code, for a prefix (`/wrapped`
/// or `/plain`).
async fn check_every_kind(app: &Router, prefix: &str) {
    let json = "application/json";
    let form_type = "application/x-www-form-urlencoded";
    let ok = post_to(
        app,
        &format!("/{prefix}/1?page=2"),
        json,
        r#"{"email":"a@b.c","age":3}"#,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body, "1 2 a@b.c");

    let cases = [
        // JSON that does not parse.
        (
            format!("/{prefix}/1?page=2"),
            json,
            r#"{"email":"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        // JSON of the wrong shape.
        (
            format!("/{prefix}/1?page=2"),
            json,
            r#"{"email":5,"age":3}"#.to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "VALIDATION_ERROR",
        ),
        // No JSON content type.
        (
            format!("/{prefix}/1?page=2"),
            "text/plain",
            r#"{"email":"a@b.c","age":3}"#.to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        // A body over the limit of 64 bytes.
        (
            format!("/{prefix}/1?page=2"),
            json,
            format!(r#"{{"email":"{}","age":3}}"#, "a".repeat(100)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        // A path parameter that is not a number.
        (
            format!("/{prefix}/abc?page=2"),
            json,
            r#"{"email":"a@b.c","age":3}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "INVALID_PATH",
        ),
        // A query that does not deserialise.
        (
            format!("/{prefix}/1?page=x"),
            json,
            r#"{"email":"a@b.c","age":3}"#.to_owned(),
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY",
        ),
        // A form that does not deserialise.
        (
            format!("/{prefix}-form"),
            form_type,
            "page=x".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FORM",
        ),
        // A form without its content type.
        (
            format!("/{prefix}-form"),
            json,
            "page=1".to_owned(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (uri, content_type, body, status, code) in cases {
        let reply = post_to(app, &uri, content_type, &body).await;
        assert_eq!(reply.status, status, "{uri} {body}: {}", reply.body);
        assert_eq!(reply.header("content-type"), "application/json", "{uri}");
        let json = reply.json();
        assert_eq!(json["code"], code, "{uri} {body}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }
    let ok = post_to(app, &format!("/{prefix}-form"), form_type, "page=4").await;
    assert_eq!(ok.body, "4");
}

#[tokio::test]
async fn policy_wrapped_handlers_reject_in_the_error_format() {
    check_every_kind(&app(ErrorFormat::Compact), "wrapped").await;
}

#[tokio::test]
async fn drop_in_extractors_reject_in_the_error_format() {
    check_every_kind(&app(ErrorFormat::Compact), "plain").await;
}

#[tokio::test]
async fn drop_in_extractors_work_without_an_engine_too() {
    check_every_kind(&routes(), "plain").await;
}

#[tokio::test]
async fn a_missing_field_is_named_in_the_details() {
    let reply = post_to(
        &app(ErrorFormat::Compact),
        "/plain/1?page=1",
        "application/json",
        r#"{"age":3}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        reply.json()["details"],
        serde_json::json!([{"field": "email", "message": "missing field `email`", "code": "missing_field"}])
    );
    let reply = post_to(
        &app(ErrorFormat::Compact),
        "/drop-in",
        "application/json",
        r#"{"email":"a","age":300}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.json()["details"][0]["field"], "age");
    assert_eq!(reply.json()["details"][0]["code"], "invalid_value");
}

#[tokio::test]
async fn rejections_are_rendered_again_in_the_engine_format() {
    let app = app(ErrorFormat::problem());
    for prefix in ["wrapped", "plain"] {
        let reply = post_to(
            &app,
            &format!("/{prefix}/abc?page=1"),
            "application/json",
            "{}",
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.header("content-type"), "application/problem+json");
        let json = reply.json();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["status"], 400);
        assert_eq!(json["code"], "INVALID_PATH");
        assert_eq!(json["instance"], format!("/{prefix}/abc"));
    }
    let reply = post_to(
        &app,
        "/plain/1?page=1",
        "application/json",
        r#"{"email":"a","age":-1}"#,
    )
    .await;
    assert_eq!(
        reply.json()["errors"],
        serde_json::json!([{"detail": "invalid value: integer `-1`, expected u8", "pointer": "#/age"}])
    );
}
