//! Rotating API keys against a real Router: several keys per client name,
//! expiry, revocation and reloading while the server runs, the key file of
//! digests, and the `API_KEYS` / `API_KEY_<N>` / `API_KEY_FILE` variables.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Reply, from, send};
use policy_runtime::{ApiKey, ApiKeyId, ApiKeyStore, Engine, Environment, require_api_key};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const OLD: &str = "Fq3wE8rT1yU6iO0pA4sD";
const NEW: &str = "Gh7jK2lZ5xC9vB3nM6qW";
const OTHER: &str = "Lp4oI9uY2tR7eW1qA6sZ";

#[require_api_key]
async fn whoami(key: ApiKeyId) -> String {
    key.name().to_owned()
}

fn router(engine: Engine) -> Router {
    Router::new().route("/me", get(whoami)).layer(engine)
}

async fn call(app: &Router, key: &str) -> Reply {
    let request = from("192.0.2.40", "GET", "/me")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

fn assert_refused(reply: &Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"api\"");
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": message, "code": "UNAUTHORIZED"})
    );
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("policy-runtime-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn a_client_may_hold_several_keys_while_it_rotates() {
    let app = router(
        Engine::builder()
            .api_key("partner", OLD)
            .api_key("partner", NEW)
            .build()
            .unwrap(),
    );
    assert_eq!(call(&app, OLD).await.body, "partner");
    assert_eq!(call(&app, NEW).await.body, "partner");
}

#[tokio::test]
async fn an_expired_key_gets_401_and_a_future_expiry_does_not_matter_yet() {
    let now = SystemTime::now();
    let app = router(
        Engine::builder()
            .api_key_with(ApiKey::new("partner", OLD).expires_at(now - Duration::from_secs(1)))
            .api_key_with(ApiKey::new("partner", NEW).expires_at(now + Duration::from_secs(3600)))
            .build()
            .unwrap(),
    );
    assert_refused(&call(&app, OLD).await, "Expired API key");
    assert_eq!(call(&app, NEW).await.body, "partner");
}

#[tokio::test]
async fn a_revoked_key_is_refused_on_the_next_request() {
    let engine = Engine::builder()
        .api_key("partner", OLD)
        .api_key("partner", NEW)
        .api_key("other", OTHER)
        .build()
        .unwrap();
    let app = router(engine.clone());
    assert_eq!(call(&app, OLD).await.status, StatusCode::OK);

    assert_eq!(engine.revoke_key("partner"), 2);
    assert_refused(&call(&app, OLD).await, "Revoked API key");
    assert_refused(&call(&app, NEW).await, "Revoked API key");
    assert_eq!(call(&app, OTHER).await.body, "other");
    assert_eq!(engine.revoke_key("nobody"), 0);
}

#[tokio::test]
async fn reloading_swaps_the_key_set_without_a_restart() {
    let engine = Engine::builder().api_key("partner", OLD).build().unwrap();
    let app = router(engine.clone());
    assert_eq!(call(&app, OLD).await.status, StatusCode::OK);

    // Rotate: add the new key beside the old one, then drop the old one.
    let mut keys = (*engine.api_keys()).clone();
    keys.insert("partner", NEW).unwrap();
    engine.reload_keys(keys).unwrap();
    assert_eq!(call(&app, OLD).await.status, StatusCode::OK);
    assert_eq!(call(&app, NEW).await.status, StatusCode::OK);

    let mut keys = ApiKeyStore::new();
    keys.insert("partner", NEW).unwrap();
    engine.reload_keys(keys).unwrap();
    assert_refused(&call(&app, OLD).await, "Invalid API key");
    assert_eq!(call(&app, NEW).await.body, "partner");
}

#[tokio::test]
async fn a_reload_that_would_leave_production_without_keys_is_refused() {
    let engine = Engine::builder().api_key("partner", OLD).build().unwrap();
    let app = router(engine.clone());
    let error = engine.reload_keys(ApiKeyStore::new()).unwrap_err();
    assert!(
        error.problems()[0].contains("but no API key is configured"),
        "{error}"
    );
    let mut short = ApiKeyStore::new();
    short.insert("partner", "short").unwrap();
    let error = engine.reload_keys(short).unwrap_err();
    assert!(
        error.problems()[0].contains("is 5 characters long"),
        "{error}"
    );
    // The old keys stay in use.
    assert_eq!(call(&app, OLD).await.status, StatusCode::OK);

    // In development the same reload is allowed (with a warning).
    let engine = Engine::builder()
        .environment(Environment::Development)
        .api_key("partner", OLD)
        .build()
        .unwrap();
    engine.reload_keys(ApiKeyStore::new()).unwrap();
    assert_refused(&call(&router(engine), OLD).await, "Invalid API key");
}

#[tokio::test]
async fn keys_come_from_a_file_of_digests() {
    let expired = ApiKey::new("retired", OTHER)
        .expires_at(SystemTime::now() - Duration::from_secs(60))
        .key_file_line();
    let contents = format!(
        "# partner keys: old and new during the rotation\n\
         {}\n\
         \n\
         {}\n\
         {expired}\n\
         gone sha256:{} revoked\n",
        ApiKey::new("partner", OLD).key_file_line(),
        ApiKey::new("partner", NEW)
            .scopes(["read"])
            .expires_at(SystemTime::now() + Duration::from_secs(86_400))
            .key_file_line(),
        sha256_hex("a-key-that-leaked-0123456789"),
    );
    assert!(!contents.contains(OLD) && !contents.contains(NEW));
    let file = TempFile::new("keys", &contents);

    let app = router(Engine::builder().api_key_file(&file.0).build().unwrap());
    assert_eq!(call(&app, OLD).await.body, "partner");
    assert_eq!(call(&app, NEW).await.body, "partner");
    assert_refused(&call(&app, OTHER).await, "Expired API key");
    assert_refused(
        &call(&app, "a-key-that-leaked-0123456789").await,
        "Revoked API key",
    );

    // The same file from API_KEY_FILE.
    let vars = [("API_KEY_FILE".to_string(), file.0.display().to_string())];
    let app = router(Engine::builder().from_vars(vars).build().unwrap());
    assert_eq!(call(&app, NEW).await.body, "partner");

    // And for a reload at run time.
    let engine = Engine::builder().api_key("first", OTHER).build().unwrap();
    engine
        .reload_keys(ApiKeyStore::from_key_file(&file.0).unwrap())
        .unwrap();
    assert_eq!(call(&router(engine), OLD).await.body, "partner");
}

#[tokio::test]
async fn every_bad_line_of_a_key_file_is_a_problem_naming_file_and_line() {
    let file = TempFile::new(
        "bad-keys",
        &format!(
            "{}\n\
             # comment\n\
             plain {OTHER}\n\
             short sha256:0123\n\
             late sha256:{} expires=tomorrow\n\
             odd sha256:{} owner=me\n",
            ApiKey::new("partner", OLD).key_file_line(),
            "ab".repeat(32),
            "cd".repeat(32),
        ),
    );
    let error = Engine::builder().api_key_file(&file.0).build().unwrap_err();
    let shown = file.0.display().to_string();
    let places: Vec<String> = [3, 4, 5, 6]
        .iter()
        .map(|line| format!("{shown}:{line}: "))
        .collect();
    assert_eq!(error.problems().len(), 4, "{error}");
    for (problem, place) in error.problems().iter().zip(&places) {
        assert!(
            problem.starts_with(place),
            "{problem} should start with {place}"
        );
    }
    // A plaintext key pasted into the file is not repeated in the error.
    assert!(!error.to_string().contains(OTHER), "{error}");

    let error = Engine::builder()
        .from_vars([(
            "API_KEY_FILE".to_string(),
            "/nonexistent/api-keys".to_string(),
        )])
        .build()
        .unwrap_err();
    assert!(
        error.problems()[0]
            .starts_with("API_KEY_FILE: cannot read the key file /nonexistent/api-keys"),
        "{error}"
    );
}

#[tokio::test]
async fn bad_key_variables_are_build_problems_naming_the_variable() {
    let vars = [
        ("API_KEYS".to_string(), format!("{OLD}, :{NEW}")),
        ("API_KEY_4".to_string(), format!("ops:{OTHER}:a b")),
        ("API_KEY_5".to_string(), String::new()),
    ];
    let error = Engine::builder().from_vars(vars).build().unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "API_KEYS (entry 2): the key has an empty name before `:`; write `name:key` or `name:key:scope1|scope2`",
            "API_KEY_4: scope 1 (after the second `:`) is not a scope name; a scope is 1 to 64 ASCII letters, digits, `_`, `-`, `.` or `:`; write scopes as `name:key:read|write`",
            "API_KEY_5: API key `API_KEY_5` is empty",
        ]
    );
    for secret in [OLD, NEW, OTHER] {
        assert!(!error.to_string().contains(secret), "{error}");
    }
}

fn sha256_hex(secret: &str) -> String {
    let line = ApiKey::new("x", secret).key_file_line();
    line.split("sha256:").nth(1).unwrap().to_owned()
}
