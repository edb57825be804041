//! Cost of one rate-limit check in `policy_runtime::MemoryStore`, through the
//! `LimiterStore` trait, against governor's own keyed DashMap limiter in the
//! same run.
//!
//! - `limiter_keyed`: one check, round-robin over 1, 100k and 1M client keys
//!   (every key already in the store). `governor_dashmap` is governor's keyed
//!   limiter with no middleware, as tower_governor uses it by default.
//! - `limiter_threads`: two threads checking at once, on one shared key and
//!   on keys of their own (16 each, round-robin, so that a figure does not
//!   hang on whether two single keys happen to share a DashMap shard). A
//!   figure is the wall time for each thread to make one check (two checks in
//!   all), so it equals `one_thread` when two threads scale perfectly.
//!
//! The quota never rejects, so every figure is the allowed path. Memory per key
//! is measured by the `memory` bench. Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench limiter
//! cargo run -p benchmarks --release --bin report
//! ```

use benchmarks::ready_now;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use governor::RateLimiter;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use policy_runtime::{ClientKey, LimitRequest, LimiterStore, MemoryStore, Quota};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Never rejects: one more request every nanosecond, a burst of four billion.
static QUOTAS: [Quota; 1] = [Quota::new(4_000_000_000, Duration::from_secs(1))];
const SCOPE: &str = "benchmarks::limiter";

type GovernorKeyed = RateLimiter<
    IpAddr,
    DefaultKeyedStateStore<IpAddr>,
    governor::clock::DefaultClock,
    NoOpMiddleware,
>;

fn governor_quota() -> governor::Quota {
    governor::Quota::with_period(Duration::from_nanos(1))
        .expect("the period is not zero")
        .allow_burst(NonZeroU32::new(4_000_000_000).expect("not zero"))
}

fn governor_limiter() -> GovernorKeyed {
    RateLimiter::dashmap(governor_quota())
}

fn ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index as u32))
}

fn check_ours(store: &MemoryStore, key: &ClientKey) -> bool {
    ready_now(store.check(&[LimitRequest {
        scope: SCOPE,
        key,
        quotas: &QUOTAS,
        cost: 1,
    }]))
    .expect("the memory store does not fail")
    .allowed
}

fn keyed(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter_keyed");
    for keys in [1usize, 100_000, 1_000_000] {
        let ours: Vec<ClientKey> = (0..keys).map(|i| ClientKey::Ip(ip(i))).collect();
        let theirs: Vec<IpAddr> = (0..keys).map(ip).collect();

        let store = MemoryStore::new();
        for key in &ours {
            assert!(check_ours(&store, key));
        }
        group.bench_with_input(BenchmarkId::new("memory_store", keys), &ours, |b, ours| {
            let mut next = 0;
            b.iter(|| {
                let allowed = check_ours(&store, &ours[next]);
                next += 1;
                if next == ours.len() {
                    next = 0;
                }
                allowed
            })
        });
        drop(store);

        let plain = governor_limiter();
        for key in &theirs {
            assert!(plain.check_key(key).is_ok());
        }
        group.bench_with_input(
            BenchmarkId::new("governor_dashmap", keys),
            &theirs,
            |b, theirs| {
                let mut next = 0;
                b.iter(|| {
                    let allowed = plain.check_key(&theirs[next]).is_ok();
                    next += 1;
                    if next == theirs.len() {
                        next = 0;
                    }
                    allowed
                })
            },
        );
    }
    group.finish();
}

/// Keys each thread of `two_threads_own_keys` cycles through.
const KEYS_PER_THREAD: usize = 16;

/// Runs `check(thread, iteration)` for `iters` iterations on each of two
/// threads at once and returns the wall time from the first thread's start to
/// the last one's finish. Each thread reads the clock itself: on two cores a
/// third, timing thread may not be scheduled until a worker is done.
fn two_threads(iters: u64, check: impl Fn(usize, usize) + Sync) -> Duration {
    let start = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|thread| {
                let (start, check) = (&start, &check);
                scope.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    for iteration in 0..iters {
                        check(thread, iteration as usize);
                    }
                    (began, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a benchmark thread panicked"))
            .collect()
    });
    let first = spans.iter().map(|(began, _)| *began).min();
    let last = spans.iter().map(|(_, ended)| *ended).max();
    match (first, last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    }
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter_threads");
    let ours: Vec<ClientKey> = (0..2 * KEYS_PER_THREAD)
        .map(|i| ClientKey::Ip(ip(i)))
        .collect();
    let theirs: Vec<IpAddr> = (0..2 * KEYS_PER_THREAD).map(ip).collect();
    let own =
        |thread: usize, iteration: usize| thread * KEYS_PER_THREAD + iteration % KEYS_PER_THREAD;

    let store = MemoryStore::new();
    group.throughput(Throughput::Elements(1));
    group.bench_function("memory_store/one_thread", |b| {
        b.iter(|| check_ours(&store, &ours[0]))
    });
    group.throughput(Throughput::Elements(2));
    group.bench_function("memory_store/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_, _| {
                black_box(check_ours(&store, &ours[0]));
            })
        })
    });
    group.bench_function("memory_store/two_threads_own_keys", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |thread, iteration| {
                black_box(check_ours(&store, &ours[own(thread, iteration)]));
            })
        })
    });

    let limiter = governor_limiter();
    group.throughput(Throughput::Elements(1));
    group.bench_function("governor_dashmap/one_thread", |b| {
        b.iter(|| limiter.check_key(&theirs[0]).is_ok())
    });
    group.throughput(Throughput::Elements(2));
    group.bench_function("governor_dashmap/two_threads_one_key", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_, _| {
                black_box(limiter.check_key(&theirs[0]).is_ok());
            })
        })
    });
    group.bench_function("governor_dashmap/two_threads_own_keys", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |thread, iteration| {
                black_box(limiter.check_key(&theirs[own(thread, iteration)]).is_ok());
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = keyed, threads
}
criterion_main!(benches);
