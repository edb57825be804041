//! `RedisStore` at its edges, against a real `redis-server` per test:
//! readiness during an outage (and what probes cost), strict logs dated in
//! the future (a clock that stepped back, a failover to a replica behind),
//! stacked limits, the refusal cache at its cap, and key names that no
//! client input reaches.
#![cfg(all(feature = "redis", feature = "health"))]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::get;
use common::{Logs, Reply, from, send};
use policy_runtime::{
    ClientKey, Engine, ErrorBody, Health, LimitRequest, LimiterStore, Quota, RedisStore, rate_limit,
};
use redis::Commands;
use redis_server::RedisServer;
use std::time::Duration;

#[rate_limit("3/minute")]
async fn limited() -> &'static str {
    "ok"
}

#[rate_limit("5/second", strict, scope = "strict-five")]
async fn strict_five() -> &'static str {
    "ok"
}

#[rate_limit("1/second")]
#[rate_limit("1/minute")]
async fn stacked_attributes() -> &'static str {
    "ok"
}

#[rate_limit("1/second; 1/minute")]
async fn stacked_list() -> &'static str {
    "ok"
}

#[rate_limit("1/hour", scope = "once-an-hour")]
async fn once_an_hour() -> &'static str {
    "ok"
}

#[rate_limit("1/hour", key = header("x-user"), scope = "by-header")]
async fn by_header() -> &'static str {
    "ok"
}

fn tenant(parts: &Parts) -> Result<String, ErrorBody> {
    match parts.headers.get("x-tenant") {
        Some(tenant) => Ok(String::from_utf8_lossy(tenant.as_bytes()).into_owned()),
        None => Err(ErrorBody::new(
            StatusCode::BAD_REQUEST,
            "NO_TENANT",
            "x-tenant is required",
        )),
    }
}

#[rate_limit("1/hour", key = tenant, scope = "by-tenant")]
async fn by_tenant() -> &'static str {
    "ok"
}

#[rate_limit("2/hour", strict, key = header("x-user"), scope = "strict-by-header")]
async fn strict_by_header() -> &'static str {
    "ok"
}

fn store(server: &RedisServer, retry_interval: Duration) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        // Generous: a busy machine must not make a test see an outage.
        .timeout(Duration::from_millis(500))
        .retry_interval(retry_interval)
        .build()
        .unwrap()
}

/// A store asking Redis at most once an hour while it is up.
fn store_on_hour(server: &RedisServer) -> RedisStore {
    store(server, Duration::from_secs(3600))
}

/// Every route of this file and the health endpoints, on `store`.
fn app(store: &RedisStore) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/limited", get(limited))
        .route("/strict", get(strict_five))
        .route("/stacked-attributes", get(stacked_attributes))
        .route("/stacked-list", get(stacked_list))
        .route("/once-an-hour", get(once_an_hour))
        .route("/by-header", get(by_header))
        .route("/by-tenant", get(by_tenant))
        .route("/strict-by-header", get(strict_by_header))
        .merge(Health::new("1.0.0").engine(&engine).router())
        .layer(engine)
}

async fn get_from(app: &Router, ip: &str, uri: &str) -> Reply {
    send(app, from(ip, "GET", uri).body(Body::empty()).unwrap()).await
}

async fn get_with(app: &Router, uri: &str, header: (&str, &str)) -> Reply {
    let request = from("192.0.2.1", "GET", uri)
        .header(header.0, header.1)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}

/// How many times clients sent `command` since the last `CONFIG RESETSTAT`.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .unwrap();
    let prefix = format!("cmdstat_{command}:");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|stats| stats.split(',').find_map(|s| s.strip_prefix("calls=")))
        .map_or(0, |calls| calls.parse().unwrap())
}

fn reset_stats(server: &RedisServer) {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();
}

fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "status": "unavailable",
            "failing": ["rate_limit_store"],
            "checks": {"rate_limit_store": "failing"}
        })
    );
}

fn assert_ready(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "ready", "checks": {"rate_limit_store": "ok"}})
    );
}

#[tokio::test]
async fn readiness_fails_once_a_request_finds_redis_down_and_probes_cost_no_round_trip_each() {
    let mut server = RedisServer::start();
    // No probe is due again within the test: readiness answers from what
    // the store knows.
    let store = store(&server, Duration::from_secs(3600));
    let app = app(&store);
    assert_eq!(
        get_from(&app, "192.0.2.1", "/limited").await.status,
        StatusCode::OK
    );

    reset_stats(&server);
    for _ in 0..20 {
        assert_ready(&get_from(&app, "192.0.2.1", "/health/ready").await);
    }
    // At most the first probe asked Redis.
    assert!(calls(&server, "ping") <= 1, "{}", calls(&server, "ping"));

    server.kill();
    // A limited request finds Redis away (and falls back to memory).
    assert_eq!(
        get_from(&app, "192.0.2.1", "/limited").await.status,
        StatusCode::OK
    );
    assert!(!store.is_available());
    for _ in 0..3 {
        assert_unavailable(&get_from(&app, "192.0.2.1", "/health/ready").await);
    }
}

#[tokio::test]
async fn readiness_notices_an_outage_and_its_end_within_the_retry_interval() {
    let mut server = RedisServer::start();
    let store = store(&server, Duration::from_millis(100));
    let app = app(&store);
    assert_ready(&get_from(&app, "192.0.2.1", "/health/ready").await);

    // No request is limited meanwhile: the probe itself finds out.
    server.kill();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_unavailable(&get_from(&app, "192.0.2.1", "/health/ready").await);
    assert!(!store.is_available());

    server.restart();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_ready(&get_from(&app, "192.0.2.1", "/health/ready").await);
    assert!(store.is_available());

    // While Redis is up, probes within one retry interval share one PING:
    // with an interval of an hour, 20 probes make one, however slow they are.
    let hourly = store_on_hour(&server);
    let hourly_app = self::app(&hourly);
    reset_stats(&server);
    for _ in 0..20 {
        assert_ready(&get_from(&hourly_app, "192.0.2.1", "/health/ready").await);
    }
    assert_eq!(calls(&server, "ping"), 1);
}

/// The server's clock, in microseconds since the epoch.
fn server_now_micros(server: &RedisServer) -> u64 {
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut server.connection()).unwrap();
    seconds * 1_000_000 + micros
}

#[tokio::test]
async fn strict_logs_dated_in_the_future_make_a_client_wait_at_most_one_period() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(1));
    let app = app(&store);
    let ip = "198.51.100.7";
    let key = store.key("strict-five", &ClientKey::Ip(ip.parse().unwrap()));
    // Five admissions an hour ahead of the server's clock, as written before
    // the clock stepped back an hour (or by a primary whose clock was ahead).
    let ahead = server_now_micros(&server) + 3_600_000_000;
    let mut connection = server.connection();
    let log = format!("{key}:s:1000000:5");
    for i in 0..5u64 {
        let _: () = connection
            .zadd(&log, format!("{}:{}", ahead, i + 1), ahead)
            .unwrap();
    }
    let _: () = connection.pexpire(&log, 3_601_000).unwrap();
    let _: () = connection
        .set_ex(&key, format!("s:1000000:5={}", ahead + 1_000_000), 3601)
        .unwrap();

    // A peek reads them as made now, without changing them.
    let client = ClientKey::Ip(ip.parse().unwrap());
    let quotas = [Quota::new(5, Duration::from_secs(1)).strict()];
    let state = store
        .peek(LimitRequest {
            scope: "strict-five",
            key: &client,
            quotas: &quotas,
            cost: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 0);
    assert!(state.reset_after <= Duration::from_secs(1), "{state:?}");

    let refused = get_from(&app, ip, "/strict").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.header_u64("retry-after") <= 1,
        "retry-after: {}",
        refused.header("retry-after")
    );
    // The reset is a Unix time: a second or so from now, not an hour.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        refused.header_u64("x-ratelimit-reset") <= now + 2,
        "{:?}",
        refused.headers
    );

    // One period later the client is admitted again, five times.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        let reply = get_from(&app, ip, "/strict").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(
        get_from(&app, ip, "/strict").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Nothing of the log is left in the future.
    let future: u64 = connection
        .zcount(&log, format!("({}", server_now_micros(&server)), "+inf")
        .unwrap();
    assert_eq!(future, 0);
}

async fn stacked_limits_report_the_longest_wait(store: &RedisStore, uri: &str) {
    let app = app(store);
    let ip = "203.0.113.9";
    assert_eq!(get_from(&app, ip, uri).await.status, StatusCode::OK);
    let refused = get_from(&app, ip, uri).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{uri}");
    assert_eq!(
        refused.json()["error"],
        "Too Many Requests: 1 per 1 minute",
        "{uri}"
    );
    let wait = refused.header_u64("retry-after");
    assert!((59..=60).contains(&wait), "{uri}: retry-after {wait}");

    // Past the 1/second limit, the 1/minute one still holds.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = get_from(&app, ip, uri).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS, "{uri}");
    assert_eq!(again.json()["error"], "Too Many Requests: 1 per 1 minute");
    // Longer than the 1/second limit's wait, and less than a minute: the
    // lower bound leaves a busy machine all the time it needs.
    let wait = again.header_u64("retry-after");
    assert!((2..=59).contains(&wait), "{uri}: retry-after {wait}");
}

#[tokio::test]
async fn stacked_limits_refuse_with_the_quota_that_waits_longest() {
    let server = RedisServer::start();
    let cached = store(&server, Duration::from_secs(1));
    // With the refusal cache off, every answer comes from Redis.
    let uncached = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(0)
        .build()
        .unwrap();
    for store in [&cached, &uncached] {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut server.connection())
            .unwrap();
        stacked_limits_report_the_longest_wait(store, "/stacked-attributes").await;
        stacked_limits_report_the_longest_wait(store, "/stacked-list").await;
    }
}

const CACHE_FULL: &str = "The Redis store's refusal cache is full";

#[tokio::test]
async fn the_refusal_cache_stays_within_its_cap_and_refuses_correctly_past_it() {
    const CAP: u64 = 4;
    const CLIENTS: u64 = 12;
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(CAP as usize)
        .build()
        .unwrap();
    let app = app(&store);
    let ip = |i: u64| format!("198.51.100.{}", 10 + i);

    // Each client is admitted once, then refused: three times the cap in
    // refusals, each of which the store tries to remember for an hour.
    for i in 0..CLIENTS {
        assert_eq!(
            get_from(&app, &ip(i), "/once-an-hour").await.status,
            StatusCode::OK
        );
        let refused = get_from(&app, &ip(i), "/once-an-hour").await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.header_u64("retry-after") > 3500);
    }
    assert_eq!(logs.count("WARN", CACHE_FULL), 1, "{}", logs.text());

    // Every client is still refused; at most CAP of them are answered from
    // the cache, so it holds at most CAP refusals.
    reset_stats(&server);
    for _ in 0..3 {
        for i in 0..CLIENTS {
            let refused = get_from(&app, &ip(i), "/once-an-hour").await;
            assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(refused.header_u64("retry-after") > 3500);
        }
    }
    let round_trips = calls(&server, "evalsha");
    assert!(
        round_trips >= 3 * (CLIENTS - CAP),
        "{round_trips} round trips: more than {CAP} refusals were cached"
    );
    // The cache does keep the refusals it holds.
    assert!(round_trips < 3 * CLIENTS, "{round_trips} round trips");
    assert_eq!(logs.count("WARN", CACHE_FULL), 1, "{}", logs.text());
}

/// Whether `key` is `policy:<scope>:<64 hex digits>`, perhaps followed by a
/// strict log's `:s:<period>:<count>`, for one of `scopes`.
fn is_layout_key(key: &str, scopes: &[&str]) -> bool {
    let Some(rest) = key.strip_prefix("policy:") else {
        return false;
    };
    scopes.iter().any(|scope| {
        let Some(rest) = rest.strip_prefix(scope).and_then(|r| r.strip_prefix(':')) else {
            return false;
        };
        let (hash, log) = rest.split_at(rest.len().min(64));
        let log_ok = log.is_empty()
            || log
                .strip_prefix(":s:")
                .and_then(|l| l.split_once(':'))
                .is_some_and(|(p, c)| {
                    !p.is_empty()
                        && !c.is_empty()
                        && p.bytes().chain(c.bytes()).all(|b| b.is_ascii_digit())
                });
        hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) && log_ok
    })
}

#[tokio::test]
async fn no_client_input_reaches_a_redis_key_name() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(1));
    let app = app(&store);
    let long = "x".repeat(4000);
    let hostile = [
        "policy:by-header:*",
        "a:b\n*?[x]",
        "../../etc",
        "{hash-tag}",
        "évil\u{202e}",
        &long,
    ];
    for value in hostile {
        for uri in ["/by-header", "/by-tenant", "/strict-by-header"] {
            let name = if uri == "/by-tenant" {
                "x-tenant"
            } else {
                "x-user"
            };
            let Ok(value_header) = axum::http::HeaderValue::from_str(value) else {
                continue;
            };
            let request = from("192.0.2.1", "GET", uri)
                .header(name, value_header)
                .body(Body::empty())
                .unwrap();
            let reply = send(&app, request).await;
            assert_eq!(reply.status, StatusCode::OK, "{uri} {value:?}");
        }
    }
    // Header values that are not valid UTF-8 are keys too.
    let raw = axum::http::HeaderValue::from_bytes(b"\xff\xfe:*").unwrap();
    let request = from("192.0.2.1", "GET", "/by-header")
        .header("x-user", raw)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, request).await.status, StatusCode::OK);
    let _ = get_with(&app, "/by-tenant", ("x-tenant", "acme-corp")).await;

    let keys: Vec<String> = server.connection().keys("*").unwrap();
    assert!(keys.len() >= 10, "{keys:?}");
    let scopes = ["by-header", "by-tenant", "strict-by-header"];
    for key in &keys {
        assert!(is_layout_key(key, &scopes), "{key:?}");
        for value in ["*", "etc", "hash-tag", "évil", "acme", "xxxx"] {
            assert!(!key.contains(value), "{key:?} holds {value:?}");
        }
    }
}
