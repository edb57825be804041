//! Per-request cost of the policies on one axum route, in process.
//!
//! The variants are in `router_variants`: the same `GET /v` route bare, under
//! each policy, under tower_governor, and on our rejected path. The router is
//! driven as a tower `Service` with prebuilt requests, so neither the network
//! nor HTTP parsing is in the figures; every variant gets the same request
//! (peer address and API key included) and drops its response inside the
//! timed region. All variants are one criterion group, so they run back to
//! back in one invocation.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench router
//! cargo run -p benchmarks --release --bin report
//! ```

mod router_variants;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use router_variants::{Visit, request, serve};
use std::convert::Infallible;
use tower::Service;

/// Times each variant, after checking that it answers as intended (the
/// rejected variant admits its first request and refuses the second).
struct Timed<'g, 'c>(&'g mut BenchmarkGroup<'c, WallTime>);

impl Visit for Timed<'_, '_> {
    fn variant<S>(&mut self, name: &str, mut router: S, expected: StatusCode)
    where
        S: Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        serve(&mut router, request());
        let response = serve(&mut router, request());
        assert_eq!(response.status(), expected, "variant {name}");
        self.0.bench_function(name, |b| {
            b.iter_batched(
                request,
                |request| drop(serve(&mut router, request)),
                BatchSize::SmallInput,
            )
        });
    }
}

fn router(c: &mut Criterion) {
    let mut group = c.benchmark_group("router");
    router_variants::each(&mut Timed(&mut group));
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = router
}
criterion_main!(benches);
