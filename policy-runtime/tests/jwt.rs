//! The JWT policy over the real Router: every refusal (status, body,
//! `WWW-Authenticate`, logged reason), scopes, algorithms, leeway, issuer and
//! audience, JWKS fetching, rotation, refresh limits and outages, OpenID
//! Connect discovery, `or_api_key`, `Claims`, subject and claim keys, and
//! the lockout.
#![cfg(feature = "jwt")]

mod common;
#[path = "support/jwt.rs"]
mod support;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, Reply, from, send};
use jsonwebtoken::{Algorithm, EncodingKey};
use policy_runtime::{
    ApiKeyId, Claims, Engine, EngineBuilder, Environment, ErrorFormat, Lockout, ManualClock,
    RateLimit, RegisteredClaims, RequireJwt,
};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

fn builder() -> EngineBuilder {
    Engine::builder()
        .jwt_secret(SECRET)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
}

async fn whoami(claims: Claims) -> String {
    claims.sub.clone().unwrap_or_default()
}

fn app(engine: Engine, layer: RequireJwt) -> Router {
    Router::new()
        .route("/me", get(whoami))
        .route_layer(layer)
        .layer(engine)
}

async fn call(app: &Router, token: Option<&str>) -> Reply {
    let mut request = from("192.0.2.1", "GET", "/me");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

fn invalid_header(description: &str) -> String {
    format!(r#"Bearer error="invalid_token", error_description="{description}""#)
}

fn jwt_reasons(logs: &Logs) -> Vec<String> {
    logs.policy_events("jwt")
        .iter()
        .filter_map(|event| event["fields"]["reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_valid_hs256_token_reaches_the_handler_with_its_claims() {
    let app = app(builder().build().unwrap(), RequireJwt::new());
    let (logs, _guard) = Logs::capture();
    let reply = call(&app, Some(&hs256(&claims(json!({}))))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "ada");
    let allowed = logs.containing("DEBUG", "JWT accepted");
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["fields"]["sub"], "ada");
    assert_eq!(allowed[0]["fields"]["outcome"], "allow");
}

#[tokio::test]
async fn every_invalid_token_gets_a_401_with_its_own_reason_and_description() {
    let engine = builder().no_lockout().build().unwrap();
    let app = app(engine, RequireJwt::new());
    let other_secret = EncodingKey::from_secret(b"another-secret-that-is-32-bytes!");
    let cases: Vec<(Option<String>, &str, &str)> = vec![
        (
            Some("not-a-jwt".into()),
            "malformed",
            "The token is malformed",
        ),
        (Some("a.b".into()), "malformed", "The token is malformed"),
        (
            Some(format!("{}x", "a".repeat(8 * 1024))),
            "malformed",
            "The token is malformed",
        ),
        (
            Some(hs256(&claims(json!({"exp": now() - 3600})))),
            "expired",
            "The token has expired",
        ),
        (
            Some(hs256(&claims(json!({"nbf": now() + 3600})))),
            "not_yet_valid",
            "The token is not valid yet",
        ),
        (
            Some(hs256(&claims(json!({"iss": "https://evil.example.com"})))),
            "wrong_issuer",
            "The token has the wrong issuer",
        ),
        (
            Some(hs256(&claims(json!({"aud": "billing"})))),
            "wrong_audience",
            "The token has the wrong audience",
        ),
        (
            Some(mint(
                Algorithm::HS256,
                &other_secret,
                None,
                &claims(json!({})),
            )),
            "bad_signature",
            "The token's signature is invalid",
        ),
        (
            Some(mint(
                Algorithm::ES256,
                &ec(),
                Some("k9"),
                &claims(json!({})),
            )),
            "unknown_key",
            "The token's signing key is unknown",
        ),
        (
            Some(hs256(&claims(json!({"exp": null})))),
            "malformed",
            "The token is malformed",
        ),
    ];
    for (token, reason, description) in cases {
        let (logs, _guard) = Logs::capture();
        let reply = call(&app, token.as_deref()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reason}");
        assert_eq!(
            reply.body,
            format!(r#"{{"error":"{description}","code":"UNAUTHORIZED"}}"#)
        );
        assert_eq!(
            reply.header("www-authenticate"),
            invalid_header(description)
        );
        assert_eq!(jwt_reasons(&logs), [reason]);
        let text = logs.text();
        if let Some(token) = &token {
            assert!(!text.contains(token.as_str()), "the token was logged");
        }
    }
}

#[tokio::test]
async fn a_missing_token_gets_a_bare_bearer_challenge() {
    let app = app(builder().build().unwrap(), RequireJwt::new());
    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer ")] {
        let (logs, _guard) = Logs::capture();
        let mut request = from("192.0.2.1", "GET", "/me");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let reply = send(&app, request.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.body,
            r#"{"error":"Missing bearer token","code":"UNAUTHORIZED"}"#
        );
        assert_eq!(reply.header("www-authenticate"), "Bearer");
        assert_eq!(jwt_reasons(&logs), ["missing"]);
    }
}

#[tokio::test]
async fn refusals_follow_the_engines_error_format() {
    let engine = builder()
        .error_format(ErrorFormat::problem())
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let reply = call(&app, Some(&hs256(&claims(json!({"exp": now() - 3600}))))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert_eq!(reply.json()["detail"], "The token has expired");
    assert_eq!(
        reply.header("www-authenticate"),
        invalid_header("The token has expired")
    );
}

#[tokio::test]
async fn a_missing_scope_is_a_403_insufficient_scope_naming_the_scopes() {
    let engine = builder().build().unwrap();
    let app = Router::new()
        .route(
            "/one",
            get(|| async { "one" }).route_layer(RequireJwt::scope("reports:read").unwrap()),
        )
        .route(
            "/all",
            get(|| async { "all" })
                .route_layer(RequireJwt::all_of(["reports:read", "reports:write"]).unwrap()),
        )
        .route(
            "/any",
            get(|| async { "any" })
                .route_layer(RequireJwt::any_of(["admin", "reports:read"]).unwrap()),
        )
        .layer(engine);
    let get_with = |path: &str, token: String| {
        from("192.0.2.1", "GET", path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (logs, _guard) = Logs::capture();
    let reply = send(
        &app,
        get_with("/one", hs256(&claims(json!({"scope": "billing"})))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.body,
        r#"{"error":"Forbidden: this token lacks the scope `reports:read`","code":"FORBIDDEN"}"#
    );
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="reports:read""#
    );
    assert_eq!(jwt_reasons(&logs), ["insufficient_scope"]);
    assert_eq!(logs.policy_events("jwt")[0]["fields"]["sub"], "ada");

    let reply = send(
        &app,
        get_with("/all", hs256(&claims(json!({"scope": "reports:read"})))),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="reports:read reports:write""#
    );
    // Scopes from `scope` (space-separated) and from `scp` (an array).
    let scope = hs256(&claims(json!({"scope": "reports:read reports:write"})));
    assert_eq!(
        send(&app, get_with("/all", scope)).await.status,
        StatusCode::OK
    );
    let scp = hs256(&claims(json!({"scp": ["reports:write", "reports:read"]})));
    assert_eq!(
        send(&app, get_with("/all", scp)).await.status,
        StatusCode::OK
    );
    let any = hs256(&claims(json!({"scp": ["reports:read"]})));
    assert_eq!(
        send(&app, get_with("/any", any)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_scope_claim_can_be_configured() {
    let engine = builder().jwt_scope_claim("permissions").build().unwrap();
    let app = app(engine, RequireJwt::scope("reports:read").unwrap());
    let named = hs256(&claims(json!({"permissions": ["reports:read"]})));
    assert_eq!(call(&app, Some(&named)).await.status, StatusCode::OK);
    // `scope` is no longer read.
    let default = hs256(&claims(json!({"scope": "reports:read"})));
    assert_eq!(
        call(&app, Some(&default)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_with_pem_public_keys() {
    let engine = Engine::builder()
        .jwt_public_key_pem(RSA1_PUB)
        .jwt_public_key_pem(EC_PUB)
        .jwt_public_key_pem(ED_PUB)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let claims = claims(json!({}));
    for (alg, key) in [
        (Algorithm::RS256, rsa1()),
        (Algorithm::PS384, rsa1()),
        (Algorithm::ES256, ec()),
        (Algorithm::EdDSA, ed()),
    ] {
        let reply = call(&app, Some(&mint(alg, &key, None, &claims))).await;
        assert_eq!(reply.status, StatusCode::OK, "{alg:?}");
        assert_eq!(reply.body, "ada");
    }
    // A token of another RSA key fails the signature check.
    let (logs, _guard) = Logs::capture();
    let reply = call(&app, Some(&mint(Algorithm::RS256, &rsa2(), None, &claims))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(jwt_reasons(&logs), ["bad_signature"]);
}

#[tokio::test]
async fn an_hmac_token_signed_with_the_public_key_and_alg_none_are_refused() {
    let engine = Engine::builder()
        .jwt_public_key_pem(RSA1_PUB)
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .no_lockout()
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let claims = claims(json!({}));
    // The classic confusion: the RSA public key's PEM bytes as an HMAC secret.
    let confused = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(RSA1_PUB),
        None,
        &claims,
    );
    for token in [confused, unsigned(&claims)] {
        let (logs, _guard) = Logs::capture();
        let reply = call(&app, Some(&token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.header("www-authenticate"),
            invalid_header("The token's algorithm is not accepted")
        );
        assert_eq!(jwt_reasons(&logs), ["wrong_algorithm"]);
    }
}

#[tokio::test]
async fn expiry_and_not_before_allow_the_leeway() {
    let default = app(builder().no_lockout().build().unwrap(), RequireJwt::new());
    let strict = app(
        builder()
            .jwt_leeway(Duration::ZERO)
            .no_lockout()
            .build()
            .unwrap(),
        RequireJwt::new(),
    );
    let just_expired = hs256(&claims(json!({"exp": now() - 30})));
    let long_expired = hs256(&claims(json!({"exp": now() - 120})));
    let almost_valid = hs256(&claims(json!({"nbf": now() + 30})));
    assert_eq!(
        call(&default, Some(&just_expired)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&default, Some(&almost_valid)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&default, Some(&long_expired)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&strict, Some(&just_expired)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&strict, Some(&almost_valid)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn issuer_and_audience_are_required_when_configured_and_either_of_several_matches() {
    let engine = builder()
        .jwt_audience("billing")
        .no_lockout()
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let billing = hs256(&claims(json!({"aud": ["other", "billing"]})));
    assert_eq!(call(&app, Some(&billing)).await.status, StatusCode::OK);
    let (logs, _guard) = Logs::capture();
    let no_iss = hs256(&claims(json!({"iss": null})));
    assert_eq!(
        call(&app, Some(&no_iss)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let no_aud = hs256(&claims(json!({"aud": null})));
    assert_eq!(
        call(&app, Some(&no_aud)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(jwt_reasons(&logs), ["malformed", "malformed"]);
    let details: Vec<Value> = logs
        .policy_events("jwt")
        .iter()
        .map(|event| event["fields"]["detail"].clone())
        .collect();
    assert_eq!(
        details,
        ["the `iss` claim is missing", "the `aud` claim is missing"]
    );
}

#[tokio::test]
async fn claims_deserialise_into_the_handlers_type() {
    #[derive(serde::Deserialize)]
    struct Tenant {
        sub: String,
        tenant_id: u64,
    }
    let app = Router::new()
        .route(
            "/tenant",
            get(|Claims(tenant): Claims<Tenant>| async move {
                format!("{}@{}", tenant.sub, tenant.tenant_id)
            }),
        )
        .route(
            "/registered",
            get(|Claims(registered): Claims<RegisteredClaims>| async move {
                format!(
                    "{:?} {:?} {}",
                    registered.iss,
                    registered.aud,
                    registered.exp.is_some()
                )
            }),
        )
        .route_layer(RequireJwt::new())
        .layer(builder().build().unwrap());
    let request = |path: &str, claims: Value| {
        from("192.0.2.1", "GET", path)
            .header("authorization", format!("Bearer {}", hs256(&claims)))
            .body(Body::empty())
            .unwrap()
    };
    let reply = send(&app, request("/tenant", claims(json!({"tenant_id": 7})))).await;
    assert_eq!(reply.body, "ada@7");
    let reply = send(&app, request("/registered", claims(json!({})))).await;
    assert_eq!(
        reply.body,
        r#"Some("https://auth.example.com") ["reports"] true"#
    );
    // A valid token whose claims do not fit the handler's type.
    let reply = send(&app, request("/tenant", claims(json!({})))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        invalid_header("The token's claims do not fit this endpoint")
    );
}

#[tokio::test]
async fn claims_without_a_jwt_check_answer_500_and_log_the_fix() {
    let app = Router::new()
        .route("/me", get(whoami))
        .layer(builder().build().unwrap());
    let (logs, _guard) = Logs::capture();
    let reply = send(&app, common::get("/me")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(logs.containing("ERROR", "add `#[require_jwt]`").len(), 1);
}

#[tokio::test]
async fn or_api_key_admits_either_a_key_or_a_token() {
    let engine = builder()
        .api_key("ops", "ops-team-key-0123456789")
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/either",
            get(|key: Option<ApiKeyId>, claims: Option<Claims>| async move {
                match (key, claims) {
                    (Some(key), None) => format!("key {}", key.name()),
                    (None, Some(claims)) => {
                        format!("token {}", claims.sub.clone().unwrap_or_default())
                    }
                    _ => "both or neither".to_owned(),
                }
            }),
        )
        .route_layer(RequireJwt::new().or_api_key())
        .layer(engine);
    let with = |name: &str, value: String| {
        from("192.0.2.1", "GET", "/either")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    let key = send(&app, with("x-api-key", "ops-team-key-0123456789".into())).await;
    assert_eq!(key.body, "key ops");
    let bearer_key = send(
        &app,
        with("authorization", "Bearer ops-team-key-0123456789".into()),
    )
    .await;
    assert_eq!(bearer_key.body, "key ops");
    let token = send(
        &app,
        with(
            "authorization",
            format!("Bearer {}", hs256(&claims(json!({})))),
        ),
    )
    .await;
    assert_eq!(token.body, "token ada");
    // A token-shaped value is checked as a token: refused as one.
    let (logs, _guard) = Logs::capture();
    let expired = hs256(&claims(json!({"exp": now() - 3600})));
    let refused = send(&app, with("authorization", format!("Bearer {expired}"))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.header("www-authenticate"),
        invalid_header("The token has expired")
    );
    assert_eq!(jwt_reasons(&logs), ["expired"]);
    // Anything else is checked as an API key.
    let wrong_key = send(
        &app,
        with("authorization", "Bearer not-a-key-0123456789".into()),
    )
    .await;
    assert_eq!(wrong_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_key.body,
        r#"{"error":"Invalid API key","code":"UNAUTHORIZED"}"#
    );
}

#[tokio::test]
async fn subject_and_claim_keys_count_per_token_holder() {
    let per_subject = RateLimit::builder("jwt-per-subject", "2/minute")
        .per_subject()
        .build()
        .unwrap();
    let per_tenant = RateLimit::builder("jwt-per-tenant", "5/minute")
        .per_claim("tenant_id")
        .build()
        .unwrap();
    let app = Router::new()
        .route("/subject", get(|| async { "ok" }).route_layer(per_subject))
        .route("/tenant", get(|| async { "ok" }).route_layer(per_tenant))
        .route_layer(RequireJwt::new())
        .layer(builder().build().unwrap());
    let request = |path: &str, claims: Value| {
        from("192.0.2.1", "GET", path)
            .header("authorization", format!("Bearer {}", hs256(&claims)))
            .body(Body::empty())
            .unwrap()
    };
    let ada = claims(json!({"sub": "ada", "tenant_id": 7}));
    let bob = claims(json!({"sub": "bob", "tenant_id": 7}));
    let first = send(&app, request("/subject", ada.clone())).await;
    assert_eq!(first.header("x-ratelimit-remaining"), "1");
    let second = send(&app, request("/subject", ada.clone())).await;
    assert_eq!(second.header("x-ratelimit-remaining"), "0");
    assert_eq!(
        send(&app, request("/subject", ada.clone())).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another subject, from the same address, has its own count.
    let other = send(&app, request("/subject", bob.clone())).await;
    assert_eq!(other.header("x-ratelimit-remaining"), "1");

    // One tenant (a number claim) shared by two subjects.
    assert_eq!(
        send(&app, request("/tenant", ada))
            .await
            .header("x-ratelimit-remaining"),
        "4"
    );
    assert_eq!(
        send(&app, request("/tenant", bob))
            .await
            .header("x-ratelimit-remaining"),
        "3"
    );
    let string_tenant = claims(json!({"tenant_id": "7"}));
    assert_eq!(
        send(&app, request("/tenant", string_tenant))
            .await
            .header("x-ratelimit-remaining"),
        "2"
    );
    let missing = send(&app, request("/tenant", claims(json!({})))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.body,
        r#"{"error":"This endpoint needs a JWT with the `tenant_id` claim","code":"MISSING_RATE_LIMIT_KEY"}"#
    );
}

/// On an `or_api_key` route the lockout's 429 names what the request
/// presents: a bearer JWT is checked as a token, anything else as a key.
#[tokio::test]
async fn on_an_or_api_key_route_the_lockout_names_the_credential_presented() {
    let engine = builder()
        .api_key("ops", "ops-team-key-0123456789")
        .lockout(Lockout::new(
            3,
            Duration::from_secs(600),
            Duration::from_secs(600),
        ))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/either", get(|| async { "ok" }))
        .route_layer(RequireJwt::new().or_api_key())
        .layer(engine);
    let with = |name: &str, value: String| {
        from("192.0.2.1", "GET", "/either")
            .header(name, value)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        let wrong = send(&app, with("x-api-key", "not-a-key-0123456789".into())).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let key = send(&app, with("x-api-key", "ops-team-key-0123456789".into())).await;
    assert_eq!(key.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        key.json(),
        json!({
            "error": "Too Many Requests: too many failed API key attempts from this client",
            "code": "LOCKED_OUT"
        })
    );
    let token = send(
        &app,
        with(
            "authorization",
            format!("Bearer {}", hs256(&claims(json!({})))),
        ),
    )
    .await;
    assert_eq!(token.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        token.json(),
        json!({
            "error": "Too Many Requests: too many failed token attempts from this client",
            "code": "LOCKED_OUT"
        })
    );
}

#[tokio::test]
async fn bad_tokens_count_toward_the_lockout_expired_ones_do_not() {
    let engine = builder()
        .lockout(Lockout::new(
            3,
            Duration::from_secs(600),
            Duration::from_secs(600),
        ))
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let valid = hs256(&claims(json!({})));
    let expired = hs256(&claims(json!({"exp": now() - 3600})));
    for _ in 0..5 {
        assert_eq!(
            call(&app, Some(&expired)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(call(&app, Some(&valid)).await.status, StatusCode::OK);
    let forged = mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"another-secret-that-is-32-bytes!"),
        None,
        &claims(json!({})),
    );
    let (logs, _guard) = Logs::capture();
    for _ in 0..3 {
        assert_eq!(
            call(&app, Some(&forged)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = call(&app, Some(&valid)).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        locked.json(),
        json!({
            "error": "Too Many Requests: too many failed token attempts from this client",
            "code": "LOCKED_OUT"
        })
    );
    assert_eq!(
        jwt_reasons(&logs),
        [
            "bad_signature",
            "bad_signature",
            "bad_signature",
            "locked_out"
        ]
    );
    assert_eq!(logs.policy_events("jwt")[2]["fields"]["lockout_secs"], 600);
}

#[tokio::test]
async fn without_connect_info_a_token_check_with_lockout_answers_500_and_logs_the_fix_as_jwt() {
    let engine = builder()
        .lockout(Lockout::new(
            3,
            Duration::from_secs(600),
            Duration::from_secs(600),
        ))
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let (logs, _guard) = Logs::capture();
    let request = axum::http::Request::get("/me")
        .header(
            "authorization",
            format!("Bearer {}", hs256(&claims(json!({})))),
        )
        .body(Body::empty())
        .unwrap();
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.json(),
        json!({"error": "Internal Server Error", "code": "INTERNAL_ERROR"})
    );
    let events = logs.policy_events("jwt");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["level"], "ERROR");
    let message = events[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("into_make_service_with_connect_info"),
        "{message}"
    );
    assert!(logs.policy_events("api_key").is_empty());
}

#[tokio::test]
async fn jwks_keys_are_fetched_at_start_and_a_new_kid_triggers_one_refresh() {
    let server = KeyServer::start(vec![jwk(&rsa1(), Algorithm::RS256, "k1")]).await;
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .jwt_jwks_url(&server.jwks_url())
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();
    assert_eq!(server.fetches(), 1);
    let app = app(engine, RequireJwt::new());
    let claims = claims(json!({}));
    let k1 = mint(Algorithm::RS256, &rsa1(), Some("k1"), &claims);
    assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::OK);
    assert_eq!(server.fetches(), 1);

    // Rotation: the issuer adds `k2`; a token signed with it fetches once.
    clock.advance(Duration::from_secs(10));
    server.set_keys(vec![
        jwk(&rsa1(), Algorithm::RS256, "k1"),
        jwk(&rsa2(), Algorithm::RS256, "k2"),
    ]);
    let k2 = mint(Algorithm::RS256, &rsa2(), Some("k2"), &claims);
    assert_eq!(call(&app, Some(&k2)).await.status, StatusCode::OK);
    assert_eq!(call(&app, Some(&k2)).await.status, StatusCode::OK);
    assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::OK);
    assert_eq!(server.fetches(), 2);
    // EC and Ed25519 keys from a JWKS, pinned to their curves.
    clock.advance(Duration::from_secs(10));
    server.set_keys(vec![jwk(&ec(), Algorithm::ES256, "ec"), ed_jwk("ed")]);
    let es = mint(Algorithm::ES256, &ec(), Some("ec"), &claims);
    assert_eq!(call(&app, Some(&es)).await.status, StatusCode::OK);
    let eddsa = mint(Algorithm::EdDSA, &ed(), Some("ed"), &claims);
    assert_eq!(call(&app, Some(&eddsa)).await.status, StatusCode::OK);
    // `k1` left the set with that fetch.
    assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(server.fetches(), 3);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_fetch_per_interval() {
    let server = KeyServer::start(vec![jwk(&rsa1(), Algorithm::RS256, "k1")]).await;
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .jwt_jwks_url(&server.jwks_url())
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .jwt_jwks_refresh_interval(Duration::from_secs(30))
        .no_lockout()
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let claims = claims(json!({}));
    // Within the interval of the start-up fetch: no fetch at all.
    for n in 0..10 {
        let token = mint(
            Algorithm::RS256,
            &rsa2(),
            Some(&format!("random-{n}")),
            &claims,
        );
        assert_eq!(
            call(&app, Some(&token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(server.fetches(), 1);
    // 10 seconds is not yet the configured 30.
    clock.advance(Duration::from_secs(10));
    let token = mint(Algorithm::RS256, &rsa2(), Some("random-x"), &claims);
    call(&app, Some(&token)).await;
    assert_eq!(server.fetches(), 1);
    clock.advance(Duration::from_secs(20));
    let (logs, _guard) = Logs::capture();
    for n in 0..100 {
        let token = mint(
            Algorithm::RS256,
            &rsa2(),
            Some(&format!("flood-{n}")),
            &claims,
        );
        assert_eq!(
            call(&app, Some(&token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(server.fetches(), 2);
    assert_eq!(jwt_reasons(&logs), vec!["unknown_key"; 100]);
    let refusals: Vec<Value> = logs
        .policy_events("jwt")
        .into_iter()
        .filter(|event| event["fields"]["reason"].is_string())
        .collect();
    assert_eq!(refusals[0]["fields"]["kid"], "flood-0");
    assert!(
        refusals
            .iter()
            .all(|event| event["fields"]["sub"].is_null())
    );
}

#[tokio::test]
async fn during_a_jwks_outage_cached_keys_work_and_the_outage_is_logged_twice() {
    let server = KeyServer::start(vec![jwk(&rsa1(), Algorithm::RS256, "k1")]).await;
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .jwt_jwks_url(&server.jwks_url())
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .no_lockout()
        .clock(clock.clone())
        .build_async()
        .await
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let claims = claims(json!({}));
    let k1 = mint(Algorithm::RS256, &rsa1(), Some("k1"), &claims);
    let k2 = mint(Algorithm::RS256, &rsa2(), Some("k2"), &claims);
    let (logs, _guard) = Logs::capture();
    server.set_down(true);
    for _ in 0..3 {
        clock.advance(Duration::from_secs(10));
        assert_eq!(call(&app, Some(&k2)).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::OK);
    }
    assert_eq!(server.fetches(), 4);
    assert_eq!(logs.count("ERROR", "JWKS endpoint unreachable"), 1);
    assert_eq!(logs.count("WARN", "JWKS endpoint reachable again"), 0);

    server.set_down(false);
    server.set_keys(vec![
        jwk(&rsa1(), Algorithm::RS256, "k1"),
        jwk(&rsa2(), Algorithm::RS256, "k2"),
    ]);
    clock.advance(Duration::from_secs(10));
    assert_eq!(call(&app, Some(&k2)).await.status, StatusCode::OK);
    assert_eq!(logs.count("ERROR", "JWKS endpoint unreachable"), 1);
    assert_eq!(logs.count("WARN", "JWKS endpoint reachable again"), 1);
}

#[tokio::test]
async fn openid_connect_discovery_finds_the_jwks() {
    let server = KeyServer::start(vec![jwk(&rsa1(), Algorithm::RS256, "k1")]).await;
    let engine = Engine::builder()
        .jwt_oidc_issuer(&server.url)
        .jwt_audience(AUDIENCE)
        .build_async()
        .await
        .unwrap();
    assert_eq!(
        server
            .discovery_fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(server.fetches(), 1);
    let app = app(engine, RequireJwt::new());
    // The issuer is the expected `iss`.
    let ours = mint(
        Algorithm::RS256,
        &rsa1(),
        Some("k1"),
        &claims(json!({"iss": server.url})),
    );
    assert_eq!(call(&app, Some(&ours)).await.status, StatusCode::OK);
    let theirs = mint(Algorithm::RS256, &rsa1(), Some("k1"), &claims(json!({})));
    assert_eq!(
        call(&app, Some(&theirs)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_sync_build_fetches_on_first_use() {
    let server = KeyServer::start(vec![jwk(&rsa1(), Algorithm::RS256, "k1")]).await;
    let engine = Engine::builder()
        .jwt_jwks_url(&server.jwks_url())
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .build()
        .unwrap();
    let app = app(engine, RequireJwt::new());
    let k1 = mint(Algorithm::RS256, &rsa1(), Some("k1"), &claims(json!({})));
    assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::OK);
    assert_eq!(call(&app, Some(&k1)).await.status, StatusCode::OK);
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_fails_build_async_with_the_other_problems() {
    let server = KeyServer::start(vec![]).await;
    server.set_down(true);
    let error = Engine::builder()
        .jwt_jwks_url(&server.jwks_url())
        .jwt_secret("short")
        .build_async()
        .await
        .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(problems[0].contains("the JWT secret is 5 bytes long"));
    assert!(problems[1].starts_with(&format!(
        "cannot fetch the JWT keys (JWKS {})",
        server.jwks_url()
    )));
    assert!(problems[1].ends_with("answered 503 Service Unavailable"));
    assert!(problems[2].starts_with("no JWT issuer (`iss`) is configured"));
    assert!(problems[3].starts_with("no JWT audience (`aud`) is configured"));
}

#[tokio::test]
async fn issuer_and_audience_are_errors_in_production_and_warnings_elsewhere() {
    let production = Engine::builder().jwt_secret(SECRET).build().unwrap_err();
    assert_eq!(production.problems().len(), 2);
    let (logs, _guard) = Logs::capture();
    let development = Engine::builder()
        .jwt_secret(SECRET)
        .environment(Environment::Development)
        .build();
    assert!(development.is_ok());
    assert_eq!(logs.count("WARN", "no JWT issuer (`iss`) is configured"), 1);
    assert_eq!(
        logs.count("WARN", "no JWT audience (`aud`) is configured"),
        1
    );
}

#[tokio::test]
async fn jwt_settings_come_from_the_environment() {
    let dir = std::env::temp_dir().join(format!("policy-jwt-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("key.pem");
    std::fs::write(&pem, EC_PUB).unwrap();
    let vars = [
        ("JWT_PUBLIC_KEY_FILE", pem.to_str().unwrap()),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", "billing, reports"),
        ("JWT_LEEWAY", "0"),
        ("JWT_SCOPE_CLAIM", "scp"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let engine = Engine::builder().from_vars(vars).build().unwrap();
    let app = app(engine, RequireJwt::scope("reports:read").unwrap());
    let token = mint(
        Algorithm::ES256,
        &ec(),
        None,
        &claims(json!({"scp": ["reports:read"], "exp": now() - 5})),
    );
    assert_eq!(
        call(&app, Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = mint(
        Algorithm::ES256,
        &ec(),
        None,
        &claims(json!({"scp": ["reports:read"]})),
    );
    assert_eq!(call(&app, Some(&token)).await.status, StatusCode::OK);

    let vars = [
        ("JWT_SECRET", "short"),
        ("JWT_LEEWAY", "soon"),
        ("JWT_JWKS_URL", "keys.json"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let error = Engine::builder()
        .from_vars(vars)
        .environment(Environment::Development)
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "JWT_SECRET: the JWT secret is 5 bytes long; an HMAC secret needs at least 32 (make one with `openssl rand -base64 48`)",
            "JWT_LEEWAY: `soon` is not a number of seconds, such as 60",
            "JWT_JWKS_URL: `keys.json` is not an http(s) URL",
        ]
    );
}
