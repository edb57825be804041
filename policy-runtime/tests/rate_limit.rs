//! `#[rate_limit]` against a real Router: statuses, JSON bodies, headers, and
//! timing on a fake clock.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, get as get_request, send};
use policy_runtime::{Engine, ManualClock, MemoryStore, rate_limit};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[rate_limit("3/hour")]
async fn three_an_hour() -> &'static str {
    "ok"
}

#[rate_limit("1/second")]
async fn one_a_second() -> &'static str {
    "ok"
}

#[rate_limit("10/minute; 2/second")]
async fn two_limits() -> &'static str {
    "ok"
}

#[rate_limit("2/minute")]
async fn other_handler() -> &'static str {
    "ok"
}

fn app_on(clock: &ManualClock) -> Router {
    let engine = Engine::builder()
        .limiter_store(MemoryStore::with_clock(clock.clone()))
        .build()
        .unwrap();
    Router::new()
        .route("/three", get(three_an_hour))
        .route("/one", get(one_a_second))
        .route("/two-limits", get(two_limits))
        .route("/other", get(other_handler))
        .layer(engine)
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn the_request_after_the_quota_gets_a_json_429_with_headers() {
    let clock = ManualClock::new();
    let app = app_on(&clock);

    for remaining in [2, 1, 0] {
        let reply = send(&app, get_request("/three")).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "ok");
        assert_eq!(reply.header("x-ratelimit-limit"), "3");
        assert_eq!(reply.header_u64("x-ratelimit-remaining"), remaining);
        assert!(reply.headers.get("retry-after").is_none());
    }

    let reply = send(&app, get_request("/three")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "Too Many Requests: 3 per 1 hour", "code": "RATE_LIMITED"})
    );
    assert_eq!(reply.header("x-ratelimit-limit"), "3");
    assert_eq!(reply.header("x-ratelimit-remaining"), "0");
    // GCRA: one request comes back every 20 minutes.
    assert_eq!(reply.header_u64("retry-after"), 20 * 60);
    let reset = reply.header_u64("x-ratelimit-reset");
    let now = now_epoch();
    assert!(
        (now + 3600 - 2..=now + 3600 + 2).contains(&reset),
        "reset {reset} is not an epoch second about an hour from {now}"
    );
}

#[tokio::test]
async fn time_on_the_fake_clock_admits_requests_again() {
    let clock = ManualClock::new();
    let app = app_on(&clock);

    assert_eq!(send(&app, get_request("/one")).await.status, StatusCode::OK);
    let refused = send(&app, get_request("/one")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), "1");

    clock.advance(Duration::from_millis(999));
    let still_refused = send(&app, get_request("/one")).await;
    assert_eq!(still_refused.status, StatusCode::TOO_MANY_REQUESTS);
    // Retry-After rounds up: never earlier than the moment a retry succeeds.
    assert_eq!(still_refused.header("retry-after"), "1");

    clock.advance(Duration::from_millis(1));
    assert_eq!(send(&app, get_request("/one")).await.status, StatusCode::OK);

    // After 20 minutes on /three, exactly one more request is admitted.
    for _ in 0..3 {
        assert_eq!(
            send(&app, get_request("/three")).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&app, get_request("/three")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(
        send(&app, get_request("/three")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, get_request("/three")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn every_limit_of_a_string_must_pass() {
    let clock = ManualClock::new();
    let app = app_on(&clock);

    // 2/second bites first.
    assert_eq!(
        send(&app, get_request("/two-limits")).await.status,
        StatusCode::OK
    );
    let second = send(&app, get_request("/two-limits")).await;
    assert_eq!(second.status, StatusCode::OK);
    // The most constraining limit is shown: 2/second with none left.
    assert_eq!(second.header("x-ratelimit-limit"), "2");
    assert_eq!(second.header("x-ratelimit-remaining"), "0");
    let third = send(&app, get_request("/two-limits")).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.json()["error"], "Too Many Requests: 2 per 1 second");

    // Then 10/minute: one second at a time, 2 more each, until 10 are used.
    let mut admitted = 2;
    for _ in 0..10 {
        clock.advance(Duration::from_secs(1));
        for _ in 0..2 {
            if send(&app, get_request("/two-limits")).await.status == StatusCode::OK {
                admitted += 1;
            }
        }
    }
    // 10/minute replenishes one every 6 s: 10 seconds later, 1 more came back.
    assert_eq!(admitted, 11);
    let refused = send(&app, get_request("/two-limits")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json()["error"],
        "Too Many Requests: 10 per 1 minute"
    );
}

#[tokio::test]
async fn clients_and_handlers_have_separate_limits() {
    let clock = ManualClock::new();
    let app = app_on(&clock);

    let request = |ip: &str| from(ip, "GET", "/one").body(Body::empty()).unwrap();
    assert_eq!(
        send(&app, request("198.51.100.1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, request("198.51.100.1")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&app, request("198.51.100.2")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, request("2001:db8::1")).await.status,
        StatusCode::OK
    );

    // Another handler's state is its own.
    let other = send(
        &app,
        from("198.51.100.1", "GET", "/other")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.header("x-ratelimit-limit"), "2");
}

#[tokio::test]
async fn without_connect_info_the_request_is_refused_never_shared() {
    let clock = ManualClock::new();
    let app = app_on(&clock);
    let (logs, _guard) = common::Logs::capture();

    for _ in 0..3 {
        let request = axum::http::Request::get("/one")
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            reply.json(),
            serde_json::json!({"error": "Internal Server Error", "code": "INTERNAL_ERROR"})
        );
    }
    let errors = logs.policy_events("rate_limit");
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0]["level"], "ERROR");
    let message = errors[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("into_make_service_with_connect_info::<std::net::SocketAddr>()"),
        "{message}"
    );
}

#[tokio::test]
async fn a_real_server_keys_on_the_peer_address() {
    let engine = Engine::builder().build().unwrap();
    let app = Router::new().route("/one", get(one_a_second)).layer(engine);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let first = common::http_get(address, "/one").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-remaining"), "0");
    let second = common::http_get(address, "/one").await;
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), "1");
    assert_eq!(second.json()["code"], "RATE_LIMITED");
    server.abort();
}
