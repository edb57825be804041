//! The API-key policy's edges, over a real Router: a full lockout table
//! still locks clients out, lockout settings out of range do not build, a
//! server without connect info refuses key-protected requests instead of
//! silently not counting failures, key-file problems never quote a pasted
//! key, an empty `X-API-Key` does not hide a bearer token, and a repeated
//! header gets exactly `Invalid API key`.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::{Logs, Reply, from, send};
use policy_runtime::{ApiKeyStore, Engine, Lockout, ManualClock, require_api_key};
use serde_json::json;
use std::net::Ipv6Addr;
use std::time::Duration;

const KEY: &str = "Rt5yU8iO2pA6sD9fG3hJ";
const WRONG: &str = "Yu8iO1pA4sD7fG0hJ3kL";

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

fn app(engine: &Engine) -> Router {
    Router::new()
        .route("/protected", get(protected))
        .layer(engine.clone())
}

async fn call(app: &Router, ip: &str, key: &str) -> Reply {
    let request = from(ip, "GET", "/protected").header("x-api-key", key);
    send(app, request.body(Body::empty()).unwrap()).await
}

/// Three failures within a minute lock a client out for ten minutes; at most
/// 16 clients are tracked.
fn small_table() -> Lockout {
    Lockout::new(3, Duration::from_secs(60), Duration::from_secs(600)).with_max_clients(16)
}

#[tokio::test]
async fn a_full_lockout_table_still_locks_out_a_fresh_client() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .clock(clock.clone())
        .lockout(small_table())
        .api_key("client", KEY)
        .build()
        .unwrap();
    let app = app(&engine);
    // One bad key from each of 40 IPv6 /64s of one /48: the table fills at
    // 16, and the failures of the next clients count together, in their
    // network's shared bucket, so the third of them starts a lockout of the bucket.
    for n in 0..40 {
        let reply = call(&app, &format!("2001:db8:0:{n:x}::1"), WRONG).await;
        let expected = if n < 19 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(reply.status, expected, "client {n}");
        assert!(engine.lockout_tracked_clients() <= 16);
    }
    assert_eq!(engine.lockout_tracked_clients(), 16);
    // A fresh client, from another network: its failures still count.
    let fresh = "2001:db8:ffff:1::1";
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&app, fresh, WRONG).await.status);
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    for key in [WRONG, KEY] {
        let reply = call(&app, fresh, key).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "key {key}");
        assert_eq!(reply.json()["code"], "LOCKED_OUT");
    }
    assert!(engine.lockout_tracked_clients() <= 16);
    assert_eq!(
        logs.count(
            "WARN",
            "the API-key lockout tracks as many clients as it may"
        ),
        1
    );
    // Ten minutes later the lockout is over and the valid key works again.
    clock.advance(Duration::from_secs(601));
    assert_eq!(call(&app, fresh, KEY).await.status, StatusCode::OK);
}

/// The report's case at the default cap: one bad key from each of 100,000
/// IPv6 /64s fills the table; a fresh client is still locked out.
#[tokio::test]
async fn a_full_default_table_still_locks_out_a_fresh_client() {
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    let app = app(&engine);
    for n in 0u32..100_000 {
        let [a, b, c, d] = n.to_be_bytes();
        let ip = Ipv6Addr::from([0x20, 0x01, 0x0d, 0xb8, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 1]);
        call(&app, &ip.to_string(), WRONG).await;
    }
    assert_eq!(engine.lockout_tracked_clients(), 100_000);
    let fresh = "2001:db8:ffff:ffff::1";
    for _ in 0..5 {
        call(&app, fresh, WRONG).await;
    }
    let reply = call(&app, fresh, KEY).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json()["code"], "LOCKED_OUT");
    assert_eq!(engine.lockout_tracked_clients(), 100_000);
}

#[tokio::test]
async fn a_full_table_makes_room_once_its_clients_are_idle() {
    let clock = ManualClock::new();
    let engine = Engine::builder()
        .clock(clock.clone())
        .lockout(small_table())
        .api_key("client", KEY)
        .build()
        .unwrap();
    let app = app(&engine);
    for n in 0..16 {
        call(&app, &format!("2001:db8:0:{n:x}::1"), WRONG).await;
    }
    assert_eq!(engine.lockout_tracked_clients(), 16);
    // After the lockout period every entry is idle: the next new client's
    // failure sweeps them out and takes a place of its own.
    clock.advance(Duration::from_secs(601));
    call(&app, "192.0.2.7", WRONG).await;
    assert_eq!(engine.lockout_tracked_clients(), 1);
    let status = engine.lockout_status("192.0.2.7".parse().unwrap());
    assert_eq!(status.failures, 1);
}

#[test]
fn out_of_range_lockout_settings_are_build_problems() {
    let problems = |lockout: Lockout| {
        Engine::builder()
            .lockout(lockout)
            .api_key("client", KEY)
            .build()
            .unwrap_err()
            .problems()
            .to_vec()
    };
    let minute = Duration::from_secs(60);
    let within = problems(Lockout::new(3, Duration::MAX, minute));
    assert_eq!(within.len(), 1, "{within:?}");
    assert!(within[0].contains("`within` is 18446744073709551615.999999999s"));
    let lock_for = problems(Lockout::new(3, minute, Duration::MAX));
    assert!(lock_for[0].contains("`lock_for` is 18446744073709551615.999999999s"));
    let zero = problems(Lockout::new(3, minute, Duration::ZERO));
    assert!(zero[0].contains("`lock_for` is 0ns"), "{zero:?}");
    let failures = problems(Lockout::new(u32::MAX, minute, minute));
    assert!(
        failures[0].contains("`failures` is 4294967295"),
        "{failures:?}"
    );
    let clients = problems(Lockout::default().with_max_clients(0));
    assert!(clients[0].contains("`max_clients` is 0"), "{clients:?}");
    // The edges of the ranges build.
    for lockout in [
        Lockout::new(
            100,
            Duration::from_secs(1),
            Duration::from_secs(365 * 86_400),
        ),
        Lockout::default().with_max_clients(1),
    ] {
        Engine::builder()
            .lockout(lockout)
            .api_key("client", KEY)
            .build()
            .unwrap();
    }
}

fn without_connect_info(key: &str) -> Request<Body> {
    Request::get("/protected")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn without_connect_info_key_protected_requests_get_500_and_the_fix_is_logged() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    let app = app(&engine);
    for _ in 0..50 {
        let reply = send(&app, without_connect_info(WRONG)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let reply = send(&app, without_connect_info(KEY)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.json(),
        json!({"error": "Internal Server Error", "code": "INTERNAL_ERROR"})
    );
    let errors: Vec<_> = logs
        .policy_events("api_key")
        .into_iter()
        .filter(|event| event["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 51);
    let message = errors[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("into_make_service_with_connect_info"),
        "{message}"
    );
    assert_eq!(errors[0]["fields"]["scope"], "api_key_hardening::protected");
}

#[tokio::test]
async fn without_connect_info_and_without_lockout_keys_still_work() {
    let engine = Engine::builder()
        .no_lockout()
        .api_key("client", KEY)
        .build()
        .unwrap();
    let app = app(&engine);
    assert_eq!(
        send(&app, without_connect_info(WRONG)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, without_connect_info(KEY)).await.status,
        StatusCode::OK
    );
}

/// Whether `text` holds 8 or more consecutive characters of `secret`.
fn quotes(text: &str, secret: &str) -> bool {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(8)
        .any(|window| text.contains(&window.iter().collect::<String>()))
}

#[test]
fn key_file_problems_never_quote_a_pasted_key() {
    // A 43-character key, as `policy-keygen` prints them.
    let secret = "q3VbX9kLmN2pR7sT4wY8zA1cE5fG6hJ0uI_oP-dK2mQ";
    assert_eq!(secret.len(), 43);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let lines = [
        secret.to_owned(),
        format!("  {secret}  "),
        format!("ops {secret}"),
        format!("{secret} sha256:abc"),
        format!("ops {digest} {secret}"),
        format!("ops {digest} {secret}=x"),
        format!("ops {digest} expires={secret}"),
        format!("ops {digest} scopes=read,{secret}/"),
        format!("ops {digest} scopes=a scopes={secret}"),
        format!("ops {digest} revoked={secret}"),
        format!("{secret} {digest}\n{secret} {digest}"),
    ];
    for (index, line) in lines.iter().enumerate() {
        let error = ApiKeyStore::from_key_lines("keys.txt", line).unwrap_err();
        let text = error.to_string();
        assert!(!quotes(&text, secret), "line {index}: {text}");
        assert!(
            error
                .problems()
                .iter()
                .all(|problem| problem.starts_with("keys.txt:1: ")
                    || problem.starts_with("keys.txt:2: ")),
            "line {index}: {text}"
        );
    }
    let only_a_key = ApiKeyStore::from_key_lines("keys.txt", secret).unwrap_err();
    assert!(
        only_a_key.problems()[0].starts_with("keys.txt:1: the line has one field and no digest"),
        "{only_a_key}"
    );
    let repeated =
        ApiKeyStore::from_key_lines("keys.txt", &format!("a {digest}\nb {digest}")).unwrap_err();
    assert_eq!(
        repeated.problems(),
        ["keys.txt:2: the digest is the same as on line 1; give each client its own key"]
    );
}

async fn call_with(app: &Router, headers: &[(&str, &str)]) -> Reply {
    let mut request = from("192.0.2.1", "GET", "/protected");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn an_empty_x_api_key_does_not_hide_a_bearer_token() {
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    let app = app(&engine);
    let bearer = format!("Bearer {KEY}");
    let reply = call_with(&app, &[("x-api-key", ""), ("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, "ok");
    // Empty, with no bearer token: still a missing key.
    let reply = call_with(&app, &[("x-api-key", "")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "Missing API key");
}

#[tokio::test]
async fn a_repeated_key_header_gets_exactly_invalid_api_key_and_the_log_says_why() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    let app = app(&engine);
    let bearer = format!("Bearer {KEY}");
    let huge = "k".repeat(1025);
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("x-api-key", KEY), ("x-api-key", KEY)],
            "the X-API-Key header was sent more than once",
        ),
        (
            &[("authorization", &bearer), ("authorization", &bearer)],
            "the Authorization header was sent more than once",
        ),
        (&[("x-api-key", &huge)], "the key is longer than 1 KiB"),
    ];
    for (headers, detail) in cases {
        let reply = call_with(&app, headers).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.body,
            r#"{"error":"Invalid API key","code":"UNAUTHORIZED"}"#
        );
        let events = logs.policy_events("api_key");
        let last = events.last().unwrap();
        assert_eq!(last["fields"]["reason"], "invalid");
        assert_eq!(last["fields"]["detail"], detail);
    }
}
