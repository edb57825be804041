//! The route variants the router benches compare, shared by `router` (time,
//! with criterion) and `router_instructions` (instructions, under callgrind).
//!
//! The same `GET /v` route runs as a bare handler, under `#[rate_limit]`,
//! under `#[rate_limit]` + `#[require_api_key]`, under tower_governor's
//! `GovernorLayer`, and on our rejected path (every request a 429). Variants
//! 6 to 11 are diagnostics: the engine layer alone, the API-key check alone,
//! tower_governor with its rate-limit headers, the rate limit with the engine
//! wrapped once around the router instead of around each route, and the rate
//! limit with only the `X-RateLimit-*` headers and with none; variant 12 is
//! the rate limit under an engine with a body limit and a timeout.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use benchmarks::ready_now;
use policy_runtime::{Engine, HeaderStyle, rate_limit, require_api_key};
use std::convert::Infallible;
use std::net::SocketAddr;
use tower::{Layer, Service, ServiceExt};
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;

/// The API key every variant's engine knows and every request presents.
pub const API_KEY: &str = "bench-key-0123456789abcdef";

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
pub fn request() -> Request<Body> {
    Request::get("/v")
        .header("x-api-key", API_KEY)
        .extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40_000))))
        .body(Body::empty())
        .expect("the benchmark request is valid")
}

/// One request through a router as a tower service: `ready`, then `call`.
pub fn serve<S>(router: &mut S, request: Request<Body>) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let service = ready_now(ServiceExt::<Request<Body>>::ready(router))
        .unwrap_or_else(|never| match never {});
    ready_now(service.call(request)).unwrap_or_else(|never| match never {})
}

/// What a bench does with each variant.
pub trait Visit {
    /// Called once per variant, in order, with a router that answers
    /// `expected` once it has served its first request.
    fn variant<S>(&mut self, name: &str, router: S, expected: StatusCode)
    where
        S: Service<Request<Body>, Response = Response, Error = Infallible>;
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

/// A router as a server runs it: `axum::serve` and `into_make_service` call
/// `with_state(())` once, which turns every handler into a route up front;
/// a router called as it is would do that again for each request.
fn served(router: Router) -> Router {
    router.with_state(())
}

/// The router of a variant that is a plain axum `Router` (every variant but
/// `09_rate_limit_engine_outside_router`), ready to serve: the load harness
/// (`benchmarks/http.sh`) serves these over HTTP.
pub fn router(name: &str) -> Option<Router> {
    let governor = || {
        governor_builder()
            .finish()
            .expect("the governor configuration is valid")
    };
    let governor_with_headers = || {
        governor_builder()
            .use_headers()
            .finish()
            .expect("the governor configuration is valid")
    };
    let route = |handler| Router::new().route("/v", handler);
    let router = match name {
        "01_bare" => route(get(bare)),
        "02_rate_limit" => route(get(limited)).layer(engine()),
        "03_rate_limit_api_key" => route(get(limited_keyed)).layer(engine()),
        "04_tower_governor" => route(get(bare)).layer(GovernorLayer::new(governor())),
        "05_rate_limit_rejected" => route(get(rejected)).layer(engine()),
        // Diagnostics: where the cost of the variants above comes from.
        "06_bare_engine_layer" => route(get(bare)).layer(engine()),
        "07_api_key" => route(get(keyed)).layer(engine()),
        "08_tower_governor_headers" => {
            route(get(bare)).layer(GovernorLayer::new(governor_with_headers()))
        }
        // The rate limit with fewer response headers than the default (both
        // the `X-RateLimit-*` and the IETF `RateLimit` families): what they cost.
        "10_rate_limit_legacy_headers_only" => {
            route(get(limited)).layer(engine_with_headers(HeaderStyle::Legacy))
        }
        "11_rate_limit_no_headers" => {
            route(get(limited)).layer(engine_with_headers(HeaderStyle::None))
        }
        // The rate limit under an engine with a body limit and a timeout:
        // what the request limits cost a request that is within them.
        "12_rate_limit_request_limits" => route(get(limited)).layer(
            Engine::builder()
                .api_key("bench", API_KEY)
                .max_body_size(1024 * 1024)
                .request_timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("the benchmark engine configuration is valid"),
        ),
        _ => return None,
    };
    Some(served(router))
}

/// Every variant's name, in the order of the tables in BENCHMARKS.md.
pub const NAMES: [&str; 12] = [
    "01_bare",
    "02_rate_limit",
    "03_rate_limit_api_key",
    "04_tower_governor",
    "05_rate_limit_rejected",
    "06_bare_engine_layer",
    "07_api_key",
    "08_tower_governor_headers",
    "09_rate_limit_engine_outside_router",
    "10_rate_limit_legacy_headers_only",
    "11_rate_limit_no_headers",
    "12_rate_limit_request_limits",
];

/// Hands every variant to `visit`, in the order of the tables in BENCHMARKS.md.
pub fn each(visit: &mut impl Visit) {
    for name in NAMES {
        let expected = match name {
            "05_rate_limit_rejected" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::OK,
        };
        match router(name) {
            Some(router) => visit.variant(name, router, expected),
            // The engine wrapped once around the whole router instead of
            // around each route by `Router::layer`: what the per-route
            // wrapping costs.
            None => visit.variant(
                name,
                Layer::layer(&engine(), served(Router::new().route("/v", get(limited)))),
                expected,
            ),
        }
    }
}
