//! The sliding window counter (`#[rate_limit(.., sliding)]`) and
//! `RATELIMIT_STRATEGY`, over a real Router with the in-memory store on a
//! fake clock: exact answers at the windows' boundaries, which limits the
//! strategy changes and which it leaves, and the strategies not offered.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{Engine, ManualClock, RateLimit, rate_limit};
use std::time::Duration;

#[rate_limit("10/minute", sliding)]
async fn sliding() -> &'static str {
    "ok"
}

#[rate_limit("2/minute")]
async fn plain() -> &'static str {
    "ok"
}

#[rate_limit("2/minute", strict)]
async fn strict() -> &'static str {
    "ok"
}

#[rate_limit("2/minute", burst = 3)]
async fn bursty() -> &'static str {
    "ok"
}

async fn open() -> &'static str {
    "ok"
}

fn app(clock: &ManualClock, vars: &[(&str, &str)]) -> Router {
    let vars = vars
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()));
    let engine = Engine::builder()
        .clock(clock.clone())
        .from_vars(vars)
        .build()
        .unwrap();
    let layered = RateLimit::builder("layered", "3/minute")
        .sliding()
        .build()
        .unwrap();
    Router::new()
        .route("/open", get(open))
        .route_layer(engine.default_limits())
        .route("/sliding", get(sliding))
        .route("/plain", get(plain))
        .route("/strict", get(strict))
        .route("/bursty", get(bursty))
        .route("/layered", get(open).route_layer(layered))
        .layer(engine)
}

/// Status, `x-ratelimit-remaining` and `retry-after` of `GET uri` from `ip`.
async fn call(app: &Router, ip: &str, uri: &str) -> (u16, String) {
    let reply = send(app, from(ip, "GET", uri).body(Body::empty()).unwrap()).await;
    let shown = match reply.status.as_u16() {
        429 => reply.header("retry-after").to_owned(),
        _ => reply.header("x-ratelimit-remaining").to_owned(),
    };
    (reply.status.as_u16(), shown)
}

/// How many requests in a row are admitted, up to `most`.
async fn admitted(app: &Router, ip: &str, uri: &str, most: usize) -> usize {
    for n in 0..most {
        if call(app, ip, uri).await.0 != 200 {
            return n;
        }
    }
    most
}

#[tokio::test]
async fn the_previous_window_weighs_what_is_left_of_it() {
    let clock = ManualClock::new();
    let app = app(&clock, &[]);
    let ip = "192.0.2.1";
    for remaining in (0..10).rev() {
        assert_eq!(
            call(&app, ip, "/sliding").await,
            (200, remaining.to_string())
        );
    }
    // Not before the next window: 60 s and a nanosecond, rounded up.
    assert_eq!(call(&app, ip, "/sliding").await, (429, "61".to_owned()));
    // At the boundary the previous 10 weigh 10; a second in, 9 (59/60).
    clock.advance(Duration::from_secs(60));
    assert_eq!(admitted(&app, ip, "/sliding", 20).await, 0);
    clock.advance(Duration::from_secs(1));
    assert_eq!(admitted(&app, ip, "/sliding", 20).await, 1);
    // Half way, they weigh 5: with the 1 of this window, 4 more.
    clock.advance(Duration::from_secs(29));
    assert_eq!(admitted(&app, ip, "/sliding", 20).await, 4);
    // Two windows later nothing is left.
    clock.advance(Duration::from_secs(150));
    assert_eq!(admitted(&app, ip, "/sliding", 20).await, 10);
}

#[tokio::test]
async fn the_layer_counts_by_a_sliding_window_too() {
    let clock = ManualClock::new();
    let app = app(&clock, &[]);
    let ip = "192.0.2.2";
    assert_eq!(admitted(&app, ip, "/layered", 10).await, 3);
    clock.advance(Duration::from_secs(80));
    // 40 s of the previous 60 left: 3 weigh 2, so 1 more.
    assert_eq!(admitted(&app, ip, "/layered", 10).await, 1);
}

#[tokio::test]
async fn without_a_strategy_plain_limits_are_gcra() {
    let clock = ManualClock::new();
    let app = app(&clock, &[]);
    let ip = "192.0.2.3";
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 2);
    // GCRA: one more every 30 s.
    clock.advance(Duration::from_secs(30));
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 1);
}

#[tokio::test]
async fn sliding_window_counter_makes_plain_limits_sliding_and_leaves_the_others() {
    let clock = ManualClock::new();
    let app = app(
        &clock,
        &[
            ("RATELIMIT_STRATEGY", "sliding-window-counter"),
            ("RATELIMIT_DEFAULT", "2/minute"),
        ],
    );
    let ip = "192.0.2.4";
    for uri in ["/plain", "/strict", "/open"] {
        assert_eq!(admitted(&app, ip, uri, 5).await, 2, "{uri}");
    }
    // A burst names GCRA: 3 at once.
    assert_eq!(admitted(&app, ip, "/bursty", 5).await, 3);
    // GCRA would admit one more after 30 s; a sliding counter and a strict
    // log do not before the next window.
    clock.advance(Duration::from_secs(30));
    for uri in ["/plain", "/strict", "/open"] {
        assert_eq!(admitted(&app, ip, uri, 5).await, 0, "{uri}");
    }
    assert_eq!(admitted(&app, ip, "/bursty", 5).await, 1);
    // 31 s into the next window the previous 2 weigh 0: both limits that
    // named no strategy (the handler's and the defaults) admit 2 again...
    clock.advance(Duration::from_secs(61));
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 2);
    assert_eq!(admitted(&app, ip, "/open", 5).await, 2);
    // ...and `strict` stays strict: its log emptied at 60 s.
    assert_eq!(admitted(&app, ip, "/strict", 5).await, 2);

    // At 15 s into a window, a sliding counter's previous 2 weigh 1, while
    // a strict log has emptied.
    let ip = "192.0.2.5";
    clock.advance(Duration::from_secs(29)); // 120 s: a window boundary
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 2);
    assert_eq!(admitted(&app, ip, "/strict", 5).await, 2);
    clock.advance(Duration::from_secs(75));
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 1);
    assert_eq!(admitted(&app, ip, "/strict", 5).await, 2);
}

#[tokio::test]
async fn moving_window_makes_plain_limits_strict() {
    let clock = ManualClock::new();
    let app = app(&clock, &[("RATELIMIT_STRATEGY", "Moving-Window")]);
    let ip = "192.0.2.6";
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 2);
    clock.advance(Duration::from_secs(30));
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 0);
    // Strict: both leave the window a period after they came.
    clock.advance(Duration::from_secs(30));
    assert_eq!(admitted(&app, ip, "/plain", 5).await, 2);
    // A `sliding` limit stays sliding.
    assert_eq!(admitted(&app, ip, "/sliding", 20).await, 10);
    assert_eq!(admitted(&app, ip, "/bursty", 5).await, 3);
}

#[test]
fn strategies_not_offered_are_build_errors_that_say_what_to_use() {
    let build = |value: &str| {
        Engine::builder()
            .from_vars([("RATELIMIT_STRATEGY".to_owned(), value.to_owned())])
            .build()
    };
    let error = build("fixed-window").unwrap_err();
    assert_eq!(error.problems().len(), 1);
    let problem = &error.problems()[0];
    assert!(
        problem.starts_with("RATELIMIT_STRATEGY: `fixed-window` is not offered"),
        "{problem}"
    );
    for named in ["sliding-window-counter", "moving-window", "unset for GCRA"] {
        assert!(problem.contains(named), "{problem}");
    }
    let error = build("leaky-bucket").unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "RATELIMIT_STRATEGY: `leaky-bucket` is not a strategy; use `moving-window`, `sliding-window-counter` or `gcra` (the default)"
        ]
    );
    for fine in [
        "gcra",
        "moving-window",
        "sliding-window-counter",
        " SLIDING-WINDOW-COUNTER ",
    ] {
        assert!(build(fine).is_ok(), "{fine}");
    }
}
