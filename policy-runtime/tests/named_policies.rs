//! `#[rate_limit(policy = "...")]`: limits defined at run time, in the engine
//! builder or the environment, and a start-up error for an undefined name.
//! (Its own test binary: every engine built in a program must define every
//! policy the program's handlers name.)

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{Engine, EngineBuilder, rate_limit};

#[rate_limit(policy = "login")]
async fn login() -> &'static str {
    "welcome"
}

#[rate_limit(policy = "password-reset")]
async fn reset() -> &'static str {
    "sent"
}

fn app(builder: EngineBuilder) -> Router {
    let engine = builder.build().unwrap();
    Router::new()
        .route("/login", get(login))
        .route("/reset", get(reset))
        .layer(engine)
}

async fn admitted(app: &Router, uri: &str) -> usize {
    let mut count = 0;
    for _ in 0..10 {
        let request = from("192.0.2.1", "GET", uri).body(Body::empty()).unwrap();
        if send(app, request).await.status == StatusCode::OK {
            count += 1;
        }
    }
    count
}

#[tokio::test]
async fn named_limits_come_from_the_builder() {
    let app = app(Engine::builder()
        .policy("login", "3/hour")
        .policy("password-reset", "1/hour"));
    assert_eq!(admitted(&app, "/login").await, 3);
    assert_eq!(admitted(&app, "/reset").await, 1);
}

#[tokio::test]
async fn named_limits_come_from_the_environment() {
    let vars = [
        ("POLICY_LIMIT_LOGIN".to_string(), "2/hour".to_string()),
        (
            "POLICY_LIMIT_PASSWORD_RESET".to_string(),
            "4 per day".to_string(),
        ),
    ];
    let app = app(Engine::builder().from_vars(vars));
    assert_eq!(admitted(&app, "/login").await, 2);
    assert_eq!(admitted(&app, "/reset").await, 4);
}

#[test]
fn an_undefined_policy_is_a_start_up_error() {
    let error = Engine::builder()
        .policy("login", "3/hour")
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "`named_policies::reset` uses the rate-limit policy `password-reset`, which is not defined; \
          define it with `EngineBuilder::policy(\"password-reset\", \"5/hour\")` or the environment variable POLICY_LIMIT_PASSWORD_RESET"
        ]
    );
}

#[test]
fn a_bad_definition_names_its_source() {
    let error = Engine::builder()
        .policy("login", "3/fortnight")
        .from_vars([(
            "POLICY_LIMIT_PASSWORD_RESET".to_string(),
            "0/hour".to_string(),
        )])
        .build()
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("rate-limit policy `login`: unknown time unit `fortnight`"),
        "{text}"
    );
    assert!(
        text.contains("POLICY_LIMIT_PASSWORD_RESET: `0/hour` admits no request"),
        "{text}"
    );
}
