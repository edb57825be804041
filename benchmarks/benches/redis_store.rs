//! `policy_runtime::RedisStore` against `MemoryStore`, with a loopback Redis
//! `PING` beside them as the floor: one check should cost one round trip.
//!
//! The bench starts its own `redis-server` (loopback, a free port, no
//! persistence) and stops it when done. Every operation runs on a two-worker
//! Tokio runtime, from 1 task (one operation at a time) and from 64
//! concurrent tasks sharing one store (so one multiplexed connection).
//!
//! - `ping`: `PING` on the redis crate's `ConnectionManager`, the connection
//!   type the store uses: the round-trip floor.
//! - `script_floor`: `EVALSHA` of a script that only does what any GCRA on
//!   the server's clock must (`TIME`, `GET`, `SET ... PX`) on the same
//!   connection: the floor for one atomic check.
//! - `memory`: `MemoryStore::check`, an admitted request (1024 clients).
//! - `redis`: `RedisStore::check`, an admitted request (1024 clients).
//! - `redis_refused`: a refused request with the refusal cache off: a round trip.
//! - `redis_refused_cached`: a refused request of a client already known to
//!   be refused: answered from the local cache, no round trip.
//!
//! Criterion measures the time per operation (and so operations per second;
//! with 64 tasks, the wall time over the operations). Then a Markdown table
//! of throughput and p50/p99 latency per operation is printed, from rounds
//! in which the cases take turns. On a loopback the round trip itself varies
//! with how busy the machine is (idle cores take longer to wake), so compare
//! the cases of one run, and mind the "p50 − PING p50" column: the time a
//! check adds to a round trip. Run from the repository root (needs
//! `redis-server` on the PATH):
//!
//! ```text
//! cargo bench -p benchmarks --features redis --bench redis_store
//! ```

#[path = "../../policy-runtime/tests/support/redis_server.rs"]
mod redis_server;
mod timed_rounds;

use criterion::Throughput;
use policy_runtime::{
    ClientKey, FailureMode, LimitRequest, LimiterStore, MemoryStore, Quota, RedisStore,
};
use redis::aio::ConnectionManager;
use redis_server::RedisServer;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use timed_rounds::{Operations, percentile, run};

/// Never exhausted at the rates measured here: admitted requests all along.
static UNLIMITED: [Quota; 1] = [Quota::new(1_000_000_000, Duration::from_secs(1))];
/// Exhausted by the first request: refused requests all along.
static ONCE_AN_HOUR: [Quota; 1] = [Quota::new(1, Duration::from_secs(3600))];
const SCOPE: &str = "benchmarks::redis_store";
const CLIENTS: usize = 1024;
/// The least a check on the server's clock does: read the clock and the
/// state, write the state with an expiry, answer.
const FLOOR_SCRIPT: &str = "redis.call('TIME') redis.call('GET', KEYS[1]) \
    redis.call('SET', KEYS[1], ARGV[1], 'PX', 60000) return {1, 1, 1, 0, 0, 0}";
const CONCURRENCY: [usize; 2] = [1, 64];
/// Interleaved rounds of the latency table, and operations per case and
/// round, by number of tasks. One task takes many short rounds: a loopback
/// round trip changes speed within a second as cores sleep or wake, and
/// short turns spread such changes evenly over the cases compared.
const ROUNDS: [(usize, u64); 2] = [(50, 400), (5, 12_800)];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Ping,
    ScriptFloor,
    Memory,
    Redis,
    RedisRefused,
    RedisRefusedCached,
}

const CASES: [Case; 6] = [
    Case::Ping,
    Case::ScriptFloor,
    Case::Memory,
    Case::Redis,
    Case::RedisRefused,
    Case::RedisRefusedCached,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Ping => "ping",
            Case::ScriptFloor => "script_floor",
            Case::Memory => "memory",
            Case::Redis => "redis",
            Case::RedisRefused => "redis_refused",
            Case::RedisRefusedCached => "redis_refused_cached",
        }
    }
}

/// Everything the operations run against.
struct Targets {
    ping: ConnectionManager,
    floor: redis::Script,
    memory: MemoryStore,
    redis: RedisStore,
    redis_uncached: RedisStore,
    clients: Vec<ClientKey>,
    /// Exhausted in the stores before measuring.
    refused: ClientKey,
}

impl Operations<Case> for Targets {
    /// One operation of `case`; `n` picks the client.
    async fn run(&self, case: Case, n: usize) {
        let key = &self.clients[n % CLIENTS];
        let (store, key, quotas, expect_allowed): (&dyn LimiterStore, _, _, _) = match case {
            Case::Ping => {
                let reply: String = redis::cmd("PING")
                    .query_async(&mut self.ping.clone())
                    .await
                    .expect("PING failed");
                assert_eq!(reply, "PONG");
                return;
            }
            Case::ScriptFloor => {
                let reply: redis::Value = self
                    .floor
                    .key(SCOPE)
                    .arg(n)
                    .invoke_async(&mut self.ping.clone())
                    .await
                    .expect("EVALSHA failed");
                assert!(matches!(reply, redis::Value::Array(_)));
                return;
            }
            Case::Memory => (&self.memory, key, &UNLIMITED, true),
            Case::Redis => (&self.redis, key, &UNLIMITED, true),
            Case::RedisRefused => (&self.redis_uncached, &self.refused, &ONCE_AN_HOUR, false),
            Case::RedisRefusedCached => (&self.redis, &self.refused, &ONCE_AN_HOUR, false),
        };
        let request = LimitRequest {
            scope: SCOPE,
            key,
            quotas,
            cost: 1,
        };
        let decision = store
            .check(std::slice::from_ref(&request))
            .await
            .expect("the store failed: is redis-server too slow for the 50 ms timeout?");
        assert_eq!(decision.allowed, expect_allowed, "{case:?}");
    }
}

fn main() {
    if !timed_rounds::selected("redis_store") {
        return;
    }

    let server = RedisServer::start();
    let runtime = timed_rounds::runtime();
    let targets = Arc::new(runtime.block_on(async {
        let store = |cache: usize| {
            RedisStore::builder()
                .url(server.url())
                .failure_mode(FailureMode::Closed)
                .blocked_cache_capacity(cache)
                .build()
                .expect("a Redis store")
        };
        let targets = Targets {
            ping: redis::Client::open(server.url())
                .expect("the server URL")
                .get_connection_manager()
                .await
                .expect("a connection to redis-server"),
            floor: redis::Script::new(FLOOR_SCRIPT),
            memory: MemoryStore::new(),
            redis: store(10_000),
            redis_uncached: store(0),
            clients: (0..CLIENTS)
                .map(|i| ClientKey::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32))))
                .collect(),
            refused: ClientKey::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        };
        // Exhaust the refused client's quota (in Redis, shared by both
        // stores), and load the script.
        for store in [&targets.redis, &targets.redis_uncached] {
            let request = LimitRequest {
                scope: SCOPE,
                key: &targets.refused,
                quotas: &ONCE_AN_HOUR,
                cost: 1,
            };
            let _ = store.check(&[request]).await.expect("Redis answers");
        }
        targets
    }));

    let mut criterion = benchmarks::criterion()
        .sample_size(30)
        .configure_from_args();
    let mut group = criterion.benchmark_group("redis_store");
    group.throughput(Throughput::Elements(1));
    for case in CASES {
        for tasks in CONCURRENCY {
            group.bench_function(format!("{}/{tasks}_tasks", case.name()), |b| {
                b.iter_custom(|iters| runtime.block_on(run(&targets, case, tasks, iters, false)).0)
            });
        }
    }
    group.finish();
    criterion.final_summary();

    println!("\n## Redis store: throughput and latency per operation\n");
    println!(
        "Loopback redis-server, 2 Tokio workers. The cases run in interleaved rounds \
         (so that a busy moment of the machine weighs on all of them alike): {}; p50 and p99 \
         are over every operation of every round, ops/s is the total over the wall time.\n",
        CONCURRENCY
            .iter()
            .zip(ROUNDS)
            .map(|(tasks, (rounds, per_round))| {
                format!("{rounds} rounds of {per_round} operations per case with {tasks} task(s)")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| operation | tasks | ops/s | p50 (µs) | p99 (µs) | p50 / PING p50 | p50 − PING p50 (µs) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (tasks, (rounds, per_round)) in CONCURRENCY.into_iter().zip(ROUNDS) {
        let mut walls = [Duration::ZERO; CASES.len()];
        let mut latencies: [Vec<Duration>; CASES.len()] = Default::default();
        for case in CASES {
            runtime.block_on(run(
                &targets,
                case,
                tasks,
                (per_round / 4).max(1_000),
                false,
            ));
        }
        for _ in 0..rounds {
            for (index, case) in CASES.into_iter().enumerate() {
                let (wall, recorded) =
                    runtime.block_on(run(&targets, case, tasks, per_round, true));
                walls[index] += wall;
                latencies[index].extend(recorded);
            }
        }
        let mut ping_p50 = None;
        for (index, case) in CASES.into_iter().enumerate() {
            let sorted = &mut latencies[index];
            sorted.sort_unstable();
            let p50 = percentile(sorted, 0.50);
            let p99 = percentile(sorted, 0.99);
            let floor = *ping_p50.get_or_insert(p50);
            println!(
                "| {} | {tasks} | {:.0} | {:.1} | {:.1} | {:.2} | {:+.1} |",
                case.name(),
                sorted.len() as f64 / walls[index].as_secs_f64(),
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                p50.as_secs_f64() / floor.as_secs_f64(),
                (p50.as_secs_f64() - floor.as_secs_f64()) * 1e6,
            );
        }
    }
    drop(server);
}
