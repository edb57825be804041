//! The chat service's policy surface over a real socket, its limits in
//! memory: default and per-type limits, the 16 MB limit, field errors,
//! generic errors, slow-request logs, health and JSON logs.

mod common;

use chat::{FAILING_MESSAGE, MAX_BODY_BYTES, SLOW_REQUEST, app, engine, redis_store, subscriber};
use common::{Buffer, Reply, capture, free_port, get, post_json, send, start, vars};
use policy_runtime::{ClientKey, Environment, RedisConfigError, RedisStore};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn in_memory(settings: &[(&str, &str)]) -> String {
    start(app(engine(vars(settings), None).unwrap(), SLOW_REQUEST)).await
}

fn message(text: &str) -> Value {
    json!({"message": text, "conversation_id": "c1"})
}

#[tokio::test]
async fn routes_without_a_type_take_ratelimit_default_10_per_minute() {
    let base = in_memory(&[]).await;
    let url = format!("{base}/api/conversations/c1");
    for left in (0..10).rev() {
        let reply = send(Method::DELETE, &url, None).await;
        assert_eq!(reply.status, 404); // nothing to delete, but counted
        assert_eq!(reply.header("x-ratelimit-limit"), "10");
        assert_eq!(reply.header("x-ratelimit-remaining"), left.to_string());
    }
    let refused = send(Method::DELETE, &url, None).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "6");
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 10 per 1 minute","code":"RATE_LIMITED"}"#
    );

    // RATELIMIT_DEFAULT replaces it.
    let base = in_memory(&[("RATELIMIT_DEFAULT", "3 per minute")]).await;
    let reply = send(
        Method::DELETE,
        &format!("{base}/api/conversations/c1"),
        None,
    )
    .await;
    assert_eq!(reply.header("x-ratelimit-limit"), "3");
}

#[tokio::test]
async fn each_endpoint_type_has_its_own_limit() {
    let base = in_memory(&[]).await;
    let chat = post_json(&format!("{base}/api/chat"), message("hello")).await;
    assert_eq!(chat.status, 200);
    assert_eq!(
        chat.body,
        r#"{"conversation_id":"c1","reply":"You said: hello"}"#
    );
    assert_eq!(chat.header("x-ratelimit-limit"), "30");
    let read = get(&format!("{base}/api/conversations/c1/messages")).await;
    assert_eq!(read.body, r#"["hello","You said: hello"]"#);
    assert_eq!(read.header("x-ratelimit-limit"), "60");

    let login = json!({"username": "ada", "password": "wrong password"});
    for _ in 0..5 {
        let reply = post_json(&format!("{base}/api/auth/login"), login.clone()).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.header("x-ratelimit-limit"), "5");
    }
    let refused = post_json(&format!("{base}/api/auth/login"), login).await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 5 per 1 minute","code":"RATE_LIMITED"}"#
    );
}

#[tokio::test]
async fn bodies_over_16_mb_are_refused() {
    assert_eq!(MAX_BODY_BYTES, 16_777_216);
    let base = in_memory(&[]).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let request = client
            .post(format!("{base}/api/chat"))
            .header("content-type", "application/json")
            .body(body);
        async move { Reply::of(request.send().await.unwrap()).await }
    };
    let over = post(vec![b' '; 16 * 1024 * 1024 + 1]).await;
    assert_eq!(over.status, 413);
    assert_eq!(
        over.body,
        r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#
    );
    // 16 MB exactly are read: whitespace, then a short message.
    let mut within = serde_json::to_vec(&message("x")).unwrap();
    within.splice(
        0..0,
        std::iter::repeat_n(b' ', 16 * 1024 * 1024 - within.len()),
    );
    assert_eq!(post(within).await.status, 200);
}

#[tokio::test]
async fn inputs_over_their_length_are_field_errors() {
    let base = in_memory(&[]).await;
    let at_limit = "é".repeat(4000); // characters, not bytes
    assert_eq!(
        post_json(&format!("{base}/api/chat"), message(&at_limit))
            .await
            .status,
        200
    );

    let over = json!({"message": "a".repeat(4001), "conversation_id": "c".repeat(65)});
    let reply = post_json(&format!("{base}/api/chat"), over).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        r#"{"error":"Invalid input","code":"VALIDATION_ERROR","details":[{"field":"message","message":"message must be at most 4000 characters","code":"too_long"},{"field":"conversation_id","message":"conversation_id must be at most 64 characters","code":"too_long"}]}"#
    );
    let reply = post_json(
        &format!("{base}/api/chat"),
        json!({"conversation_id": "c1"}),
    )
    .await;
    assert_eq!(
        reply.body,
        r#"{"error":"Invalid input","code":"VALIDATION_ERROR","details":[{"field":"message","message":"message is required","code":"required"}]}"#
    );
    let long_name = json!({"username": "u".repeat(51), "password": "p"});
    let reply = post_json(&format!("{base}/api/auth/login"), long_name).await;
    assert_eq!(
        reply.body,
        r#"{"error":"Invalid input","code":"VALIDATION_ERROR","details":[{"field":"username","message":"username must be at most 50 characters","code":"too_long"}]}"#
    );
}

#[tokio::test]
async fn error_messages_are_generic() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let base = in_memory(&[]).await;
    let failed = post_json(&format!("{base}/api/chat"), message(FAILING_MESSAGE)).await;
    assert_eq!(failed.status, 502);
    assert_eq!(
        failed.body,
        r#"{"error":"Bad Gateway","code":"UPSTREAM_ERROR"}"#
    );
    let logged = logs
        .events()
        .into_iter()
        .find(|event| event["level"] == "ERROR")
        .expect("the failure is logged");
    assert_eq!(
        logged["fields"]["sources"],
        "model endpoint http://10.0.4.2:8000/v1/chat refused the connection"
    );

    let wrong = json!({"username": "ada", "password": "nope"});
    let reply = post_json(&format!("{base}/api/auth/login"), wrong).await;
    assert_eq!(
        reply.body,
        r#"{"error":"Invalid credentials","code":"UNAUTHORIZED"}"#
    );
    let reply = get(&format!("{base}/api/conversations/unknown/messages")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            404,
            r#"{"error":"Conversation not found","code":"NOT_FOUND"}"#
        )
    );
    let reply = get(&format!("{base}/nowhere")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (404, r#"{"error":"Not Found","code":"NOT_FOUND"}"#)
    );
}

#[tokio::test]
async fn slow_requests_are_logged_at_their_threshold() {
    assert_eq!(SLOW_REQUEST, Duration::from_secs(5));
    // Every request is at least 0 s long: each is slow at a zero threshold.
    for (threshold, slow) in [(Duration::ZERO, true), (SLOW_REQUEST, false)] {
        let logs = Buffer::default();
        let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
        let base = start(app(engine(vars(&[]), None).unwrap(), threshold)).await;
        assert_eq!(
            post_json(&format!("{base}/api/chat"), message("hi"))
                .await
                .status,
            200
        );
        let ends: Vec<Value> = logs
            .events()
            .into_iter()
            .filter(|e| e["span"]["route"] == "/api/chat" && e["fields"]["status"] == 200)
            .collect();
        assert_eq!(ends.len(), 1, "{ends:?}");
        let end = &ends[0];
        if slow {
            assert_eq!(end["level"], "WARN");
            assert_eq!(end["fields"]["message"], "slow request");
            assert_eq!(end["fields"]["threshold_ms"], 0);
        } else {
            assert_eq!(end["level"], "INFO");
            assert_eq!(end["fields"]["message"], "request finished");
        }
        assert!(end["fields"]["latency_ms"].is_u64());
        assert_eq!(end["span"]["method"], "POST");
    }
}

#[tokio::test]
async fn health_shows_its_dependencies_and_is_never_limited() {
    let base = in_memory(&[]).await;
    for _ in 0..15 {
        let reply = get(&format!("{base}/health")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body,
            r#"{"checks":{"database":"ok","rate_limit_store":"ok"},"status":"ok","version":"0.1.0"}"#
        );
        assert!(reply.headers.get("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn without_redis_the_limits_fall_back_to_memory_logged_and_health_says_so() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let away = RedisStore::builder()
        .url(format!("redis://127.0.0.1:{}", free_port()))
        .build()
        .unwrap();
    let base = start(app(engine(vars(&[]), Some(away)).unwrap(), SLOW_REQUEST)).await;
    let url = format!("{base}/api/conversations/c1");
    for _ in 0..10 {
        assert_eq!(send(Method::DELETE, &url, None).await.status, 404);
    }
    assert_eq!(send(Method::DELETE, &url, None).await.status, 429);
    let outage = logs
        .events()
        .into_iter()
        .filter(|e| e["level"] == "WARN" && e["fields"]["store"] == "redis")
        .count();
    assert_eq!(outage, 1, "{}", logs.text());

    let health = get(&format!("{base}/health")).await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.body,
        r#"{"checks":{"database":"ok","rate_limit_store":"failing"},"status":"degraded","version":"0.1.0"}"#
    );
}

#[tokio::test]
async fn logs_are_json_lines_with_the_request() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let base = in_memory(&[]).await;
    let request = reqwest::Client::new()
        .post(format!("{base}/api/chat"))
        .header("x-request-id", "req-7")
        .json(&message("hi"));
    assert_eq!(request.send().await.unwrap().status(), 200);
    let text = logs.text();
    assert!(!text.is_empty());
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            event["timestamp"].is_string() && event["level"].is_string(),
            "{line}"
        );
    }
    let finished = logs
        .events()
        .into_iter()
        .find(|e| e["fields"]["message"] == "request finished")
        .unwrap();
    assert_eq!(finished["span"]["request_id"], "req-7");
    assert_eq!(finished["span"]["route"], "/api/chat");
}

#[test]
fn the_redis_store_comes_from_the_variables_the_engine_reads() {
    // No REDIS_URL: no store, the engine counts in memory.
    assert!(redis_store(vars(&[("PORT", "3105")])).unwrap().is_none());
    let store = redis_store(vars(&[("REDIS_URL", "redis://127.0.0.1:6379")]))
        .unwrap()
        .unwrap();
    assert!(
        store
            .key("login", &ClientKey::Global)
            .starts_with("chat:login:")
    );
    let error = redis_store(vars(&[("REDIS_URL", "127.0.0.1:6379")])).unwrap_err();
    assert!(
        matches!(error, RedisConfigError::InvalidUrl { .. }),
        "{error}"
    );
    // The TLS files too, named by their variables.
    let error = redis_store(vars(&[
        ("REDIS_URL", "rediss://127.0.0.1:6380"),
        ("REDIS_TLS_CA_FILE", "/no/such/ca.pem"),
    ]))
    .unwrap_err();
    assert!(error.to_string().contains("REDIS_TLS_CA_FILE"), "{error}");
}
