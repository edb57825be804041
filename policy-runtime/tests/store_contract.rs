//! The contract between the engine and a rate-limit store: a store that
//! waits for its answer (as a networked one does) gets the same behaviour
//! as the in-memory one, and a store that says it answers at once but does
//! not is refused with a 500 and a log line, never a hang or a panic.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{Logs, from, send};
use policy_runtime::{
    ApiKeyId, ClientKey, Decision, Engine, LimitRequest, LimiterStore, MemoryStore, StoreFuture,
    rate_limit, require_api_key,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

const KEY: &str = "store-contract-key-0123456789";

#[rate_limit("2/minute")]
#[require_api_key]
async fn limited(id: ApiKeyId) -> String {
    format!("hello {}", id.name())
}

/// Ready on its second poll: the first one asks to be woken and returns
/// `Pending`, as a future waiting for I/O does.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The in-memory store behind a future that waits once before answering.
struct Waiting {
    inner: MemoryStore,
    /// What it says of itself: a store that waits should say `false`.
    claims_at_once: bool,
}

impl LimiterStore for Waiting {
    fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
        StoreFuture::boxed(async move {
            YieldOnce(false).await;
            self.inner.check(requests).await
        })
    }

    fn peek<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
        self.inner.peek(request)
    }

    fn reset<'a>(&'a self, scope: &'a str, key: &'a ClientKey) -> StoreFuture<'a, ()> {
        self.inner.reset(scope, key)
    }

    fn answers_at_once(&self) -> bool {
        self.claims_at_once
    }
}

fn app(claims_at_once: bool) -> Router {
    let engine = Engine::builder()
        .api_key("partner", KEY)
        .limiter_store(Waiting {
            inner: MemoryStore::new(),
            claims_at_once,
        })
        .build()
        .unwrap();
    Router::new().route("/limited", get(limited)).layer(engine)
}

fn request() -> axum::http::Request<Body> {
    from("192.0.2.60", "GET", "/limited")
        .header("x-api-key", KEY)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_store_that_waits_limits_exactly_like_the_in_memory_one() {
    let app = app(false);
    // GCRA: each admitted request pushes the full reset 30 s (60 s / 2) further.
    for (remaining, reset) in [("1", 30), ("0", 60)] {
        let reply = send(&app, request()).await;
        assert_eq!(reply.status, StatusCode::OK);
        // The API key's identity reached the handler through the waiting path.
        assert_eq!(reply.body, "hello partner");
        assert_eq!(reply.header("x-ratelimit-remaining"), remaining);
        assert_eq!(
            reply.header("ratelimit"),
            format!("\"2/60s\";r={remaining};t={reset}")
        );
    }
    let reply = send(&app, request()).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.json()["code"], "RATE_LIMITED");
    assert!(reply.header_u64("retry-after") >= 1);
}

#[tokio::test]
async fn a_store_that_claims_to_answer_at_once_but_waits_is_refused_with_a_500() {
    let (logs, _guard) = Logs::capture();
    let app = app(true);
    for _ in 0..2 {
        let reply = send(&app, request()).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(reply.json()["code"], "INTERNAL_ERROR");
    }
    assert_eq!(
        logs.count("ERROR", "the rate-limit store said it answers at once"),
        2,
        "{}",
        logs.text()
    );
}
