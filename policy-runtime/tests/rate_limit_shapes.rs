//! Shapes of limits against a real Router on a fake clock: burst, cost,
//! shared scopes, stacked limits (all or nothing), strict mode against GCRA,
//! exemptions, the penalty box, header styles and the admin API.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{
    ClientKey, Engine, EngineBuilder, HeaderStyle, ManualClock, Penalty, ScopeStats, rate_limit,
    require_api_key,
};
use std::time::Duration;

const KEY: &str = "shapes-key-0123456789abcdef";
const INTERNAL: &str = "internal-key-0123456789abcdef";

#[rate_limit("1/second", burst = 3)]
async fn bursty() -> &'static str {
    "ok"
}

#[rate_limit("10/minute", cost = 4)]
async fn expensive() -> &'static str {
    "ok"
}

#[rate_limit("3/minute", scope = "search")]
async fn search_a() -> &'static str {
    "a"
}

#[rate_limit("3/minute", scope = "search")]
async fn search_b() -> &'static str {
    "b"
}

#[rate_limit("5/minute", key = ip)]
#[rate_limit("1/second", key = global)]
async fn stacked() -> &'static str {
    "ok"
}

#[rate_limit("5/hour")]
async fn register_gcra() -> &'static str {
    "ok"
}

#[rate_limit("5/hour", strict)]
async fn register_strict() -> &'static str {
    "ok"
}

#[require_api_key]
#[rate_limit("1/hour")]
async fn keyed() -> &'static str {
    "ok"
}

fn build_app(builder: EngineBuilder, clock: &ManualClock) -> (Router, Engine) {
    let engine = builder
        .clock(clock.clone())
        .api_key("client", KEY)
        .api_key("internal", INTERNAL)
        .build()
        .unwrap();
    let router = Router::new()
        .route("/bursty", get(bursty))
        .route("/expensive", get(expensive))
        .route("/search-a", get(search_a))
        .route("/search-b", get(search_b))
        .route("/stacked", get(stacked))
        .route("/register-gcra", get(register_gcra))
        .route("/register-strict", get(register_strict))
        .route("/keyed", get(keyed))
        .layer(engine.clone());
    (router, engine)
}

fn get_from(ip: &str, uri: &str) -> axum::http::Request<Body> {
    from(ip, "GET", uri).body(Body::empty()).unwrap()
}

async fn admitted(app: &Router, ip: &str, uri: &str, tries: usize) -> usize {
    let mut count = 0;
    for _ in 0..tries {
        if send(app, get_from(ip, uri)).await.status == StatusCode::OK {
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn burst_lets_more_through_at_once_then_the_rate_holds() {
    let clock = ManualClock::new();
    let (app, _) = build_app(Engine::builder(), &clock);
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 10).await, 3);
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 10).await, 1);
}

#[tokio::test]
async fn cost_makes_one_request_weigh_more() {
    let clock = ManualClock::new();
    let (app, _) = build_app(Engine::builder(), &clock);
    let first = send(&app, get_from("192.0.2.1", "/expensive")).await;
    assert_eq!(first.header("x-ratelimit-remaining"), "6");
    assert_eq!(admitted(&app, "192.0.2.1", "/expensive", 5).await, 1);
    let refused = send(&app, get_from("192.0.2.1", "/expensive")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // Room for 4 more comes back after 2 intervals of 6 s.
    assert_eq!(refused.header("retry-after"), "12");
}

#[tokio::test]
async fn a_scope_is_shared_between_handlers() {
    let clock = ManualClock::new();
    let (app, engine) = build_app(Engine::builder(), &clock);
    assert_eq!(admitted(&app, "192.0.2.1", "/search-a", 2).await, 2);
    assert_eq!(admitted(&app, "192.0.2.1", "/search-b", 5).await, 1);
    let stats = engine.rate_limit_stats();
    let search = stats.iter().find(|s| s.scope == "search").unwrap();
    assert_eq!((search.allowed, search.rejected), (3, 4));
}

#[tokio::test]
async fn stats_list_only_the_scopes_that_counted_a_request() {
    let clock = ManualClock::new();
    let (app, engine) = build_app(Engine::builder(), &clock);
    // Every handler's scope has its counters from the start, but none is news yet.
    assert_eq!(engine.rate_limit_stats(), []);
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 4).await, 3);
    assert_eq!(
        engine.rate_limit_stats(),
        [ScopeStats {
            scope: "rate_limit_shapes::bursty".to_owned(),
            allowed: 3,
            rejected: 1,
        }]
    );
}

#[tokio::test]
async fn a_request_refused_by_one_stacked_limit_consumes_nothing_from_the_other() {
    let clock = ManualClock::new();
    let (app, engine) = build_app(Engine::builder(), &clock);
    assert_eq!(
        send(&app, get_from("192.0.2.1", "/stacked")).await.status,
        StatusCode::OK
    );
    // The global 1/second refuses the next requests of any client...
    for ip in ["192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2"] {
        assert_eq!(
            send(&app, get_from(ip, "/stacked")).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // ...and they did not count against the per-IP 5/minute.
    let key = ClientKey::Ip("192.0.2.1".parse().unwrap());
    let state = engine
        .limit_state("rate_limit_shapes::stacked", &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 4);
    let mut admitted_total = 1;
    for _ in 0..10 {
        clock.advance(Duration::from_secs(1));
        admitted_total += admitted(&app, "192.0.2.1", "/stacked", 1).await;
    }
    // 5 per minute in all, although 11 seconds gave the global limit room for 11.
    assert_eq!(admitted_total, 5);
}

#[tokio::test]
async fn gcra_admits_up_to_2n_minus_1_in_a_window_and_strict_at_most_n() {
    let clock = ManualClock::new();
    let (app, _) = build_app(Engine::builder(), &clock);
    let mut gcra = 0;
    let mut strict = 0;
    for _ in 0..60 {
        gcra += admitted(&app, "192.0.2.1", "/register-gcra", 3).await;
        strict += admitted(&app, "192.0.2.1", "/register-strict", 3).await;
        clock.advance(Duration::from_secs(59)); // 60 steps: just under an hour
    }
    assert_eq!(gcra, 9, "GCRA: a burst of 5, then one every 12 minutes");
    assert_eq!(strict, 5, "strict: never more than 5 within the hour");
    // An hour after the first three, they leave the window; the two
    // admitted a minute later still count.
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted(&app, "192.0.2.1", "/register-strict", 10).await, 3);
}

#[tokio::test]
async fn exempt_addresses_and_keys_are_never_limited() {
    let clock = ManualClock::new();
    let (app, _) = build_app(
        Engine::builder()
            .exempt_ips(["10.0.0.0/8"])
            .exempt_keys(["internal"]),
        &clock,
    );
    assert_eq!(admitted(&app, "10.1.2.3", "/bursty", 10).await, 10);
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 10).await, 3);
    let keyed = |key: &str| {
        from("192.0.2.50", "GET", "/keyed")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(send(&app, keyed(INTERNAL)).await.status, StatusCode::OK);
    }
    assert_eq!(send(&app, keyed(KEY)).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, keyed(KEY)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn repeated_violations_block_a_client_for_a_while() {
    let clock = ManualClock::new();
    let (logs, _guard) = Logs::capture();
    let penalty = Penalty::new(3, Duration::from_secs(60), Duration::from_secs(600));
    let (app, engine) = build_app(Engine::builder().penalty(penalty), &clock);

    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 3).await, 3);
    // Three refusals within a minute...
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 3).await, 0);
    // ...block the client: even after its limit refilled, it is refused.
    clock.advance(Duration::from_secs(5));
    let blocked = send(&app, get_from("192.0.2.1", "/bursty")).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        blocked.json()["error"],
        "Too Many Requests: blocked after repeated violations"
    );
    assert_eq!(blocked.header("retry-after"), "595");
    // Other clients are not affected.
    assert_eq!(admitted(&app, "192.0.2.2", "/bursty", 1).await, 1);
    let blocks: Vec<_> = logs
        .policy_events("rate_limit")
        .into_iter()
        .filter(|event| event["fields"]["outcome"] == "block")
        .collect();
    assert_eq!(blocks.len(), 1, "{}", logs.text());
    assert_eq!(blocks[0]["fields"]["block_secs"], 600);

    clock.advance(Duration::from_secs(595));
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 1).await, 1);

    // An operator can lift a block at once.
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 6).await, 2);
    let key = ClientKey::Ip("192.0.2.1".parse().unwrap());
    assert!(
        send(&app, get_from("192.0.2.1", "/bursty")).await.status == StatusCode::TOO_MANY_REQUESTS
    );
    engine
        .reset_limit("rate_limit_shapes::bursty", &key)
        .await
        .unwrap();
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 5).await, 3);
}

#[tokio::test]
async fn header_families_follow_the_engine_setting() {
    let clock = ManualClock::new();
    let (app, _) = build_app(Engine::builder(), &clock);
    let both = send(&app, get_from("192.0.2.1", "/bursty")).await;
    assert_eq!(both.header("x-ratelimit-limit"), "1");
    assert_eq!(both.header("ratelimit-policy"), "\"1/1s\";q=1;w=1");
    // A burst of 3 with 2 left is whole again after one interval.
    assert_eq!(both.header("ratelimit"), "\"1/1s\";r=2;t=1");

    let (app, _) = build_app(
        Engine::builder().rate_limit_headers(HeaderStyle::Ietf),
        &clock,
    );
    let ietf = send(&app, get_from("192.0.2.1", "/stacked")).await;
    assert!(ietf.headers.get("x-ratelimit-limit").is_none());
    // Every policy is listed; the most constraining decides `RateLimit`.
    assert_eq!(
        ietf.header("ratelimit-policy"),
        "\"5/60s\";q=5;w=60, \"1/1s\";q=1;w=1"
    );
    assert_eq!(ietf.header("ratelimit"), "\"1/1s\";r=0;t=1");

    let (app, _) = build_app(
        Engine::builder().rate_limit_headers(HeaderStyle::Legacy),
        &clock,
    );
    let legacy = send(&app, get_from("192.0.2.1", "/bursty")).await;
    assert!(legacy.headers.get("ratelimit").is_none());
    assert_eq!(legacy.header("x-ratelimit-remaining"), "2");
}

#[tokio::test]
async fn operators_can_read_and_reset_a_clients_state() {
    let clock = ManualClock::new();
    let (app, engine) = build_app(Engine::builder(), &clock);
    let key = ClientKey::Ip("192.0.2.1".parse().unwrap());
    let scope = "rate_limit_shapes::bursty";
    assert_eq!(engine.limit_state(scope, &key).await.unwrap(), None);
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 5).await, 3);
    let state = engine.limit_state(scope, &key).await.unwrap().unwrap();
    assert_eq!(state.remaining, 0);
    assert_eq!(state.reset_after, Duration::from_secs(3));
    engine.reset_limit(scope, &key).await.unwrap();
    assert_eq!(engine.limit_state(scope, &key).await.unwrap(), None);
    assert_eq!(admitted(&app, "192.0.2.1", "/bursty", 5).await, 3);
    let stats = engine.rate_limit_stats();
    let bursty = stats.iter().find(|s| s.scope == scope).unwrap();
    assert_eq!((bursty.allowed, bursty.rejected), (6, 4));
}

#[tokio::test]
async fn operators_name_an_ipv6_client_by_any_address_of_its_network() {
    let clock = ManualClock::new();
    let (app, engine) = build_app(Engine::builder(), &clock);
    let scope = "rate_limit_shapes::bursty";
    assert_eq!(admitted(&app, "2001:db8:1:2::7", "/bursty", 5).await, 3);
    // Requests are counted per /64: another address of it names the same client.
    let other = ClientKey::Ip("2001:db8:1:2:ffff::1".parse().unwrap());
    let state = engine.limit_state(scope, &other).await.unwrap().unwrap();
    assert_eq!(state.remaining, 0);
    engine.reset_limit(scope, &other).await.unwrap();
    assert_eq!(engine.limit_state(scope, &other).await.unwrap(), None);
    assert_eq!(admitted(&app, "2001:db8:1:2::7", "/bursty", 5).await, 3);
    // Another network is another client.
    let stranger = ClientKey::Ip("2001:db8:1:3::7".parse().unwrap());
    assert_eq!(engine.limit_state(scope, &stranger).await.unwrap(), None);
}
