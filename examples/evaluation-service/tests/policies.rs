//! The evaluation service's policy surface over a real socket, with limits
//! in memory: per-user limits with burst and the penalty box, per-IP and
//! global limits, the admin routes, the lockout, the detailed error format
//! in development and production, the test bypass, and the health routes.

mod support;

use serde_json::json;
use support::{ADMIN_KEY, ALICE_KEY, BOB_KEY, start, vars};

const DEV: (&str, &str) = ("ENVIRONMENT", "development");
const PROD: (&str, &str) = ("ENVIRONMENT", "production");

fn answer(text: &str) -> String {
    json!({"question_id": 7, "answer": text}).to_string()
}

#[tokio::test]
async fn per_user_limit_has_a_burst_then_the_penalty_box() {
    let service = start(vars(&[PROD])).await;
    let evaluate = |key: &'static str| {
        service
            .call("POST", "/api/v1/evaluate")
            .from("203.0.113.10")
            .key(key)
            .request_id("req_burst")
            .json(&answer("the cat sat"))
            .send()
    };
    // 10 a minute with bursts of 15: fifteen at once, then refused.
    for left in (0..15).rev() {
        let reply = evaluate(ALICE_KEY).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        // The per-user limit has the fewest requests left: its count and window.
        assert_eq!(reply.header("x-ratelimit-limit"), "10");
        assert_eq!(reply.header("x-ratelimit-remaining"), left.to_string());
        assert_eq!(reply.header("x-ratelimit-window"), "60");
        assert_eq!(
            reply.json(),
            json!({"id": 7011, "user": "alice", "score": 30})
        );
    }
    let refused = evaluate(ALICE_KEY).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(refused.header("retry-after"), "6");
    assert_eq!(refused.header("x-ratelimit-limit"), "10");
    assert_eq!(refused.header("x-ratelimit-remaining"), "0");
    assert_eq!(refused.header("x-ratelimit-window"), "60");
    assert_eq!(refused.header("x-request-id"), "req_burst");
    assert_eq!(
        refused.detailed(),
        json!({
            "error": true,
            "error_code": "RATE_LIMITED",
            "message": "Too Many Requests: 10 per 1 minute",
            "details": [],
            "request_id": "req_burst",
            "severity": "medium",
            "category": "rate_limit",
        })
    );
    // Per user: bob, from the same address, still has his burst.
    assert_eq!(evaluate(BOB_KEY).await.status, 200);

    // Four more refusals make five within a minute: alice is blocked.
    for _ in 0..4 {
        let reply = evaluate(ALICE_KEY).await;
        assert_eq!(
            reply.json()["message"],
            "Too Many Requests: 10 per 1 minute"
        );
    }
    let blocked = evaluate(ALICE_KEY).await;
    assert_eq!(blocked.status, 429);
    assert_eq!(blocked.header("retry-after"), "300");
    assert_eq!(blocked.header("x-ratelimit-window"), "60");
    assert_eq!(
        blocked.json()["message"],
        "Too Many Requests: blocked after repeated violations"
    );

    // The admin clears alice's limit, and the block with it.
    let cleared = service
        .call("DELETE", "/admin/rate-limits/evaluate/alice")
        .from("203.0.113.1")
        .key(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(cleared.status, 200);
    assert_eq!(
        cleared.json(),
        json!({"scope": "evaluate", "client": "alice", "cleared": true})
    );
    assert_eq!(evaluate(ALICE_KEY).await.status, 200);
}

#[tokio::test]
async fn per_ip_and_global_limits_as_the_admin_sees_them() {
    let service = start(vars(&[PROD])).await;
    let rubrics = |ip: &'static str| service.call("GET", "/api/v1/rubrics").from(ip).send();
    for _ in 0..30 {
        let reply = rubrics("203.0.113.20").await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json(),
            json!({"rubrics": ["grammar", "pronunciation", "fluency"]})
        );
    }
    let refused = rubrics("203.0.113.20").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "2");
    assert_eq!(refused.header("x-ratelimit-limit"), "30");
    assert_eq!(refused.header("x-ratelimit-window"), "60");
    assert_eq!(
        refused.json()["message"],
        "Too Many Requests: 30 per 1 minute"
    );
    // Per IP: another address is not limited.
    assert_eq!(rubrics("203.0.113.21").await.status, 200);

    let admin = |method: &'static str, path: &'static str| {
        service
            .call(method, path)
            .from("203.0.113.1")
            .key(ADMIN_KEY)
            .send()
    };
    let state = admin("GET", "/admin/rate-limits/rubrics/203.0.113.20").await;
    assert_eq!(state.status, 200);
    assert_eq!(
        state.json(),
        json!({
            "scope": "rubrics", "client": "203.0.113.20", "limit": 30,
            "period_seconds": 60, "remaining": 0, "reset_after_seconds": 60,
        })
    );
    // Global: one count for everyone, 1000 a minute; 31 requests were admitted
    // (the refused one counted against no other limit).
    let global = admin("GET", "/admin/rate-limits/global/global").await;
    assert_eq!(global.json()["remaining"], 969);
    assert_eq!(global.json()["limit"], 1000);

    // Per scope since start-up; the request the per-IP limit refused is
    // counted as refused in every scope it passed through.
    let stats = admin("GET", "/admin/rate-limits/stats").await;
    assert_eq!(
        stats.json(),
        json!({"scopes": [
            {"scope": "global", "allowed": 31, "rejected": 1},
            {"scope": "rubrics", "allowed": 31, "rejected": 1},
        ]})
    );

    let cleared = admin("DELETE", "/admin/rate-limits/rubrics/203.0.113.20").await;
    assert_eq!(cleared.status, 200);
    assert_eq!(rubrics("203.0.113.20").await.status, 200);

    let unknown = service
        .call("GET", "/admin/rate-limits/rubrics/198.51.100.9")
        .from("203.0.113.1")
        .key(ADMIN_KEY)
        .request_id("req_state")
        .send()
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.detailed(),
        json!({
            "error": true, "error_code": "NO_LIMIT_STATE",
            "message": "no rate-limit state for `198.51.100.9` in `rubrics`",
            "details": [], "request_id": "req_state", "severity": "low", "category": "not_found",
        })
    );
}

#[tokio::test]
async fn admin_routes_need_the_admin_scope() {
    let service = start(vars(&[PROD])).await;
    let without = service
        .call("GET", "/admin/rate-limits/stats")
        .from("203.0.113.30")
        .request_id("req_admin")
        .send()
        .await;
    assert_eq!(without.status, 401);
    assert_eq!(without.header("www-authenticate"), r#"Bearer realm="api""#);
    assert_eq!(
        without.detailed(),
        json!({
            "error": true, "error_code": "UNAUTHORIZED", "message": "Missing API key",
            "details": [], "request_id": "req_admin", "severity": "medium", "category": "authentication",
        })
    );
    let user = service
        .call("DELETE", "/admin/lockouts/203.0.113.9")
        .from("203.0.113.30")
        .key(ALICE_KEY)
        .request_id("req_admin")
        .send()
        .await;
    assert_eq!(user.status, 403);
    assert_eq!(
        user.detailed(),
        json!({
            "error": true, "error_code": "FORBIDDEN",
            "message": "Forbidden: this API key lacks the scope `admin`",
            "details": [], "request_id": "req_admin", "severity": "medium", "category": "authorization",
        })
    );
}

/// A client that sends no `x-request-id` gets one shaped as the original's:
/// `req_` and 32 hex digits, in the header and in the error body.
#[tokio::test]
async fn generated_request_ids_are_req_and_hex_digits() {
    fn assert_shaped(id: &str) {
        let hex = id.strip_prefix("req_").unwrap_or_else(|| panic!("{id}"));
        assert_eq!(hex.len(), 32, "{id}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{id}"
        );
    }
    let service = start(vars(&[PROD])).await;
    let refused = service
        .call("GET", "/admin/rate-limits/stats")
        .from("203.0.113.31")
        .send()
        .await;
    assert_eq!(refused.status, 401);
    let id = refused.header("x-request-id").to_owned();
    assert_shaped(&id);
    assert_eq!(
        refused.detailed(),
        json!({
            "error": true, "error_code": "UNAUTHORIZED", "message": "Missing API key",
            "details": [], "request_id": id, "severity": "medium", "category": "authentication",
        })
    );
    // Every response carries one, a new one each time; an id the client
    // sends is kept.
    let rubrics = service
        .call("GET", "/api/v1/rubrics")
        .from("203.0.113.31")
        .send()
        .await;
    assert_eq!(rubrics.status, 200);
    assert_shaped(rubrics.header("x-request-id"));
    assert_ne!(rubrics.header("x-request-id"), id);
    let kept = service
        .call("GET", "/api/v1/rubrics")
        .from("203.0.113.31")
        .request_id("client-7")
        .send()
        .await;
    assert_eq!(kept.header("x-request-id"), "client-7");
}

#[tokio::test]
async fn five_bad_keys_lock_a_client_out_until_an_admin_unlocks_it() {
    let service = start(vars(&[PROD])).await;
    let evaluation = |key: &'static str| {
        service
            .call("GET", "/api/v1/evaluations/4242")
            .from("203.0.113.9")
            .key(key)
            .request_id("req_lock")
            .send()
    };
    for _ in 0..5 {
        let reply = evaluation("a-guessed-key-0123456789").await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json()["message"], "Invalid API key");
    }
    // Locked out for 30 minutes, even with a valid key.
    let locked = evaluation(ALICE_KEY).await;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.header("retry-after"), "1800");
    assert_eq!(
        locked.detailed(),
        json!({
            "error": true, "error_code": "LOCKED_OUT",
            "message": "Too Many Requests: too many failed API key attempts from this client",
            "details": [], "request_id": "req_lock", "severity": "medium", "category": "rate_limit",
        })
    );

    let admin = |method: &'static str| {
        service
            .call(method, "/admin/lockouts/203.0.113.9")
            .from("203.0.113.1")
            .key(ADMIN_KEY)
            .send()
    };
    assert_eq!(
        admin("GET").await.json(),
        json!({"ip": "203.0.113.9", "failures": 0, "locked": true, "locked_for_seconds": 1800})
    );

    assert_eq!(
        admin("DELETE").await.json(),
        json!({"ip": "203.0.113.9", "unlocked": true})
    );
    assert_eq!(
        admin("GET").await.json(),
        json!({"ip": "203.0.113.9", "failures": 0, "locked": false, "locked_for_seconds": null})
    );
    let reply = evaluation(ALICE_KEY).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"id": 4242, "user": "alice", "score": 0})
    );
}

#[tokio::test]
async fn validation_details_show_in_development_and_not_in_production() {
    let empty = answer("  ");
    let zero = json!({"question_id": 0, "answer": "x"}).to_string();
    for (environment, shown) in [(DEV, true), (PROD, false)] {
        let service = start(vars(&[environment])).await;
        let reply = service
            .call("POST", "/api/v1/evaluate")
            .key(ALICE_KEY)
            .request_id("req_valid")
            .json(&empty)
            .send()
            .await;
        assert_eq!(reply.status, 422);
        let details = if shown {
            json!([{"field": "answer", "message": "the answer must not be empty", "code": "value_error.missing"}])
        } else {
            json!([])
        };
        assert_eq!(
            reply.detailed(),
            json!({
                "error": true, "error_code": "VALIDATION_ERROR",
                "message": "the evaluation request is invalid", "details": details,
                "request_id": "req_valid", "severity": "medium", "category": "validation",
            })
        );
        // A body of the wrong shape: axum's rejection, in the same format.
        let reply = service
            .call("POST", "/api/v1/evaluate")
            .key(ALICE_KEY)
            .json(r#"{"question_id":"seven","answer":"x"}"#)
            .send()
            .await;
        assert_eq!(reply.status, 422);
        assert_eq!(
            reply.json()["details"].as_array().unwrap().is_empty(),
            !shown
        );
        let reply = service
            .call("POST", "/api/v1/evaluate")
            .key(ALICE_KEY)
            .json(&zero)
            .send()
            .await;
        assert_eq!(
            reply.json()["details"].as_array().unwrap().len(),
            usize::from(shown)
        );
    }
}

#[tokio::test]
async fn errors_in_the_detailed_format() {
    let production = start(vars(&[PROD])).await;
    let development = start(vars(&[DEV])).await;

    let missing = production
        .call("GET", "/api/v1/evaluations/7")
        .key(BOB_KEY)
        .request_id("req_err")
        .send()
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.detailed(),
        json!({
            "error": true, "error_code": "EVALUATION_NOT_FOUND", "message": "no evaluation with id 7",
            "details": [], "request_id": "req_err", "severity": "low", "category": "lookup",
        })
    );

    // The scoring model's outage: its address in development only.
    for (service, message) in [
        (&production, "Bad Gateway"),
        (
            &development,
            "the scoring model at 10.0.3.7:8500 did not answer",
        ),
    ] {
        let reply = service
            .call("POST", "/api/v1/evaluate")
            .key(BOB_KEY)
            .request_id("req_err")
            .json(&answer("model-down"))
            .send()
            .await;
        assert_eq!(reply.status, 502);
        assert_eq!(
            reply.detailed(),
            json!({
                "error": true, "error_code": "SCORING_FAILED", "message": message,
                "details": [], "request_id": "req_err", "severity": "high", "category": "upstream",
            })
        );
    }

    // 64 KB per answer: refused from the Content-Length, before the key is checked.
    let large = answer(&"a".repeat(70_000));
    let reply = production
        .call("POST", "/api/v1/evaluate")
        .request_id("req_err")
        .json(&large)
        .send()
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.detailed(),
        json!({
            "error": true, "error_code": "PAYLOAD_TOO_LARGE",
            "message": "Payload Too Large: the request body is over the limit",
            "details": [], "request_id": "req_err", "severity": "medium", "category": "validation",
        })
    );

    let nowhere = production
        .call("GET", "/nowhere")
        .request_id("req_err")
        .send()
        .await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(nowhere.json()["error_code"], "NOT_FOUND");
}

#[tokio::test]
async fn limits_are_bypassed_for_tests_outside_production() {
    let service = start(vars(&[DEV, ("RATELIMIT_ENABLED", "false")])).await;
    for _ in 0..40 {
        let reply = service
            .call("GET", "/api/v1/rubrics")
            .from("203.0.113.40")
            .send()
            .await;
        assert_eq!(reply.status, 200);
        assert!(reply.headers.get("x-ratelimit-limit").is_none());
        assert!(reply.headers.get("x-ratelimit-window").is_none());
    }
    // Never in production.
    let error = evaluation_service::configure(vars(&[PROD, ("RATELIMIT_ENABLED", "false")]))
        .err()
        .expect("production refuses to run without rate limits");
    let evaluation_service::StartupError::Engine(error) = error else {
        panic!("{error}")
    };
    assert_eq!(error.problems().len(), 1);
    assert!(
        error.problems()[0].starts_with("every rate limit is off (RATELIMIT_ENABLED=false"),
        "{:?}",
        error.problems()
    );
}

#[tokio::test]
async fn production_refuses_to_start_without_keys() {
    let error =
        evaluation_service::configure([("ENVIRONMENT".to_owned(), "production".to_owned())])
            .err()
            .expect("no key, no start");
    assert!(
        error
            .to_string()
            .contains("require an API key, but no API key is configured; set API_KEYS"),
        "{error}"
    );
}

#[tokio::test]
async fn health_routes() {
    let service = start(vars(&[PROD])).await;
    let version = env!("CARGO_PKG_VERSION");
    let expect = |path: &'static str, status: u16, body: serde_json::Value| {
        let service = &service;
        async move {
            let reply = service.get(path).await;
            assert_eq!(reply.status, status, "{path}: {}", reply.body);
            assert_eq!(reply.json(), body, "{path}");
        }
    };
    expect("/health", 200, json!({"status": "ok", "version": version})).await;
    expect("/health/ping", 200, json!({"ping": "pong"})).await;
    expect("/health/live", 200, json!({"status": "ok"})).await;
    expect(
        "/health/ready",
        200,
        json!({"checks": {"rate_limit_store": "ok"}, "status": "ready"}),
    )
    .await;
    let detailed = service.get("/health/detailed").await;
    assert_eq!(detailed.status, 200);
    let mut body = detailed.json();
    assert!(body["uptime_seconds"].is_u64());
    body.as_object_mut().unwrap().remove("uptime_seconds");
    assert_eq!(
        body,
        json!({"checks": {"rate_limit_store": "ok"}, "status": "ok", "version": version})
    );

    // Health routes are never rate limited, and their traffic is in the metrics.
    for _ in 0..40 {
        assert_eq!(service.get("/health/ping").await.status, 200);
    }
    let metrics = service.get("/health/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").starts_with("text/plain"));
    assert!(
        metrics
            .body
            .contains(r#"http_requests_total{method="GET",route="/health/ping",status="200"}"#),
        "{}",
        metrics.body
    );
}
