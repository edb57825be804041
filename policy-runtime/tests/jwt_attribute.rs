//! The JWT attributes over the real Router: `#[require_jwt]` with its scope
//! forms and `or_api_key`, `#[rate_limit(.., key = subject)]` and
//! `key = claim(..)` below it, `Claims<T>` and `Option<Claims<T>>` in the
//! handler, `#[body_limit]` and `#[timeout]` stacked with it, and the
//! start-up report of its handlers. Tokens are minted with `jsonwebtoken`
//! (HS256).
#![cfg(feature = "jwt")]

mod common;
#[path = "support/jwt.rs"]
mod support;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::{Logs, Reply, from, send};
use policy_runtime::{ApiKeyId, Claims, Engine, body_limit, rate_limit, require_jwt, timeout};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const OPS_KEY: &str = "ops-team-key-0123456789";

#[derive(Deserialize)]
struct MyClaims {
    sub: String,
    #[serde(default)]
    name: Option<String>,
}

/// Two per minute per token subject, for tokens with `reports:read`.
#[require_jwt(scope = "reports:read")]
#[rate_limit("2/minute", key = subject)]
async fn reports(Claims(claims): Claims<MyClaims>) -> String {
    format!(
        "reports for {} ({})",
        claims.sub,
        claims.name.as_deref().unwrap_or("no name")
    )
}

/// Two per minute per tenant, whoever of the tenant asks.
#[require_jwt]
#[rate_limit("2/minute", key = claim("tenant_id"))]
async fn tenant_report(claims: Claims) -> String {
    format!("tenant report for {}", claims.sub.as_deref().unwrap_or(""))
}

/// An API key or a token.
#[require_jwt(or_api_key)]
async fn either(key: Option<ApiKeyId>, claims: Option<Claims<MyClaims>>) -> String {
    format!(
        "key: {:?}, token subject: {:?}",
        key.map(|key| key.name().to_owned()),
        claims.map(|Claims(claims)| claims.sub)
    )
}

#[require_jwt(scope = any("billing:read", "billing:admin"))]
async fn billing() -> &'static str {
    "billing"
}

#[require_jwt(scope = all("audit:read", "audit:export"))]
async fn audit() -> &'static str {
    "audit"
}

/// A body of at most 1 KB, from a token holder.
#[body_limit("1KB")]
#[require_jwt]
async fn upload(body: String) -> String {
    format!("{} bytes", body.len())
}

/// Takes longer than its own 200 ms.
#[timeout("200ms")]
#[require_jwt]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "never"
}

fn engine() -> Engine {
    Engine::builder()
        .jwt_secret(SECRET)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .api_key("ops", OPS_KEY)
        .no_lockout()
        .build()
        .unwrap()
}

fn app() -> Router {
    Router::new()
        .route("/reports", get(reports))
        .route("/tenant-report", get(tenant_report))
        .route("/either", get(either))
        .route("/billing", get(billing))
        .route("/audit", get(audit))
        .route("/upload", post(upload))
        .route("/slow", get(slow))
        .layer(engine())
}

/// A token of [`ISSUER`] for [`AUDIENCE`] with `extra` claims (see [`claims`]).
fn token(extra: Value) -> String {
    hs256(&claims(extra))
}

async fn get_with(app: &Router, path: &str, token: Option<&str>) -> Reply {
    let mut request = from("192.0.2.1", "GET", path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

const MISSING_BODY: &str = r#"{"error":"Missing bearer token","code":"UNAUTHORIZED"}"#;

fn assert_missing_token(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), "Bearer");
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.body, MISSING_BODY);
}

#[tokio::test]
async fn subject_key_gives_each_token_subject_its_own_count() {
    let app = app();
    let ada = token(json!({"sub": "ada", "name": "Ada", "scope": "reports:read"}));
    let bob = token(json!({"sub": "bob", "scope": "other reports:read"}));

    let first = get_with(&app, "/reports", Some(&ada)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "reports for ada (Ada)");
    assert_eq!(first.header("x-ratelimit-limit"), "2");
    assert_eq!(first.header("x-ratelimit-remaining"), "1");
    let second = get_with(&app, "/reports", Some(&ada)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.header("x-ratelimit-remaining"), "0");
    let third = get_with(&app, "/reports", Some(&ada)).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        third.body,
        r#"{"error":"Too Many Requests: 2 per 1 minute","code":"RATE_LIMITED"}"#
    );
    assert_eq!(third.header("retry-after"), "30");

    // Another subject, from the same address, has its own two.
    let other = get_with(&app, "/reports", Some(&bob)).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, "reports for bob (no name)");
    assert_eq!(other.header("x-ratelimit-remaining"), "1");
    // A new token of the same subject shares its count.
    let ada_again = token(json!({"sub": "ada", "scope": "reports:read", "jti": "2"}));
    let refused = get_with(&app, "/reports", Some(&ada_again)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn no_token_is_a_401_with_a_bare_bearer_challenge_and_is_not_counted() {
    let app = app();
    let (logs, _guard) = Logs::capture();
    for _ in 0..3 {
        assert_missing_token(&get_with(&app, "/reports", None).await);
    }
    let events = logs.policy_events("jwt");
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["fields"]["reason"], "missing");
    assert_eq!(events[0]["fields"]["scope"], "jwt_attribute::reports");
    // The JWT check runs before the limit: nothing was counted.
    let ada = token(json!({"scope": "reports:read"}));
    let admitted = get_with(&app, "/reports", Some(&ada)).await;
    assert_eq!(admitted.header("x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn a_token_without_the_scope_is_a_403_insufficient_scope_and_is_not_counted() {
    let app = app();
    for scopes in [json!(null), json!("reports:write"), json!("reports")] {
        let without = token(json!({"scope": scopes}));
        let reply = get_with(&app, "/reports", Some(&without)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "scope {scopes}");
        assert_eq!(
            reply.header("www-authenticate"),
            r#"Bearer error="insufficient_scope", scope="reports:read""#
        );
        assert_eq!(
            reply.body,
            r#"{"error":"Forbidden: this token lacks the scope `reports:read`","code":"FORBIDDEN"}"#
        );
    }
    // `scp` as an array is read too.
    let scp = token(json!({"scp": ["reports:read"]}));
    let reply = get_with(&app, "/reports", Some(&scp)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn claim_key_counts_per_tenant_across_its_users() {
    let app = app();
    let ada = token(json!({"sub": "ada", "tenant_id": 7}));
    let bob = token(json!({"sub": "bob", "tenant_id": 7}));
    let eve = token(json!({"sub": "eve", "tenant_id": "acme"}));

    let first = get_with(&app, "/tenant-report", Some(&ada)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "tenant report for ada");
    assert_eq!(first.header("x-ratelimit-remaining"), "1");
    // Bob is of the same tenant: the tenant's second request.
    let second = get_with(&app, "/tenant-report", Some(&bob)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, "tenant report for bob");
    assert_eq!(second.header("x-ratelimit-remaining"), "0");
    let third = get_with(&app, "/tenant-report", Some(&ada)).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        third.body,
        r#"{"error":"Too Many Requests: 2 per 1 minute","code":"RATE_LIMITED"}"#
    );
    // Another tenant (a string claim) has its own count.
    let other = get_with(&app, "/tenant-report", Some(&eve)).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn a_token_without_the_key_claim_is_a_400_missing_rate_limit_key() {
    let app = app();
    let (logs, _guard) = Logs::capture();
    // Absent, and of a kind that is no key (an object, a boolean, "").
    for tenant in [json!(null), json!({"id": 7}), json!(true), json!("")] {
        let without = token(json!({"tenant_id": tenant}));
        let reply = get_with(&app, "/tenant-report", Some(&without)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "tenant_id {tenant}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(
            reply.body,
            r#"{"error":"This endpoint needs a JWT with the `tenant_id` claim","code":"MISSING_RATE_LIMIT_KEY"}"#
        );
        assert!(reply.headers.get("www-authenticate").is_none());
    }
    let refusals: Vec<Value> = logs
        .policy_events("rate_limit")
        .into_iter()
        .filter(|event| event["fields"]["reason"] == "missing_key")
        .collect();
    assert_eq!(refusals.len(), 4);
    assert_eq!(
        refusals[0]["fields"]["scope"],
        "jwt_attribute::tenant_report"
    );
    // Without a token at all, the JWT check answers first.
    assert_missing_token(&get_with(&app, "/tenant-report", None).await);
}

#[tokio::test]
async fn or_api_key_admits_a_key_or_a_token_and_the_handler_sees_which() {
    let app = app();
    let with = |name: &str, value: String| {
        from("192.0.2.1", "GET", "/either")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    let key = send(&app, with("x-api-key", OPS_KEY.into())).await;
    assert_eq!(key.status, StatusCode::OK);
    assert_eq!(key.body, r#"key: Some("ops"), token subject: None"#);
    let bearer_key = send(&app, with("authorization", format!("Bearer {OPS_KEY}"))).await;
    assert_eq!(bearer_key.status, StatusCode::OK);
    assert_eq!(bearer_key.body, r#"key: Some("ops"), token subject: None"#);
    let jwt = send(
        &app,
        with("authorization", format!("Bearer {}", token(json!({})))),
    )
    .await;
    assert_eq!(jwt.status, StatusCode::OK);
    assert_eq!(jwt.body, r#"key: None, token subject: Some("ada")"#);

    // Neither: the API key check answers (the request presents no token).
    let neither = get_with(&app, "/either", None).await;
    assert_eq!(neither.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        neither.body,
        r#"{"error":"Missing API key","code":"UNAUTHORIZED"}"#
    );
    // A wrong key, and a token that does not verify, each refused as what it is.
    let wrong_key = send(&app, with("x-api-key", "not-the-key-0123456789".into())).await;
    assert_eq!(wrong_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_key.body,
        r#"{"error":"Invalid API key","code":"UNAUTHORIZED"}"#
    );
    let expired = token(json!({"exp": now() - 3600}));
    let refused = send(&app, with("authorization", format!("Bearer {expired}"))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.header("www-authenticate"),
        r#"Bearer error="invalid_token", error_description="The token has expired""#
    );
    assert_eq!(
        refused.body,
        r#"{"error":"The token has expired","code":"UNAUTHORIZED"}"#
    );
}

#[tokio::test]
async fn scope_any_admits_a_token_with_one_of_the_scopes() {
    let app = app();
    for scopes in [
        "billing:read",
        "billing:admin",
        "other billing:admin billing:read",
    ] {
        let reply = get_with(&app, "/billing", Some(&token(json!({"scope": scopes})))).await;
        assert_eq!(reply.status, StatusCode::OK, "scope {scopes}");
        assert_eq!(reply.body, "billing");
    }
    let reply = get_with(
        &app,
        "/billing",
        Some(&token(json!({"scope": "billing:write"}))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="billing:read billing:admin""#
    );
    assert_eq!(
        reply.body,
        r#"{"error":"Forbidden: this token has none of the scopes `billing:read`, `billing:admin`","code":"FORBIDDEN"}"#
    );
}

#[tokio::test]
async fn scope_all_admits_only_a_token_with_every_scope() {
    let app = app();
    let reply = get_with(
        &app,
        "/audit",
        Some(&token(json!({"scope": "audit:export audit:read"}))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "audit");
    for (scopes, lacking) in [
        ("audit:read", "audit:export"),
        ("audit:export", "audit:read"),
        ("", "audit:read"),
    ] {
        let reply = get_with(&app, "/audit", Some(&token(json!({"scope": scopes})))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "scope {scopes:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            r#"Bearer error="insufficient_scope", scope="audit:read audit:export""#
        );
        assert_eq!(
            reply.body,
            format!(
                r#"{{"error":"Forbidden: this token lacks the scope `{lacking}`","code":"FORBIDDEN"}}"#
            )
        );
    }
}

const TOO_LARGE: &str = r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#;

/// A `POST /upload` of `length` bytes, declaring its length or not.
fn upload_request(length: usize, declared: bool, token: Option<&str>) -> axum::http::Request<Body> {
    let mut request = from("192.0.2.1", "POST", "/upload");
    if declared {
        request = request.header("content-length", length);
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(vec![b'x'; length])).unwrap()
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_a_413_before_the_token_is_checked() {
    let app = app();
    let valid = token(json!({}));
    let (logs, _guard) = Logs::capture();
    // The guard checks the handler's own limit first: no token is needed
    // for the 413, and no JWT decision is made.
    for token in [None, Some("not-a-jwt"), Some(valid.as_str())] {
        let reply = send(&app, upload_request(1001, true, token)).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "token {token:?}"
        );
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(reply.body, TOO_LARGE);
    }
    assert!(logs.policy_events("jwt").is_empty());
    assert_eq!(logs.policy_events("body_limit").len(), 3);
    assert_eq!(logs.policy_events("body_limit")[0]["fields"]["limit"], 1000);

    // At the limit, the token is checked, then the body read.
    let at_limit = send(&app, upload_request(1000, true, Some(&valid))).await;
    assert_eq!(at_limit.status, StatusCode::OK);
    assert_eq!(at_limit.body, "1000 bytes");
    let reply = send(&app, upload_request(1000, true, None)).await;
    assert_missing_token(&reply);
}

#[tokio::test]
async fn an_undeclared_body_over_the_limit_is_refused_after_the_token() {
    let app = app();
    // Without `Content-Length`, the size is only known by reading the body,
    // which happens after the checks: no token is a 401.
    assert_missing_token(&send(&app, upload_request(2000, false, None)).await);
    let reply = send(&app, upload_request(2000, false, Some(&token(json!({}))))).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.body, TOO_LARGE);
    let reply = send(&app, upload_request(999, false, Some(&token(json!({}))))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "999 bytes");
}

#[tokio::test]
async fn a_handler_past_its_own_timeout_is_a_504_and_no_token_is_still_a_401() {
    let app = app();
    assert_missing_token(&get_with(&app, "/slow", None).await);
    let (logs, _guard) = Logs::capture();
    let reply = get_with(&app, "/slow", Some(&token(json!({})))).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        reply.body,
        r#"{"error":"Gateway Timeout: the request took longer than 200ms","code":"TIMEOUT"}"#
    );
    let timeouts = logs.policy_events("timeout");
    assert_eq!(timeouts.len(), 1);
    assert_eq!(timeouts[0]["level"], "WARN");
    assert_eq!(timeouts[0]["fields"]["route"], "/slow");
    assert_eq!(timeouts[0]["fields"]["timeout_ms"], 200);
}

#[tokio::test]
async fn the_start_up_report_lists_each_jwt_handler_s_checks_in_order() {
    let (logs, _guard) = Logs::capture();
    let _engine = engine();
    let described: Vec<String> = logs
        .containing("INFO", "handler policy")
        .iter()
        .map(|event| {
            format!(
                "{} {}",
                event["fields"]["handler"], event["fields"]["policies"]
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            r#""jwt_attribute::audit" "jwt requiring all of the scopes `audit:read`, `audit:export`""#,
            r#""jwt_attribute::billing" "jwt requiring any of the scopes `billing:read`, `billing:admin`""#,
            r#""jwt_attribute::either" "api_key or jwt requiring any valid key""#,
            r#""jwt_attribute::reports" "jwt requiring the scope `reports:read` -> rate_limit 2 per 1 minute per subject""#,
            r#""jwt_attribute::slow" "timeout 200ms -> jwt requiring any valid key""#,
            r#""jwt_attribute::tenant_report" "jwt requiring any valid key -> rate_limit 2 per 1 minute per claim `tenant_id`""#,
            r#""jwt_attribute::upload" "body_limit 1KB -> jwt requiring any valid key""#,
        ]
    );
    let settings = logs.containing("INFO", "JWT settings");
    assert_eq!(settings.len(), 1);
    assert_eq!(
        settings[0]["fields"]["settings"],
        "1 configured key(s) (1 HMAC secret(s)), issuer `https://auth.example.com`, audience `reports`, leeway 60s"
    );
}
