//! The mobile-app backend's policy surface over a real socket: limits and
//! their headers, the Flask error bodies, environments, health.

mod common;

use common::{Buffer, capture, get, post_json, start, vars};
use mobile_scoring::{DEMO_EMAIL, DEMO_PASSWORD, app, engine, engine_builder, subscriber};
use policy_runtime::{Environment, ManualClock};
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

async fn production() -> String {
    start(app(engine(vars(&[])).unwrap())).await
}

fn score(text: &str) -> serde_json::Value {
    json!({"text": text, "audio": "UklGRiQAAABXQVZF"})
}

#[tokio::test]
async fn score_daily_takes_20_an_hour_with_the_legacy_headers_then_a_flask_429() {
    let base = production().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for left in (0..20).rev() {
        let reply = post_json(&format!("{base}/scoreDaily"), score("hello")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("x-ratelimit-limit"), "20");
        assert_eq!(reply.header("x-ratelimit-remaining"), left.to_string());
        // Epoch seconds, within the hour.
        let reset: u64 = reply.header("x-ratelimit-reset").parse().unwrap();
        assert!(reset >= now && reset <= now + 3600 + 5, "{reset}");
        // The legacy family only, as Flask-Limiter sends.
        assert!(reply.headers.get("ratelimit").is_none());
        assert!(reply.headers.get("ratelimit-policy").is_none());
    }
    let refused = post_json(&format!("{base}/scoreDaily"), score("hello")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 20 per 1 hour"}"#
    );
    assert_eq!(refused.header("x-ratelimit-remaining"), "0");
    assert_eq!(refused.header("retry-after"), "180"); // one more every 3600 s / 20
}

#[tokio::test]
async fn register_takes_5_an_hour() {
    let base = production().await;
    let user = json!({"email": "new@example.com", "password": "long enough"});
    for _ in 0..5 {
        let reply = post_json(&format!("{base}/auth/register"), user.clone()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-limit"), "5");
    }
    let refused = post_json(&format!("{base}/auth/register"), user).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 5 per 1 hour"}"#
    );
}

#[tokio::test]
async fn routes_without_a_limit_take_50_an_hour_each_and_200_a_day() {
    let clock = ManualClock::new();
    let engine = engine_builder().clock(clock.clone()).build().unwrap();
    let base = start(app(engine)).await;
    let word = format!("{base}/words/hello");
    for left in (0..50).rev() {
        let reply = get(&word).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("x-ratelimit-limit"), "50");
        assert_eq!(reply.header("x-ratelimit-remaining"), left.to_string());
    }
    let refused = get(&word).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 50 per 1 hour"}"#
    );
    // Each route counts on its own, as in Flask-Limiter.
    let login = post_json(&format!("{base}/auth/login"), json!({})).await;
    assert_eq!(login.header("x-ratelimit-remaining"), "49");

    // Three more hours of 50: the day's 200 are now the tighter limit.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(3600));
        for _ in 0..50 {
            assert_eq!(get(&word).await.status, 200);
        }
    }
    clock.advance(Duration::from_secs(3600));
    let mut last = get(&word).await;
    assert_eq!(last.header("x-ratelimit-limit"), "200");
    for _ in 0..50 {
        if last.status == 429 {
            break;
        }
        last = get(&word).await;
    }
    assert_eq!(last.status, 429);
    assert_eq!(last.body, r#"{"error":"Too Many Requests: 200 per 1 day"}"#);
}

#[tokio::test]
async fn custom_errors_answer_their_status_with_the_flask_body() {
    let base = production().await;
    let reply = post_json(&format!("{base}/scoreDaily"), score(" ")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"error":"Field 'text' is required"}"#)
    );

    let reply = post_json(
        &format!("{base}/auth/login"),
        json!({"email": DEMO_EMAIL, "password": "wrong"}),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (401, r#"{"error":"Invalid email or password"}"#)
    );
    let reply = post_json(
        &format!("{base}/auth/login"),
        json!({"email": DEMO_EMAIL, "password": DEMO_PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, 200);

    let reply = get(&format!("{base}/words/xyzzy")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (404, r#"{"error":"Word 'xyzzy' not found"}"#)
    );

    // The upstream's failure: its details are logged, never sent.
    let reply = post_json(
        &format!("{base}/scoreDaily"),
        json!({"text": "hello", "audio": ""}),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (500, r#"{"error":"Internal Server Error"}"#)
    );

    // Extractor rejections, in plain handlers too: a body over axum's 2 MB
    // default and JSON that does not parse.
    let client = reqwest::Client::new();
    let big = client
        .post(format!("{base}/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3_000_000]);
    let reply = common::Reply::of(big.send().await.unwrap()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            413,
            r#"{"error":"Payload Too Large: the request body is over the limit"}"#
        )
    );
    let broken = client
        .post(format!("{base}/auth/login"))
        .header("content-type", "application/json")
        .body("{");
    let reply = common::Reply::of(broken.send().await.unwrap()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            r#"{"error":"Failed to parse the request body as JSON: EOF while parsing an object at line 1 column 1"}"#
        )
    );

    // Unknown routes and methods: the same shape.
    let reply = get(&format!("{base}/nowhere")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (404, r#"{"error":"Not Found"}"#)
    );
    let reply = get(&format!("{base}/scoreDaily")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (405, r#"{"error":"Method Not Allowed"}"#)
    );
}

#[tokio::test]
async fn a_5xx_is_logged_with_its_cause_and_shown_in_development_only() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let base = production().await;
    let upstream_down = json!({"text": "hello", "audio": ""});
    let reply = post_json(&format!("{base}/scoreDaily"), upstream_down.clone()).await;
    assert_eq!(reply.body, r#"{"error":"Internal Server Error"}"#);
    let text = logs.text();
    let failure = text
        .lines()
        .find(|line| line.contains("ERROR") && line.contains("request failed"))
        .unwrap_or_else(|| panic!("no error event in {text}"));
    assert!(
        failure.contains("evaluation API at https://speech.internal/v1/score answered 502"),
        "{failure}"
    );

    let development = engine(vars(&[("ENVIRONMENT", "development")])).unwrap();
    let base = start(app(development)).await;
    let reply = post_json(&format!("{base}/scoreDaily"), upstream_down).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.body,
        r#"{"error":"Pronunciation evaluation failed: evaluation API at https://speech.internal/v1/score answered 502"}"#
    );
}

#[tokio::test]
async fn health_is_ok_and_never_limited() {
    let base = production().await;
    for _ in 0..60 {
        let reply = get(&format!("{base}/health")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, r#"{"status":"ok"}"#);
        assert!(reply.headers.get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn each_environment_logs_at_its_level() {
    for (name, environment, debug_expected) in [
        ("development", Environment::Development, true),
        ("staging", Environment::Staging, false),
        ("production", Environment::Production, false),
    ] {
        let engine = engine(vars(&[("ENVIRONMENT", name)])).unwrap();
        assert_eq!(engine.environment(), environment);
        let logs = Buffer::default();
        let _guard = capture(subscriber(engine.environment(), None, logs.clone()));
        let base = start(app(engine)).await;
        assert_eq!(get(&format!("{base}/words/hello")).await.status, 200);
        let text = logs.text();
        // Every environment logs the request; development also each decision.
        assert!(
            text.lines()
                .any(|l| l.contains(" INFO ") && l.contains("request finished")),
            "{name}: {text}"
        );
        let debug = text
            .lines()
            .any(|l| l.contains("DEBUG") && l.contains("policy=\"rate_limit\""));
        assert_eq!(debug, debug_expected, "{name}: {text}");
    }
    let error = engine(vars(&[("ENVIRONMENT", "qa")])).unwrap_err();
    assert_eq!(
        error.problems(),
        ["ENVIRONMENT: `qa` is not an environment; use development, staging or production"]
    );
}

#[tokio::test]
async fn ratelimit_default_replaces_the_default_limits() {
    let engine = engine(vars(&[("RATELIMIT_DEFAULT", "2 per minute")])).unwrap();
    let base = start(app(engine)).await;
    let word = format!("{base}/words/hello");
    assert_eq!(get(&word).await.header("x-ratelimit-limit"), "2");
    assert_eq!(get(&word).await.status, 200);
    let refused = get(&word).await;
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 2 per 1 minute"}"#
    );
}

#[test]
fn the_binary_refuses_an_unknown_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mobile-scoring"))
        .env_clear()
        .env("ENVIRONMENT", "qa")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr,
        "invalid policy configuration:\n  - ENVIRONMENT: `qa` is not an environment; use development, staging or production\n"
    );
}
