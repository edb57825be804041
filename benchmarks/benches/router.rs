//! Per-request cost of the policies on one axum route, in process.
//!
//! The same `GET /v` route runs as a bare handler, under `#[rate_limit]`,
//! under `#[rate_limit]` + `#[require_api_key]`, under tower_governor's
//! `GovernorLayer`, and on our rejected path (every request a 429). The
//! router is driven as a tower `Service` with prebuilt requests, so neither
//! the network nor HTTP parsing is in the figures; every variant gets the
//! same request (peer address and API key included) and drops its response
//! inside the timed region. All variants are one criterion group, so they
//! run back to back in one invocation.
//!
//! Variants 6 to 11 are diagnostics: the engine layer alone, the API-key check
//! alone, tower_governor with its rate-limit headers, the rate limit with the
//! engine wrapped once around the router instead of around each route, and
//! the rate limit with only the `X-RateLimit-*` headers and with none.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench router
//! cargo run -p benchmarks --release --bin report
//! ```

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use benchmarks::ready_now;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use policy_runtime::{rate_limit, require_api_key, Engine, HeaderStyle};
use std::convert::Infallible;
use std::net::SocketAddr;
use tower::{Layer, Service, ServiceExt};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

const API_KEY: &str = "bench-key-0123456789abcdef";

async fn bare() -> &'static str {
    "ok"
}

/// 4e9 a second never rejects: one more request every nanosecond (the
/// smallest interval), with a burst of four billion.
#[rate_limit("4000000000/second")]
async fn limited() -> &'static str {
    "ok"
}

#[rate_limit("4000000000/second")]
#[require_api_key]
async fn limited_keyed() -> &'static str {
    "ok"
}

#[require_api_key]
async fn keyed() -> &'static str {
    "ok"
}

/// The first request of the run is admitted; every later one is a 429.
#[rate_limit("1/day")]
async fn rejected() -> &'static str {
    "ok"
}

fn engine() -> Engine {
    engine_with_headers(HeaderStyle::default())
}

fn engine_with_headers(style: HeaderStyle) -> Engine {
    Engine::builder()
        .api_key("bench", API_KEY)
        .rate_limit_headers(style)
        .build()
        .expect("the benchmark engine configuration is valid")
}

/// The one request every variant gets: a peer address (as
/// `into_make_service_with_connect_info` records it) and a valid API key.
fn request() -> Request<Body> {
    Request::get("/v")
        .header("x-api-key", API_KEY)
        .extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40_000))))
        .body(Body::empty())
        .expect("the benchmark request is valid")
}

/// One request through a router as a tower service: `ready`, then `call`.
fn serve<S>(router: &mut S, request: Request<Body>) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let service = ready_now(ServiceExt::<Request<Body>>::ready(router))
        .unwrap_or_else(|never| match never {});
    ready_now(service.call(request)).unwrap_or_else(|never| match never {})
}

/// Times one variant, after checking that it answers as intended (the
/// rejected variant admits its first request and refuses the second).
fn bench_variant<S>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut router: S,
    expected: StatusCode,
) where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    serve(&mut router, request());
    let response = serve(&mut router, request());
    assert_eq!(response.status(), expected, "variant {name}");
    group.bench_function(name, |b| {
        b.iter_batched(
            request,
            |request| drop(serve(&mut router, request)),
            BatchSize::SmallInput,
        )
    });
}

/// Every never-rejecting tower_governor configuration used here: a token every
/// nanosecond and a burst of `u32::MAX`, keyed on the peer IP.
fn governor_builder() -> GovernorConfigBuilder<
    tower_governor::key_extractor::PeerIpKeyExtractor,
    governor::middleware::NoOpMiddleware,
> {
    let mut builder = GovernorConfigBuilder::default();
    builder.per_nanosecond(1).burst_size(u32::MAX);
    builder
}

fn router(c: &mut Criterion) {
    let governor = governor_builder()
        .finish()
        .expect("the governor configuration is valid");
    let governor_with_headers = governor_builder()
        .use_headers()
        .finish()
        .expect("the governor configuration is valid");
    let ok = StatusCode::OK;

    let mut group = c.benchmark_group("router");
    let g = &mut group;
    bench_variant(g, "01_bare", Router::new().route("/v", get(bare)), ok);
    bench_variant(
        g,
        "02_rate_limit",
        Router::new().route("/v", get(limited)).layer(engine()),
        ok,
    );
    bench_variant(
        g,
        "03_rate_limit_api_key",
        Router::new()
            .route("/v", get(limited_keyed))
            .layer(engine()),
        ok,
    );
    bench_variant(
        g,
        "04_tower_governor",
        Router::new()
            .route("/v", get(bare))
            .layer(GovernorLayer::new(governor)),
        ok,
    );
    bench_variant(
        g,
        "05_rate_limit_rejected",
        Router::new().route("/v", get(rejected)).layer(engine()),
        StatusCode::TOO_MANY_REQUESTS,
    );
    // Diagnostics: where the cost of the variants above comes from.
    bench_variant(
        g,
        "06_bare_engine_layer",
        Router::new().route("/v", get(bare)).layer(engine()),
        ok,
    );
    bench_variant(
        g,
        "07_api_key",
        Router::new().route("/v", get(keyed)).layer(engine()),
        ok,
    );
    bench_variant(
        g,
        "08_tower_governor_headers",
        Router::new()
            .route("/v", get(bare))
            .layer(GovernorLayer::new(governor_with_headers)),
        ok,
    );
    // The engine wrapped once around the whole router instead of around each
    // route by `Router::layer`: what the per-route wrapping costs.
    bench_variant(
        g,
        "09_rate_limit_engine_outside_router",
        Layer::layer(&engine(), Router::new().route("/v", get(limited))),
        ok,
    );
    // The rate limit with fewer response headers than the default (both the
    // `X-RateLimit-*` and the IETF `RateLimit` families): what they cost.
    bench_variant(
        g,
        "10_rate_limit_legacy_headers_only",
        Router::new()
            .route("/v", get(limited))
            .layer(engine_with_headers(HeaderStyle::Legacy)),
        ok,
    );
    bench_variant(
        g,
        "11_rate_limit_no_headers",
        Router::new()
            .route("/v", get(limited))
            .layer(engine_with_headers(HeaderStyle::None)),
        ok,
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = router
}
criterion_main!(benches);
