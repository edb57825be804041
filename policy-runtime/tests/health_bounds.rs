//! What a call of the public health routes can cost: each check within its
//! timeout, one run of the checks shared by the requests that arrive while
//! it is under way, and a run reused for `cache_for`; through a real Router.
#![cfg(feature = "health")]

mod common;

use common::{Logs, get, send};
use policy_runtime::Health;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A check named `database` that counts its runs and fails while `up` is
/// false.
fn database(health: Health, up: &Arc<AtomicBool>, runs: &Arc<AtomicUsize>) -> Health {
    let (up, runs) = (up.clone(), runs.clone());
    health.check("database", move || {
        runs.fetch_add(1, Ordering::SeqCst);
        let up = up.load(Ordering::SeqCst);
        async move {
            if up {
                Ok(())
            } else {
                Err("connection refused".to_owned())
            }
        }
    })
}

#[tokio::test]
async fn a_check_that_never_answers_fails_at_its_timeout_and_says_so_in_the_log() {
    let (logs, _guard) = Logs::capture();
    let app = Health::new("1.0.0")
        .check_timeout(Duration::from_millis(50))
        .check("database", std::future::pending::<Result<(), String>>)
        .check("cache", || async { Ok(()) })
        .router();

    let reply = send(&app, get("/health/ready")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        r#"{"checks":{"cache":"ok","database":"failing"},"failing":["database"],"status":"unavailable"}"#
    );
    let failed = logs.containing("WARN", "readiness check failed");
    assert_eq!(failed.len(), 1, "{}", logs.text());
    assert_eq!(failed[0]["fields"]["check"], "database");
    assert_eq!(failed[0]["fields"]["error"], "no answer within 50ms");
}

/// A check that sleeps `micros` (on the test's paused clock), then passes.
fn sleeping(
    micros: u64,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
+ Send
+ Sync
+ 'static {
    move || {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_micros(micros)).await;
            Ok(())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_has_two_seconds_unless_told_otherwise() {
    let app = Health::new("1.0.0")
        .check("slow", sleeping(1_900_000))
        .check("slower", sleeping(2_100_000))
        .router();
    let reply = send(&app, get("/health/ready")).await;
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.body,
        r#"{"checks":{"slow":"ok","slower":"failing"},"failing":["slower"],"status":"unavailable"}"#
    );

    // A zero timeout is taken as 1 ms.
    let app = Health::new("1.0.0")
        .check_timeout(Duration::ZERO)
        .check("quick", sleeping(500))
        .check("slow", sleeping(1_500))
        .router();
    let reply = send(&app, get("/health/ready")).await;
    assert_eq!(
        reply.body,
        r#"{"checks":{"quick":"ok","slow":"failing"},"failing":["slow"],"status":"unavailable"}"#
    );
}

#[tokio::test]
async fn requests_arriving_during_a_run_of_the_checks_share_it() {
    let runs = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let check = {
        let (runs, release) = (runs.clone(), release.clone());
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
            let release = release.clone();
            async move {
                release.notified().await;
                Ok(())
            }
        }
    };
    let app = Health::new("1.0.0")
        .check("database", check)
        .status_from_checks()
        .router();

    // Twenty requests to the two routes that run the checks; on this
    // one-thread runtime each runs until it waits, for the run's end or
    // for the check to be released.
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            let path = if i % 2 == 0 {
                "/health/ready"
            } else {
                "/health"
            };
            tokio::spawn(async move { send(&app, get(path)).await })
        })
        .collect();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    release.notify_one();
    for request in requests {
        assert_eq!(request.await.unwrap().status, 200);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A request after the run ended runs the checks again.
    let next = tokio::spawn({
        let app = app.clone();
        async move { send(&app, get("/health/ready")).await }
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    assert_eq!(next.await.unwrap().status, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn cache_for_reuses_a_run_until_it_is_older_than_that() {
    let (up, runs) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let cached = database(Health::new("1.0.0"), &up, &runs)
        .cache_for(Duration::from_millis(300))
        .router();

    assert_eq!(send(&cached, get("/health/ready")).await.status, 200);
    up.store(false, Ordering::SeqCst);
    // Within 300 ms of the run: its answer, without running the check.
    let reply = send(&cached, get("/health/ready")).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        r#"{"checks":{"database":"ok"},"status":"ready"}"#
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = send(&cached, get("/health/ready")).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(reply.status, 503);

    // By default every request after a run ends runs the checks.
    let (up, runs) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicUsize::new(0)),
    );
    let fresh = database(Health::new("1.0.0"), &up, &runs).router();
    assert_eq!(send(&fresh, get("/health/ready")).await.status, 200);
    up.store(false, Ordering::SeqCst);
    assert_eq!(send(&fresh, get("/health/ready")).await.status, 503);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
