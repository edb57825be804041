//! Every error format, byte for byte: a 4xx `#[api_error]` error, a 5xx in
//! development and in production, a 429, a 401 and a JSON body that does
//! not deserialise, each through a real Router behind an engine.

mod common;

use axum::body::Body;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::app_error::{AppError, DatabaseDown};
use common::{Reply, from, send};
use policy_runtime::{
    Engine, Environment, ErrorFormat, ErrorRenderer, ErrorView, FieldError, rate_limit,
    require_api_key,
};

const KEY: &str = "formats-client-key-0123456789";
const REQUEST_ID: &str = "req-golden-1";

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Signup {
    email: String,
    age: u8,
}

async fn user(Path(id): Path<u64>) -> Result<&'static str, AppError> {
    Err(AppError::UserNotFound { id })
}

async fn profile() -> Result<&'static str, AppError> {
    Err(AppError::Profile(DatabaseDown))
}

async fn invalid() -> Result<&'static str, AppError> {
    Err(AppError::Invalid {
        errors: vec![
            FieldError::new("email", "value_error.email", "not a valid email address"),
            FieldError::new("address.city", "required", "city is required"),
        ],
    })
}

#[rate_limit("1/minute")]
async fn limited() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

#[rate_limit("1000/minute")]
async fn signup(Json(signup): Json<Signup>) -> String {
    signup.email
}

fn app(format: ErrorFormat, environment: Environment) -> Router {
    let engine = Engine::builder()
        .api_key("client", KEY)
        .environment(environment)
        .error_format(format)
        .build()
        .unwrap();
    Router::new()
        .route("/users/{id}", get(user))
        .route("/profile", get(profile))
        .route("/invalid", get(invalid))
        .route("/limited", get(limited))
        .route("/keyed", get(keyed))
        .route("/signup", post(signup))
        .layer(engine)
}

fn request(method: &str, uri: &str) -> axum::http::request::Builder {
    from("192.0.2.1", method, uri).header("x-request-id", REQUEST_ID)
}

/// The six responses every format is checked on, in order: 404, 500
/// (production), 500 (development), 429, 401, JSON rejection.
struct Replies {
    not_found: Reply,
    server_error: Reply,
    server_error_in_development: Reply,
    rate_limited: Reply,
    unauthorized: Reply,
    bad_json: Reply,
}

async fn replies(format: ErrorFormat) -> Replies {
    let production = app(format.clone(), Environment::Production);
    let development = app(format, Environment::Development);
    let get = |uri: &str| request("GET", uri).body(Body::empty()).unwrap();
    let not_found = send(&production, get("/users/7")).await;
    let server_error = send(&production, get("/profile")).await;
    let server_error_in_development = send(&development, get("/profile")).await;
    assert_eq!(
        send(&production, get("/limited")).await.status,
        StatusCode::OK
    );
    let rate_limited = send(&production, get("/limited")).await;
    let unauthorized = send(&production, get("/keyed")).await;
    let bad_json = send(
        &production,
        request("POST", "/signup")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"email": 5, "age": 30}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert_eq!(server_error.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        server_error_in_development.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(rate_limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Re-rendering keeps the policies' own headers.
    assert!(rate_limited.headers.contains_key("retry-after"));
    assert!(rate_limited.headers.contains_key("x-ratelimit-limit"));
    assert!(unauthorized.headers.contains_key("www-authenticate"));
    Replies {
        not_found,
        server_error,
        server_error_in_development,
        rate_limited,
        unauthorized,
        bad_json,
    }
}

/// The body with its `timestamp` (checked to be RFC 3339 UTC) as `<now>`.
fn normalized(reply: &Reply) -> String {
    let body = &reply.body;
    let Some(at) = body.find(r#""timestamp":""#) else {
        return body.clone();
    };
    let start = at + r#""timestamp":""#.len();
    let stamp = &body[start..start + 20];
    assert!(
        stamp.len() == 20
            && stamp.as_bytes()[4] == b'-'
            && stamp.as_bytes()[10] == b'T'
            && stamp.ends_with('Z'),
        "not an RFC 3339 timestamp: {stamp}"
    );
    format!("{}<now>{}", &body[..start], &body[start + 20..])
}

#[tokio::test]
async fn compact_is_the_default_and_unchanged() {
    let replies = replies(ErrorFormat::default()).await;
    let golden = [
        (
            &replies.not_found,
            r#"{"error":"user 7 not found","code":"USER_NOT_FOUND"}"#,
        ),
        (
            &replies.server_error,
            r#"{"error":"Internal Server Error","code":"PROFILE_FAILED"}"#,
        ),
        (
            &replies.server_error_in_development,
            r#"{"error":"could not load the profile: connection to db-primary.internal:5432 refused","code":"PROFILE_FAILED"}"#,
        ),
        (
            &replies.rate_limited,
            r#"{"error":"Too Many Requests: 1 per 1 minute","code":"RATE_LIMITED"}"#,
        ),
        (
            &replies.unauthorized,
            r#"{"error":"Missing API key","code":"UNAUTHORIZED"}"#,
        ),
        (
            &replies.bad_json,
            r#"{"error":"Failed to deserialize the JSON body into the target type","code":"VALIDATION_ERROR","details":[{"field":"email","message":"invalid type: integer `5`, expected a string","code":"invalid_type"}]}"#,
        ),
    ];
    for (reply, body) in golden {
        assert_eq!(reply.body, body);
        assert_eq!(reply.header("content-type"), "application/json");
    }
}

#[tokio::test]
async fn simple_is_the_flask_shape() {
    let replies = replies(ErrorFormat::Simple).await;
    let golden = [
        (&replies.not_found, r#"{"error":"user 7 not found"}"#),
        (
            &replies.server_error,
            r#"{"error":"Internal Server Error"}"#,
        ),
        (
            &replies.server_error_in_development,
            r#"{"error":"could not load the profile: connection to db-primary.internal:5432 refused"}"#,
        ),
        (
            &replies.rate_limited,
            r#"{"error":"Too Many Requests: 1 per 1 minute"}"#,
        ),
        (&replies.unauthorized, r#"{"error":"Missing API key"}"#),
        (
            &replies.bad_json,
            r#"{"error":"Failed to deserialize the JSON body into the target type"}"#,
        ),
    ];
    for (reply, body) in golden {
        assert_eq!(reply.body, body);
        assert_eq!(reply.header("content-type"), "application/json");
    }
}

#[tokio::test]
async fn detailed_is_the_fastapi_shape() {
    let replies = replies(ErrorFormat::Detailed).await;
    let golden = [
        (
            &replies.not_found,
            r#"{"error":true,"error_code":"USER_NOT_FOUND","message":"user 7 not found","details":[],"timestamp":"<now>","request_id":"req-golden-1","severity":"low","category":"lookup","id":7}"#,
        ),
        (
            &replies.server_error,
            r#"{"error":true,"error_code":"PROFILE_FAILED","message":"Internal Server Error","details":[],"timestamp":"<now>","request_id":"req-golden-1","severity":"high","category":"server"}"#,
        ),
        (
            &replies.server_error_in_development,
            r#"{"error":true,"error_code":"PROFILE_FAILED","message":"could not load the profile: connection to db-primary.internal:5432 refused","details":[],"timestamp":"<now>","request_id":"req-golden-1","severity":"high","category":"server"}"#,
        ),
        (
            &replies.rate_limited,
            r#"{"error":true,"error_code":"RATE_LIMITED","message":"Too Many Requests: 1 per 1 minute","details":[],"timestamp":"<now>","request_id":"req-golden-1","severity":"medium","category":"rate_limit"}"#,
        ),
        (
            &replies.unauthorized,
            r#"{"error":true,"error_code":"UNAUTHORIZED","message":"Missing API key","details":[],"timestamp":"<now>","request_id":"req-golden-1","severity":"medium","category":"authentication"}"#,
        ),
        (
            &replies.bad_json,
            r#"{"error":true,"error_code":"VALIDATION_ERROR","message":"Failed to deserialize the JSON body into the target type","details":[{"field":"email","message":"invalid type: integer `5`, expected a string","code":"invalid_type"}],"timestamp":"<now>","request_id":"req-golden-1","severity":"medium","category":"validation"}"#,
        ),
    ];
    for (reply, body) in golden {
        assert_eq!(normalized(reply), body);
        assert_eq!(reply.header("content-type"), "application/json");
    }
}

#[tokio::test]
async fn problem_is_rfc_9457_with_typed_problems() {
    let replies = replies(ErrorFormat::problem_with_type_base(
        "https://errors.example.com/",
    ))
    .await;
    let golden = [
        (
            &replies.not_found,
            r#"{"type":"https://errors.example.com/USER_NOT_FOUND","title":"User not found","status":404,"detail":"user 7 not found","instance":"/users/7","code":"USER_NOT_FOUND","request_id":"req-golden-1","id":7}"#,
        ),
        (
            &replies.server_error,
            r#"{"type":"https://errors.example.com/PROFILE_FAILED","title":"Internal Server Error","status":500,"detail":"Internal Server Error","instance":"/profile","code":"PROFILE_FAILED","request_id":"req-golden-1"}"#,
        ),
        (
            &replies.server_error_in_development,
            r#"{"type":"https://errors.example.com/PROFILE_FAILED","title":"Internal Server Error","status":500,"detail":"could not load the profile: connection to db-primary.internal:5432 refused","instance":"/profile","code":"PROFILE_FAILED","request_id":"req-golden-1"}"#,
        ),
        (
            &replies.rate_limited,
            r#"{"type":"https://errors.example.com/RATE_LIMITED","title":"Too Many Requests","status":429,"detail":"Too Many Requests: 1 per 1 minute","instance":"/limited","code":"RATE_LIMITED","request_id":"req-golden-1"}"#,
        ),
        (
            &replies.unauthorized,
            r#"{"type":"https://errors.example.com/UNAUTHORIZED","title":"Unauthorized","status":401,"detail":"Missing API key","instance":"/keyed","code":"UNAUTHORIZED","request_id":"req-golden-1"}"#,
        ),
        (
            &replies.bad_json,
            r##"{"type":"https://errors.example.com/VALIDATION_ERROR","title":"Unprocessable Entity","status":422,"detail":"Failed to deserialize the JSON body into the target type","instance":"/signup","code":"VALIDATION_ERROR","request_id":"req-golden-1","errors":[{"detail":"invalid type: integer `5`, expected a string","pointer":"#/email"}]}"##,
        ),
    ];
    for (reply, body) in golden {
        assert_eq!(reply.body, body);
        assert_eq!(reply.header("content-type"), "application/problem+json");
    }
}

#[tokio::test]
async fn problem_without_a_type_base_is_about_blank_with_the_reason_as_title() {
    let replies = replies(ErrorFormat::problem()).await;
    assert_eq!(
        replies.not_found.body,
        r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"user 7 not found","instance":"/users/7","code":"USER_NOT_FOUND","request_id":"req-golden-1","id":7}"#
    );
    assert_eq!(
        replies.unauthorized.body,
        r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Missing API key","instance":"/keyed","code":"UNAUTHORIZED","request_id":"req-golden-1"}"#
    );
}

struct Envelope;

impl ErrorRenderer for Envelope {
    fn render(&self, error: &ErrorView<'_>) -> serde_json::Value {
        serde_json::json!({
            "ok": false,
            "failure": { "kind": error.code(), "text": error.message(), "status": error.status().as_u16() },
            "trace": error.request_id(),
        })
    }

    fn content_type(&self) -> &'static str {
        "application/vnd.example.error+json"
    }
}

#[tokio::test]
async fn custom_formats_render_through_the_trait() {
    let replies = replies(ErrorFormat::custom(Envelope)).await;
    let golden = [
        (
            &replies.not_found,
            r#"{"failure":{"kind":"USER_NOT_FOUND","status":404,"text":"user 7 not found"},"ok":false,"trace":"req-golden-1"}"#,
        ),
        (
            &replies.server_error,
            r#"{"failure":{"kind":"PROFILE_FAILED","status":500,"text":"Internal Server Error"},"ok":false,"trace":"req-golden-1"}"#,
        ),
        (
            &replies.server_error_in_development,
            r#"{"failure":{"kind":"PROFILE_FAILED","status":500,"text":"could not load the profile: connection to db-primary.internal:5432 refused"},"ok":false,"trace":"req-golden-1"}"#,
        ),
        (
            &replies.rate_limited,
            r#"{"failure":{"kind":"RATE_LIMITED","status":429,"text":"Too Many Requests: 1 per 1 minute"},"ok":false,"trace":"req-golden-1"}"#,
        ),
        (
            &replies.unauthorized,
            r#"{"failure":{"kind":"UNAUTHORIZED","status":401,"text":"Missing API key"},"ok":false,"trace":"req-golden-1"}"#,
        ),
        (
            &replies.bad_json,
            r#"{"failure":{"kind":"VALIDATION_ERROR","status":422,"text":"Failed to deserialize the JSON body into the target type"},"ok":false,"trace":"req-golden-1"}"#,
        ),
    ];
    for (reply, body) in golden {
        assert_eq!(reply.body, body);
        assert_eq!(
            reply.header("content-type"),
            "application/vnd.example.error+json"
        );
    }
}

#[tokio::test]
async fn validation_errors_carry_their_fields_in_every_format() {
    let get = |uri: &str| request("GET", uri).body(Body::empty()).unwrap();
    let compact = send(
        &app(ErrorFormat::Compact, Environment::Production),
        get("/invalid"),
    )
    .await;
    assert_eq!(compact.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        compact.body,
        r#"{"error":"invalid signup","code":"VALIDATION_ERROR","details":[{"field":"email","message":"not a valid email address","code":"value_error.email"},{"field":"address.city","message":"city is required","code":"required"}]}"#
    );
    let problem = send(
        &app(ErrorFormat::problem(), Environment::Production),
        get("/invalid"),
    )
    .await;
    assert_eq!(
        problem.body,
        r##"{"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"invalid signup","instance":"/invalid","code":"VALIDATION_ERROR","request_id":"req-golden-1","errors":[{"detail":"not a valid email address","pointer":"#/email"},{"detail":"city is required","pointer":"#/address/city"}]}"##
    );
    let detailed = send(
        &app(ErrorFormat::Detailed, Environment::Production),
        get("/invalid"),
    )
    .await;
    assert_eq!(
        detailed.json()["details"],
        serde_json::json!([
            {"field": "email", "message": "not a valid email address", "code": "value_error.email"},
            {"field": "address.city", "message": "city is required", "code": "required"}
        ])
    );
}

#[tokio::test]
async fn an_unsafe_request_id_never_reaches_a_body() {
    let app = app(ErrorFormat::Detailed, Environment::Production);
    let reply = send(
        &app,
        from("192.0.2.1", "GET", "/users/7")
            .header("x-request-id", "evil\"id with spaces")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.json()["request_id"], serde_json::Value::Null);
}
