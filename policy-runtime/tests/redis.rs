//! `RedisStore` against a real `redis-server` that each test starts on its
//! own port: shared limits across instances, all-or-nothing quotas, the key
//! layout, outages in each failure mode, bad data, and the refusal cache.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use common::Logs;
use policy_runtime::{
    ClientKey, Decision, Engine, FailureMode, LimitRequest, LimiterStore, Quota, RedisStore,
    StoreError,
};
use redis::Commands;
use redis_server::RedisServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tower::ServiceExt;

const HOUR: Duration = Duration::from_secs(3600);
/// The timeout of the stores on a server that is up or stopped (a stopped
/// server refuses connections at once): generous, so that a busy machine
/// never makes a test see an outage. These tests check what the store
/// answers, never how fast.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The timeout of the stores that meet a server that never answers: it is
/// what gives their calls up, as the errors and the outage log say.
const HUNG_TIMEOUT: Duration = Duration::from_millis(50);
/// What a call given up at [`HUNG_TIMEOUT`] says.
const GIVEN_UP: &str = "did not answer within 50ms";

#[policy_runtime::rate_limit("3/minute")]
async fn h() -> &'static str {
    "ok"
}

/// The microseconds from now to the time of `field` in the state string
/// `state` (`field=time;...`), on this machine's clock, which the local
/// `redis-server` shares.
fn ahead_of_now(state: &str, field: &str) -> i64 {
    let time: i64 = state
        .split(';')
        .find_map(|part| part.strip_prefix(field)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no field {field} in {state:?}"))
        .parse()
        .unwrap();
    time - i64::try_from(now_micros()).unwrap()
}

/// Microseconds since the Unix epoch on this machine's clock, which the
/// local `redis-server` shares.
fn now_micros() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros(),
    )
    .unwrap()
}

fn store_on(server: &RedisServer, mode: FailureMode) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .timeout(TIMEOUT)
        .retry_interval(Duration::from_millis(100))
        .failure_mode(mode)
        .build()
        .unwrap()
}

/// A store failing closed whose every check goes to Redis: no refusal is
/// answered from its cache.
fn uncached_store_on(server: &RedisServer) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .failure_mode(FailureMode::Closed)
        .blocked_cache_capacity(0)
        .build()
        .unwrap()
}

/// One app instance: a router with the engine on `store`, whose every
/// request comes from `ip`.
fn app(store: &RedisStore, ip: [u8; 4]) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/h", get(h))
        .layer(engine)
        .layer(MockConnectInfo(SocketAddr::from((ip, 40_000))))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> u64 {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }
}

async fn send(app: &Router) -> Reply {
    let request = Request::get("/h").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn check(
    store: &RedisStore,
    scope: &str,
    ip: &str,
    quotas: &[Quota],
) -> Result<Decision, StoreError> {
    check_costing(store, scope, ip, quotas, 1).await
}

async fn check_costing(
    store: &RedisStore,
    scope: &str,
    ip: &str,
    quotas: &[Quota],
    cost: u32,
) -> Result<Decision, StoreError> {
    let key = ClientKey::Ip(ip.parse().unwrap());
    let request = LimitRequest {
        scope,
        key: &key,
        quotas,
        cost,
    };
    store.check(std::slice::from_ref(&request)).await
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const OUTAGE_STARTED: &str = "Redis is unavailable for rate limiting";
const OUTAGE_ENDED: &str = "Redis is reachable again";

/// The commands clients sent (not those the script runs inside Redis) and
/// how many times, since the last `CONFIG RESETSTAT`.
fn command_calls(server: &RedisServer) -> Vec<(String, u64)> {
    const INSIDE_THE_SCRIPT: [&str; 4] = ["get", "type", "time", "set"];
    // (Strict quotas, not used here, also run zset commands inside the script.)
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().unwrap()))
        })
        .filter(|(name, _)| {
            !INSIDE_THE_SCRIPT.contains(&name.as_str())
                && !name.starts_with("info")
                && !name.starts_with("config")
                && !name.starts_with("client")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_under_concurrent_load_admit_exactly_the_quota() {
    static QUOTA: [Quota; 1] = [Quota::new(50, HOUR)];
    let server = RedisServer::start();
    // Two stores, each with its own connection, as two app instances would have.
    let instances = [
        store_on(&server, FailureMode::Closed),
        store_on(&server, FailureMode::Closed),
    ];
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = instances[i % 2].clone();
            tokio::spawn(async move {
                let key = ClientKey::Ip("198.51.100.4".parse().unwrap());
                let request = LimitRequest {
                    scope: "shared",
                    key: &key,
                    quotas: &QUOTA,
                    cost: 1,
                };
                store.check(&[request]).await.unwrap().allowed
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 50);
    // Another client's limit is its own.
    let other = check(&instances[1], "shared", "198.51.100.5", &QUOTA).await;
    assert_eq!(other.unwrap().remaining, 49);
}

#[tokio::test]
async fn a_router_on_two_instances_answers_429_with_json_and_headers() {
    let server = RedisServer::start();
    let first = store_on(&server, FailureMode::Closed);
    let second = store_on(&server, FailureMode::Closed);
    let client = [203, 0, 113, 7];
    let (app_a, app_b) = (app(&first, client), app(&second, client));

    for (app, remaining) in [(&app_a, 2), (&app_b, 1), (&app_a, 0)] {
        let reply = send(app).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.header("x-ratelimit-limit"), 3);
        assert_eq!(reply.header("x-ratelimit-remaining"), remaining);
        let reset = reply.header("x-ratelimit-reset");
        assert!(reset > now_epoch() && reset <= now_epoch() + 61, "{reset}");
    }
    for app in [&app_b, &app_a] {
        let reply = send(app).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.headers["content-type"], "application/json");
        assert_eq!(
            reply.body,
            r#"{"error":"Too Many Requests: 3 per 1 minute","code":"RATE_LIMITED"}"#
        );
        assert_eq!(reply.header("x-ratelimit-limit"), 3);
        assert_eq!(reply.header("x-ratelimit-remaining"), 0);
        // 3/minute lets one more request through every 20 seconds.
        let retry = reply.header("retry-after");
        assert!((19..=20).contains(&retry), "retry-after {retry}");
    }
    // Another client is not affected.
    let other = send(&app(&second, [203, 0, 113, 8])).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("x-ratelimit-remaining"), 2);
}

#[tokio::test]
async fn burst_then_one_per_interval_reported_in_the_decision() {
    static QUOTA: [Quota; 1] = [Quota::new(3, Duration::from_secs(60))];
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);
    for remaining in [2, 1, 0] {
        let decision = check(&store, "gcra", "192.0.2.1", &QUOTA).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, remaining);
        assert_eq!(decision.retry_after, Duration::ZERO);
    }
    let refused = check(&store, "gcra", "192.0.2.1", &QUOTA).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.quota, QUOTA[0]);
    let margin = Duration::from_secs(1);
    assert!(refused.retry_after <= Duration::from_secs(20));
    assert!(refused.retry_after > Duration::from_secs(20) - margin);
    assert!(refused.reset_after <= Duration::from_secs(60));
    assert!(refused.reset_after > Duration::from_secs(60) - margin);
}

#[tokio::test]
async fn a_refused_quota_consumes_nothing_from_the_others() {
    static BOTH: [Quota; 2] = [Quota::new(5, HOUR), Quota::new(2, HOUR)];
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(0) // every check goes to Redis
        .build()
        .unwrap();
    let ip = "192.0.2.9";

    // Admissions report the quota with the fewest requests left.
    for remaining in [1, 0] {
        let decision = check(&store, "multi", ip, &BOTH).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.quota, BOTH[1]);
        assert_eq!(decision.remaining, remaining);
    }
    // Refusals by the 2/hour quota leave the 5/hour quota untouched.
    for _ in 0..4 {
        let decision = check(&store, "multi", ip, &BOTH).await.unwrap();
        assert!(!decision.allowed);
        assert_eq!(decision.quota, BOTH[1]);
        assert!(decision.retry_after > Duration::from_secs(1790));
        assert!(decision.retry_after <= Duration::from_secs(1800));
    }
    // The 5/hour quota has counted the two admissions only: its time is
    // two intervals (of 12 minutes) ahead, not six.
    let key = store.key("multi", &ClientKey::Ip(ip.parse().unwrap()));
    let state: String = server.connection().get(&key).unwrap();
    let five = ahead_of_now(&state, "g:720000000:5");
    assert!((1_430_000_000..=1_440_000_000).contains(&five), "{state}");
    let two = ahead_of_now(&state, "g:1800000000:2");
    assert!((3_590_000_000..=3_600_000_000).contains(&two), "{state}");

    // With both quotas refusing, the one that makes the client wait longest
    // is reported, so that a retry at `retry_after` succeeds.
    static TIGHT: [Quota; 2] = [Quota::new(1, Duration::from_secs(60)), Quota::new(1, HOUR)];
    assert!(check(&store, "tight", ip, &TIGHT).await.unwrap().allowed);
    let refused = check(&store, "tight", ip, &TIGHT).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.quota, TIGHT[1]);
    assert!(refused.retry_after > HOUR - Duration::from_secs(10));
}

#[tokio::test]
async fn keys_are_namespaced_hashed_and_expire() {
    static QUOTA: [Quota; 1] = [Quota::new(3, Duration::from_secs(60))];
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .prefix("tenant-a")
        .build()
        .unwrap();
    check(&store, "app::score", "2001:db8::1", &QUOTA)
        .await
        .unwrap();
    let key = store.key("app::score", &ClientKey::Ip("2001:db8::1".parse().unwrap()));
    let mut redis = server.connection();
    let keys: Vec<String> = redis.keys("*").unwrap();
    assert_eq!(keys, [key.as_str()]);
    let client = key.strip_prefix("tenant-a:app::score:").unwrap();
    assert_eq!(client.len(), 64);
    assert!(client.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!key.contains("2001"));

    // The state lasts as long as it matters: 20 s after one request of 3/minute.
    let ttl: i64 = redis.pttl(&key).unwrap();
    assert!((19_000..=20_000).contains(&ttl), "PTTL {ttl}");
    check(&store, "app::score", "2001:db8::1", &QUOTA)
        .await
        .unwrap();
    let ttl: i64 = redis.pttl(&key).unwrap();
    assert!((39_000..=40_000).contains(&ttl), "PTTL {ttl}");

    // Another prefix is another namespace.
    let other = RedisStore::builder()
        .url(server.url())
        .prefix("tenant-b")
        .build()
        .unwrap();
    let decision = check(&other, "app::score", "2001:db8::1", &QUOTA)
        .await
        .unwrap();
    assert_eq!(decision.remaining, 2);
}

#[tokio::test]
async fn each_check_is_one_round_trip_and_known_refusals_none() {
    static QUOTA: [Quota; 1] = [Quota::new(2, HOUR)];
    let server = RedisServer::start();
    let cached = store_on(&server, FailureMode::Closed);
    let uncached = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(0)
        .build()
        .unwrap();
    // Loads the script on the server (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA).
    check(&cached, "warm-up", "192.0.2.1", &QUOTA)
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut server.connection())
        .unwrap();

    for _ in 0..3 {
        check(&uncached, "trips", "192.0.2.2", &QUOTA)
            .await
            .unwrap();
    }
    assert_eq!(command_calls(&server), [("evalsha".to_string(), 3)]);

    // Two admissions and one refusal go to Redis; the next refusals of the
    // same client are answered from the local cache.
    for _ in 0..2 {
        assert!(
            check(&cached, "trips", "192.0.2.3", &QUOTA)
                .await
                .unwrap()
                .allowed
        );
    }
    let first = check(&cached, "trips", "192.0.2.3", &QUOTA).await.unwrap();
    assert!(!first.allowed);
    for _ in 0..20 {
        let again = check(&cached, "trips", "192.0.2.3", &QUOTA).await.unwrap();
        assert!(!again.allowed);
        assert!(again.retry_after <= first.retry_after);
        assert!(again.retry_after > first.retry_after - Duration::from_secs(5));
    }
    assert_eq!(command_calls(&server), [("evalsha".to_string(), 6)]);
}

/// Kills Redis in the middle of a run of requests through a router, then
/// restarts it on the same port: the failure mode answers while it is
/// away, limiting resumes in Redis when it is back, and the outage and the
/// recovery are each logged once.
async fn outage_and_recovery(mode: FailureMode) {
    let (logs, _guard) = Logs::capture();
    let mut server = RedisServer::start();
    let store = store_on(&server, mode);
    let app = app(&store, [198, 51, 100, 20]);

    let reply = send(&app).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-ratelimit-remaining"), 2);
    assert!(store.is_available());

    server.kill();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let reply = send(&app).await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                reply.body,
                r#"{"error":"Service Unavailable","code":"SERVICE_UNAVAILABLE"}"#
            );
        }
        statuses.push(reply.status.as_u16());
    }
    assert!(!store.is_available());
    assert!(store.ping().await.is_err());
    // Reads follow the failure mode; a reset cannot pretend to have happened.
    let client = ClientKey::Ip("198.51.100.20".parse().unwrap());
    let request = LimitRequest {
        scope: "outage",
        key: &client,
        quotas: &[Quota::new(3, HOUR)],
        cost: 1,
    };
    let peeked = store.peek(request).await;
    match mode {
        FailureMode::Closed => assert!(peeked.is_err()),
        _ => assert_eq!(peeked.unwrap(), None),
    }
    assert!(store.reset("outage", &client).await.is_err());
    match mode {
        FailureMode::Open => assert_eq!(statuses, [200; 6]),
        FailureMode::Closed => assert_eq!(statuses, [503; 6]),
        // Counted in memory from the start of the outage: 3/minute again.
        _ => assert_eq!(statuses, [200, 200, 200, 429, 429, 429]),
    }
    assert_eq!(logs.count("WARN", OUTAGE_STARTED), 1);
    assert_eq!(logs.count("INFO", OUTAGE_ENDED), 0);

    server.restart();
    store.ping().await.expect("Redis is back");
    assert!(store.is_available());
    // Redis restarted empty: limiting resumes there, from a fresh state
    // (while the in-memory fallback, if any, is exhausted).
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(send(&app).await.status.as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [200, 200, 200, 429]);
    let keys: Vec<String> = server.connection().keys("policy:*").unwrap();
    assert_eq!(keys.len(), 1);

    assert_eq!(logs.count("WARN", OUTAGE_STARTED), 1);
    assert_eq!(logs.count("INFO", OUTAGE_ENDED), 1);
}

#[tokio::test]
async fn outage_failing_open_admits_and_recovers() {
    outage_and_recovery(FailureMode::Open).await;
}

#[tokio::test]
async fn outage_failing_closed_answers_503_json_and_recovers() {
    outage_and_recovery(FailureMode::Closed).await;
}

#[tokio::test]
async fn outage_falling_back_to_memory_still_limits_and_recovers() {
    outage_and_recovery(FailureMode::FallbackToMemory).await;
}

#[tokio::test]
async fn recovery_is_automatic_without_a_ping() {
    let (logs, _guard) = Logs::capture();
    let mut server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);
    let app = app(&store, [198, 51, 100, 21]);
    assert_eq!(send(&app).await.status, StatusCode::OK);
    server.kill();
    assert_eq!(send(&app).await.status, StatusCode::SERVICE_UNAVAILABLE);
    server.restart();
    // The next probe (one request per 100 ms retry interval) finds Redis.
    // (The deadline only stops a test that would otherwise never end.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = send(&app).await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.is_available());
    assert_eq!(logs.count("WARN", OUTAGE_STARTED), 1);
    assert_eq!(logs.count("INFO", OUTAGE_ENDED), 1);
}

/// A store on a server that never answers gives every call up at its
/// timeout: each request is answered by the failure mode, and what the store
/// says (the refusal, the outage log) is the timeout's error.
fn hung_store(url: &str, mode: FailureMode) -> RedisStore {
    RedisStore::builder()
        .url(url)
        .timeout(HUNG_TIMEOUT)
        .retry_interval(Duration::ZERO) // every request probes, and waits
        .failure_mode(mode)
        .build()
        .unwrap()
}

/// The one outage warning, which says the timeout gave the call up.
fn assert_outages_given_up_at_the_timeout(logs: &Logs, outages: usize) {
    let outage = logs.containing("WARN", OUTAGE_STARTED);
    assert_eq!(outage.len(), outages, "{}", logs.text());
    for event in outage {
        let error = event["fields"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(GIVEN_UP), "{event}");
    }
}

#[tokio::test]
async fn a_hung_server_costs_each_request_at_most_the_timeout() {
    static QUOTA: [Quota; 1] = [Quota::new(2, HOUR)];
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let store = hung_store(&server.url(), FailureMode::Closed);
    let app = app(&store, [198, 51, 100, 22]);
    assert_eq!(send(&app).await.status, StatusCode::OK);

    server.pause();
    // Every request goes to Redis (a probe each), is given up at the
    // timeout, and is answered by the failure mode.
    for _ in 0..4 {
        let reply = send(&app).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            reply.body,
            r#"{"error":"Service Unavailable","code":"SERVICE_UNAVAILABLE"}"#
        );
    }
    for _ in 0..2 {
        let error = check(&store, "hung", "198.51.100.23", &QUOTA)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(GIVEN_UP), "{error}");
    }
    assert!(!store.is_available());
    assert_outages_given_up_at_the_timeout(&logs, 1);

    server.resume();
    store.ping().await.expect("Redis answers again");
    // Redis decides again. (The probes that timed out reached the server
    // and were counted when it resumed, so this client may be limited.)
    let status = send(&app).await.status;
    assert!(
        [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS].contains(&status),
        "{status}"
    );
    assert_eq!(logs.count("WARN", OUTAGE_STARTED), 1);
    assert_eq!(logs.count("INFO", OUTAGE_ENDED), 1);
}

#[tokio::test]
async fn a_server_that_accepts_but_never_answers_does_not_hang_requests() {
    static QUOTA: [Quota; 1] = [Quota::new(2, HOUR)];
    let (logs, _guard) = Logs::capture();
    // The kernel completes TCP handshakes on this socket; nobody ever reads.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    for mode in [FailureMode::Closed, FailureMode::FallbackToMemory] {
        let store = hung_store(&url, mode);
        for n in 0..3 {
            let answer = check(&store, "silent", "192.0.2.50", &QUOTA).await;
            match mode {
                FailureMode::Closed => {
                    let error = answer.unwrap_err().to_string();
                    assert!(error.contains(GIVEN_UP), "{error}");
                }
                // Counted in memory: 2 an hour.
                _ => assert_eq!(answer.unwrap().allowed, n < 2),
            }
        }
        let error = store.ping().await.unwrap_err().to_string();
        assert!(error.contains(GIVEN_UP), "{error}");
    }
    // One outage per store, each given up at the timeout.
    assert_outages_given_up_at_the_timeout(&logs, 2);
}

#[tokio::test]
async fn a_store_started_without_redis_does_not_hang_and_connects_later() {
    let mut server = RedisServer::start();
    server.kill();
    let store = store_on(&server, FailureMode::Closed);
    static QUOTA: [Quota; 1] = [Quota::new(2, HOUR)];
    let error = check(&store, "late", "192.0.2.30", &QUOTA)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("failing closed"), "{error}");
    server.restart();
    store.ping().await.unwrap();
    assert!(
        check(&store, "late", "192.0.2.30", &QUOTA)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn bad_data_at_the_key_is_a_clear_error_handled_per_failure_mode() {
    static QUOTA: [Quota; 1] = [Quota::new(2, HOUR)];
    let (logs, _guard) = Logs::capture();
    let server = RedisServer::start();
    let mut redis = server.connection();
    let ip = "192.0.2.40";

    for mode in [
        FailureMode::Closed,
        FailureMode::Open,
        FailureMode::FallbackToMemory,
    ] {
        let key = store_on(&server, mode).key("bad", &ClientKey::Ip(ip.parse().unwrap()));
        let corruptions: [&dyn Fn(&mut redis::Connection); 4] = [
            &|redis| redis.set::<_, _, ()>(&key, "not a state").unwrap(),
            &|redis| redis.set::<_, _, ()>(&key, "g:1800000000:2=soon").unwrap(),
            &|redis| redis.rpush::<_, _, ()>(&key, "a list").unwrap(),
            &|redis| redis.hset::<_, _, _, ()>(&key, "field", "a hash").unwrap(),
        ];
        for corrupt in corruptions {
            let store = store_on(&server, mode);
            let _: () = redis.del(&key).unwrap();
            corrupt(&mut redis);
            let mut answers = Vec::new();
            for _ in 0..3 {
                answers.push(check(&store, "bad", ip, &QUOTA).await);
            }
            match mode {
                FailureMode::Closed => {
                    for answer in &answers {
                        let error = answer.as_ref().unwrap_err().to_string();
                        assert!(error.contains("POLICYDATA"), "{error}");
                        assert!(error.contains(&key), "{error}");
                    }
                }
                FailureMode::Open => {
                    assert!(answers.iter().all(|a| a.as_ref().unwrap().allowed));
                }
                _ => {
                    // The in-memory fallback limits this client meanwhile.
                    let allowed: Vec<bool> = answers
                        .iter()
                        .map(|a| a.as_ref().unwrap().allowed)
                        .collect();
                    assert_eq!(allowed, [true, true, false]);
                }
            }
            // Bad data is about one key, not an outage.
            assert!(store.is_available());
            // Deleting the key heals it.
            let _: () = redis.del(&key).unwrap();
            let healed = check(&store, "bad", ip, &QUOTA).await.unwrap();
            assert!(healed.allowed);
            assert_eq!(healed.remaining, 1);
        }
    }
    assert_eq!(logs.count("WARN", OUTAGE_STARTED), 0);
    assert!(logs.count("ERROR", "Redis refused a rate-limit check") >= 12);
}

#[tokio::test]
async fn burst_and_cost_shape_the_limit() {
    static BURSTY: [Quota; 1] = [Quota::new(1, HOUR).with_burst(3)];
    static TEN_A_MINUTE: [Quota; 1] = [Quota::new(10, Duration::from_secs(60))];
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);

    // 1/hour with a burst of 3: three at once, then one an hour.
    for remaining in [2, 1, 0] {
        let decision = check(&store, "bursty", "192.0.2.60", &BURSTY)
            .await
            .unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, remaining);
    }
    let refused = check(&store, "bursty", "192.0.2.60", &BURSTY)
        .await
        .unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > HOUR - Duration::from_secs(5));

    // A request of cost 4 uses 4 of 10; two intervals (12 s) make room for 4 more.
    let ip = "192.0.2.61";
    let first = check_costing(&store, "costly", ip, &TEN_A_MINUTE, 4)
        .await
        .unwrap();
    assert_eq!((first.allowed, first.remaining), (true, 6));
    let second = check_costing(&store, "costly", ip, &TEN_A_MINUTE, 4)
        .await
        .unwrap();
    assert_eq!((second.allowed, second.remaining), (true, 2));
    let refused = check_costing(&store, "costly", ip, &TEN_A_MINUTE, 4)
        .await
        .unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after <= Duration::from_secs(12));
    assert!(refused.retry_after > Duration::from_secs(11));
    // ... while a request of cost 2 still fits.
    let small = check_costing(&store, "costly", ip, &TEN_A_MINUTE, 2)
        .await
        .unwrap();
    assert_eq!((small.allowed, small.remaining), (true, 0));
}

/// A check of one GCRA quota keeps its state as the bare time and takes the
/// script's fast path; a state it does not handle there (fields left by
/// another set of quotas in the scope, a time out of range) still gets the
/// general path's decision or error, and a TAT from a clock that went back
/// makes a client wait no more than one interval past a full burst.
#[tokio::test]
async fn states_off_the_fast_path_are_still_decided_or_refused_clearly() {
    // 10 a minute: interval 6 s, burst 10.
    static TEN_A_MINUTE: [Quota; 1] = [Quota::new(10, Duration::from_secs(60))];
    let server = RedisServer::start();
    let store = uncached_store_on(&server);
    let mut redis = server.connection();
    let ip = "192.0.2.65";
    let key = store.key("fast", &ClientKey::Ip(ip.parse().unwrap()));

    // The state is the bare time, one interval ahead, expiring then.
    let decision = check(&store, "fast", ip, &TEN_A_MINUTE).await.unwrap();
    assert_eq!((decision.allowed, decision.remaining), (true, 9));
    let state: String = redis.get(&key).unwrap();
    let time: u64 = state.parse().unwrap();
    assert!(
        (5_990_000..=6_000_000).contains(&(time - now_micros())),
        "{state}"
    );
    let ttl: i64 = redis.pttl(&key).unwrap();
    assert!((5_000..=6_000).contains(&ttl), "PTTL {ttl}");

    // A bare time 30 s ahead: 30 s of 60 were used, 36 s now: 4 of 10 left.
    let _: () = redis
        .set(&key, (now_micros() + 30_000_000).to_string())
        .unwrap();
    let decision = check(&store, "fast", ip, &TEN_A_MINUTE).await.unwrap();
    assert_eq!((decision.allowed, decision.remaining), (true, 4));
    let ttl: i64 = redis.pttl(&key).unwrap();
    assert!((35_000..=36_000).contains(&ttl), "PTTL {ttl}");

    // Fields, left by another set of quotas in this scope (its limits
    // changed): this check starts afresh, as the memory store does, and the
    // state becomes its bare time.
    let fields = format!(
        "g:6000000:10={};g:1000000:5={}",
        now_micros() + 30_000_000,
        now_micros() + 3_000_000
    );
    let _: () = redis.set(&key, &fields).unwrap();
    let decision = check(&store, "fast", ip, &TEN_A_MINUTE).await.unwrap();
    assert_eq!((decision.allowed, decision.remaining), (true, 9));
    let state: String = redis.get(&key).unwrap();
    assert!(state.parse::<u64>().is_ok(), "{state}");

    // A TAT far ahead (a clock that went back) makes a client wait at most
    // one interval past a full burst, not until that TAT.
    let _: () = redis
        .set(&key, (now_micros() + 3_600_000_000).to_string())
        .unwrap();
    let refused = check(&store, "fast", ip, &TEN_A_MINUTE).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after <= Duration::from_secs(6), "{refused:?}");
    assert!(
        refused.reset_after <= Duration::from_secs(60),
        "{refused:?}"
    );

    // Times out of range or not a time are bad data, not a panic.
    for bad in [
        "99999999999999999999",
        "-5",
        "",
        "1;;",
        "g:6000000:10=",
        "g:6000000:10=soon",
    ] {
        let _: () = redis.set(&key, bad).unwrap();
        let error = check(&store, "fast", ip, &TEN_A_MINUTE)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("POLICYDATA"), "{bad:?}: {error}");
        assert!(error.contains(&key), "{bad:?}: {error}");
    }

    // A cost above the burst never fits, and says when a retry would.
    let _: () = redis.del(&key).unwrap();
    let refused = check_costing(&store, "fast", ip, &TEN_A_MINUTE, 11)
        .await
        .unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    assert_eq!(refused.retry_after, Duration::from_secs(6));
    let exists: bool = redis.exists(&key).unwrap();
    assert!(!exists, "a refusal writes nothing");
}

/// When the one GCRA quota of a scope changes, the client's time carries
/// over, capped at the new quota's burst: never more admissions than
/// starting afresh would give. A scope that changes to several quotas
/// starts afresh, as with the memory store.
#[tokio::test]
async fn a_changed_quota_carries_the_time_over_capped_at_its_burst() {
    // 10 a minute: an interval of 6 s.
    static BEFORE: [Quota; 1] = [Quota::new(10, Duration::from_secs(60))];
    // 1 an hour: afresh, the next request would be admitted.
    static SLOWER: [Quota; 1] = [Quota::new(1, HOUR)];
    // 100 a second: a burst of 100 intervals of 10 ms, a second in all.
    static FASTER: [Quota; 1] = [Quota::new(100, Duration::from_secs(1))];
    static SEVERAL: [Quota; 2] = [
        Quota::new(10, Duration::from_secs(60)),
        Quota::new(50, HOUR),
    ];
    let server = RedisServer::start();
    let store = uncached_store_on(&server);
    let ip = "192.0.2.66";

    for remaining in [9, 8, 7] {
        let decision = check(&store, "changed", ip, &BEFORE).await.unwrap();
        assert_eq!((decision.allowed, decision.remaining), (true, remaining));
    }
    // The time is 18 s ahead: the hourly quota makes the client wait those
    // 18 s, not an hour and not nothing.
    let refused = check(&store, "changed", ip, &SLOWER).await.unwrap();
    assert!(!refused.allowed);
    assert!(
        refused.retry_after <= Duration::from_secs(18),
        "{refused:?}"
    );
    assert!(refused.retry_after > Duration::from_secs(17), "{refused:?}");
    // Against a burst of a second, the 18 s are capped at that second: one
    // interval of 10 ms to wait.
    let refused = check(&store, "changed", ip, &FASTER).await.unwrap();
    assert!(!refused.allowed);
    assert!(
        refused.retry_after <= Duration::from_millis(10),
        "{refused:?}"
    );

    // Several quotas read no bare time: they start afresh, in fields.
    let decision = check(&store, "changed", ip, &SEVERAL).await.unwrap();
    assert_eq!((decision.allowed, decision.remaining), (true, 9));
    let key = store.key("changed", &ClientKey::Ip(ip.parse().unwrap()));
    let state: String = server.connection().get(&key).unwrap();
    let ten = ahead_of_now(&state, "g:6000000:10");
    assert!((5_990_000..=6_000_000).contains(&ten), "{state}");
}

/// A check of one GCRA quota runs a script of its quota's own, for up to 64
/// quotas per store; the quotas past them share one script, with the same
/// decisions and the same state.
#[tokio::test]
async fn quotas_get_scripts_of_their_own_up_to_a_bound() {
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);
    let mut redis = server.connection();
    let ip = "192.0.2.67";
    let cached_scripts = |redis: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("memory").query(redis).unwrap();
        info.lines()
            .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };

    for count in 1..=70u32 {
        let quota = [Quota::new(count, HOUR).with_burst(2)];
        let interval = HOUR / count;
        let scope = format!("bound-{count}");
        for remaining in [1, 0] {
            let decision = check(&store, &scope, ip, &quota).await.unwrap();
            assert_eq!((decision.allowed, decision.remaining), (true, remaining));
        }
        let refused = check(&store, &scope, ip, &quota).await.unwrap();
        assert!(!refused.allowed);
        assert!(refused.retry_after <= interval, "{count}: {refused:?}");
        assert!(
            refused.retry_after > interval - Duration::from_secs(5),
            "{count}: {refused:?}"
        );
        let key = store.key(&scope, &ClientKey::Ip(ip.parse().unwrap()));
        let state: String = redis.get(&key).unwrap();
        assert!(state.parse::<u64>().is_ok(), "{count}: {state}");
    }
    // 64 quotas' own scripts, and the shared one for the other six.
    assert_eq!(cached_scripts(&mut redis), 65);
}

#[tokio::test]
async fn strict_quotas_admit_at_most_count_in_any_window() {
    static STRICT: [Quota; 1] = [Quota::new(3, Duration::from_secs(60)).strict()];
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);
    let ip = "192.0.2.70";

    for remaining in [2, 1, 0] {
        let decision = check(&store, "strict", ip, &STRICT).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, remaining);
        assert_eq!(decision.reset_after, Duration::from_secs(60));
    }
    // Unlike GCRA (one more every 20 s), nothing more until the oldest
    // admission leaves the window, a minute after it.
    let refused = check(&store, "strict", ip, &STRICT).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after <= Duration::from_secs(60));
    assert!(refused.retry_after > Duration::from_secs(59));

    // Cost: 2 of 3, then 2 more must wait for the first admission to leave.
    let ip = "192.0.2.71";
    let first = check_costing(&store, "strict", ip, &STRICT, 2)
        .await
        .unwrap();
    assert_eq!((first.allowed, first.remaining), (true, 1));
    let refused = check_costing(&store, "strict", ip, &STRICT, 2)
        .await
        .unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::from_secs(59));
    // A request costing more than the count can never pass.
    let never = check_costing(&store, "strict", "192.0.2.72", &STRICT, 4)
        .await
        .unwrap();
    assert!(!never.allowed);
    assert_eq!(never.retry_after, Duration::from_secs(60));

    // The log holds the admissions in the window; it and the state expire a
    // period after the newest.
    let mut redis = server.connection();
    let key = store.key("strict", &ClientKey::Ip("192.0.2.70".parse().unwrap()));
    let state: String = redis.get(&key).unwrap();
    let (field, _until) = state.split_once('=').unwrap();
    assert_eq!(field, "s:60000000:3");
    let log = format!("{key}:{field}");
    assert_eq!(redis.zcard::<_, u64>(&log).unwrap(), 3);
    for key in [&key, &log] {
        let ttl: i64 = redis.pttl(key).unwrap();
        assert!((59_000..=60_000).contains(&ttl), "PTTL {ttl}");
    }

    // A reset deletes the log with the state.
    let client = ClientKey::Ip("192.0.2.70".parse().unwrap());
    store.reset("strict", &client).await.unwrap();
    assert!(!redis.exists::<_, bool>(&key).unwrap());
    assert!(!redis.exists::<_, bool>(&log).unwrap());
    assert!(
        check(&store, "strict", "192.0.2.70", &STRICT)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn the_checks_of_one_request_are_all_or_nothing() {
    static LOOSE: [Quota; 2] = [
        Quota::new(5, HOUR),
        Quota::new(3, Duration::from_secs(60)).strict(),
    ];
    static TIGHT: [Quota; 1] = [Quota::new(1, HOUR)];
    let server = RedisServer::start();
    let store = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(0)
        .build()
        .unwrap();
    let client = ClientKey::Ip("192.0.2.80".parse().unwrap());
    let shared = ClientKey::Global;
    let requests = [
        LimitRequest {
            scope: "loose",
            key: &client,
            quotas: &LOOSE,
            cost: 1,
        },
        LimitRequest {
            scope: "tight",
            key: &shared,
            quotas: &TIGHT,
            cost: 1,
        },
    ];

    let admitted = store.check(&requests).await.unwrap();
    assert!(admitted.allowed);
    assert_eq!(admitted.quota, TIGHT[0]);
    assert_eq!(admitted.remaining, 0);
    for _ in 0..3 {
        let refused = store.check(&requests).await.unwrap();
        assert!(!refused.allowed);
        assert_eq!(refused.quota, TIGHT[0]);
    }
    // The loose check counted the admitted request only, in both its quotas.
    let state = store.peek(requests[0]).await.unwrap().unwrap();
    assert!(state.allowed);
    assert_eq!(state.quota, LOOSE[1]);
    assert_eq!(state.remaining, 2);
    let key = store.key("loose", &client);
    let state: String = server.connection().get(&key).unwrap();
    let gcra = ahead_of_now(&state, "g:720000000:5");
    assert!((710_000_000..=720_000_000).contains(&gcra), "{state}");
}

#[tokio::test]
async fn peek_reports_without_counting_and_reset_forgets() {
    static QUOTA: [Quota; 1] = [Quota::new(3, Duration::from_secs(60))];
    let server = RedisServer::start();
    let store = store_on(&server, FailureMode::Closed);
    let client = ClientKey::Ip("192.0.2.90".parse().unwrap());
    let request = LimitRequest {
        scope: "peeked",
        key: &client,
        quotas: &QUOTA,
        cost: 1,
    };

    assert_eq!(store.peek(request).await.unwrap(), None);
    store.check(&[request]).await.unwrap();
    for _ in 0..3 {
        let state = store.peek(request).await.unwrap().unwrap();
        assert!(state.allowed);
        assert_eq!(state.remaining, 2);
        assert!(state.reset_after <= Duration::from_secs(20));
    }
    store.check(&[request]).await.unwrap();
    store.check(&[request]).await.unwrap();
    let refused = store.check(&[request]).await.unwrap();
    assert!(!refused.allowed);
    let state = store.peek(request).await.unwrap().unwrap();
    assert!(!state.allowed);
    assert_eq!(state.remaining, 0);

    // Reset drops the state in Redis and the cached refusal alike.
    store.reset("peeked", &client).await.unwrap();
    assert_eq!(store.peek(request).await.unwrap(), None);
    let again = store.check(&[request]).await.unwrap();
    assert!(again.allowed);
    assert_eq!(again.remaining, 2);
}

/// A small deterministic generator, so that the sequence is the same each run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn decisions_match_the_memory_store() {
    use policy_runtime::MemoryStore;

    static SCOPES: [(&str, &[Quota]); 4] = [
        ("one", &[Quota::new(4, HOUR)]),
        (
            "two",
            &[Quota::new(6, HOUR), Quota::new(3, HOUR).with_burst(2)],
        ),
        ("strict", &[Quota::new(5, HOUR).strict()]),
        (
            "mixed",
            &[Quota::new(3, HOUR).strict(), Quota::new(8, HOUR)],
        ),
    ];
    let server = RedisServer::start();
    let redis = RedisStore::builder()
        .url(server.url())
        .blocked_cache_capacity(0)
        .failure_mode(FailureMode::Closed)
        .build()
        .unwrap();
    let memory = MemoryStore::new();
    let clients: Vec<ClientKey> = (1..=16)
        .map(|i| ClientKey::Ip(format!("192.0.2.{i}").parse().unwrap()))
        .collect();
    let mut random = Lcg(7);
    let mut refusals = 0;

    for step in 0..300 {
        let checks = 1 + random.below(2) as usize;
        let requests: Vec<LimitRequest> = (0..checks)
            .map(|_| {
                let (scope, quotas) = SCOPES[random.below(4) as usize];
                LimitRequest {
                    scope,
                    key: &clients[random.below(16) as usize],
                    quotas,
                    cost: 1 + random.below(2) as u32,
                }
            })
            .collect();
        let expected = memory.check(&requests).await.unwrap();
        let actual = redis.check(&requests).await.unwrap();
        assert_eq!(
            actual.allowed, expected.allowed,
            "step {step}: {requests:?}"
        );
        refusals += usize::from(!actual.allowed);
        assert_eq!(
            actual.remaining, expected.remaining,
            "step {step}: {requests:?}"
        );
        if checks == 1 {
            assert_eq!(actual.quota, expected.quota, "step {step}: {requests:?}");
            let drift = actual.retry_after.abs_diff(expected.retry_after);
            assert!(drift < Duration::from_secs(2), "step {step}: {drift:?}");
        }
    }
    // The sequence exercises both outcomes.
    assert!((50..250).contains(&refusals), "{refusals} refusals");
}
