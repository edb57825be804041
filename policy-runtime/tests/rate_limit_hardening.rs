//! Bounds and ranges of the rate-limit state, over a real Router on a fake
//! clock: strict logs that grow with admissions and stay bounded per scope,
//! out-of-range periods, bursts and penalties refused at build, penalties
//! kept per scope and client, and stacked limits that report the longest
//! wait.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{
    ClientKey, Decision, Engine, EngineBuilder, LimitRequest, LimiterStore, ManualClock,
    MemoryStore, Penalty, Quota, StoreFuture, rate_limit,
};
use std::sync::Arc;
use std::time::Duration;

#[rate_limit("10000/day", strict, key = header("x-user-id"))]
async fn daily() -> &'static str {
    "ok"
}

#[rate_limit("3/minute", strict, key = header("x-user-id"))]
async fn strict_small() -> &'static str {
    "ok"
}

#[rate_limit("1/second")]
#[rate_limit("1/minute")]
async fn stacked_attributes() -> &'static str {
    "ok"
}

#[rate_limit("1/second; 1/minute")]
async fn stacked_string() -> &'static str {
    "ok"
}

#[rate_limit("1/minute", key = global)]
async fn shared() -> &'static str {
    "ok"
}

#[rate_limit("1/minute")]
async fn other() -> &'static str {
    "ok"
}

/// A memory store the test can still read once the engine holds it.
#[derive(Clone)]
struct Shared(Arc<MemoryStore<ManualClock>>);

impl LimiterStore for Shared {
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

fn app(builder: EngineBuilder, clock: &ManualClock, store: &Shared) -> Router {
    let engine = builder
        .clock(clock.clone())
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/daily", get(daily))
        .route("/strict-small", get(strict_small))
        .route("/stacked-attributes", get(stacked_attributes))
        .route("/stacked-string", get(stacked_string))
        .route("/shared", get(shared))
        .route("/other", get(other))
        .layer(engine)
}

fn setup(builder: EngineBuilder) -> (Router, ManualClock, Shared) {
    setup_with(builder, MemoryStore::with_clock)
}

fn setup_with(
    builder: EngineBuilder,
    store: impl FnOnce(ManualClock) -> MemoryStore<ManualClock>,
) -> (Router, ManualClock, Shared) {
    let clock = ManualClock::new();
    let store = Shared(Arc::new(store(clock.clone())));
    (app(builder, &clock, &store), clock, store)
}

fn user(id: &str, uri: &str) -> Request<Body> {
    from("192.0.2.1", "GET", uri)
        .header("x-user-id", id)
        .body(Body::empty())
        .unwrap()
}

fn get_from(ip: &str, uri: &str) -> Request<Body> {
    from(ip, "GET", uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_strict_log_holds_what_was_admitted_not_the_whole_count() {
    let (app, _clock, store) = setup(Engine::builder());
    for id in 0..5_000 {
        let reply = send(&app, user(&format!("user-{id}"), "/daily")).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let entries = store.0.strict_log_entries();
    // One request each: proportional to 5,000 clients, not 5,000 × 10,000.
    assert!(
        (5_000..=10_000).contains(&entries),
        "{entries} strict-log entries for 5,000 clients of one request each"
    );
    assert_eq!(store.0.clients(), 5_000);
}

#[tokio::test]
async fn strict_limits_stay_exact_with_a_growing_log() {
    let (app, clock, _store) = setup(Engine::builder());
    let mut admitted_at = Vec::new();
    for second in 0..180u64 {
        let reply = send(&app, user("u", "/strict-small")).await;
        if reply.status == StatusCode::OK {
            admitted_at.push(second);
        } else if second == 20 {
            // Admitted at 0, 1, 2: room again when the one at 0 leaves, at 60.
            assert_eq!(reply.header("retry-after"), "40");
        }
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(admitted_at, [0, 1, 2, 60, 61, 62, 120, 121, 122]);
    for start in 0..180 {
        let in_window = admitted_at
            .iter()
            .filter(|second| (start..start + 60).contains(*second))
            .count();
        assert!(in_window <= 3, "{in_window} in the window from {start}");
    }
}

#[tokio::test]
async fn a_scope_at_its_strict_log_bound_refuses_and_logs_once() {
    let (logs, _guard) = Logs::capture();
    let (app, clock, store) = setup_with(Engine::builder(), |clock| {
        MemoryStore::with_clock(clock).with_strict_log_cap(100)
    });
    let mut admitted = 0;
    for id in 0..300 {
        if send(&app, user(&format!("user-{id}"), "/daily"))
            .await
            .status
            == StatusCode::OK
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 100);
    assert!(store.0.strict_log_entries() <= 100);
    let refused = send(&app, user("late", "/daily")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), "86400");
    assert_eq!(
        logs.count("WARN", "the strict limits of this scope hold as many"),
        1,
        "{}",
        logs.text()
    );
    // A day later the old entries are idle and give their room back.
    clock.advance(Duration::from_secs(86_400));
    store.0.evict_idle();
    assert_eq!(store.0.strict_log_entries(), 0);
    assert_eq!(
        send(&app, user("late", "/daily")).await.status,
        StatusCode::OK
    );
}

#[test]
fn out_of_range_periods_are_build_errors() {
    let error = Engine::builder()
        .from_vars([(
            "POLICY_LIMIT_FOREVER".to_string(),
            "1/300000 days".to_string(),
        )])
        .build()
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("POLICY_LIMIT_FOREVER: the period of `1/300000 days` is too long; the longest supported is 3650 days"),
        "{text}"
    );
    let error = Engine::builder()
        .default_limits("5/99999999 days")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("too long"), "{error}");
    assert!(Quota::parse_list("1/3650 days").is_ok());
}

#[test]
fn out_of_range_bursts_are_refused_by_validate() {
    let day = Duration::from_secs(86_400);
    let error = Quota::new(1, day)
        .with_burst(220_000)
        .validate()
        .unwrap_err();
    assert!(
        error.to_string().contains("a burst of 220000 at 1 per 1 days takes 220000 days to replenish; the longest supported is 3650 days"),
        "{error}"
    );
    let error = Quota::new(1, Duration::MAX).validate().unwrap_err();
    assert!(error.to_string().contains("too long"), "{error}");
}

#[tokio::test]
async fn hand_built_out_of_range_quotas_never_admit_everything() {
    let store = MemoryStore::with_clock(ManualClock::new());
    let key = ClientKey::Ip("192.0.2.1".parse().unwrap());
    for (scope, quota) in [
        (
            "burst",
            Quota::new(1, Duration::from_secs(86_400)).with_burst(220_000),
        ),
        (
            "forever",
            Quota::new(1, Duration::from_secs(300_000 * 86_400)),
        ),
        (
            "strict-forever",
            Quota::new(1, Duration::from_secs(300_000 * 86_400)).strict(),
        ),
        ("max", Quota::new(1, Duration::MAX)),
    ] {
        let quotas = [quota];
        let request = [LimitRequest {
            scope,
            key: &key,
            quotas: &quotas,
            cost: 1,
        }];
        let mut admitted = 0;
        for _ in 0..300_000 {
            if store.check(&request).await.unwrap().allowed {
                admitted += 1;
            }
        }
        assert!(admitted <= 3_650, "{scope}: {admitted} admitted at once");
    }
}

#[test]
fn an_out_of_range_penalty_is_a_build_error() {
    let minute = Duration::from_secs(60);
    let error = Engine::builder()
        .penalty(Penalty::new(2, Duration::MAX, minute))
        .build()
        .unwrap_err();
    assert!(
        error
            .problems()
            .iter()
            .any(|problem| problem.starts_with("penalty: `within` of ")
                && problem.ends_with("days is too long; the longest supported is 3650 days")),
        "{error}"
    );
    let error = Engine::builder()
        .penalty(Penalty::new(2, minute, Duration::MAX))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("`block_for` of"), "{error}");
}

#[tokio::test]
async fn a_penalty_on_a_global_limit_blocks_only_the_offender() {
    let penalty = Penalty::new(2, Duration::from_secs(60), Duration::from_secs(600));
    let (app, _clock, _store) = setup(Engine::builder().penalty(penalty));
    assert_eq!(
        send(&app, get_from("192.0.2.1", "/shared")).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        let refused = send(&app, get_from("192.0.2.1", "/shared")).await;
        assert_eq!(refused.json()["error"], "Too Many Requests: 1 per 1 minute");
    }
    // The offender is blocked...
    let blocked = send(&app, get_from("192.0.2.1", "/shared")).await;
    assert_eq!(
        blocked.json()["error"],
        "Too Many Requests: blocked after repeated violations"
    );
    // ...another client only meets the shared limit, not the block.
    let other = send(&app, get_from("192.0.2.2", "/shared")).await;
    assert_eq!(other.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(other.json()["error"], "Too Many Requests: 1 per 1 minute");
    assert_eq!(other.header("retry-after"), "60");
    // And the offender is not blocked in other scopes.
    assert_eq!(
        send(&app, get_from("192.0.2.1", "/other")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_penalty_on_a_global_limit_counts_an_ipv6_network_as_one_client() {
    let penalty = Penalty::new(2, Duration::from_secs(60), Duration::from_secs(600));
    let (app, _clock, _store) = setup(Engine::builder().penalty(penalty));
    assert_eq!(
        send(&app, get_from("2001:db8::1", "/shared")).await.status,
        StatusCode::OK
    );
    // Two refusals from two addresses of one /64: one client, so blocked.
    for address in ["2001:db8::2", "2001:db8::3"] {
        let refused = send(&app, get_from(address, "/shared")).await;
        assert_eq!(refused.json()["error"], "Too Many Requests: 1 per 1 minute");
    }
    let blocked = send(&app, get_from("2001:db8::4", "/shared")).await;
    assert_eq!(
        blocked.json()["error"],
        "Too Many Requests: blocked after repeated violations"
    );
    // Another /64 only meets the shared limit.
    let other = send(&app, get_from("2001:db8:0:1::1", "/shared")).await;
    assert_eq!(other.json()["error"], "Too Many Requests: 1 per 1 minute");
}

#[tokio::test]
async fn stacked_limits_report_the_longest_wait() {
    for uri in ["/stacked-attributes", "/stacked-string"] {
        let (app, clock, _store) = setup(Engine::builder());
        assert_eq!(
            send(&app, get_from("192.0.2.1", uri)).await.status,
            StatusCode::OK
        );
        let refused = send(&app, get_from("192.0.2.1", uri)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            refused.json()["error"],
            "Too Many Requests: 1 per 1 minute",
            "{uri}"
        );
        let wait = refused.header_u64("retry-after");
        assert_eq!(wait, 60, "{uri}");
        clock.advance(Duration::from_millis(1_100));
        assert_eq!(
            send(&app, get_from("192.0.2.1", uri)).await.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{uri}"
        );
        clock.advance(Duration::from_secs(wait) - Duration::from_millis(1_100));
        assert_eq!(
            send(&app, get_from("192.0.2.1", uri)).await.status,
            StatusCode::OK,
            "{uri}: a retry at Retry-After succeeds"
        );
    }
}
