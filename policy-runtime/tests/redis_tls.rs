//! `RedisStore` over TLS (`rediss://`) against a real `redis-server` that
//! each test starts on its own port with certificates the test makes (a CA,
//! a server certificate, a client certificate, and an untrusted CA): shared
//! limits over TLS, client certificates, an untrusted server, and bad
//! certificate files refused when the store is built.
//!
//! These tests need a `redis-server` built with TLS (Debian's and Ubuntu's
//! package is); with one built without it they fail saying so.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/redis_tls_pki.rs"]
mod redis_tls_pki;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{Engine, Environment, FailureMode, RedisConfigError, RedisStore};
use redis_server::RedisServer;
use redis_tls_pki::Pki;
use std::time::Duration;

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// Long enough for a TLS handshake on a busy machine: these tests are about
/// certificates, not speed, and a timeout must not stand in for a refusal.
const TIMEOUT: Duration = Duration::from_secs(5);

#[policy_runtime::rate_limit("3/minute", scope = "tls")]
async fn limited() -> &'static str {
    "ok"
}

fn url(server: &RedisServer) -> String {
    format!("rediss://127.0.0.1:{}", server.port())
}

fn app(store: &RedisStore) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new().route("/limited", get(limited)).layer(engine)
}

async fn statuses(app: &Router, count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let request = from("192.0.2.60", "GET", "/limited")
            .body(Body::empty())
            .unwrap();
        statuses.push(send(app, request).await.status);
    }
    statuses
}

/// The keys on a TLS server, read with a client of the test's own.
async fn keys(pki: &Pki, server: &RedisServer, client_cert: bool) -> Vec<String> {
    let client = redis::Client::build_with_tls(
        url(server),
        redis::TlsCertificates {
            client_tls: client_cert.then(|| redis::ClientTlsConfig {
                client_cert: std::fs::read(pki.path("client.pem")).unwrap(),
                client_key: std::fs::read(pki.path("client.key")).unwrap(),
            }),
            root_cert: Some(std::fs::read(pki.path("ca.pem")).unwrap()),
        },
    )
    .unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap()
}

/// A store failing closed, so that any failure to talk to Redis shows as a 503.
fn closed_store(pki: &Pki, server: &RedisServer) -> policy_runtime::RedisStoreBuilder {
    RedisStore::builder()
        .url(url(server))
        .tls_ca_file(pki.path("ca.pem"))
        .timeout(TIMEOUT)
        .failure_mode(FailureMode::Closed)
}

#[tokio::test]
async fn limits_are_shared_over_tls_with_a_custom_ca() {
    let pki = Pki::new();
    let server = pki.server("server", false);
    let store = closed_store(&pki, &server).build().unwrap();
    store.ping().await.unwrap();
    // Two instances, one count: the state is in Redis, reached over TLS.
    let first = app(&store);
    let second = app(&closed_store(&pki, &server).build().unwrap());
    assert_eq!(statuses(&first, 2).await, [OK, OK]);
    assert_eq!(statuses(&second, 2).await, [OK, REFUSED]);
    assert_eq!(statuses(&first, 1).await, [REFUSED]);
    let keys = keys(&pki, &server, false).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].starts_with("policy:tls:"), "{keys:?}");
}

#[tokio::test]
async fn a_server_requiring_client_certificates_admits_a_client_with_one() {
    let pki = Pki::new();
    let server = pki.server("server", true);
    let store = closed_store(&pki, &server)
        .tls_client_cert(pki.path("client.pem"), pki.path("client.key"))
        .build()
        .unwrap();
    store.ping().await.unwrap();
    let app = app(&store);
    assert_eq!(statuses(&app, 4).await, [OK, OK, OK, REFUSED]);
    assert_eq!(keys(&pki, &server, true).await.len(), 1);
}

#[tokio::test]
async fn a_server_requiring_client_certificates_refuses_a_client_without_one() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let server = pki.server("server", true);
    let store = closed_store(&pki, &server).build().unwrap();
    let app = app(&store);
    // Failing closed: every request is refused while Redis cannot be used.
    assert_eq!(statuses(&app, 2).await, [UNAVAILABLE, UNAVAILABLE]);
    assert!(!store.is_available());
    let error = store.ping().await.unwrap_err().to_string();
    assert!(error.contains("client certificates"), "{error}");
    // Nothing was counted.
    assert!(keys(&pki, &server, true).await.is_empty());
    // Said once, at error, with what to fix.
    let said = logs.containing("ERROR", "REDIS_TLS_CERT_FILE");
    assert_eq!(said.len(), 1, "{}", logs.text());
    assert_eq!(said[0]["fields"]["failure_mode"], "fail closed");
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused_and_said_so() {
    let (logs, _guard) = Logs::capture();
    let pki = Pki::new();
    let server = pki.server("rogue-server", false);
    // A start-up check sees it at once.
    let store = closed_store(&pki, &server).build().unwrap();
    let error = store.ping().await.unwrap_err().to_string();
    assert!(
        error.contains("TLS certificate is not trusted") && error.contains("REDIS_TLS_CA_FILE"),
        "{error}"
    );
    // Requests follow the failure mode: here the fallback to memory, which
    // keeps the limit.
    let fallback = closed_store(&pki, &server)
        .failure_mode(FailureMode::FallbackToMemory)
        .build()
        .unwrap();
    let app = app(&fallback);
    assert_eq!(statuses(&app, 4).await, [OK, OK, OK, REFUSED]);
    let said = logs.containing("ERROR", "TLS certificate is not trusted");
    // Once per store (the ping's and the requests').
    assert_eq!(said.len(), 2, "{}", logs.text());
    assert!(
        said[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("UnknownIssuer")),
        "{said:?}"
    );
    // Trusting the CA that signed it lets the same server in.
    let trusting = RedisStore::builder()
        .url(url(&server))
        .tls_ca_file(pki.path("rogue-ca.pem"))
        .timeout(TIMEOUT)
        .build()
        .unwrap();
    trusting.ping().await.unwrap();
}

#[tokio::test]
async fn the_environment_names_the_tls_files() {
    let pki = Pki::new();
    let server = pki.server("server", true);
    let vars = [
        ("REDIS_URL", url(&server)),
        ("REDIS_TLS_CA_FILE", pki.arg("ca.pem")),
        ("REDIS_TLS_CERT_FILE", pki.arg("client.pem")),
        ("REDIS_TLS_KEY_FILE", pki.arg("client.key")),
    ];
    // No other test of this file reads these variables.
    for (name, value) in &vars {
        // SAFETY: std's own reads and writes of the environment are
        // serialised; nothing else in this process reads these variables.
        unsafe { std::env::set_var(name, value) };
    }
    let store = RedisStore::from_env();
    for (name, _) in &vars {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    let store = store.unwrap();
    store.ping().await.unwrap();
    assert_eq!(statuses(&app(&store), 4).await, [OK, OK, OK, REFUSED]);
}

#[tokio::test]
async fn bad_tls_files_are_start_up_errors_naming_the_file() {
    let pki = Pki::new();
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let builder = || RedisStore::builder().url("rediss://127.0.0.1:6380");

    let missing = pki.path("missing.pem");
    let error = builder().tls_ca_file(&missing).build().unwrap_err();
    assert!(
        matches!(&error, RedisConfigError::TlsFile { setting, path, .. }
            if setting == "tls_ca_file" && *path == missing),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "tls_ca_file `{}`: cannot read it: ",
            missing.display()
        )),
        "{error}"
    );

    let error = builder().tls_ca_file(&garbage).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "tls_ca_file `{}`: holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            garbage.display()
        )
    );

    // A key that is not the certificate's.
    let error = builder()
        .tls_ca_file(pki.path("ca.pem"))
        .tls_client_cert(pki.path("client.pem"), pki.path("server.key"))
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, RedisConfigError::TlsFile { path, .. } if *path == pki.path("server.key")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("does not go with the client certificate"),
        "{error}"
    );

    // A certificate where the key should be.
    let error = builder()
        .tls_client_cert(pki.path("client.pem"), pki.path("client.pem"))
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("not a PEM private key"),
        "{error}"
    );

    // Certificates for a plaintext URL, and checks turned off, are refused.
    let error = RedisStore::builder()
        .url("redis://127.0.0.1:6379")
        .tls_ca_file(pki.path("ca.pem"))
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Redis TLS: TLS files are set (tls_ca_file) but the URL is not `rediss://`; \
         use rediss://host:port for TLS"
    );
    let error = RedisStore::new("rediss://127.0.0.1:6380/#insecure").unwrap_err();
    assert!(matches!(error, RedisConfigError::Tls { .. }), "{error:?}");

    // The good files build a store (no connection yet).
    builder()
        .tls_ca_file(pki.path("ca.pem"))
        .tls_client_cert(pki.path("client.pem"), pki.path("client.key"))
        .build()
        .unwrap();
}

/// `RATELIMIT_STORAGE_URI=rediss://...` selects the TLS store, with the CA
/// (and a client certificate) from `REDIS_TLS_*` among the same variables.
#[tokio::test]
async fn a_rediss_storage_uri_selects_the_tls_store() {
    let pki = Pki::new();
    let server = pki.server("server", true);
    let uri = url(&server);
    let vars = |with_client: bool| {
        let mut vars = vec![
            ("RATELIMIT_STORAGE_URI".to_string(), uri.clone()),
            ("REDIS_TLS_CA_FILE".to_string(), pki.arg("ca.pem")),
            ("RATELIMIT_SWALLOW_ERRORS".to_string(), "false".to_string()),
        ];
        if with_client {
            vars.push(("REDIS_TLS_CERT_FILE".to_string(), pki.arg("client.pem")));
            vars.push(("REDIS_TLS_KEY_FILE".to_string(), pki.arg("client.key")));
        }
        vars
    };
    let app = |vars: Vec<(String, String)>| {
        let engine = Engine::builder()
            .environment(Environment::Development)
            .from_vars(vars)
            .build()
            .unwrap();
        Router::new().route("/limited", get(limited)).layer(engine)
    };
    // Two instances share the count in the TLS server.
    let first = app(vars(true));
    let second = app(vars(true));
    assert_eq!(statuses(&first, 2).await, [OK, OK]);
    assert_eq!(statuses(&second, 2).await, [OK, REFUSED]);
    assert_eq!(keys(&pki, &server, true).await.len(), 1);
    // Without the client certificate this server requires, the store
    // fails closed (RATELIMIT_SWALLOW_ERRORS=false, no fallback).
    let without = app(vars(false));
    assert_eq!(statuses(&without, 1).await, [UNAVAILABLE]);

    // A bad file is a build problem naming its variable.
    let error = Engine::builder()
        .environment(Environment::Development)
        .from_vars([
            ("RATELIMIT_STORAGE_URI".to_string(), uri.clone()),
            ("REDIS_TLS_CA_FILE".to_string(), pki.arg("missing-ca.pem")),
        ])
        .build()
        .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!(
            "RATELIMIT_STORAGE_URI: REDIS_TLS_CA_FILE `{}`: cannot read it: ",
            pki.path("missing-ca.pem").display()
        )),
        "{problems:?}"
    );
}
