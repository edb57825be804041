//! Conditional counting (`count = failures`, `count = responses(fn)`) over a
//! real Router with the in-memory store: which responses count, the refusal
//! before the handler, the headers, stacked and strict limits, the
//! macro-free layer, and exact counts under concurrency.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{
    ClientKey, Decision, Engine, LimitRequest, LimiterStore, ManualClock, MemoryStore, RateLimit,
    StoreFuture, rate_limit, require_api_key,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The status the request asks for in `x-status`, 200 without it.
fn asked(headers: &HeaderMap) -> StatusCode {
    headers
        .get("x-status")
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK)
}

#[rate_limit("3/hour", count = failures)]
async fn login(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

fn server_errors(status: StatusCode) -> bool {
    status.is_server_error()
}

#[rate_limit("2/hour", count = responses(server_errors))]
async fn upstream(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

#[rate_limit("2/hour", count = failures, strict)]
async fn strict_login(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

#[rate_limit("4/hour")]
#[rate_limit("2/hour", count = failures)]
async fn stacked(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

#[rate_limit("2/hour", count = failures, cost = 2)]
async fn costly(headers: HeaderMap) -> StatusCode {
    asked(&headers)
}

const KEY: &str = "conditional-key-0123456789";

/// The limit runs first and reserves; the key check after it may refuse.
#[rate_limit("2/hour", count = responses(server_errors))]
#[require_api_key]
async fn keyed_upstream() -> StatusCode {
    StatusCode::OK
}

#[rate_limit("2/hour", count = failures)]
#[require_api_key]
async fn keyed_login() -> StatusCode {
    StatusCode::OK
}

static ENTERED: AtomicUsize = AtomicUsize::new(0);
static GATE: Semaphore = Semaphore::const_new(0);

/// Waits until the test opens the gate, then answers as asked.
#[rate_limit("3/hour", count = failures)]
async fn gated(headers: HeaderMap) -> StatusCode {
    ENTERED.fetch_add(1, Ordering::SeqCst);
    GATE.acquire().await.unwrap().forget();
    asked(&headers)
}

fn app(clock: &ManualClock) -> Router {
    let engine = Engine::builder()
        .clock(clock.clone())
        .api_key("client", KEY)
        .build()
        .unwrap();
    Router::new()
        .route("/keyed-upstream", get(keyed_upstream))
        .route("/keyed-login", get(keyed_login))
        .route("/login", get(login))
        .route("/upstream", get(upstream))
        .route("/strict", get(strict_login))
        .route("/stacked", get(stacked))
        .route("/costly", get(costly))
        .route("/gated", get(gated))
        .layer(engine)
}

/// `GET uri` from `ip`, asking the handler for `status`.
async fn call(app: &Router, ip: &str, uri: &str, status: u16) -> (u16, Option<u64>) {
    let request = from(ip, "GET", uri)
        .header("x-status", status.to_string())
        .body(Body::empty())
        .unwrap();
    let reply = send(app, request).await;
    let remaining = reply
        .headers
        .get("x-ratelimit-remaining")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (reply.status.as_u16(), remaining)
}

#[tokio::test]
async fn only_failures_count_and_a_client_over_the_limit_is_refused_before_the_handler() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.10";
    // Successes do not count, however many: the headers show nothing spent.
    for _ in 0..10 {
        assert_eq!(call(&app, ip, "/login", 200).await, (200, Some(3)));
    }
    // Redirects are not failures either.
    assert_eq!(call(&app, ip, "/login", 302).await, (302, Some(3)));
    // Failures (4xx and 5xx) count.
    assert_eq!(call(&app, ip, "/login", 401).await, (401, Some(2)));
    assert_eq!(call(&app, ip, "/login", 403).await, (403, Some(1)));
    assert_eq!(call(&app, ip, "/login", 500).await, (500, Some(0)));
    // Over the limit: refused before the handler, whatever it would answer.
    assert_eq!(call(&app, ip, "/login", 200).await.0, 429);
    assert_eq!(call(&app, ip, "/login", 401).await.0, 429);
    // Another client is not affected.
    assert_eq!(
        call(&app, "192.0.2.11", "/login", 401).await,
        (401, Some(2))
    );
    // GCRA gives one back every period / count (20 minutes).
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(call(&app, ip, "/login", 200).await, (200, Some(1)));
    assert_eq!(call(&app, ip, "/login", 401).await, (401, Some(0)));
    assert_eq!(call(&app, ip, "/login", 200).await.0, 429);
}

#[tokio::test]
async fn a_function_of_the_status_chooses_what_counts() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.20";
    // 4xx does not count under `server_errors`.
    for _ in 0..5 {
        assert_eq!(call(&app, ip, "/upstream", 404).await, (404, Some(2)));
    }
    assert_eq!(call(&app, ip, "/upstream", 502).await, (502, Some(1)));
    assert_eq!(call(&app, ip, "/upstream", 503).await, (503, Some(0)));
    assert_eq!(call(&app, ip, "/upstream", 200).await.0, 429);
}

#[tokio::test]
async fn strict_conditional_limits_give_back_their_log_entry() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.30";
    for _ in 0..5 {
        assert_eq!(call(&app, ip, "/strict", 200).await, (200, Some(2)));
    }
    assert_eq!(call(&app, ip, "/strict", 401).await, (401, Some(1)));
    clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(call(&app, ip, "/strict", 401).await, (401, Some(0)));
    assert_eq!(call(&app, ip, "/strict", 200).await.0, 429);
    // Strict: the first failure leaves the window an hour after it, not before.
    clock.advance(Duration::from_secs(30 * 60 - 1));
    assert_eq!(call(&app, ip, "/strict", 200).await.0, 429);
    clock.advance(Duration::from_secs(1));
    assert_eq!(call(&app, ip, "/strict", 200).await, (200, Some(1)));
}

#[tokio::test]
async fn a_conditional_limit_stacked_with_a_plain_one_counts_only_its_own_responses() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.40";
    // The plain 4/hour counts everything; the 2/hour only failures. The
    // headers show the tighter of the two.
    assert_eq!(call(&app, ip, "/stacked", 200).await, (200, Some(2)));
    assert_eq!(call(&app, ip, "/stacked", 200).await, (200, Some(2)));
    assert_eq!(call(&app, ip, "/stacked", 400).await, (400, Some(1)));
    assert_eq!(call(&app, ip, "/stacked", 200).await, (200, Some(0)));
    // The plain limit is spent: refused, and nothing counted against either.
    assert_eq!(call(&app, ip, "/stacked", 200).await.0, 429);

    // A refusal by the plain limit gives the conditional one nothing to settle.
    let ip = "192.0.2.41";
    assert_eq!(call(&app, ip, "/stacked", 400).await, (400, Some(1)));
    assert_eq!(call(&app, ip, "/stacked", 400).await, (400, Some(0)));
    assert_eq!(call(&app, ip, "/stacked", 200).await.0, 429);
}

#[tokio::test]
async fn a_cost_is_reserved_and_given_back_whole() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.50";
    assert_eq!(call(&app, ip, "/costly", 200).await, (200, Some(2)));
    assert_eq!(call(&app, ip, "/costly", 200).await, (200, Some(2)));
    assert_eq!(call(&app, ip, "/costly", 401).await, (401, Some(0)));
    assert_eq!(call(&app, ip, "/costly", 200).await.0, 429);
}

#[tokio::test]
async fn a_response_that_does_not_count_is_logged_as_given_back() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let app = app(&clock);
    assert_eq!(call(&app, "192.0.2.60", "/login", 204).await.0, 204);
    let events = logs.policy_events("rate_limit");
    let settled: Vec<_> = events
        .iter()
        .filter(|event| event["fields"]["outcome"] == "not_counted")
        .collect();
    assert_eq!(settled.len(), 1, "{events:?}");
    assert_eq!(settled[0]["fields"]["status"], 204);
    assert_eq!(
        settled[0]["fields"]["scope"],
        "rate_limit_conditional::login"
    );
}

/// Requests in flight each hold a unit: with 3 allowed and 10 sent at
/// once, exactly 3 reach the handler and 7 are refused; the 3 counted
/// failures then refuse the next, and successes give their units back.
#[tokio::test]
async fn concurrent_requests_never_count_past_the_limit() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.70";
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let app = app.clone();
        calls.spawn(async move { call(&app, ip, "/gated", 401).await.0 });
    }
    // The 7 refused answer while the 3 admitted wait at the gate.
    for _ in 0..7 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 429);
    }
    assert_eq!(ENTERED.load(Ordering::SeqCst), 3);
    GATE.add_permits(3);
    for _ in 0..3 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 401);
    }
    assert_eq!(call(&app, ip, "/gated", 200).await.0, 429);

    // Successes in flight hold units too, and give them all back.
    let ip = "192.0.2.71";
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let app = app.clone();
        calls.spawn(async move { call(&app, ip, "/gated", 200).await.0 });
    }
    for _ in 0..2 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 429);
    }
    assert_eq!(ENTERED.load(Ordering::SeqCst), 6);
    GATE.add_permits(3);
    for _ in 0..3 {
        assert_eq!(calls.join_next().await.unwrap().unwrap(), 200);
    }
    GATE.add_permits(3);
    for _ in 0..3 {
        assert_eq!(call(&app, ip, "/gated", 401).await.0, 401);
    }
    assert_eq!(call(&app, ip, "/gated", 401).await.0, 429);
}

#[tokio::test]
async fn the_layer_counts_failures_as_the_attribute_does() {
    let failures = RateLimit::builder("layered-login", "2/hour")
        .count_failures()
        .build()
        .unwrap();
    let server = RateLimit::builder("layered-upstream", "1/hour")
        .count_responses(server_errors)
        .build()
        .unwrap();
    let engine = Engine::builder().api_key("client", KEY).build().unwrap();
    let app = Router::new()
        .route(
            "/layered",
            get(|headers: HeaderMap| async move { asked(&headers) }).route_layer(failures),
        )
        .route(
            "/layered-upstream",
            get(|headers: HeaderMap| async move { asked(&headers) }).route_layer(server),
        )
        .layer(engine);
    let ip = "192.0.2.80";
    assert_eq!(call(&app, ip, "/layered", 200).await, (200, Some(2)));
    assert_eq!(call(&app, ip, "/layered", 401).await, (401, Some(1)));
    assert_eq!(call(&app, ip, "/layered", 200).await, (200, Some(1)));
    assert_eq!(call(&app, ip, "/layered", 422).await, (422, Some(0)));
    assert_eq!(call(&app, ip, "/layered", 200).await.0, 429);

    assert_eq!(
        call(&app, ip, "/layered-upstream", 404).await,
        (404, Some(1))
    );
    assert_eq!(
        call(&app, ip, "/layered-upstream", 500).await,
        (500, Some(0))
    );
    assert_eq!(call(&app, ip, "/layered-upstream", 200).await.0, 429);
}

/// A store of the application's own that does not implement `refund`.
struct NoRefund(MemoryStore);

impl LimiterStore for NoRefund {
    fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
        self.0.check(requests)
    }

    fn peek<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
        self.0.peek(request)
    }

    fn reset<'a>(&'a self, scope: &'a str, key: &'a ClientKey) -> StoreFuture<'a, ()> {
        self.0.reset(scope, key)
    }

    fn answers_at_once(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_store_that_cannot_give_back_counts_every_response_and_says_so() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder()
        .limiter_store(NoRefund(MemoryStore::new()))
        .api_key("client", KEY)
        .build()
        .unwrap();
    let app = Router::new().route("/login", get(login)).layer(engine);
    let ip = "192.0.2.90";
    for left in [2, 1, 0] {
        assert_eq!(call(&app, ip, "/login", 200).await, (200, Some(left)));
    }
    assert_eq!(call(&app, ip, "/login", 200).await.0, 429);
    let errors = logs.containing(
        "ERROR",
        "could not give back a conditional limit's reservation",
    );
    assert_eq!(errors.len(), 3, "{}", logs.text());
    assert!(
        errors[0]["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("does not implement `LimiterStore::refund`")
    );
}

#[tokio::test]
async fn a_refusal_by_a_later_check_settles_the_reservation_by_its_status() {
    let clock = ManualClock::new();
    let app = app(&clock);
    let ip = "192.0.2.91";
    let with_key = |uri: &str| {
        from(ip, "GET", uri)
            .header("x-api-key", KEY)
            .body(Body::empty())
            .unwrap()
    };
    // A 401 from the key check is not a server error: given back each time.
    for _ in 0..5 {
        assert_eq!(call(&app, ip, "/keyed-upstream", 200).await.0, 401);
    }
    let reply = send(&app, with_key("/keyed-upstream")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-ratelimit-remaining"), "2");
    // Under `count = failures` the 401 counts.
    assert_eq!(call(&app, ip, "/keyed-login", 200).await.0, 401);
    assert_eq!(call(&app, ip, "/keyed-login", 200).await.0, 401);
    assert_eq!(send(&app, with_key("/keyed-login")).await.status, 429);
}
