//! Coming from Flask-Limiter: its limit strings (Python `limits`' grammar)
//! through the run-time paths (`RATELIMIT_DEFAULT`, `POLICY_LIMIT_*` as
//! builder policies, `RateLimit` layers), how months and years are shown,
//! and its settings under their own names (`RATELIMIT_ENABLED`,
//! `RATELIMIT_HEADERS_ENABLED`, `RATELIMIT_STORAGE_URI=memory://`), each over
//! the real Router. The Redis settings are in `flask_limiter_redis.rs`.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{
    ClientKey, Engine, EngineBuilder, Environment, Penalty, RateLimit, rate_limit, require_api_key,
};
use std::time::Duration;

#[rate_limit("1/hour")]
async fn hourly() -> &'static str {
    "hourly"
}

#[rate_limit("1 per month")]
async fn monthly() -> &'static str {
    "monthly"
}

#[rate_limit("1/Year")]
async fn yearly() -> &'static str {
    "yearly"
}

#[rate_limit("1/SECOND | 2 per MINUTE")]
async fn mixed_case() -> &'static str {
    "mixed"
}

/// Counts only failures, as Flask-Limiter's `deduct_when` does.
#[rate_limit("1/hour", count = failures)]
async fn failing() -> axum::http::StatusCode {
    axum::http::StatusCode::UNAUTHORIZED
}

#[require_api_key]
#[rate_limit("1/hour", key = api_key)]
async fn keyed() -> &'static str {
    "keyed"
}

const KEY: &str = "parity-test-key-0123456789";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every kind of rate limit the engine runs: a handler's, a `RateLimit`
/// layer's, the default limits, and a handler behind an API key.
fn router(engine: &Engine) -> Router {
    let layered = RateLimit::new("flask-layer", "1/hour").unwrap();
    Router::new()
        .route("/about", get(|| async { "about" }))
        .route_layer(engine.default_limits())
        .route("/hourly", get(hourly))
        .route("/monthly", get(monthly))
        .route("/yearly", get(yearly))
        .route("/mixed", get(mixed_case))
        .route("/keyed", get(keyed))
        .route("/failing", get(failing))
        .route("/layered", get(|| async { "layered" }).route_layer(layered))
        .layer(engine.clone())
}

fn builder() -> EngineBuilder {
    Engine::builder()
        .environment(Environment::Development)
        .api_key("parity", KEY)
        .default_limits("1/hour")
}

async fn get_from(app: &Router, ip: &str, uri: &str) -> common::Reply {
    send(app, from(ip, "GET", uri).body(Body::empty()).unwrap()).await
}

const RATE_LIMIT_HEADERS: [&str; 5] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit",
    "ratelimit-policy",
];

#[tokio::test]
async fn flask_limiter_strings_work_in_every_run_time_path() {
    let engine = Engine::builder()
        .environment(Environment::Development)
        .api_key("parity", KEY)
        .from_vars(vars(&[("RATELIMIT_DEFAULT", "2 PER Hour | 10 per DAY")]))
        .build()
        .unwrap();
    let app = router(&engine);
    for remaining in ["1", "0"] {
        let about = get_from(&app, "192.0.2.10", "/about").await;
        assert_eq!(about.status, StatusCode::OK);
        assert_eq!(about.header("x-ratelimit-remaining"), remaining);
    }
    let refused = get_from(&app, "192.0.2.10", "/about").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 2 per 1 hour","code":"RATE_LIMITED"}"#
    );
    assert_eq!(
        refused.header("ratelimit-policy"),
        r#""2/3600s";q=2;w=3600, "10/86400s";q=10;w=86400"#
    );

    // The same strings in the builder and in a layer.
    assert!(
        builder()
            .default_limits("1/SECOND | 5 per MINUTE; 100 per month")
            .build()
            .is_ok()
    );
    assert!(RateLimit::new("flask-year", "1000 / Year").is_ok());
    let error = RateLimit::new("flask-decade", "1 per year; 2 per decade").unwrap_err();
    assert!(
        error.problems()[0].contains("unknown time unit `decade` in `2 per decade`"),
        "{error}"
    );
    let error = builder()
        .from_vars(vars(&[("RATELIMIT_DEFAULT", "1 per millienium")]))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "RATELIMIT_DEFAULT: unknown time unit `millienium` in `1 per millienium`; expected second, minute, \
             hour, day, month (30 days) or year (360 days), in any case (plural forms and s, m, h, d are accepted)"
        ]
    );
}

#[tokio::test]
async fn a_handler_limit_written_as_flask_limiter_writes_it() {
    let engine = builder().build().unwrap();
    let app = router(&engine);
    assert_eq!(
        get_from(&app, "192.0.2.11", "/mixed").await.status,
        StatusCode::OK
    );
    let refused = get_from(&app, "192.0.2.11", "/mixed").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 1 per 1 second","code":"RATE_LIMITED"}"#
    );
    assert_eq!(
        refused.header("ratelimit-policy"),
        r#""1/1s";q=1;w=1, "2/60s";q=2;w=60"#
    );
}

/// A month is shown in days, as the period is kept in seconds: `1 per 30
/// day` where Flask-Limiter says `1 per 1 month`. Existing units keep their
/// text (`1 per 1 hour`).
#[tokio::test]
async fn months_and_years_are_shown_in_days() {
    let engine = builder().build().unwrap();
    let app = router(&engine);
    for (uri, message, policy) in [
        ("/hourly", "1 per 1 hour", r#""1/3600s";q=1;w=3600"#),
        ("/monthly", "1 per 30 day", r#""1/2592000s";q=1;w=2592000"#),
        (
            "/yearly",
            "1 per 360 day",
            r#""1/31104000s";q=1;w=31104000"#,
        ),
    ] {
        assert_eq!(
            get_from(&app, "192.0.2.12", uri).await.status,
            StatusCode::OK
        );
        let refused = get_from(&app, "192.0.2.12", uri).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{uri}");
        assert_eq!(
            refused.body,
            format!(r#"{{"error":"Too Many Requests: {message}","code":"RATE_LIMITED"}}"#)
        );
        assert_eq!(refused.header("ratelimit-policy"), policy);
    }
    assert_eq!(
        policy_runtime::Quota::parse_list("1/month").unwrap()[0].period(),
        Duration::from_secs(30 * 86_400)
    );
}

#[tokio::test]
async fn ratelimit_enabled_false_turns_every_rate_limit_off() {
    let (logs, _guard) = Logs::capture();
    let engine = builder()
        .penalty(Penalty::new(
            1,
            Duration::from_secs(60),
            Duration::from_secs(600),
        ))
        .from_vars(vars(&[("RATELIMIT_ENABLED", "false")]))
        .build()
        .unwrap();
    assert_eq!(logs.count("WARN", "every rate limit is off"), 1);
    let app = router(&engine);
    for _ in 0..3 {
        for uri in ["/hourly", "/monthly", "/mixed", "/layered", "/about"] {
            let reply = get_from(&app, "192.0.2.13", uri).await;
            assert_eq!(reply.status, StatusCode::OK, "{uri}");
            for header in RATE_LIMIT_HEADERS {
                assert!(reply.headers.get(header).is_none(), "{uri}: {header}");
            }
        }
        let keyed = send(
            &app,
            from("192.0.2.13", "GET", "/keyed")
                .header("x-api-key", KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(keyed.status, StatusCode::OK);
        // A limit that counts only failures is off too.
        let failing = get_from(&app, "192.0.2.13", "/failing").await;
        assert_eq!(failing.status, StatusCode::UNAUTHORIZED);
        assert!(failing.headers.get("x-ratelimit-remaining").is_none());
    }
    // Nothing was counted anywhere.
    assert!(engine.rate_limit_stats().is_empty());
    let client = ClientKey::Ip("192.0.2.13".parse().unwrap());
    assert!(
        engine
            .limit_state("flask-layer", &client)
            .await
            .unwrap()
            .is_none()
    );
    // API keys stay on.
    let no_key = get_from(&app, "192.0.2.13", "/keyed").await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
    // Still one warning: it is said at build, not per request.
    assert_eq!(logs.count("WARN", "every rate limit is off"), 1);
}

#[tokio::test]
async fn ratelimit_enabled_true_keeps_limits_on() {
    let (logs, _guard) = Logs::capture();
    let engine = builder()
        .from_vars(vars(&[("RATELIMIT_ENABLED", "True")]))
        .build()
        .unwrap();
    let app = router(&engine);
    for uri in ["/hourly", "/layered", "/about"] {
        let first = get_from(&app, "192.0.2.14", uri).await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.header("x-ratelimit-remaining"), "0");
        let second = get_from(&app, "192.0.2.14", uri).await;
        assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS, "{uri}");
    }
    assert_eq!(logs.count("WARN", "every rate limit is off"), 0);
}

#[tokio::test]
async fn the_builder_switch_follows_the_same_rule() {
    let engine = builder().rate_limits_enabled(false).build().unwrap();
    let app = router(&engine);
    for _ in 0..3 {
        assert_eq!(
            get_from(&app, "192.0.2.15", "/hourly").await.status,
            StatusCode::OK
        );
    }
    // A later call turns them on again.
    let engine = builder()
        .from_vars(vars(&[("RATELIMIT_ENABLED", "false")]))
        .rate_limits_enabled(true)
        .build()
        .unwrap();
    let app = router(&engine);
    assert_eq!(
        get_from(&app, "192.0.2.15", "/hourly").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, "192.0.2.15", "/hourly").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

const OFF_IN_PRODUCTION: &str = "every rate limit is off (RATELIMIT_ENABLED=false or `rate_limits_enabled(false)`), \
     which production refuses; to mean it, also set RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION=true or call \
     `allow_disabled_rate_limits_in_production(true)`";

#[tokio::test]
async fn production_refuses_limits_off_unless_allowed() {
    let production = || Engine::builder().api_key("parity", KEY);
    let error = production()
        .from_vars(vars(&[("RATELIMIT_ENABLED", "false")]))
        .build()
        .unwrap_err();
    assert_eq!(error.problems(), [OFF_IN_PRODUCTION]);
    let error = production().rate_limits_enabled(false).build().unwrap_err();
    assert_eq!(error.problems(), [OFF_IN_PRODUCTION]);

    let engine = production()
        .from_vars(vars(&[
            ("RATELIMIT_ENABLED", "false"),
            ("RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION", "true"),
        ]))
        .build()
        .unwrap();
    let app = router(&engine);
    for _ in 0..3 {
        assert_eq!(
            get_from(&app, "192.0.2.16", "/hourly").await.status,
            StatusCode::OK
        );
    }
    assert!(
        production()
            .rate_limits_enabled(false)
            .allow_disabled_rate_limits_in_production(true)
            .build()
            .is_ok()
    );
    // The opt-in alone changes nothing.
    let engine = production()
        .from_vars(vars(&[("RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION", "true")]))
        .build()
        .unwrap();
    let app = router(&engine);
    assert_eq!(
        get_from(&app, "192.0.2.16", "/hourly").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, "192.0.2.16", "/hourly").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Staging and development need no opt-in.
    let environment = [("ENVIRONMENT", "staging"), ("RATELIMIT_ENABLED", "0")];
    assert!(production().from_vars(vars(&environment)).build().is_ok());
}

#[tokio::test]
async fn ratelimit_headers_enabled_false_shows_no_rate_limit_header() {
    let engine = builder()
        .from_vars(vars(&[("RATELIMIT_HEADERS_ENABLED", "false")]))
        .build()
        .unwrap();
    let app = router(&engine);
    let admitted = get_from(&app, "192.0.2.17", "/hourly").await;
    assert_eq!(admitted.status, StatusCode::OK);
    for header in RATE_LIMIT_HEADERS {
        assert!(admitted.headers.get(header).is_none(), "{header}");
    }
    let refused = get_from(&app, "192.0.2.17", "/hourly").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    for header in RATE_LIMIT_HEADERS {
        assert!(refused.headers.get(header).is_none(), "{header}");
    }
    assert_eq!(refused.header_u64("retry-after"), 3600);

    // `true` leaves the engine's style: both families by default.
    let engine = builder()
        .from_vars(vars(&[("RATELIMIT_HEADERS_ENABLED", "true")]))
        .build()
        .unwrap();
    let admitted = get_from(&router(&engine), "192.0.2.17", "/hourly").await;
    for header in RATE_LIMIT_HEADERS {
        assert!(admitted.headers.get(header).is_some(), "{header}");
    }
}

#[tokio::test]
async fn ratelimit_storage_uri_memory_is_the_in_memory_store() {
    let clock = policy_runtime::ManualClock::new();
    let engine = builder()
        .clock(clock.clone())
        .from_vars(vars(&[("RATELIMIT_STORAGE_URI", "memory://")]))
        .build()
        .unwrap();
    let app = router(&engine);
    assert_eq!(
        get_from(&app, "192.0.2.18", "/hourly").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_from(&app, "192.0.2.18", "/hourly").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The engine's own in-memory store, on the engine's clock.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        get_from(&app, "192.0.2.18", "/hourly").await.status,
        StatusCode::OK
    );
}

#[test]
fn a_bad_value_is_a_build_problem_naming_its_variable() {
    let error = Engine::builder()
        .environment(Environment::Development)
        .from_vars(vars(&[
            ("RATELIMIT_ENABLED", "disabled"),
            ("RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION", "please"),
            ("RATELIMIT_HEADERS_ENABLED", "2"),
            ("RATELIMIT_SWALLOW_ERRORS", "yes please"),
            ("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", ""),
            ("RATELIMIT_KEY_PREFIX", ""),
            (
                "RATELIMIT_STORAGE_URI",
                "mongodb://user:secret@db.internal:27017",
            ),
        ]))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "RATELIMIT_ENABLED: `disabled` is not a boolean; use true or false",
            "RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION: `please` is not a boolean; use true or false",
            "RATELIMIT_HEADERS_ENABLED: `2` is not a boolean; use true or false",
            "RATELIMIT_SWALLOW_ERRORS: `yes please` is not a boolean; use true or false",
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED is empty; use true or false",
            "RATELIMIT_KEY_PREFIX is empty; unset it for the default prefix `policy`, or give one such as `myapp`",
            "RATELIMIT_STORAGE_URI: the `mongodb` storage is not offered; use memory:// (the default) or \
             redis://host:6379[/db] (feature `redis`)",
        ]
    );
    let error = builder()
        .from_vars(vars(&[("RATELIMIT_STORAGE_URI", "localhost:6379")]))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "RATELIMIT_STORAGE_URI: not a storage URI; use memory:// or redis://host:6379[/db] (feature `redis`)"
        ]
    );
}

#[test]
fn redis_settings_without_a_redis_storage_are_said_to_do_nothing() {
    let (logs, _guard) = Logs::capture();
    let engine = builder()
        .from_vars(vars(&[
            ("RATELIMIT_KEY_PREFIX", "myapp"),
            ("RATELIMIT_SWALLOW_ERRORS", "true"),
        ]))
        .build();
    assert!(engine.is_ok());
    let warnings = logs.containing(
        "WARN",
        "Redis settings without a Redis RATELIMIT_STORAGE_URI",
    );
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0]["fields"]["variables"],
        "RATELIMIT_KEY_PREFIX, RATELIMIT_SWALLOW_ERRORS"
    );
}

#[cfg(not(feature = "redis"))]
#[test]
fn a_redis_storage_without_the_feature_names_the_feature() {
    for uri in ["redis://127.0.0.1:6379", "rediss://cache.internal:6380/0"] {
        let error = builder()
            .from_vars(vars(&[("RATELIMIT_STORAGE_URI", uri)]))
            .build()
            .unwrap_err();
        assert_eq!(
            error.problems(),
            [
                "RATELIMIT_STORAGE_URI: a Redis storage needs policy-runtime's `redis` feature; enable it: \
                 `policy-runtime = { features = [\"redis\"] }`"
            ]
        );
    }
}

/// Months and years stay within the supported range of 3,650 days, for
/// the period and for the time a burst takes to refill.
#[test]
fn months_and_years_keep_the_longest_period() {
    let ten_years = policy_runtime::Quota::parse_list("1 per 10 years").unwrap();
    assert_eq!(ten_years[0].period(), Duration::from_secs(3_600 * 86_400));
    assert!(ten_years[0].period() <= policy_runtime::Quota::MAX_PERIOD);
    let error = builder()
        .from_vars(vars(&[("POLICY_LIMIT_ARCHIVE", "1 per 11 years")]))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "POLICY_LIMIT_ARCHIVE: the period of `1 per 11 years` is too long; the longest supported is 3650 days"
        ]
    );
    // A burst of 10 refills in 3,600 days; 11 would take 3,960.
    assert!(
        RateLimit::builder("flask-burst", "1/year")
            .burst(10)
            .build()
            .is_ok()
    );
    let error = RateLimit::builder("flask-burst", "1/year")
        .burst(11)
        .build()
        .unwrap_err();
    assert!(
        error.problems()[0]
            .contains("a burst of 11 at 1 per 360 days takes 3960 days to replenish"),
        "{error}"
    );
}
