//! Brute-force lockout against a real Router, on a fake clock: N failed key
//! attempts from one client within the window lock it out of every
//! key-protected handler, valid key or not, until the lockout ends or an
//! operator lifts it. Clients are told apart as rate limits tell them apart.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, Reply, from, send};
use policy_runtime::{
    ApiKey, Engine, EngineBuilder, Lockout, LockoutStatus, ManualClock, require_api_key,
};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

const KEY: &str = "Rt5yU8iO2pA6sD9fG3hJ";
const EXPIRED: &str = "Kl1zX4cV7bN0mQ3wE6rT";
const WRONG: &str = "Yu8iO1pA4sD7fG0hJ3kL";

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

#[require_api_key(scope = "admin")]
async fn admin() -> &'static str {
    "admin"
}

fn build(builder: EngineBuilder, clock: &ManualClock) -> (Router, Engine) {
    let engine = builder
        .clock(clock.clone())
        .api_key("client", KEY)
        .api_key_with(
            ApiKey::new("retired", EXPIRED).expires_at(SystemTime::now() - Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route("/protected", get(protected))
        .route("/admin", get(admin))
        .layer(engine.clone());
    (app, engine)
}

/// Three failures within a minute lock a client out for ten minutes.
fn three_strikes() -> Lockout {
    Lockout::new(3, Duration::from_secs(60), Duration::from_secs(600))
}

async fn call(app: &Router, ip: &str, key: Option<&str>) -> Reply {
    call_at(app, ip, "/protected", key, &[]).await
}

async fn call_at(
    app: &Router,
    ip: &str,
    uri: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = from(ip, "GET", uri);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn forwarded(app: &Router, peer: &str, client: &str, key: &str) -> Reply {
    let headers = [("x-forwarded-for", client)];
    call_at(app, peer, "/protected", Some(key), &headers).await
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn assert_locked_out(reply: &Reply, retry_after: u64) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.header_u64("retry-after"), retry_after);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "error": "Too Many Requests: too many failed API key attempts from this client",
            "code": "LOCKED_OUT",
        })
    );
}

#[tokio::test]
async fn the_nth_failure_locks_the_client_out_even_with_a_valid_key() {
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder().lockout(three_strikes()), &clock);
    let attacker = "198.51.100.9";
    for _ in 0..3 {
        assert_eq!(
            call(&app, attacker, Some(WRONG)).await.status,
            StatusCode::UNAUTHORIZED
        );
        clock.advance(Duration::from_secs(10));
    }
    // Locked out at 20 s, until 620 s; it is 30 s now.
    assert_locked_out(&call(&app, attacker, Some(KEY)).await, 590);
    assert_locked_out(&call(&app, attacker, None).await, 590);
    assert_locked_out(
        &call_at(&app, attacker, "/admin", Some(KEY), &[]).await,
        590,
    );
    // Another client is not affected.
    assert_eq!(
        call(&app, "198.51.100.10", Some(KEY)).await.status,
        StatusCode::OK
    );

    clock.advance(Duration::from_millis(589_500));
    assert_locked_out(&call(&app, attacker, Some(KEY)).await, 1);
    clock.advance(Duration::from_millis(500));
    assert_eq!(call(&app, attacker, Some(KEY)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_default_is_five_failures_within_thirty_minutes_for_thirty_minutes() {
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder(), &clock);
    let attacker = "198.51.100.9";
    for _ in 0..4 {
        call(&app, attacker, Some(WRONG)).await;
        clock.advance(Duration::from_secs(7 * 60));
    }
    // Four failures over 28 minutes: not yet.
    assert_eq!(call(&app, attacker, Some(KEY)).await.status, StatusCode::OK);
    call(&app, attacker, Some(WRONG)).await;
    assert_locked_out(&call(&app, attacker, Some(KEY)).await, 1800);
}

#[tokio::test]
async fn failures_that_left_the_window_do_not_add_up() {
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder().lockout(three_strikes()), &clock);
    for _ in 0..10 {
        for _ in 0..2 {
            call(&app, "198.51.100.9", Some(WRONG)).await;
        }
        clock.advance(Duration::from_secs(61));
    }
    assert_eq!(
        call(&app, "198.51.100.9", Some(KEY)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn expired_keys_count_but_missing_keys_and_missing_scopes_do_not() {
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder().lockout(three_strikes()), &clock);
    let client = "198.51.100.9";
    for _ in 0..10 {
        assert_eq!(
            call(&app, client, None).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call_at(&app, client, "/admin", Some(KEY), &[]).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(call(&app, client, Some(KEY)).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            call(&app, client, Some(EXPIRED)).await.json()["error"],
            "Expired API key"
        );
    }
    assert_locked_out(&call(&app, client, Some(KEY)).await, 600);
}

#[tokio::test]
async fn operators_see_the_status_and_can_unlock_a_client() {
    let clock = ManualClock::new();
    let (app, engine) = build(Engine::builder().lockout(three_strikes()), &clock);
    let client = "198.51.100.9";
    assert_eq!(engine.lockout_status(ip(client)), LockoutStatus::default());
    call(&app, client, Some(WRONG)).await;
    call(&app, client, Some(WRONG)).await;
    assert_eq!(
        engine.lockout_status(ip(client)),
        LockoutStatus {
            failures: 2,
            locked_for: None
        }
    );
    call(&app, client, Some(WRONG)).await;
    clock.advance(Duration::from_secs(100));
    assert_eq!(
        engine.lockout_status(ip(client)),
        LockoutStatus {
            failures: 0,
            locked_for: Some(Duration::from_secs(500))
        }
    );

    assert!(engine.unlock(ip(client)));
    assert_eq!(engine.lockout_status(ip(client)), LockoutStatus::default());
    assert_eq!(call(&app, client, Some(KEY)).await.status, StatusCode::OK);
    assert!(!engine.unlock(ip(client)));
}

#[tokio::test]
async fn the_lockout_can_be_turned_off() {
    let clock = ManualClock::new();
    let (app, engine) = build(Engine::builder().no_lockout(), &clock);
    for _ in 0..50 {
        assert_eq!(
            call(&app, "198.51.100.9", Some(WRONG)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        call(&app, "198.51.100.9", Some(KEY)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        engine.lockout_status(ip("198.51.100.9")),
        LockoutStatus::default()
    );
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_locked_out_one_by_one() {
    let clock = ManualClock::new();
    let (app, engine) = build(
        Engine::builder()
            .lockout(three_strikes())
            .trusted_proxies(["10.0.0.0/8"]),
        &clock,
    );
    let proxy = "10.0.0.1";
    for _ in 0..3 {
        forwarded(&app, proxy, "203.0.113.5", WRONG).await;
    }
    assert_locked_out(&forwarded(&app, proxy, "203.0.113.5", KEY).await, 600);
    assert_eq!(
        forwarded(&app, proxy, "203.0.113.6", KEY).await.status,
        StatusCode::OK
    );
    assert!(
        engine
            .lockout_status(ip("203.0.113.5"))
            .locked_for
            .is_some()
    );
    assert_eq!(engine.lockout_status(ip(proxy)), LockoutStatus::default());

    // An untrusted client cannot dodge the lockout by naming another address.
    let untrusted = "198.51.100.20";
    for _ in 0..3 {
        forwarded(&app, untrusted, "192.0.2.99", WRONG).await;
    }
    assert_locked_out(&forwarded(&app, untrusted, "192.0.2.77", KEY).await, 600);
}

#[tokio::test]
async fn ipv6_clients_are_locked_out_by_their_prefix() {
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder().lockout(three_strikes()), &clock);
    for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"] {
        call(&app, host, Some(WRONG)).await;
    }
    assert_locked_out(&call(&app, "2001:db8:1:2::ffff", Some(KEY)).await, 600);
    assert_eq!(
        call(&app, "2001:db8:1:3::1", Some(KEY)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_start_and_every_refusal_of_a_lockout_are_logged() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let (app, _) = build(Engine::builder().lockout(three_strikes()), &clock);
    for _ in 0..3 {
        call(&app, "198.51.100.9", Some(WRONG)).await;
    }
    call(&app, "198.51.100.9", Some(KEY)).await;
    let events = logs.policy_events("api_key");
    assert_eq!(events.len(), 4, "{}", logs.text());
    assert!(events[1]["fields"].get("lockout_secs").is_none());
    assert_eq!(events[2]["fields"]["reason"], "invalid");
    assert_eq!(events[2]["fields"]["lockout_secs"], 600);
    assert_eq!(
        events[2]["fields"]["message"],
        "API key refused; client locked out after repeated failures"
    );
    assert_eq!(events[3]["level"], "WARN");
    assert_eq!(events[3]["fields"]["reason"], "locked_out");
    assert_eq!(events[3]["fields"]["client_ip"], "198.51.100.9");
    assert!(events[3]["fields"].get("key_id").is_none());
}
