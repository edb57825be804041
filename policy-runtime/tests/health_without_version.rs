//! `Health::without_version`: `/health` without the version, alone and with
//! the checks, through a real Router; the other routes unchanged.
#![cfg(feature = "health")]

mod common;

use axum::Router;
use common::{get, send};
use policy_runtime::Health;

fn failing_database() -> Health {
    Health::new("2.0.0").check("database", || async {
        Err("connection refused".to_owned())
    })
}

#[tokio::test]
async fn health_leaves_the_version_out_when_asked() {
    let app: Router = failing_database().without_version().router();
    let reply = send(&app, get("/health")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, r#"{"status":"ok"}"#)
    );
    // The other routes are as before.
    let ready = send(&app, get("/health/ready")).await;
    assert_eq!(ready.status.as_u16(), 503);
    assert_eq!(
        ready.body,
        r#"{"checks":{"database":"failing"},"failing":["database"],"status":"unavailable"}"#
    );
    let live = send(&app, get("/health/live")).await;
    assert_eq!(live.body, r#"{"status":"ok"}"#);

    let app: Router = failing_database().router();
    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.body, r#"{"status":"ok","version":"2.0.0"}"#);
}

#[tokio::test]
async fn with_the_checks_only_the_version_goes() {
    let app: Router = failing_database()
        .status_from_checks()
        .without_version()
        .router();
    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.status.as_u16(), 503);
    assert_eq!(
        reply.body,
        r#"{"checks":{"database":"failing"},"status":"degraded"}"#
    );

    let app: Router = failing_database().status_from_checks().router();
    let reply = send(&app, get("/health")).await;
    assert_eq!(
        reply.body,
        r#"{"checks":{"database":"failing"},"status":"degraded","version":"2.0.0"}"#
    );
}
