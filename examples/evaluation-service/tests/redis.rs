//! Limits in Redis: two instances of the service sharing one `redis-server`
//! (started by this test, stopped by its PID) count exactly one limit; when
//! Redis stops, each instance counts in memory, logs it, and says so on
//! `/health/ready`. One test in this binary: it reads the logs.

mod support;

use serde_json::json;
use support::{ADMIN_KEY, ALICE_KEY, Logs, RedisServer, admitted_in_turn, start, vars};

const PROD: (&str, &str) = ("ENVIRONMENT", "production");

fn answer() -> String {
    json!({"question_id": 3, "answer": "shared"}).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_exact_limits_then_fall_back_to_memory() {
    let logs = Logs::capture();
    let mut redis = RedisServer::start();
    let url = redis.url();
    let first = start(vars(&[PROD, ("REDIS_URL", &url)])).await;
    let second = start(vars(&[PROD, ("REDIS_URL", &url)])).await;
    assert!(first.uses_redis && second.uses_redis);
    let shared = "rate limits are counted in Redis, shared by every instance";
    assert_eq!(logs.count("INFO", shared), 2);

    // Each instance's connection is made and the script loaded before the
    // counts start, as after a deployment's first requests.
    for instance in [&first, &second] {
        let reply = instance
            .call("GET", "/api/v1/rubrics")
            .from("203.0.113.99")
            .send()
            .await;
        assert_eq!(reply.status, 200);
    }

    // Per user, 10 a minute with bursts of 15: 20 requests alternating
    // between the instances, 15 admitted in all.
    let evaluate = |instance: &support::Instance| {
        instance
            .call("POST", "/api/v1/evaluate")
            .from("203.0.113.50")
            .key(ALICE_KEY)
            .json(&answer())
    };
    assert_eq!(admitted_in_turn(&[&first, &second], 20, evaluate).await, 15);

    // Per IP, 30 a minute: 30 of 40 over both instances.
    let rubrics =
        |instance: &support::Instance| instance.call("GET", "/api/v1/rubrics").from("203.0.113.51");
    assert_eq!(admitted_in_turn(&[&second, &first], 40, rubrics).await, 30);

    // Either instance's admin sees the shared state, and clears it for both.
    let state = first
        .call("GET", "/admin/rate-limits/rubrics/203.0.113.51")
        .from("203.0.113.1")
        .key(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(state.json()["remaining"], 0);
    let cleared = second
        .call("DELETE", "/admin/rate-limits/rubrics/203.0.113.51")
        .from("203.0.113.1")
        .key(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(cleared.status, 200);
    let state = first
        .call("GET", "/admin/rate-limits/rubrics/203.0.113.51")
        .from("203.0.113.1")
        .key(ADMIN_KEY)
        .send()
        .await;
    assert_eq!(state.status, 404, "{}", state.body);
    assert_eq!(
        first.get("/health/ready").await.json(),
        json!({"checks": {"rate_limit_store": "ok"}, "status": "ready"})
    );

    // Redis stops: each instance counts in memory, and is not ready.
    redis.stop();
    let rubrics =
        |instance: &support::Instance| instance.call("GET", "/api/v1/rubrics").from("203.0.113.52");
    let admitted = admitted_in_turn(&[&first], 35, rubrics).await;
    assert_eq!(admitted, 30, "the limit holds in memory");
    // The outage is logged once, by the one instance that met it.
    let outage = "Redis is unavailable for rate limiting";
    assert_eq!(logs.count("WARN", outage), 1);
    let ready = first.get("/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(
        ready.json(),
        json!({"checks": {"rate_limit_store": "failing"}, "failing": ["rate_limit_store"], "status": "unavailable"})
    );
    let detailed = first.get("/health/detailed").await;
    assert_eq!(detailed.status, 503);
    assert_eq!(detailed.json()["status"], "degraded");
    // Liveness does not depend on Redis.
    assert_eq!(first.get("/health/live").await.status, 200);
}
