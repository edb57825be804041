//! `REDIS_URL` names a server that does not answer at start-up: the service
//! starts, logs that it counts in memory, holds its limits in memory, and is
//! not ready. One test in this binary: it reads the logs.

mod support;

use support::{Logs, admitted_in_turn, closed_port_url, start, vars};

const PROD: (&str, &str) = ("ENVIRONMENT", "production");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_absent_at_start_runs_on_memory() {
    let logs = Logs::capture();
    let service = start(vars(&[PROD, ("REDIS_URL", &closed_port_url())])).await;
    assert!(service.uses_redis);
    let at_start = "Redis cannot be reached at start-up: rate limits are counted in memory";
    assert_eq!(logs.count("WARN", at_start), 1);
    let rubrics =
        |instance: &support::Instance| instance.call("GET", "/api/v1/rubrics").from("203.0.113.60");
    assert_eq!(admitted_in_turn(&[&service], 32, rubrics).await, 30);
    let outage = "Redis is unavailable for rate limiting";
    assert_eq!(logs.count("WARN", outage), 1);
    assert_eq!(service.get("/health/ready").await.status, 503);
    assert_eq!(service.get("/health").await.status, 200);
}
