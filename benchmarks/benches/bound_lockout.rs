//! Cost of one refused bad-key request under the brute-force lockout, with
//! the lockout's client table holding a few clients and holding as many as
//! it may (100,000, the default cap).
//!
//! Each iteration sends one request with an unknown key, from a client the
//! table does not hold (the table is filled with other clients beforehand),
//! through the Router with `oneshot`; the reply must be a 401. Before each
//! request, outside the timed region, the client is unlocked, so that the
//! measured request is always a first failure and never a 429. The two
//! figures should be the same within noise: a full table must not make a
//! request pay for a sweep of the whole table.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench bound_lockout
//! ```

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use benchmarks::ready_now;
use criterion::{Criterion, criterion_group, criterion_main};
use policy_runtime::{Engine, require_api_key};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tower::ServiceExt;

const KEY: &str = "bench-lockout-key-0123456789abcdef";
const WRONG: &str = "bench-lockout-bad-0123456789abcdef";

/// The default lockout table cap.
const FULL: u32 = 100_000;

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

/// A distinct IPv6 /64 per `n`, so each is its own client to the lockout.
fn client(n: u32) -> IpAddr {
    let [a, b, c, d] = n.to_be_bytes();
    IpAddr::V6(Ipv6Addr::from([
        0x20, 0x01, 0x0d, 0xb8, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 1,
    ]))
}

fn bad_key_from(ip: IpAddr) -> Request<Body> {
    Request::get("/protected")
        .header("x-api-key", WRONG)
        .extension(ConnectInfo(SocketAddr::new(ip, 40_000)))
        .body(Body::empty())
        .expect("the benchmark request is valid")
}

fn status(app: &Router, request: Request<Body>) -> StatusCode {
    ready_now(app.clone().oneshot(request))
        .unwrap_or_else(|never| match never {})
        .status()
}

/// A router whose lockout table holds `tracked` clients, each with one failure.
fn app_with(tracked: u32) -> (Router, Engine) {
    let engine = Engine::builder()
        .api_key("client", KEY)
        .build()
        .expect("the bench engine builds");
    let app = Router::new()
        .route("/protected", get(protected))
        .layer(engine.clone());
    for n in 0..tracked {
        assert_eq!(
            status(&app, bad_key_from(client(n))),
            StatusCode::UNAUTHORIZED
        );
    }
    (app, engine)
}

fn bound_lockout(c: &mut Criterion) {
    let mut group = c.benchmark_group("bound_lockout");
    // A client outside every filled range.
    let fresh = IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, 0xffff, 0xffff, 0, 0, 0, 1));
    for (name, tracked) in [
        ("refused_bad_key/normal_table", 1_000),
        ("refused_bad_key/full_table", FULL),
    ] {
        let (app, engine) = app_with(tracked);
        assert_eq!(status(&app, bad_key_from(fresh)), StatusCode::UNAUTHORIZED);
        group.bench_function(name, |b| {
            // Timed by hand, so that the unlock before each request (which
            // keeps every measured request a first failure) is not timed.
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    engine.unlock(fresh);
                    let request = bad_key_from(fresh);
                    let start = Instant::now();
                    let refused = status(&app, request);
                    timed += start.elapsed();
                    assert_eq!(refused, StatusCode::UNAUTHORIZED);
                }
                timed
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = bound_lockout
}
criterion_main!(benches);
