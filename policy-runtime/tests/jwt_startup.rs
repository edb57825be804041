//! Start-up checks and the start-up report of handlers that require a JWT,
//! registered as `#[require_jwt]` registers them (written out by hand here,
//! as the macro expands), and their subject key over the Router.
#![cfg(feature = "jwt")]

mod common;
#[path = "support/jwt.rs"]
mod support;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::__private::{
    Check, CountWhen, Guard, HandlerPolicy, KeyRequirement, KeySource, Limits, OnMissingKey,
    Policy, Quota, RateLimitSpec, Registration, inventory,
};
use policy_runtime::{Claims, Engine, Environment};
use serde_json::json;
use std::time::Duration;
use support::*;

/// `#[require_jwt(scope = "reports:read")]` over
/// `#[rate_limit("2/minute", key = subject)]`.
struct ReportPolicy;

impl Policy for ReportPolicy {
    const POLICY: &'static HandlerPolicy = {
        static POLICY: HandlerPolicy = HandlerPolicy {
            handler: "jwt_startup::report",
            checks: &[
                Check::Jwt(KeyRequirement::Scope("reports:read")),
                Check::RateLimit(RateLimitSpec {
                    scope: "jwt_startup::report",
                    limits: Limits::Fixed(&[Quota::new(2, Duration::from_secs(60))]),
                    key: KeySource::Subject,
                    on_missing: OnMissingKey::Reject,
                    cost: 1,
                    count: CountWhen::Always,
                    add_to_defaults: false,
                }),
            ],
            takes_key_id: false,
            body_limit: None,
            timeout: None,
        };
        &POLICY
    };
}

inventory::submit! { Registration(ReportPolicy::POLICY) }

async fn report(guard: Guard<ReportPolicy>, claims: Claims) -> Response {
    guard.finish(format!(
        "report for {}",
        claims.sub.clone().unwrap_or_default()
    ))
}

/// `#[require_jwt(or_api_key)]`.
struct EitherPolicy;

impl Policy for EitherPolicy {
    const POLICY: &'static HandlerPolicy = {
        static POLICY: HandlerPolicy = HandlerPolicy {
            handler: "jwt_startup::either",
            checks: &[Check::ApiKeyOrJwt(KeyRequirement::Any)],
            takes_key_id: true,
            body_limit: None,
            timeout: None,
        };
        &POLICY
    };
}

inventory::submit! { Registration(EitherPolicy::POLICY) }

async fn either(guard: Guard<EitherPolicy>) -> Response {
    guard.finish("either".into_response())
}

const NO_KEY: &str = "requires a JWT, but no JWT key is configured; set JWT_SECRET, JWT_PUBLIC_KEY_FILE, \
     JWT_JWKS_URL or JWT_OIDC_ISSUER, or use `EngineBuilder::jwt_secret` (or `jwt_public_key_pem`, \
     `jwt_jwks_url`, `jwt_oidc_issuer`)";

#[test]
fn a_jwt_handler_without_a_key_source_is_a_build_error_in_every_environment() {
    let error = Engine::builder()
        .environment(Environment::Development)
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [format!(
            "`jwt_startup::either`, `jwt_startup::report` require{}",
            &NO_KEY["requires".len()..]
        )]
    );
    // An API key serves the `or_api_key` handler, not the other.
    let error = Engine::builder()
        .api_key("ops", "ops-team-key-0123456789")
        .environment(Environment::Development)
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [format!("`jwt_startup::report` {NO_KEY}")]
    );
}

#[test]
fn production_also_requires_an_issuer_and_an_audience() {
    let error = Engine::builder().jwt_secret(SECRET).build().unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "no JWT issuer (`iss`) is configured, so tokens issued by anyone holding a key, for any service, are accepted; set JWT_ISSUER or `EngineBuilder::jwt_issuer`",
            "no JWT audience (`aud`) is configured, so tokens issued by anyone holding a key, for any service, are accepted; set JWT_AUDIENCE or `EngineBuilder::jwt_audience`",
        ]
    );
}

#[test]
fn a_demo_looking_secret_is_refused_in_production_and_warned_about_elsewhere() {
    let demo = "changeme-jwt-secret-0123456789abcdef";
    let error = Engine::builder()
        .jwt_secret(demo)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .build()
        .unwrap_err();
    let problem = "EngineBuilder::jwt_secret: the JWT secret begins with `changeme`, as demo and placeholder \
                   values do; anyone who has read the example can sign tokens with it (make one with \
                   `openssl rand -base64 48`)";
    assert_eq!(error.problems(), [problem]);
    let (logs, _guard) = Logs::capture();
    Engine::builder()
        .jwt_secret(demo)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .environment(Environment::Development)
        .build()
        .unwrap();
    assert_eq!(logs.containing("WARN", problem).len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn the_start_up_report_lists_the_jwt_check_and_the_subject_key_counts() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder()
        .jwt_secret(SECRET)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .build()
        .unwrap();
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
            r#""jwt_startup::either" "api_key or jwt requiring any valid key""#,
            r#""jwt_startup::report" "jwt requiring the scope `reports:read` -> rate_limit 2 per 1 minute per subject""#,
        ]
    );
    let settings = logs.containing("INFO", "JWT settings");
    assert_eq!(
        settings[0]["fields"]["settings"],
        "1 configured key(s) (1 HMAC secret(s)), issuer `https://auth.example.com`, audience `reports`, leeway 60s"
    );

    let app = Router::new()
        .route("/report", get(report))
        .route("/either", get(either))
        .layer(engine);
    let request = |sub: &str| {
        let token = hs256(&claims(json!({"sub": sub, "scope": "reports:read"})));
        from("192.0.2.1", "GET", "/report")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let reply = send(&app, request("ada")).await;
    assert_eq!(reply.body, "report for ada");
    assert_eq!(reply.header("x-ratelimit-remaining"), "1");
    assert_eq!(
        send(&app, request("ada"))
            .await
            .header("x-ratelimit-remaining"),
        "0"
    );
    assert_eq!(
        send(&app, request("ada")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, request("bob"))
            .await
            .header("x-ratelimit-remaining"),
        "1"
    );
}
