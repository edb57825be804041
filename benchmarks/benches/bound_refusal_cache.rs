//! The cost of a new refusal in `policy_runtime::RedisStore` with its local
//! refusal cache empty, and with the cache at its cap (10 000 refusals, none
//! expired), beside the same refusal with the cache off.
//!
//! Every measured operation is the first check of a new client whose request
//! can never fit its quota (a cost of 2 against `1/hour`), so Redis refuses
//! it at once, writes nothing, and the store then tries to remember the
//! refusal for an hour:
//!
//! - `cache_off`: `blocked_cache_capacity(0)`: the round trip alone, the floor;
//! - `empty_cache`: a fresh store per sample (default cap, 10 000), so the
//!   cache stays below its cap and each refusal is inserted;
//! - `full_cache`: a store whose cache already holds 10 000 refusals that
//!   run for an hour: each new refusal meets the cap.
//!
//! The difference between `full_cache` and `empty_cache` is what meeting the
//! cap costs a request. The bench starts its own `redis-server` (loopback, a
//! free port, no persistence) and stops it when done. Run from the
//! repository root (needs `redis-server` on the PATH):
//!
//! ```text
//! cargo bench -p benchmarks --features redis --bench bound_refusal_cache
//! ```

#[path = "../../policy-runtime/tests/support/redis_server.rs"]
mod redis_server;

use criterion::Throughput;
use policy_runtime::{ClientKey, FailureMode, LimitRequest, LimiterStore, Quota, RedisStore};
use redis_server::RedisServer;
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// One request an hour: a request of cost 2 never fits, so it is refused
/// at once with an hour to wait, and nothing is written in Redis.
static ONCE_AN_HOUR: [Quota; 1] = [Quota::new(1, Duration::from_secs(3600))];
const SCOPE: &str = "benchmarks::bound_refusal_cache";
/// The store's default refusal cache cap.
const CAP: usize = 10_000;

/// Hands out a new client per refusal, so that none is already cached.
struct Clients {
    next: Cell<u32>,
}

impl Clients {
    fn next(&self) -> ClientKey {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        ClientKey::Ip(IpAddr::V4(Ipv4Addr::from(n)))
    }
}

fn store(server: &RedisServer, cap: usize) -> RedisStore {
    RedisStore::builder()
        .url(server.url())
        .failure_mode(FailureMode::Closed)
        // Generous, so that a busy machine slows the bench down rather
        // than failing it.
        .timeout(Duration::from_secs(2))
        .blocked_cache_capacity(cap)
        .build()
        .expect("a Redis store")
}

/// Refuses one new client and checks that it was refused.
async fn refuse(store: &RedisStore, client: &ClientKey) {
    let request = LimitRequest {
        scope: SCOPE,
        key: client,
        quotas: &ONCE_AN_HOUR,
        cost: 2,
    };
    let decision = store.check(&[request]).await.expect("Redis answers");
    assert!(!decision.allowed, "a cost of 2 never fits 1/hour");
}

/// The time of `iters` new refusals on `store`.
async fn time_refusals(store: &RedisStore, clients: &Clients, iters: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        refuse(store, &clients.next()).await;
    }
    started.elapsed()
}

fn main() {
    // `cargo bench -- <filter>` passes the filter to every bench binary: run
    // only when there is none or it names this bench.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let named = |f: &String| {
        f.contains("bound_refusal_cache") || "bound_refusal_cache".contains(f.as_str())
    };
    if !filters.is_empty() && !filters.iter().any(named) {
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        println!("bound_refusal_cache: bench");
        return;
    }

    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let clients = Clients {
        next: Cell::new(0x0a00_0000),
    };
    let uncached = store(&server, 0);
    let full = store(&server, CAP);
    runtime.block_on(async {
        // Loads the script, then fills the cache to its cap.
        refuse(&uncached, &clients.next()).await;
        for _ in 0..CAP {
            refuse(&full, &clients.next()).await;
        }
    });

    let mut criterion = benchmarks::criterion()
        .sample_size(30)
        .configure_from_args();
    let mut group = criterion.benchmark_group("bound_refusal_cache");
    group.throughput(Throughput::Elements(1));
    group.bench_function("new_refusal/cache_off", |b| {
        b.iter_custom(|iters| runtime.block_on(time_refusals(&uncached, &clients, iters)))
    });
    group.bench_function("new_refusal/empty_cache", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                // A fresh cache per sample, large enough never to reach its
                // cap here, on a connection made before the clock starts.
                let fresh = store(
                    &server,
                    CAP.max(usize::try_from(iters).unwrap_or(usize::MAX)),
                );
                refuse(&fresh, &clients.next()).await;
                time_refusals(&fresh, &clients, iters).await
            })
        })
    });
    group.bench_function("new_refusal/full_cache", |b| {
        b.iter_custom(|iters| runtime.block_on(time_refusals(&full, &clients, iters)))
    });
    group.finish();
    criterion.final_summary();
}
