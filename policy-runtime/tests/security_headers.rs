//! The security-header preset over a real socket: on 200, 401, 429 and 500
//! responses, in each environment, with the handler's own headers winning
//! and the preset's members changed or dropped.

mod common;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::Reply;
use common::raw_http::{Server, serve};
use policy_runtime::{
    Engine, Environment, ErrorBody, SecurityHeaders, rate_limit, require_api_key,
};

const KEY: &str = "client-key-0123456789";

async fn ok() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "keyed"
}

#[rate_limit("1/hour")]
async fn once() -> &'static str {
    "once"
}

async fn fail() -> ErrorBody {
    ErrorBody::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "BROKEN",
        "Internal Server Error",
    )
}

/// A handler that sets two of the preset's headers itself.
async fn own() -> impl IntoResponse {
    (
        [
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'"),
        ],
        "own",
    )
}

fn engine_for(environment: Environment) -> Engine {
    Engine::builder()
        .environment(environment)
        .api_key("client", KEY)
        .build()
        .unwrap()
}

async fn start(engine: &Engine, headers: SecurityHeaders) -> Server {
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/keyed", get(keyed))
        .route("/once", get(once))
        .route("/fail", get(fail))
        .route("/own", get(own))
        .layer(engine.clone())
        .layer(headers);
    serve(app).await
}

/// The 200, 401, 429 and 500 responses of `server`, each checked for its status.
async fn four_statuses(server: &Server) -> [Reply; 4] {
    let ok = server.get("/ok").await;
    assert_eq!(ok.status, 200);
    let unauthorized = server.get("/keyed").await;
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.json()["code"], "UNAUTHORIZED");
    assert_eq!(server.get("/once").await.status, 200);
    let limited = server.get("/once").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["code"], "RATE_LIMITED");
    let failed = server.get("/fail").await;
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.body,
        r#"{"error":"Internal Server Error","code":"BROKEN"}"#
    );
    [ok, unauthorized, limited, failed]
}

const HSTS: &str = "max-age=31536000; includeSubDomains";

fn assert_preset(reply: &Reply, hsts: bool) {
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.header("x-frame-options"), "DENY");
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
    assert_eq!(
        reply.header("content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'"
    );
    if hsts {
        assert_eq!(reply.header("strict-transport-security"), HSTS);
    } else {
        assert!(
            reply.headers.get("strict-transport-security").is_none(),
            "{:?}",
            reply.headers
        );
    }
    // One value each: the preset never adds to a header.
    for name in [
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
    ] {
        assert_eq!(reply.headers.get_all(name).iter().count(), 1, "{name}");
    }
}

#[tokio::test]
async fn production_sends_every_header_with_hsts_on_every_status() {
    let engine = engine_for(Environment::Production);
    let server = start(&engine, engine.security_headers()).await;
    for reply in four_statuses(&server).await {
        assert_preset(&reply, true);
    }
}

#[tokio::test]
async fn staging_sends_hsts_only_when_asked() {
    let engine = engine_for(Environment::Staging);
    let plain = start(&engine, engine.security_headers()).await;
    for reply in four_statuses(&plain).await {
        assert_preset(&reply, false);
    }
    let engine = engine_for(Environment::Staging);
    let with_hsts = start(&engine, engine.security_headers().hsts_in_staging(true)).await;
    for reply in four_statuses(&with_hsts).await {
        assert_preset(&reply, true);
    }
}

#[tokio::test]
async fn development_never_sends_hsts() {
    let engine = engine_for(Environment::Development);
    let plain = start(&engine, engine.security_headers()).await;
    for reply in four_statuses(&plain).await {
        assert_preset(&reply, false);
    }
    // `hsts_in_staging` is about staging only.
    let engine = engine_for(Environment::Development);
    let asked = start(&engine, engine.security_headers().hsts_in_staging(true)).await;
    for reply in four_statuses(&asked).await {
        assert_preset(&reply, false);
    }
}

#[tokio::test]
async fn the_handlers_own_headers_win() {
    let engine = engine_for(Environment::Production);
    let server = start(&engine, engine.security_headers()).await;
    let reply = server.get("/own").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-frame-options"), "SAMEORIGIN");
    assert_eq!(
        reply.header("content-security-policy"),
        "default-src 'self'"
    );
    assert_eq!(reply.headers.get_all("x-frame-options").iter().count(), 1);
    assert_eq!(
        reply
            .headers
            .get_all("content-security-policy")
            .iter()
            .count(),
        1
    );
    // The rest of the preset is still there.
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
    assert_eq!(reply.header("strict-transport-security"), HSTS);
}

#[tokio::test]
async fn without_drops_a_header_on_every_status() {
    let engine = engine_for(Environment::Production);
    let headers = engine
        .security_headers()
        .without(header::X_FRAME_OPTIONS)
        .without(header::STRICT_TRANSPORT_SECURITY);
    let server = start(&engine, headers).await;
    for reply in four_statuses(&server).await {
        assert!(reply.headers.get("x-frame-options").is_none());
        assert!(reply.headers.get("strict-transport-security").is_none());
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("referrer-policy"), "no-referrer");
    }
    // Dropped, HSTS stays dropped in staging with `hsts_in_staging`.
    let engine = engine_for(Environment::Staging);
    let headers = engine
        .security_headers()
        .without(header::STRICT_TRANSPORT_SECURITY)
        .hsts_in_staging(true);
    let server = start(&engine, headers).await;
    assert!(
        server
            .get("/ok")
            .await
            .headers
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn header_changes_a_value_or_adds_one() {
    let engine = engine_for(Environment::Production);
    let headers = engine
        .security_headers()
        .header(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        )
        .header(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains; preload"),
        )
        .header(
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("geolocation=()"),
        );
    let server = start(&engine, headers).await;
    for reply in four_statuses(&server).await {
        assert_eq!(
            reply.header("referrer-policy"),
            "strict-origin-when-cross-origin"
        );
        assert_eq!(reply.headers.get_all("referrer-policy").iter().count(), 1);
        assert_eq!(
            reply.header("strict-transport-security"),
            "max-age=63072000; includeSubDomains; preload"
        );
        assert_eq!(reply.header("permissions-policy"), "geolocation=()");
        assert_eq!(reply.header("x-frame-options"), "DENY");
    }
    // A changed HSTS value keeps the environment's rule.
    let engine = engine_for(Environment::Development);
    let headers = engine.security_headers().header(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=60"),
    );
    let server = start(&engine, headers).await;
    assert!(
        server
            .get("/ok")
            .await
            .headers
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn for_environment_works_without_an_engine() {
    let app = Router::new()
        .route("/ok", get(ok))
        .layer(SecurityHeaders::for_environment(Environment::Production));
    let server = serve(app).await;
    assert_preset(&server.get("/ok").await, true);
}
