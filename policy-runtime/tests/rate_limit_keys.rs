//! What a limit is keyed by: IP (through trusted proxies, IPv6 grouped),
//! API key, global, header, custom function; and what happens when the key is
//! missing.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{Engine, ErrorBody, rate_limit, require_api_key};

const KEY_A: &str = "key-a-0123456789abcdef";
const KEY_B: &str = "key-b-0123456789abcdef";

#[rate_limit("1/hour")]
async fn by_ip() -> &'static str {
    "ok"
}

#[require_api_key]
#[rate_limit("1/hour", key = api_key)]
async fn by_key() -> &'static str {
    "ok"
}

#[rate_limit("2/hour", key = global)]
async fn by_everyone() -> &'static str {
    "ok"
}

#[rate_limit("1/hour", key = header("x-user-id"))]
async fn by_header() -> &'static str {
    "ok"
}

#[rate_limit("1/hour", key = header("x-user-id"), on_missing = ip)]
async fn by_header_or_ip() -> &'static str {
    "ok"
}

fn tenant(parts: &Parts) -> Result<String, ErrorBody> {
    match parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()) {
        Some(tenant) => Ok(format!("tenant:{tenant}")),
        None => Err(ErrorBody::new(
            StatusCode::BAD_REQUEST,
            "NO_TENANT",
            "x-tenant is required",
        )),
    }
}

#[rate_limit("1/hour", key = tenant)]
async fn by_tenant() -> &'static str {
    "ok"
}

fn app(engine: Engine) -> Router {
    Router::new()
        .route("/ip", get(by_ip))
        .route("/key", get(by_key))
        .route("/global", get(by_everyone))
        .route("/header", get(by_header))
        .route("/header-or-ip", get(by_header_or_ip))
        .route("/tenant", get(by_tenant))
        .layer(engine)
}

fn engine() -> Engine {
    Engine::builder()
        .api_key("a", KEY_A)
        .api_key("b", KEY_B)
        .build()
        .unwrap()
}

fn request(ip: &str, uri: &str, headers: &[(&str, &str)]) -> axum::http::Request<Body> {
    let mut builder = from(ip, "GET", uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

async fn status(app: &Router, ip: &str, uri: &str, headers: &[(&str, &str)]) -> StatusCode {
    send(app, request(ip, uri, headers)).await.status
}

#[tokio::test]
async fn api_key_limits_follow_the_key_not_the_address() {
    let app = app(engine());
    assert_eq!(
        status(&app, "192.0.2.1", "/key", &[("x-api-key", KEY_A)]).await,
        StatusCode::OK
    );
    // Same key from another address: same bucket.
    assert_eq!(
        status(&app, "192.0.2.2", "/key", &[("x-api-key", KEY_A)]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another key from the first address: its own bucket.
    assert_eq!(
        status(&app, "192.0.2.1", "/key", &[("x-api-key", KEY_B)]).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_global_limit_is_shared_by_everyone() {
    let app = app(engine());
    assert_eq!(
        status(&app, "192.0.2.1", "/global", &[]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "198.51.100.1", "/global", &[]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "203.0.113.1", "/global", &[]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn header_keys_and_what_happens_when_the_header_is_missing() {
    let app = app(engine());
    assert_eq!(
        status(&app, "192.0.2.1", "/header", &[("x-user-id", "u1")]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "192.0.2.9", "/header", &[("x-user-id", "u1")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, "192.0.2.1", "/header", &[("x-user-id", "u2")]).await,
        StatusCode::OK
    );

    // Missing, and the default is to refuse with a clear JSON error.
    let reply = send(&app, request("192.0.2.1", "/header", &[])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "This endpoint needs the `x-user-id` header", "code": "MISSING_RATE_LIMIT_KEY"})
    );

    // Missing with `on_missing = ip`: counted against the address.
    assert_eq!(
        status(&app, "192.0.2.1", "/header-or-ip", &[]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "192.0.2.1", "/header-or-ip", &[]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, "192.0.2.2", "/header-or-ip", &[]).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_custom_key_function_gives_a_key_or_a_refusal() {
    let app = app(engine());
    assert_eq!(
        status(&app, "192.0.2.1", "/tenant", &[("x-tenant", "acme")]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "192.0.2.2", "/tenant", &[("x-tenant", "acme")]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, "192.0.2.1", "/tenant", &[("x-tenant", "globex")]).await,
        StatusCode::OK
    );
    let reply = send(&app, request("192.0.2.1", "/tenant", &[])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "x-tenant is required", "code": "NO_TENANT"})
    );
}

#[tokio::test]
async fn an_untrusted_client_cannot_change_its_key_with_forwarding_headers() {
    let app = app(Engine::builder()
        .trusted_proxies(["10.0.0.0/8"])
        .api_key("a", KEY_A)
        .build()
        .unwrap());
    assert_eq!(
        status(&app, "198.51.100.7", "/ip", &[]).await,
        StatusCode::OK
    );
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.1"),
        ("forwarded", "for=203.0.113.2"),
        ("x-real-ip", "203.0.113.3"),
    ] {
        assert_eq!(
            status(&app, "198.51.100.7", "/ip", &[(name, value)]).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{name} changed the key of an untrusted client"
        );
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    let app = app(Engine::builder()
        .from_vars([("TRUSTED_PROXIES".to_string(), "10.0.0.0/8".to_string())])
        .api_key("a", KEY_A)
        .build()
        .unwrap());
    let (logs, _guard) = Logs::capture();
    // The client spoofs a left-most hop; the proxy appended the real address.
    let spoofed = [("x-forwarded-for", "1.2.3.4, 198.51.100.20")];
    assert_eq!(
        status(&app, "10.0.0.5", "/ip", &spoofed).await,
        StatusCode::OK
    );
    let other_spoof = [("x-forwarded-for", "5.6.7.8, 198.51.100.20")];
    assert_eq!(
        status(&app, "10.0.0.6", "/ip", &other_spoof).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another real client behind the same proxy has its own bucket.
    let other = [("x-forwarded-for", "198.51.100.21")];
    assert_eq!(
        status(&app, "10.0.0.5", "/ip", &other).await,
        StatusCode::OK
    );
    let events = logs.policy_events("rate_limit");
    assert_eq!(events[0]["fields"]["client_ip"], "198.51.100.20");
}

#[tokio::test]
async fn ipv6_clients_are_grouped_by_prefix() {
    let app = app(engine());
    assert_eq!(
        status(&app, "2001:db8:1:2::1", "/ip", &[]).await,
        StatusCode::OK
    );
    // Same /64: same bucket.
    assert_eq!(
        status(&app, "2001:db8:1:2:ffff::9", "/ip", &[]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another /64: another bucket.
    assert_eq!(
        status(&app, "2001:db8:1:3::1", "/ip", &[]).await,
        StatusCode::OK
    );

    let app = app_with_prefix(48);
    assert_eq!(
        status(&app, "2001:db8:1:2::1", "/ip", &[]).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, "2001:db8:1:3::1", "/ip", &[]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn app_with_prefix(bits: u8) -> Router {
    app(Engine::builder()
        .ipv6_prefix(bits)
        .api_key("a", KEY_A)
        .build()
        .unwrap())
}

#[tokio::test]
async fn bad_proxy_settings_are_build_errors_naming_the_variable() {
    let error = Engine::builder()
        .from_vars([
            (
                "TRUSTED_PROXIES".to_string(),
                "10.0.0.0/8, not-a-network".to_string(),
            ),
            ("RATELIMIT_IPV6_PREFIX".to_string(), "200".to_string()),
            ("RATELIMIT_DEFAULT".to_string(), "50/fortnight".to_string()),
        ])
        .build()
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("TRUSTED_PROXIES"), "{text}");
    assert!(text.contains("not-a-network"), "{text}");
    assert!(text.contains("RATELIMIT_IPV6_PREFIX"), "{text}");
    assert!(
        text.contains("RATELIMIT_DEFAULT: unknown time unit `fortnight`"),
        "{text}"
    );
}

#[tokio::test]
async fn rejections_log_scope_key_kind_client_and_limit_but_never_a_key() {
    let (logs, _guard) = Logs::capture();
    let app = app(engine());
    for _ in 0..2 {
        status(&app, "192.0.2.77", "/key", &[("x-api-key", KEY_A)]).await;
    }
    let denied: Vec<_> = logs
        .policy_events("rate_limit")
        .into_iter()
        .filter(|event| event["fields"]["outcome"] == "deny")
        .collect();
    assert_eq!(denied.len(), 1);
    let fields = &denied[0]["fields"];
    assert_eq!(denied[0]["level"], "WARN");
    assert_eq!(fields["scope"], "rate_limit_keys::by_key");
    assert_eq!(fields["key_kind"], "api_key");
    assert_eq!(fields["key_id"], "a");
    assert_eq!(fields["client_ip"], "192.0.2.77");
    assert_eq!(fields["limit"], "1 per 1 hour");
    assert!(!logs.text().contains(KEY_A));
}
