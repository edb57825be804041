//! Flask-Limiter's Redis settings, read by `from_vars`, against a real
//! `redis-server` that each test starts on its own port (or against a port
//! where nothing listens, for outages): `RATELIMIT_STORAGE_URI`,
//! `RATELIMIT_KEY_PREFIX`, `RATELIMIT_SWALLOW_ERRORS` and
//! `RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`, over the real Router.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{Engine, Environment, rate_limit};
use redis_server::RedisServer;

#[rate_limit("1/minute", scope = "flask-redis")]
async fn limited() -> &'static str {
    "ok"
}

/// Nothing listens on port 1: every Redis call fails at once.
const NOWHERE: &str = "redis://127.0.0.1:1";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One app instance, configured by `vars` alone.
fn app(pairs: &[(&str, &str)]) -> Router {
    let engine = Engine::builder()
        .environment(Environment::Development)
        .from_vars(vars(pairs))
        .build()
        .unwrap();
    Router::new().route("/limited", get(limited)).layer(engine)
}

async fn statuses(app: &Router, count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let request = from("192.0.2.40", "GET", "/limited")
            .body(Body::empty())
            .unwrap();
        statuses.push(send(app, request).await.status);
    }
    statuses
}

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

#[tokio::test]
async fn the_storage_uri_shares_limits_in_redis_under_the_key_prefix() {
    let server = RedisServer::start();
    let url = server.url();
    let settings = [
        ("RATELIMIT_STORAGE_URI", url.as_str()),
        ("RATELIMIT_KEY_PREFIX", "myapp"),
    ];
    let first = app(&settings);
    let second = app(&settings);
    assert_eq!(statuses(&first, 1).await, [OK]);
    // Another instance sees the same count.
    assert_eq!(statuses(&second, 1).await, [REFUSED]);

    let mut connection = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("myapp:flask-redis:"), "{keys:?}");
}

#[tokio::test]
async fn without_a_key_prefix_the_store_uses_its_own() {
    let server = RedisServer::start();
    let url = server.url();
    let app = app(&[("RATELIMIT_STORAGE_URI", url.as_str())]);
    assert_eq!(statuses(&app, 2).await, [OK, REFUSED]);
    let mut connection = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut connection).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("policy:flask-redis:"), "{keys:?}");
}

#[tokio::test]
async fn swallow_errors_admits_while_redis_is_away() {
    let app = app(&[
        ("RATELIMIT_STORAGE_URI", NOWHERE),
        ("RATELIMIT_SWALLOW_ERRORS", "true"),
    ]);
    assert_eq!(statuses(&app, 3).await, [OK, OK, OK]);
}

#[tokio::test]
async fn the_in_memory_fallback_keeps_limits_while_redis_is_away() {
    let app = app(&[
        ("RATELIMIT_STORAGE_URI", NOWHERE),
        ("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", "true"),
    ]);
    assert_eq!(statuses(&app, 2).await, [OK, REFUSED]);
}

#[tokio::test]
async fn with_both_the_fallback_wins() {
    let app = app(&[
        ("RATELIMIT_STORAGE_URI", NOWHERE),
        ("RATELIMIT_SWALLOW_ERRORS", "true"),
        ("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", "true"),
    ]);
    assert_eq!(statuses(&app, 2).await, [OK, REFUSED]);
}

/// Either setting given and neither true: Flask-Limiter lets the storage
/// error through (a 500 there); here the store fails closed, with a 503.
#[tokio::test]
async fn neither_swallowing_nor_falling_back_fails_closed() {
    for settings in [
        [("RATELIMIT_SWALLOW_ERRORS", "false")],
        [("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", "false")],
    ] {
        let mut all = vec![("RATELIMIT_STORAGE_URI", NOWHERE)];
        all.extend(settings);
        let app = app(&all);
        let request = from("192.0.2.40", "GET", "/limited")
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{settings:?}"
        );
        assert_eq!(
            reply.body,
            r#"{"error":"Service Unavailable","code":"SERVICE_UNAVAILABLE"}"#
        );
    }
}

/// Neither setting: the store's own default, the in-memory fallback.
#[tokio::test]
async fn neither_setting_keeps_the_store_default() {
    let app = app(&[("RATELIMIT_STORAGE_URI", NOWHERE)]);
    assert_eq!(statuses(&app, 2).await, [OK, REFUSED]);
}

#[test]
fn a_bad_redis_uri_is_a_problem_that_does_not_repeat_it() {
    let build = |uri: &str| {
        Engine::builder()
            .environment(Environment::Development)
            .from_vars(vars(&[("RATELIMIT_STORAGE_URI", uri)]))
            .build()
            .unwrap_err()
    };
    let error = build("rediss://:secret-password@cache.internal:6380/0#insecure");
    assert_eq!(
        error.problems(),
        [
            "RATELIMIT_STORAGE_URI: Redis TLS: the URL turns certificate checks off (`#insecure`), which this \
             store does not do; give the CA that signed the server's certificate with REDIS_TLS_CA_FILE or \
             `tls_ca_file`"
        ]
    );
    let error = build("redis://:secret-password@cache.internal:notaport/0");
    assert_eq!(error.problems().len(), 1);
    assert!(
        error.problems()[0].starts_with("RATELIMIT_STORAGE_URI: invalid Redis URL: "),
        "{:?}",
        error.problems()
    );
    assert!(
        !error.problems()[0].contains("secret"),
        "{:?}",
        error.problems()
    );
}
