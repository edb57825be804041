//! `#[require_api_key(scope = ...)]` against a real Router: one scope,
//! `any(...)`, `all(...)`, 403 for a valid key without the scope, 401 for
//! everything that is not a valid key, and scopes from the environment.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, Reply, from, send};
use policy_runtime::{ApiKey, ApiKeyId, Engine, require_api_key};

const ADMIN: &str = "Hq2wZ7xPdN4tLc9rVb3m";
const READER: &str = "Ty6uJ1nKsE8fWq5aGz0p";
const WRITER: &str = "Mv3cX9bRkD2hQy7tLw4e";
const EDITOR: &str = "Pa5sF8gJ1lZx4cVb7nMq";
const PLAIN: &str = "Wr2tY6uI9oP3aS5dF7gH";

#[require_api_key(scope = "admin")]
async fn admin(key: ApiKeyId) -> String {
    format!("admin for {}", key.name())
}

#[require_api_key(scope = any("read", "write"))]
async fn either() -> &'static str {
    "either"
}

#[require_api_key(scope = all("read", "write"))]
async fn both() -> &'static str {
    "both"
}

#[require_api_key]
async fn any_key(key: ApiKeyId) -> String {
    key.name().to_owned()
}

fn router(engine: Engine) -> Router {
    Router::new()
        .route("/admin", get(admin))
        .route("/either", get(either))
        .route("/both", get(both))
        .route("/any", get(any_key))
        .layer(engine)
}

fn app() -> Router {
    router(
        Engine::builder()
            .api_key_with(ApiKey::new("ops", ADMIN).scopes(["admin"]))
            .api_key_with(ApiKey::new("reader", READER).scopes(["read"]))
            .api_key_with(ApiKey::new("writer", WRITER).scopes(["write"]))
            .api_key_with(ApiKey::new("editor", EDITOR).scopes(["read", "write"]))
            .api_key("plain", PLAIN)
            .build()
            .unwrap(),
    )
}

async fn call(app: &Router, uri: &str, key: &str) -> Reply {
    let request = from("192.0.2.30", "GET", uri)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

fn assert_forbidden(reply: &Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.header("content-type"), "application/json");
    assert!(reply.headers.get("www-authenticate").is_none());
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": format!("Forbidden: {message}"), "code": "FORBIDDEN"})
    );
}

#[tokio::test]
async fn one_scope_admits_keys_holding_it_and_forbids_the_others() {
    let app = app();
    let reply = call(&app, "/admin", ADMIN).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "admin for ops");
    for key in [READER, EDITOR, PLAIN] {
        assert_forbidden(
            &call(&app, "/admin", key).await,
            "this API key lacks the scope `admin`",
        );
    }
}

#[tokio::test]
async fn any_of_admits_a_key_with_one_of_the_scopes() {
    let app = app();
    for key in [READER, WRITER, EDITOR] {
        assert_eq!(call(&app, "/either", key).await.status, StatusCode::OK);
    }
    for key in [ADMIN, PLAIN] {
        assert_forbidden(
            &call(&app, "/either", key).await,
            "this API key has none of the scopes `read`, `write`",
        );
    }
}

#[tokio::test]
async fn all_of_admits_only_a_key_with_every_scope() {
    let app = app();
    assert_eq!(call(&app, "/both", EDITOR).await.status, StatusCode::OK);
    assert_forbidden(
        &call(&app, "/both", READER).await,
        "this API key lacks the scope `write`",
    );
    assert_forbidden(
        &call(&app, "/both", WRITER).await,
        "this API key lacks the scope `read`",
    );
}

#[tokio::test]
async fn a_handler_without_a_scope_admits_every_valid_key() {
    let app = app();
    for (key, name) in [(ADMIN, "ops"), (READER, "reader"), (PLAIN, "plain")] {
        let reply = call(&app, "/any", key).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, name);
    }
}

#[tokio::test]
async fn a_key_that_is_not_valid_gets_401_on_a_scoped_handler_not_403() {
    let app = app();
    let reply = call(&app, "/admin", "not-a-key-at-all-0000").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"api\"");
    let request = from("192.0.2.30", "GET", "/admin")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refusals_for_a_missing_scope_never_lock_the_client_out() {
    let app = app();
    for _ in 0..20 {
        assert_eq!(
            call(&app, "/admin", READER).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(call(&app, "/admin", ADMIN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn scopes_come_from_the_environment_as_name_key_scopes() {
    let vars = [
        (
            "API_KEYS".to_string(),
            format!("reader:{READER}:read, {PLAIN}"),
        ),
        (
            "API_KEY_1".to_string(),
            format!("editor:{EDITOR}:read|write"),
        ),
        ("API_KEY_2".to_string(), format!("ops:{ADMIN}:admin")),
    ];
    let app = router(Engine::builder().api_keys_from_vars(vars).build().unwrap());
    assert_eq!(call(&app, "/admin", ADMIN).await.body, "admin for ops");
    assert_eq!(call(&app, "/both", EDITOR).await.status, StatusCode::OK);
    assert_eq!(call(&app, "/either", READER).await.status, StatusCode::OK);
    assert_eq!(
        call(&app, "/both", READER).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call(&app, "/any", PLAIN).await.body, "API_KEYS#2");
}

#[tokio::test]
async fn a_scope_no_key_holds_is_a_warning_at_build() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder()
        .api_key_with(ApiKey::new("reader", READER).scopes(["read"]))
        .build()
        .unwrap();
    drop(engine);
    let warnings: Vec<String> = logs
        .events()
        .into_iter()
        .filter(|event| event["level"] == "WARN")
        .map(|event| event["fields"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        warnings.contains(&"`api_key_scopes::admin` requires the scope `admin`, which no configured API key has; every request to it gets 403".to_owned()),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w
                .starts_with("`api_key_scopes::both` requires all of the scopes `read`, `write`")),
        "{warnings:#?}"
    );
    assert!(
        !warnings
            .iter()
            .any(|w| w.starts_with("`api_key_scopes::either`")),
        "{warnings:#?}"
    );
}
