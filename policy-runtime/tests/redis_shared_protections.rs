//! The API-key lockout and the penalty box shared by every instance through
//! `RedisStore`, against a real `redis-server` each test starts (and stops,
//! by PID): two engines on one server count failed keys and strikes
//! together, lock and block on both, and the operators' status and unlock
//! work from either. With the memory store both stay per instance. Each
//! failure mode is tested with the server stopped mid-test: a lockout or
//! block an instance knows of is never lifted by an outage.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, Reply, assert_unauthorized, from, send};
use policy_runtime::{
    ClientKey, Engine, FailureMode, Lockout, LockoutStatus, Penalty, RedisStore, StrikeTable,
    rate_limit, require_api_key,
};
use redis::Commands;
use redis_server::RedisServer;
use std::net::IpAddr;
use std::time::Duration;

const KEY: &str = "Rt5yU8iO2pA6sD9fG3hJ";
const WRONG: &str = "Yu8iO1pA4sD7fG0hJ3kL";
const HALF_HOUR: Duration = Duration::from_secs(1800);
const HOUR: Duration = Duration::from_secs(3600);

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

#[rate_limit("1/hour", scope = "shared_search")]
async fn search() -> &'static str {
    "results"
}

/// A store on `server`. The timeout is generous: the machine running the
/// tests may be busy, and only outages (a stopped server, refused at once)
/// are meant to fail.
fn store_on(server: &RedisServer, mode: FailureMode) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .timeout(Duration::from_secs(2))
        .retry_interval(Duration::from_millis(100))
        .failure_mode(mode)
        .build()
        .unwrap()
}

/// An engine builder; with the `jwt` feature, with the JWT settings that
/// the JWT handler of this file needs for any engine to build.
fn builder() -> policy_runtime::EngineBuilder {
    #[cfg(feature = "jwt")]
    return Engine::builder()
        .jwt_secret(jwt_support::SECRET)
        .jwt_issuer(jwt_support::ISSUER)
        .jwt_audience(jwt_support::AUDIENCE);
    #[cfg(not(feature = "jwt"))]
    Engine::builder()
}

/// One app instance on `store` (the memory store when `None`): 5 failed
/// keys within 30 minutes lock a client out for 30 minutes; 3 refusals
/// within an hour block it for an hour.
fn instance(store: Option<&RedisStore>) -> (Router, Engine) {
    let mut builder = builder()
        .api_key("client", KEY)
        .lockout(Lockout::new(5, HALF_HOUR, HALF_HOUR))
        .penalty(Penalty::new(3, HOUR, HOUR));
    if let Some(store) = store {
        builder = builder.limiter_store(store.clone());
    }
    let engine = builder.build().unwrap();
    let app = Router::new()
        .route("/protected", get(protected))
        .route("/search", get(search))
        .layer(engine.clone());
    (app, engine)
}

async fn with_key(app: &Router, ip: &str, key: &str) -> Reply {
    let request = from(ip, "GET", "/protected").header("x-api-key", key);
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn search_from(app: &Router, ip: &str) -> Reply {
    send(app, from(ip, "GET", "/search").body(Body::empty()).unwrap()).await
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The lockout's 429 on an API-key route, with its `Retry-After`.
fn assert_locked_out(reply: &Reply, retry_after: u64) {
    assert_locked_out_saying(
        reply,
        retry_after,
        "Too Many Requests: too many failed API key attempts from this client",
    );
}

/// The lockout's 429 on a token route: the same lockout, naming tokens.
#[cfg(feature = "jwt")]
fn assert_token_locked_out(reply: &Reply, retry_after: u64) {
    assert_locked_out_saying(
        reply,
        retry_after,
        "Too Many Requests: too many failed token attempts from this client",
    );
}

fn assert_locked_out_saying(reply: &Reply, retry_after: u64, message: &str) {
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
            "error": message,
            "code": "LOCKED_OUT",
        })
    );
}

/// The penalty box's 429, with its `Retry-After`.
fn assert_blocked(reply: &Reply, retry_after: u64) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.header_u64("retry-after"), retry_after);
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "error": "Too Many Requests: blocked after repeated violations",
            "code": "RATE_LIMITED",
        })
    );
}

/// The quota's 429.
fn assert_exceeded(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "Too Many Requests: 1 per 1 hour");
}

/// The 503 of a store failing closed.
fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "Service Unavailable", "code": "SERVICE_UNAVAILABLE"})
    );
}

/// The milliseconds `key` has left in Redis (-2: no such key).
fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.connection().pttl(key).unwrap()
}

#[tokio::test]
async fn five_bad_keys_split_across_two_instances_lock_the_client_on_both() {
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store_a = store_on(&server, FailureMode::FallbackToMemory);
    let (a, _) = instance(Some(&store_a));
    let (b, _) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    let client = "198.51.100.7";

    for _ in 0..3 {
        assert_unauthorized(&with_key(&a, client, WRONG).await, "Invalid API key");
    }
    assert_unauthorized(&with_key(&b, client, WRONG).await, "Invalid API key");
    // The fifth failure, on the other instance, starts the lockout.
    assert_unauthorized(&with_key(&b, client, WRONG).await, "Invalid API key");

    // Locked out on both, even with the valid key.
    assert_locked_out(&with_key(&b, client, KEY).await, 1800);
    // The first instance learns of it at the client's next attempt...
    assert_locked_out(&with_key(&a, client, WRONG).await, 1800);
    // ...and refuses the valid key from then on.
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    // Another client is not affected.
    assert_eq!(
        with_key(&a, "198.51.100.8", KEY).await.status,
        StatusCode::OK
    );

    // One key per client, expiring with the lockout.
    let key = store_a.strikes_key(StrikeTable::Lockout, &ClientKey::Ip(ip(client)));
    let left = pttl(&server, &key);
    assert!((1_790_000..=1_800_000).contains(&left), "{left} ms");

    let events = logs.policy_events("api_key");
    let started: Vec<_> = events
        .iter()
        .filter(|event| event["fields"].get("lockout_secs").is_some())
        .collect();
    assert_eq!(started.len(), 1, "{}", logs.text());
    assert_eq!(started[0]["fields"]["lockout_secs"], 1800);
    assert_eq!(started[0]["fields"]["reason"], "invalid");
    assert_eq!(started[0]["fields"]["client_ip"], client);
    assert_eq!(
        started[0]["fields"]["message"],
        "API key refused; client locked out after repeated failures"
    );
    let locked: Vec<_> = events
        .iter()
        .filter(|event| event["fields"]["reason"] == "locked_out")
        .collect();
    assert_eq!(locked.len(), 3, "{}", logs.text());
    for event in locked {
        assert_eq!(event["level"], "WARN");
        assert_eq!(event["fields"]["outcome"], "deny");
        assert_eq!(event["fields"]["client_ip"], client);
        assert_eq!(
            event["fields"]["message"],
            "client locked out after repeated API key failures"
        );
    }
}

#[tokio::test]
async fn operators_see_and_lift_a_shared_lockout_from_any_instance() {
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let (a, engine_a) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    let (b, engine_b) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    let client = "203.0.113.9";

    for _ in 0..2 {
        with_key(&a, client, WRONG).await;
    }
    with_key(&b, client, WRONG).await;
    // The failures expire a window after the newest one.
    let store = store_on(&server, FailureMode::FallbackToMemory);
    let key = store.strikes_key(StrikeTable::Lockout, &ClientKey::Ip(ip(client)));
    let left = pttl(&server, &key);
    assert!((1_790_000..=1_800_000).contains(&left), "{left} ms");
    // Either instance sees the three failures.
    for engine in [&engine_a, &engine_b] {
        assert_eq!(
            engine.shared_lockout_status(ip(client)).await.unwrap(),
            LockoutStatus {
                failures: 3,
                locked_for: None
            }
        );
    }
    for _ in 0..2 {
        with_key(&b, client, WRONG).await;
    }
    let status = engine_a.shared_lockout_status(ip(client)).await.unwrap();
    assert_eq!(status.failures, 0);
    let left = status.locked_for.expect("locked out");
    assert!(
        left > Duration::from_secs(1790) && left <= HALF_HOUR,
        "{left:?}"
    );
    // The first instance has learned nothing yet; its own view says so.
    assert_eq!(
        engine_a.lockout_status(ip(client)),
        LockoutStatus::default()
    );
    assert_locked_out(&with_key(&a, client, WRONG).await, 1800);
    assert!(engine_a.lockout_status(ip(client)).locked_for.is_some());

    // Lifted through the second instance: both admit the client again.
    assert!(engine_b.unlock_everywhere(ip(client)).await.unwrap());
    assert_eq!(with_key(&a, client, KEY).await.status, StatusCode::OK);
    assert_eq!(with_key(&b, client, KEY).await.status, StatusCode::OK);
    assert_eq!(
        engine_a.shared_lockout_status(ip(client)).await.unwrap(),
        LockoutStatus::default()
    );
    assert!(!engine_a.unlock_everywhere(ip(client)).await.unwrap());
    // The failures were forgotten too: one more is the first of five.
    assert_unauthorized(&with_key(&a, client, WRONG).await, "Invalid API key");
    assert_eq!(
        engine_b.shared_lockout_status(ip(client)).await.unwrap(),
        LockoutStatus {
            failures: 1,
            locked_for: None
        }
    );

    let unlocked = logs.containing("INFO", "client unlocked");
    assert_eq!(unlocked.len(), 1, "{}", logs.text());
    assert_eq!(unlocked[0]["fields"]["client_ip"], client);
    assert_eq!(unlocked[0]["fields"]["shared"], true);
}

#[tokio::test]
async fn penalty_strikes_split_across_two_instances_block_on_both() {
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store_a = store_on(&server, FailureMode::FallbackToMemory);
    let (a, engine_a) = instance(Some(&store_a));
    let (b, _) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    let client = "192.0.2.44";

    assert_eq!(search_from(&a, client).await.status, StatusCode::OK);
    // Strikes 1 and 3 on the first instance, 2 on the second.
    assert_exceeded(&search_from(&a, client).await);
    assert_exceeded(&search_from(&b, client).await);
    assert_exceeded(&search_from(&a, client).await);
    // Blocked on both: the second instance learns of it at the next refusal.
    assert_blocked(&search_from(&a, client).await, 3600);
    assert_blocked(&search_from(&b, client).await, 3600);
    assert_blocked(&search_from(&b, client).await, 3600);
    // Another client only meets its own quota.
    assert_eq!(search_from(&b, "192.0.2.45").await.status, StatusCode::OK);

    let key = store_a.strikes_key(
        StrikeTable::Penalty("shared_search"),
        &ClientKey::Ip(ip(client)),
    );
    let left = pttl(&server, &key);
    assert!((3_590_000..=3_600_000).contains(&left), "{left} ms");

    let blocks: Vec<_> = logs
        .policy_events("rate_limit")
        .into_iter()
        .filter(|event| event["fields"]["outcome"] == "block")
        .collect();
    assert_eq!(blocks.len(), 1, "{}", logs.text());
    assert_eq!(blocks[0]["fields"]["block_secs"], 3600);
    assert_eq!(blocks[0]["fields"]["scope"], "shared_search");
    assert_eq!(blocks[0]["fields"]["client_ip"], client);
    assert_eq!(blocks[0]["fields"]["key_kind"], "ip");
    let denied = logs
        .policy_events("rate_limit")
        .into_iter()
        .filter(|event| event["fields"]["reason"] == "blocked")
        .count();
    assert_eq!(denied, 3, "{}", logs.text());

    // A reset lifts the block in Redis too.
    engine_a
        .reset_limit("shared_search", &ClientKey::Ip(ip(client)))
        .await
        .unwrap();
    assert_eq!(pttl(&server, &key), -2);
    assert_eq!(search_from(&a, client).await.status, StatusCode::OK);
}

#[tokio::test]
async fn with_the_memory_store_lockout_and_penalty_stay_per_instance() {
    let (a, engine_a) = instance(None);
    let (b, engine_b) = instance(None);
    let client = "198.51.100.20";

    for _ in 0..3 {
        with_key(&a, client, WRONG).await;
    }
    for _ in 0..2 {
        with_key(&b, client, WRONG).await;
    }
    // Five failures in all, but neither instance has counted five.
    assert_eq!(with_key(&a, client, KEY).await.status, StatusCode::OK);
    assert_eq!(with_key(&b, client, KEY).await.status, StatusCode::OK);
    assert_eq!(engine_a.lockout_status(ip(client)).failures, 3);
    assert_eq!(engine_b.lockout_status(ip(client)).failures, 2);
    assert_eq!(
        engine_b.shared_lockout_status(ip(client)).await.unwrap(),
        LockoutStatus {
            failures: 2,
            locked_for: None
        }
    );
    for _ in 0..2 {
        with_key(&a, client, WRONG).await;
    }
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    assert_eq!(with_key(&b, client, KEY).await.status, StatusCode::OK);

    // Each instance has its own quota and its own strikes.
    for app in [&a, &b] {
        assert_eq!(search_from(app, client).await.status, StatusCode::OK);
        for _ in 0..2 {
            assert_exceeded(&search_from(app, client).await);
        }
    }
    // Four strikes in all, two per instance: no block yet.
    assert_exceeded(&search_from(&b, client).await);
    assert_blocked(&search_from(&b, client).await, 3600);
    assert_exceeded(&search_from(&a, client).await);
}

/// Locks `client` out through `app` while Redis runs.
async fn lock_out(app: &Router, client: &str) {
    for _ in 0..5 {
        with_key(app, client, WRONG).await;
    }
    assert_locked_out(&with_key(app, client, KEY).await, 1800);
}

/// Blocks `client` in the penalty box through `app` while Redis runs.
async fn block(app: &Router, client: &str) {
    assert_eq!(search_from(app, client).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_exceeded(&search_from(app, client).await);
    }
    assert_blocked(&search_from(app, client).await, 3600);
}

#[tokio::test]
async fn falling_back_to_memory_keeps_known_lockouts_and_counts_per_instance() {
    let (logs, _guard) = Logs::capture();
    let mut server = RedisServer::start();
    let (a, engine_a) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    let (b, _) = instance(Some(&store_on(&server, FailureMode::FallbackToMemory)));
    lock_out(&a, "198.51.100.1").await;
    block(&a, "198.51.100.1").await;

    server.kill();
    // What the instance learned stands: an outage lifts nothing.
    assert_locked_out(&with_key(&a, "198.51.100.1", KEY).await, 1800);
    assert_blocked(&search_from(&a, "198.51.100.1").await, 3600);
    // New failures count in each instance's memory.
    let client = "198.51.100.2";
    for _ in 0..5 {
        assert_unauthorized(&with_key(&a, client, WRONG).await, "Invalid API key");
    }
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    assert_eq!(with_key(&b, client, KEY).await.status, StatusCode::OK);
    // Strikes too: the limits fall back to memory, and so do the strikes.
    block(&a, client).await;
    assert_eq!(search_from(&b, client).await.status, StatusCode::OK);
    assert!(engine_a.shared_lockout_status(ip(client)).await.is_err());

    // Redis is back, empty: the lockout counted in memory lasts its time.
    server.restart();
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    assert_eq!(
        logs.count("WARN", "Redis is unavailable for rate limiting"),
        2,
        "{}",
        logs.text()
    );
}

#[tokio::test]
async fn failing_open_keeps_known_lockouts_and_still_counts_failures() {
    let mut server = RedisServer::start();
    let (a, _) = instance(Some(&store_on(&server, FailureMode::Open)));
    lock_out(&a, "198.51.100.1").await;
    block(&a, "198.51.100.1").await;

    server.kill();
    assert_locked_out(&with_key(&a, "198.51.100.1", KEY).await, 1800);
    assert_blocked(&search_from(&a, "198.51.100.1").await, 3600);
    // Failing open turns the quotas off, not the lockout: failures count
    // in this instance's memory.
    let client = "198.51.100.2";
    for _ in 0..5 {
        assert_unauthorized(&with_key(&a, client, WRONG).await, "Invalid API key");
    }
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    // No quota refuses anyone, so no strike is made.
    for _ in 0..5 {
        assert_eq!(search_from(&a, client).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn failing_closed_refuses_failed_attempts_and_keeps_known_lockouts() {
    let mut server = RedisServer::start();
    let (a, _) = instance(Some(&store_on(&server, FailureMode::Closed)));
    lock_out(&a, "198.51.100.1").await;
    block(&a, "198.51.100.1").await;

    server.kill();
    assert_locked_out(&with_key(&a, "198.51.100.1", KEY).await, 1800);
    assert_blocked(&search_from(&a, "198.51.100.1").await, 3600);
    // A failure that cannot be counted in Redis is answered 503, and
    // counted in memory: the fifth locks the client out here.
    let client = "198.51.100.2";
    for _ in 0..5 {
        assert_unavailable(&with_key(&a, client, WRONG).await);
    }
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    // A valid key of a client with no lockout needs no round trip.
    assert_eq!(
        with_key(&a, "198.51.100.3", KEY).await.status,
        StatusCode::OK
    );
    // The quotas fail closed.
    assert_unavailable(&search_from(&a, client).await);
}

#[cfg(feature = "jwt")]
#[path = "support/jwt.rs"]
mod jwt_support;

#[cfg(feature = "jwt")]
#[policy_runtime::require_jwt]
async fn token_only() -> &'static str {
    "ok"
}

/// A JWT check confirms a lockout the instance learned with the store: a
/// locked-out client's valid token is refused, and an unlock through
/// another instance lets it in.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_jwt_check_sees_a_shared_lockout_and_an_unlock_made_elsewhere() {
    use jwt_support::{claims, hs256};

    let server = RedisServer::start();
    let instance = || {
        let engine = builder()
            .api_key("client", KEY)
            .lockout(Lockout::new(5, HALF_HOUR, HALF_HOUR))
            .limiter_store(store_on(&server, FailureMode::FallbackToMemory))
            .build()
            .unwrap();
        let app = Router::new()
            .route("/protected", get(protected))
            .route("/token", get(token_only))
            .layer(engine.clone());
        (app, engine)
    };
    let (a, _) = instance();
    let (b, engine_b) = instance();
    let client = "203.0.113.50";
    let token = hs256(&claims(serde_json::json!({})));
    let with_token = async |app: &Router| {
        let request =
            from(client, "GET", "/token").header("authorization", format!("Bearer {token}"));
        send(app, request.body(Body::empty()).unwrap()).await
    };
    assert_eq!(with_token(&a).await.status, StatusCode::OK);

    lock_out(&b, client).await;
    assert_locked_out(&with_key(&a, client, WRONG).await, 1800);
    assert_token_locked_out(&with_token(&a).await, 1800);

    assert!(engine_b.unlock_everywhere(ip(client)).await.unwrap());
    assert_eq!(with_token(&a).await.status, StatusCode::OK);
}

/// Bad tokens count in the shared lockout as bad keys do: 5 split 3 + 2
/// across two instances lock the client out of both, for tokens and keys.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn five_bad_tokens_split_across_two_instances_lock_the_client_on_both() {
    use jwt_support::{claims, hs256, mint};

    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store_a = store_on(&server, FailureMode::FallbackToMemory);
    let instance = |store: &RedisStore| {
        let engine = builder()
            .api_key("client", KEY)
            .lockout(Lockout::new(5, HALF_HOUR, HALF_HOUR))
            .limiter_store(store.clone())
            .build()
            .unwrap();
        Router::new()
            .route("/protected", get(protected))
            .route("/token", get(token_only))
            .layer(engine)
    };
    let a = instance(&store_a);
    let b = instance(&store_on(&server, FailureMode::FallbackToMemory));
    let client = "203.0.113.60";
    let good = hs256(&claims(serde_json::json!({})));
    // Signed with another secret: a token that cannot be right.
    let forged = mint(
        jsonwebtoken::Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-32-bytes-long!"),
        None,
        &claims(serde_json::json!({})),
    );
    let with_token = async |app: &Router, token: &str| {
        let request =
            from(client, "GET", "/token").header("authorization", format!("Bearer {token}"));
        send(app, request.body(Body::empty()).unwrap()).await
    };
    let assert_bad_token = |reply: &Reply| {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.json()["code"], "UNAUTHORIZED");
    };

    assert_eq!(with_token(&a, &good).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_bad_token(&with_token(&a, &forged).await);
    }
    assert_bad_token(&with_token(&b, &forged).await);
    // The fifth failure, on the other instance, starts the lockout.
    assert_bad_token(&with_token(&b, &forged).await);

    // Locked out on both, even with a valid token or key.
    assert_token_locked_out(&with_token(&b, &good).await, 1800);
    assert_locked_out(&with_key(&b, client, KEY).await, 1800);
    // The first instance learns of it at the client's next failure...
    assert_token_locked_out(&with_token(&a, &forged).await, 1800);
    // ...and refuses a valid token or key from then on.
    assert_token_locked_out(&with_token(&a, &good).await, 1800);
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    // Another client is not affected.
    let request =
        from("203.0.113.61", "GET", "/token").header("authorization", format!("Bearer {good}"));
    assert_eq!(
        send(&a, request.body(Body::empty()).unwrap()).await.status,
        StatusCode::OK
    );

    // Counted in Redis: one key for the client, expiring with the lockout.
    let key = store_a.strikes_key(StrikeTable::Lockout, &ClientKey::Ip(ip(client)));
    let left = pttl(&server, &key);
    assert!((1_790_000..=1_800_000).contains(&left), "{left} ms");
    let started: Vec<_> = logs
        .policy_events("jwt")
        .into_iter()
        .filter(|event| event["fields"].get("lockout_secs").is_some())
        .collect();
    assert_eq!(started.len(), 1, "{}", logs.text());
    assert_eq!(started[0]["fields"]["lockout_secs"], 1800);
    assert_eq!(started[0]["fields"]["client_ip"], client);
    assert_eq!(
        started[0]["fields"]["message"],
        "JWT refused; client locked out after repeated failures"
    );
}

/// Failing closed, a bad token that Redis cannot count is answered 503, as
/// a bad key is, and counted in memory; a valid token needs no round trip.
#[cfg(feature = "jwt")]
#[tokio::test]
async fn failing_closed_refuses_bad_tokens_redis_cannot_count() {
    use jwt_support::{claims, hs256};

    let mut server = RedisServer::start();
    let engine = builder()
        .lockout(Lockout::new(5, HALF_HOUR, HALF_HOUR))
        .api_key("client", KEY)
        .limiter_store(store_on(&server, FailureMode::Closed))
        .build()
        .unwrap();
    let app = Router::new().route("/token", get(token_only)).layer(engine);
    let with_token = async |client: &str, token: &str| {
        let request =
            from(client, "GET", "/token").header("authorization", format!("Bearer {token}"));
        send(&app, request.body(Body::empty()).unwrap()).await
    };
    let good = hs256(&claims(serde_json::json!({})));
    server.kill();
    let client = "203.0.113.70";
    for _ in 0..5 {
        assert_unavailable(&with_token(client, "not.a.token").await);
    }
    assert_token_locked_out(&with_token(client, &good).await, 1800);
    assert_eq!(
        with_token("203.0.113.71", &good).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_strikes_key_holding_other_data_counts_in_memory_and_locks_nonetheless() {
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::FallbackToMemory);
    let (a, engine_a) = instance(Some(&store));
    let client = "198.51.100.30";
    let key = store.strikes_key(StrikeTable::Lockout, &ClientKey::Ip(ip(client)));
    let _: () = server.connection().rpush(&key, "not ours").unwrap();

    for _ in 0..5 {
        assert_unauthorized(&with_key(&a, client, WRONG).await, "Invalid API key");
    }
    assert_locked_out(&with_key(&a, client, KEY).await, 1800);
    // Redis answered, so it is not an outage; the key is left for an operator.
    assert!(store.is_available());
    assert_eq!(logs.count("WARN", "Redis is unavailable"), 0);
    let refused = logs.containing("ERROR", "Redis refused a call of the strikes script");
    assert_eq!(refused.len(), 5, "{}", logs.text());
    assert_eq!(refused[0]["fields"]["key"], key.as_str());
    assert!(
        refused[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("POLICYDATA")),
        "{}",
        logs.text()
    );
    let error = engine_a
        .shared_lockout_status(ip(client))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("POLICYDATA"), "{error}");
}

async fn plain() -> &'static str {
    "plain"
}

#[tokio::test]
async fn penalty_strikes_on_the_default_limits_are_shared_too() {
    let server = RedisServer::start();
    let instance = || {
        let engine = builder()
            .api_key("client", KEY)
            .default_limits("1/hour")
            .penalty(Penalty::new(3, HOUR, HOUR))
            .limiter_store(store_on(&server, FailureMode::FallbackToMemory))
            .build()
            .unwrap();
        Router::new()
            .route("/plain", get(plain))
            .route_layer(engine.default_limits())
            .layer(engine)
    };
    let (a, b) = (instance(), instance());
    let client = "192.0.2.60";
    let plain_from = async |app: &Router| {
        send(
            app,
            from(client, "GET", "/plain").body(Body::empty()).unwrap(),
        )
        .await
    };

    assert_eq!(plain_from(&a).await.status, StatusCode::OK);
    assert_exceeded(&plain_from(&b).await);
    assert_exceeded(&plain_from(&a).await);
    assert_exceeded(&plain_from(&b).await);
    assert_blocked(&plain_from(&a).await, 3600);
    assert_blocked(&plain_from(&b).await, 3600);
}
