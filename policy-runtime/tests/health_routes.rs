//! The optional health routes: `/health` following the checks,
//! `/health/ping`, `/health/detailed` and `/health/metrics`, each through a
//! real Router; and the plain `Health` without them.
#![cfg(all(feature = "health", feature = "prometheus"))]

mod common;

use axum::Router;
use common::{get, send};
use policy_runtime::{Engine, Health, Metrics};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A health router with one check, `database`, that the test can fail.
fn health(database_up: &Arc<AtomicBool>, optional: bool) -> Router {
    let up = database_up.clone();
    let engine = Engine::builder().build().unwrap();
    let mut health = Health::new("2.0.0")
        .engine(&engine)
        .check("database", move || {
            let up = up.load(Ordering::Relaxed);
            async move {
                if up {
                    Ok(())
                } else {
                    Err("connection refused".to_owned())
                }
            }
        });
    if optional {
        health = health
            .status_from_checks()
            .ping_route()
            .detailed_route()
            .metrics_route();
    }
    health.router()
}

#[tokio::test]
async fn health_follows_the_checks_when_asked() {
    let up = Arc::new(AtomicBool::new(true));
    let app = health(&up, true);
    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        r#"{"checks":{"database":"ok","rate_limit_store":"ok"},"status":"ok","version":"2.0.0"}"#
    );

    up.store(false, Ordering::Relaxed);
    let reply = send(&app, get("/health")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        r#"{"checks":{"database":"failing","rate_limit_store":"ok"},"status":"degraded","version":"2.0.0"}"#
    );
    // The check's error is logged, never sent.
    assert!(!reply.body.contains("refused"));
}

#[tokio::test]
async fn ping_and_detailed() {
    let up = Arc::new(AtomicBool::new(true));
    let app = health(&up, true);
    let reply = send(&app, get("/health/ping")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, r#"{"ping":"pong"}"#)
    );

    let reply = send(&app, get("/health/detailed")).await;
    assert_eq!(reply.status, 200);
    let mut body = reply.json();
    assert!(body["uptime_seconds"].is_u64(), "{body}");
    body.as_object_mut().unwrap().remove("uptime_seconds");
    assert_eq!(
        body,
        json!({"checks": {"database": "ok", "rate_limit_store": "ok"}, "status": "ok", "version": "2.0.0"})
    );

    up.store(false, Ordering::Relaxed);
    let reply = send(&app, get("/health/detailed")).await;
    assert_eq!(reply.status, 503);
    let mut body = reply.json();
    body.as_object_mut().unwrap().remove("uptime_seconds");
    assert_eq!(
        body,
        json!({
            "checks": {"database": "failing", "rate_limit_store": "ok"},
            "failing": ["database"],
            "status": "degraded",
            "version": "2.0.0",
        })
    );
}

#[tokio::test]
async fn metrics_are_the_prometheus_text() {
    Metrics::install().unwrap();
    metrics::counter!("health_routes_test_total").increment(1);
    let app = health(&Arc::new(AtomicBool::new(true)), true);
    let reply = send(&app, get("/health/metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-type").starts_with("text/plain"));
    assert!(
        reply.body.contains("health_routes_test_total 1"),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn without_the_options_health_stays_as_it_was() {
    let up = Arc::new(AtomicBool::new(false));
    let app = health(&up, false);
    let reply = send(&app, get("/health")).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_str()),
        (200, r#"{"status":"ok","version":"2.0.0"}"#)
    );
    for path in ["/health/ping", "/health/detailed", "/health/metrics"] {
        assert_eq!(send(&app, get(path)).await.status, 404, "{path}");
    }
}
