//! Conditional counting (`count = failures`) and the sliding window counter
//! with `RedisStore` against a real `redis-server` that each test starts on
//! its own port: exact counts under concurrency across two app instances,
//! refunds of every quota kind, and the sliding counter's state.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use common::{from, send};
use policy_runtime::{
    ClientKey, Engine, FailureMode, LimitRequest, LimiterStore, Quota, RedisStore, rate_limit,
};
use redis::Commands;
use redis_server::RedisServer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

const HOUR: Duration = Duration::from_secs(3600);

fn store_on(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .timeout(Duration::from_secs(2))
        .failure_mode(FailureMode::Closed)
        .build()
        .unwrap()
}

fn asked(headers: &HeaderMap) -> StatusCode {
    headers
        .get("x-status")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK)
}

static ENTERED: AtomicUsize = AtomicUsize::new(0);
static GATE: Semaphore = Semaphore::const_new(0);

#[rate_limit("3/hour", count = failures)]
async fn gated(headers: HeaderMap) -> StatusCode {
    ENTERED.fetch_add(1, Ordering::SeqCst);
    GATE.acquire().await.unwrap().forget();
    asked(&headers)
}

#[rate_limit("2/hour", count = failures, strict)]
async fn strict_login(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

#[rate_limit("3/hour", sliding)]
async fn sliding() -> &'static str {
    "ok"
}

/// One app instance on `store`.
fn app(store: &RedisStore) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/gated", get(gated))
        .route("/strict", get(strict_login))
        .route("/sliding", get(sliding))
        .layer(engine)
}

async fn call(app: &Router, ip: &str, uri: &str, status: u16) -> u16 {
    let request = from(ip, "GET", uri)
        .header("x-status", status.to_string())
        .body(Body::empty())
        .unwrap();
    send(app, request).await.status.as_u16()
}

/// Two instances share the limit: of 10 requests in flight at once, exactly
/// 3 reach a handler; successes give their units back, failures keep them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_two_instances_never_count_past_the_limit() {
    let server = RedisServer::start();
    let store = store_on(&server);
    let (one, two) = (app(&store), app(&store));
    let ip = "192.0.2.90";
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..10 {
        let app = if n % 2 == 0 { one.clone() } else { two.clone() };
        calls.spawn(async move { call(&app, ip, "/gated", 200).await });
    }
    for _ in 0..7 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 429);
    }
    assert_eq!(ENTERED.load(Ordering::SeqCst), 3);
    GATE.add_permits(3);
    for _ in 0..3 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 200);
    }
    // Every unit came back: three failures fit, the fourth request does not.
    GATE.add_permits(3);
    for n in 0..3 {
        let app = if n % 2 == 0 { &one } else { &two };
        assert_eq!(call(app, ip, "/gated", 401).await, 401);
    }
    assert_eq!(call(&two, ip, "/gated", 200).await, 429);
    assert_eq!(ENTERED.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn a_strict_conditional_limit_gives_back_its_log_entry_in_redis() {
    let server = RedisServer::start();
    let store = store_on(&server);
    let app = app(&store);
    let ip = "192.0.2.91";
    for _ in 0..4 {
        assert_eq!(call(&app, ip, "/strict", 200).await, 200);
    }
    let key = store.key(
        "redis_conditional::strict_login",
        &ClientKey::Ip(ip.parse().unwrap()),
    );
    let log = format!("{key}:s:3600000000:2");
    let entries: usize = server.connection().zcard(&log).unwrap();
    assert_eq!(entries, 0);
    assert_eq!(call(&app, ip, "/strict", 401).await, 401);
    let entries: usize = server.connection().zcard(&log).unwrap();
    assert_eq!(entries, 1);
    assert_eq!(call(&app, ip, "/strict", 401).await, 401);
    assert_eq!(call(&app, ip, "/strict", 200).await, 429);
}

/// `refund` takes back exactly the cost from every kind of quota, across
/// several checks at once.
#[tokio::test]
async fn refund_gives_back_the_cost_of_every_quota_kind() {
    let server = RedisServer::start();
    let store = store_on(&server);
    let gcra = [Quota::new(2, HOUR)];
    let strict = [Quota::new(2, HOUR).strict()];
    let sliding = [Quota::new(2, HOUR).sliding()];
    let both = [Quota::new(3, HOUR), Quota::new(3, HOUR).strict()];
    let key = ClientKey::Ip("192.0.2.92".parse().unwrap());
    for (scope, quotas) in [
        ("gcra", &gcra[..]),
        ("strict", &strict[..]),
        ("sliding", &sliding[..]),
        ("both", &both[..]),
    ] {
        let one = [LimitRequest {
            scope,
            key: &key,
            quotas,
            cost: 1,
        }];
        let limit = quotas[0].count();
        for _ in 0..limit {
            assert!(store.check(&one).await.unwrap().allowed, "{scope}");
        }
        assert!(!store.check(&one).await.unwrap().allowed, "{scope}");
        store.refund(&one).await.unwrap();
        let again = store.check(&one).await.unwrap();
        assert!(again.allowed, "{scope}: one unit came back");
        assert_eq!(again.remaining, 0, "{scope}");
        assert!(!store.check(&one).await.unwrap().allowed, "{scope}");
    }
    // Two checks given back in one call.
    let first = [Quota::new(1, HOUR)];
    let second = [Quota::new(1, HOUR).sliding()];
    let pair = [
        LimitRequest {
            scope: "pair-a",
            key: &key,
            quotas: &first,
            cost: 1,
        },
        LimitRequest {
            scope: "pair-b",
            key: &key,
            quotas: &second,
            cost: 1,
        },
    ];
    assert!(store.check(&pair).await.unwrap().allowed);
    assert!(!store.check(&pair).await.unwrap().allowed);
    store.refund(&pair).await.unwrap();
    assert!(store.check(&pair).await.unwrap().allowed);
    // A refund of a client with no state leaves none behind.
    let stranger = ClientKey::Ip("192.0.2.93".parse().unwrap());
    let request = [LimitRequest {
        scope: "gcra",
        key: &stranger,
        quotas: &gcra,
        cost: 1,
    }];
    store.refund(&request).await.unwrap();
    let exists: bool = server
        .connection()
        .exists(store.key("gcra", &stranger))
        .unwrap();
    assert!(!exists);
}

/// The server's clock, in microseconds.
fn server_micros(server: &RedisServer) -> u64 {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut server.connection()).unwrap();
    secs * 1_000_000 + micros
}

#[tokio::test]
async fn a_sliding_limit_keeps_two_counters_in_the_state_string() {
    let server = RedisServer::start();
    let store = store_on(&server);
    let app = app(&store);
    let ip = "192.0.2.94";
    let before = server_micros(&server);
    for _ in 0..3 {
        assert_eq!(call(&app, ip, "/sliding", 200).await, 200);
    }
    assert_eq!(call(&app, ip, "/sliding", 200).await, 429);
    let key = store.key(
        "redis_conditional::sliding",
        &ClientKey::Ip(ip.parse().unwrap()),
    );
    let state: String = server.connection().get(&key).unwrap();
    let window = before / 3_600_000_000;
    let after = server_micros(&server) / 3_600_000_000;
    // The window of the admissions, no previous count, 3 in this one.
    assert!(
        state == format!("w:3600000000:3={window},0,3")
            || state == format!("w:3600000000:3={after},0,3"),
        "{state}"
    );
    // Kept until both counts have aged out: up to two periods.
    let ttl: i64 = server.connection().pttl(&key).unwrap();
    assert!(ttl > 3_600_000 && ttl <= 7_200_000, "{ttl}");
}

/// The previous window's count weighs what is left of it, as the
/// in-memory store's does: a client with 10 in the previous window of
/// 10/hour gets 10 - floor(10 × left / period) now.
#[tokio::test]
async fn the_previous_windows_count_is_weighted_by_the_server_clock() {
    let server = RedisServer::start();
    let store = store_on(&server);
    const PERIOD: u64 = 3_600_000_000;
    let quotas = [Quota::new(10, HOUR).sliding()];
    let key = ClientKey::Ip("192.0.2.95".parse().unwrap());
    let redis_key = store.key("weighted", &key);
    let now = server_micros(&server);
    let window = now / PERIOD;
    let left = PERIOD - (now - window * PERIOD);
    let _: () = server
        .connection()
        .set_ex(
            &redis_key,
            format!("w:{PERIOD}:10={},0,10", window - 1),
            3600,
        )
        .unwrap();
    let request = [LimitRequest {
        scope: "weighted",
        key: &key,
        quotas: &quotas,
        cost: 1,
    }];
    let mut admitted = 0;
    while store.check(&request).await.unwrap().allowed {
        admitted += 1;
    }
    let weighted = 10 * left / PERIOD;
    assert_eq!(admitted, 10 - weighted);
    let state: String = server.connection().get(&redis_key).unwrap();
    assert_eq!(state, format!("w:{PERIOD}:10={window},10,{admitted}"));
}
