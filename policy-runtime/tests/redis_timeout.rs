//! `RedisStore` against a server that accepts TCP connections and never
//! answers (a listener of the test's own, which reads and says nothing):
//! every request is answered by the failure mode once the store's timeout
//! gives its call up, the first one as well as the next ones and the probes,
//! over the real Router. What the store says (the outage log, a ping's
//! error) names the timeout; no test measures how long anything took.
#![cfg(feature = "redis")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{Engine, FailureMode, RedisStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// The store's timeout.
const TIMEOUT: Duration = Duration::from_millis(100);
/// A connection attempt may take far longer than a request may wait: a
/// request that waited for it would show.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Only stops a request that would otherwise never end: far beyond any
/// timeout of the store, however busy the machine.
const HUNG: Duration = Duration::from_secs(60);
/// How often a request goes to Redis during the outage.
const RETRY_INTERVAL: Duration = Duration::from_millis(150);

#[policy_runtime::rate_limit("3/minute", scope = "silent")]
async fn limited() -> &'static str {
    "ok"
}

/// A server that accepts every connection and reads what it is sent, but
/// never writes a byte back. Counts the connections it accepted.
struct Silent {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    // Read until the client gives up, answering nothing.
                    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                });
            }
        });
        Self { port, accepted }
    }

    fn store(&self, mode: FailureMode) -> RedisStore {
        self.store_connecting_within(mode, CONNECT_TIMEOUT)
    }

    fn store_connecting_within(&self, mode: FailureMode, connect_timeout: Duration) -> RedisStore {
        RedisStore::builder()
            .url(format!("redis://127.0.0.1:{}", self.port))
            .timeout(TIMEOUT)
            .connect_timeout(connect_timeout)
            .retry_interval(RETRY_INTERVAL)
            .failure_mode(mode)
            .build()
            .unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn app(store: &RedisStore) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new().route("/limited", get(limited)).layer(engine)
}

/// Sends `count` requests from one client; none may hang.
async fn statuses(app: &Router, count: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let request = from("192.0.2.80", "GET", "/limited")
            .body(Body::empty())
            .unwrap();
        let reply = tokio::time::timeout(HUNG, send(app, request))
            .await
            .expect("a request hung on a server that never answers");
        statuses.push(reply.status);
    }
    statuses
}

/// Lets the retry interval pass, so that the next request is a probe that
/// goes to the server again.
async fn until_the_next_probe() {
    tokio::time::sleep(RETRY_INTERVAL * 2).await;
}

#[tokio::test]
async fn failing_closed_every_request_is_refused_within_the_timeout() {
    let (logs, _guard) = Logs::capture();
    let silent = Silent::start().await;
    let store = silent.store(FailureMode::Closed);
    let app = app(&store);
    assert_eq!(statuses(&app, 3).await, [UNAVAILABLE; 3]);
    assert!(silent.accepted() >= 1, "the store never reached the server");
    assert!(!store.is_available());
    until_the_next_probe().await;
    assert_eq!(statuses(&app, 2).await, [UNAVAILABLE; 2]);
    // The outage is logged once, when it starts, with why.
    let outage = logs.containing("WARN", "Redis is unavailable for rate limiting");
    assert_eq!(outage.len(), 1, "{}", logs.text());
    assert!(
        outage[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("did not answer within 100ms")),
        "{outage:?}"
    );
}

#[tokio::test]
async fn failing_open_every_request_is_admitted_within_the_timeout() {
    let silent = Silent::start().await;
    let store = silent.store(FailureMode::Open);
    let app = app(&store);
    assert_eq!(statuses(&app, 5).await, [OK; 5]);
    until_the_next_probe().await;
    assert_eq!(statuses(&app, 2).await, [OK; 2]);
    assert!(silent.accepted() >= 1, "the store never reached the server");
}

#[tokio::test]
async fn the_fallback_keeps_limits_within_the_timeout() {
    let silent = Silent::start().await;
    let store = silent.store(FailureMode::FallbackToMemory);
    let app = app(&store);
    assert_eq!(statuses(&app, 2).await, [OK, OK]);
    until_the_next_probe().await;
    // A probe that times out too leaves the count where it was.
    assert_eq!(statuses(&app, 3).await, [OK, REFUSED, REFUSED]);
    assert!(silent.accepted() >= 1, "the store never reached the server");
}

#[tokio::test]
async fn a_ping_fails_within_the_timeout() {
    let silent = Silent::start().await;
    let store = silent.store(FailureMode::Closed);
    for _ in 0..2 {
        let error = store.ping().await.unwrap_err().to_string();
        assert!(error.contains("did not answer within 100ms"), "{error}");
    }
    assert!(!store.is_available());
}

/// The connection does not wait forever either: a connection that never
/// answers is given up after the connection timeout, and a later probe
/// connects afresh.
#[tokio::test]
async fn a_connection_that_never_answers_is_given_up_and_made_again() {
    let silent = Silent::start().await;
    let store = silent.store_connecting_within(FailureMode::Closed, Duration::from_millis(200));
    let app = app(&store);
    assert_eq!(statuses(&app, 1).await, [UNAVAILABLE]);
    assert_eq!(silent.accepted(), 1);
    for _ in 0..3 {
        // Past the connection timeout and the retry interval: a probe.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(statuses(&app, 1).await, [UNAVAILABLE]);
    }
    assert!(
        silent.accepted() >= 2,
        "the store kept waiting on its first connection"
    );
}
