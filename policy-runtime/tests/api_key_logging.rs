//! One log event per API-key decision, with `reason`, `key_id`, `client_ip`
//! and a sanitised `request_id`; and no secret, nor any piece of one longer
//! than a short fingerprint, in any log line, start-up included.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{ApiKey, Engine, Lockout, ManualClock, require_api_key};
use std::time::{Duration, SystemTime};

const BILLING: &str = "Xc4vB7nM0qW3eR6tY9uI";
const OPS: &str = "Jd2fG5hK8lZ1xC4vB7nM";
const RETIRED: &str = "Qw9eR2tY5uI8oP1aS4dF";
const LEAKED: &str = "Gh6jK9lZ2xC5vB8nM1qW";
const GUESS: &str = "Vb3nM6qW9eR2tY5uI8oP";
const SECRETS: [&str; 5] = [BILLING, OPS, RETIRED, LEAKED, GUESS];

/// The longest piece of a secret that may appear in logs by chance.
const FINGERPRINT_LEN: usize = 8;

#[require_api_key]
async fn plain() -> &'static str {
    "ok"
}

#[require_api_key(scope = "admin")]
async fn admin() -> &'static str {
    "ok"
}

fn app(clock: &ManualClock) -> (Router, Engine) {
    let engine = Engine::builder()
        .clock(clock.clone())
        .lockout(Lockout::new(
            3,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ))
        .api_key("billing", BILLING)
        .api_key_with(ApiKey::new("ops", OPS).scopes(["admin"]))
        .api_key_with(
            ApiKey::new("retired", RETIRED).expires_at(SystemTime::now() - Duration::from_secs(1)),
        )
        .api_key("leaked", LEAKED)
        .build()
        .unwrap();
    let router = Router::new()
        .route("/plain", get(plain))
        .route("/admin", get(admin))
        .layer(engine.clone());
    (router, engine)
}

async fn call(app: &Router, uri: &str, key: Option<&str>, request_id: &str) -> StatusCode {
    let mut request = from("203.0.113.9", "GET", uri).header("x-request-id", request_id);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    send(app, request.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn every_decision_is_one_event_with_its_reason_and_context() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let (app, engine) = app(&clock);
    engine.revoke_key("leaked");

    let steps: [(&str, Option<&str>, StatusCode); 7] = [
        ("/plain", Some(BILLING), StatusCode::OK),
        ("/plain", None, StatusCode::UNAUTHORIZED),
        ("/admin", Some(BILLING), StatusCode::FORBIDDEN),
        ("/plain", Some(RETIRED), StatusCode::UNAUTHORIZED),
        ("/plain", Some(LEAKED), StatusCode::UNAUTHORIZED),
        ("/plain", Some(GUESS), StatusCode::UNAUTHORIZED),
        ("/admin", Some(OPS), StatusCode::TOO_MANY_REQUESTS),
    ];
    for (index, (uri, key, status)) in steps.iter().enumerate() {
        let request_id = format!("req-{index}");
        assert_eq!(
            call(&app, uri, *key, &request_id).await,
            *status,
            "step {index}"
        );
    }

    let events = logs.policy_events("api_key");
    assert_eq!(events.len(), steps.len(), "{}", logs.text());
    let expected: [(&str, Option<&str>, Option<&str>); 7] = [
        ("DEBUG", None, Some("billing")),
        ("WARN", Some("missing"), None),
        ("WARN", Some("insufficient_scope"), Some("billing")),
        ("WARN", Some("expired"), Some("retired")),
        ("WARN", Some("revoked"), Some("leaked")),
        ("WARN", Some("invalid"), None),
        ("WARN", Some("locked_out"), None),
    ];
    for (index, (event, (level, reason, key_id))) in events.iter().zip(expected).enumerate() {
        let fields = &event["fields"];
        assert_eq!(event["level"], level, "event {index}: {event}");
        assert_eq!(fields["reason"].as_str(), reason, "event {index}: {event}");
        assert_eq!(fields["key_id"].as_str(), key_id, "event {index}: {event}");
        assert_eq!(fields["client_ip"], "203.0.113.9", "event {index}");
        assert_eq!(
            fields["request_id"],
            format!("req-{index}"),
            "event {index}"
        );
        let outcome = if index == 0 { "allow" } else { "deny" };
        assert_eq!(fields["outcome"], outcome, "event {index}");
    }
    assert_eq!(events[0]["fields"]["scope"], "api_key_logging::plain");
    assert_eq!(events[2]["fields"]["scope"], "api_key_logging::admin");
    assert_eq!(events[2]["fields"]["required_scope"], "the scope `admin`");
    assert_eq!(events[5]["fields"]["lockout_secs"], 60);
}

#[tokio::test]
async fn a_request_id_that_is_long_or_unusual_is_left_out() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    let (app, _) = app(&clock);
    let long = "a".repeat(129);
    let just_right = "b".repeat(128);
    for request_id in [
        "has space",
        "quote\"d",
        "semi;colon",
        "slash/ed",
        &long,
        &just_right,
    ] {
        call(&app, "/plain", None, request_id).await;
    }
    let events = logs.policy_events("api_key");
    assert_eq!(events.len(), 6);
    for event in &events[..5] {
        assert!(event["fields"].get("request_id").is_none(), "{event}");
    }
    assert_eq!(events[5]["fields"]["request_id"], just_right);
    let text = logs.text();
    assert!(!text.contains("has space") && !text.contains("semi;colon"));
}

#[tokio::test]
async fn no_secret_nor_a_piece_of_one_longer_than_a_fingerprint_is_ever_logged() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::new();
    // The build (warnings, start-up table) is captured too.
    let (app, engine) = app(&clock);
    engine.revoke_key("leaked");
    for key in SECRETS {
        for uri in ["/plain", "/admin"] {
            call(&app, uri, Some(key), "req").await;
            let request = from("203.0.113.10", "GET", uri)
                .header("x-api-key", key)
                .body(Body::empty())
                .unwrap();
            send(&app, request).await;
        }
    }
    let text = logs.text();
    assert!(logs.policy_events("api_key").len() >= 20, "{text}");
    for secret in SECRETS {
        for start in 0..secret.len() - FINGERPRINT_LEN {
            let piece = &secret[start..=start + FINGERPRINT_LEN];
            assert!(
                !text.contains(piece),
                "`{piece}`, a piece of a key, is in the logs:\n{text}"
            );
        }
    }
}
