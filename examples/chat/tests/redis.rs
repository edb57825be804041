//! Two instances of the chat service sharing one `redis-server` (started by
//! the test, on a free port): their limits are one limit, exactly.

mod common;

use chat::{SLOW_REQUEST, app, engine, redis_store};
use common::{RedisServer, Reply, send, start, vars};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

/// Two instances on one Redis, configured as `main` configures them: the
/// store from `REDIS_URL` in the same variables as the engine.
async fn two_instances(redis: &RedisServer) -> [String; 2] {
    let mut bases = Vec::new();
    for _ in 0..2 {
        let settings = vars(&[("REDIS_URL", &redis.url)]);
        let store = redis_store(settings.clone()).unwrap();
        assert!(store.is_some());
        let engine = engine(settings, store).unwrap();
        bases.push(start(app(engine, SLOW_REQUEST)).await);
    }
    [bases[0].clone(), bases[1].clone()]
}

#[tokio::test]
async fn two_instances_count_one_default_limit() {
    let redis = RedisServer::start();
    let instances = two_instances(&redis).await;
    // Alternately to each instance: one count of 10 a minute.
    for (n, left) in (0..10).rev().enumerate() {
        let url = format!("{}/api/conversations/c1", instances[n % 2]);
        let reply = send(Method::DELETE, &url, None).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("x-ratelimit-remaining"), left.to_string());
    }
    for base in &instances {
        let refused = send(
            Method::DELETE,
            &format!("{base}/api/conversations/c1"),
            None,
        )
        .await;
        assert_eq!(refused.status, 429);
        assert_eq!(
            refused.body,
            r#"{"error":"Too Many Requests: 10 per 1 minute","code":"RATE_LIMITED"}"#
        );
    }
}

#[tokio::test]
async fn concurrent_messages_to_both_instances_get_exactly_the_chat_limit() {
    let redis = RedisServer::start();
    let instances = two_instances(&redis).await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let url = format!("{}/api/chat", instances[n % 2]);
        tasks.push(tokio::spawn(async move {
            let request = reqwest::Client::new()
                .post(url)
                .json(&json!({"message": "hi", "conversation_id": "c1"}));
            Reply::of(request.send().await.unwrap()).await.status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let admitted = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((admitted, refused), (30, 10), "{statuses:?}");
}

#[tokio::test]
async fn health_shows_redis_as_the_rate_limit_store() {
    let redis = RedisServer::start();
    let instances = two_instances(&redis).await;
    for base in &instances {
        // The store connects on first use, within its timeout (50 ms): on a
        // busy machine the first probe may find it not connected yet and
        // report an outage, which a probe a second later clears.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reply = common::get(&format!("{base}/health")).await;
        while reply.status != 200 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reply = common::get(&format!("{base}/health")).await;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body,
            r#"{"checks":{"database":"ok","rate_limit_store":"ok"},"status":"ok","version":"0.1.0"}"#
        );
    }
}
