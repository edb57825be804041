//! The Redis store's admitted check against the floor of any rate limiter on
//! the server's clock: a Lua script doing only `TIME`, `GET` and `SET ... PX`
//! on one key, measured beside it on the same `redis-server` in one run. The
//! target is an admitted check's p50 within 1.1× of the floor script's, and
//! its throughput at 64 concurrent tasks is compared with the floor's.
//!
//! The bench starts its own `redis-server` (loopback, a free port, no
//! persistence), stops it by its PID when done, and runs a bounded number of
//! operations (about 100,000 per case; well under a minute in all). Every
//! operation runs on a two-worker Tokio runtime, from 1 task and from 64
//! concurrent tasks sharing one connection, over 1,024 keys. The cases:
//!
//! - `ping`: `PING`, the round trip alone.
//! - `floor`: `EVALSHA` of the floor script, each call on one of 1,024 keys
//!   that stay in Redis (`PX 60000`).
//! - `check`: `RedisStore::check`, admitted, one GCRA quota whose keys stay
//!   in Redis throughout (each admission moves the client's time a second
//!   ahead, out of a burst of a million), as the floor's do.
//! - `check, key recreated`: the same with a quota of 10^9 a second, whose
//!   key has expired by the client's next check, so that every check writes
//!   a new key (the workload of `redis_store`'s `redis` case), in a scope of
//!   its own, so that the two cases' quotas never meet in one client's
//!   state (a scope's quota changing under a client is not the common
//!   case this measures).
//! - `floor, as the store calls it`: the floor script called the way the
//!   store calls its own: the store's key for the client (hashed on each
//!   call, as the store does), under a timeout, with the value the floor
//!   writes as an argument (the store's check sends none). Between it and
//!   `check` lies only the script's own work and the store's handling of
//!   the reply: where the time goes.
//! - `floor, as the store calls it, on its connection settings`: the same on
//!   a connection configured as the store's (no retries, a response
//!   timeout).
//! - `the quota's own script, called directly`: the script the store runs
//!   for the `check` case (`gcra_one.lua` with the quota written into it,
//!   see the store's `script.rs`), with the arguments the store sends,
//!   called as the floor is: the script's cost without the store's client
//!   code.
//! - `minimal GCRA script`: the least any GCRA check on the server's clock
//!   does beyond the floor (turning `TIME` and the stored time into numbers,
//!   the arithmetic, writing the new time and its expiry as text), with its
//!   quota as constants and the bare time as the state, on the floor's keys:
//!   what the floor leaves out that no GCRA script can.
//!
//! Each p50 is given against the floor's and against the floor's as the
//! store calls it on the store's connection settings: the same three
//! commands on the keys the check itself uses.
//!
//! The cases take turns in short rounds (100 operations from one task), so
//! that a busy moment of the machine weighs on all of them alike. Then each
//! case runs once more alone after `CONFIG RESETSTAT`, and Redis' own time
//! per call (`INFO commandstats`) says how much of the difference is the
//! server's. Run from the repository root (needs `redis-server` on the
//! PATH):
//!
//! ```text
//! cargo bench -p benchmarks --features redis --bench redis_floor
//! ```
//!
//! On a virtual machine whose idle cores halt, the one-task round trip jumps
//! between two speeds as they do; keep them polling for the run instead, for
//! instance by holding `/dev/cpu_dma_latency` open with the value 0 (as root;
//! see BENCHMARKS.md, run K).
//!
//! `ONLY_CASE=Check` (or `Floor`, `RawGcra`, ... as the `Case` variants are
//! named) runs one case alone instead, 200,000 operations from one task, and
//! prints its p50: to compare cases in separate processes, each with a
//! runtime and a connection of its own.

#[path = "../../policy-runtime/tests/support/redis_server.rs"]
mod redis_server;
mod timed_rounds;

use policy_runtime::{ClientKey, FailureMode, LimitRequest, LimiterStore, Quota, RedisStore};
use redis::aio::ConnectionManager;
use redis_server::RedisServer;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use timed_rounds::{Operations, percentile, run};

const SCOPE: &str = "benchmarks::redis_floor";
/// As long as [`SCOPE`], for `check, key recreated`: a scope of its own, so
/// that the two cases' quotas never meet in one client's state.
const RECREATED_SCOPE: &str = "benchmarks::redis_recr";
/// As long as [`SCOPE`], for the floor script called as the store calls.
const FLOOR_SCOPE: &str = "benchmarks::redis_flor";
/// As long as [`SCOPE`], for the store's script called directly.
const RAW_GCRA_SCOPE: &str = "benchmarks::raw_scripts";
const KEYS: usize = 1024;
/// Each admission moves the client's time a second ahead, out of a burst of
/// a million: never refused here, and the key lives on between checks.
static LIVE: [Quota; 1] = [Quota::new(1_000_000, Duration::from_secs(1_000_000))];
/// A key that expires within microseconds of its check.
static EXPIRING: [Quota; 1] = [Quota::new(1_000_000_000, Duration::from_secs(1))];
/// The least a check on the server's clock does: read the clock and the
/// state, write the state with an expiry, answer.
const FLOOR_SCRIPT: &str = include_str!("../lua/floor.lua");
/// The floor plus what every GCRA check must add to it (see the script).
const MINIMAL_GCRA_SCRIPT: &str = include_str!("../lua/minimal_gcra.lua");
/// The own script the store runs for a check of `LIVE` alone:
/// `gcra_one.lua` with its interval (1 s) and burst (a million) written into
/// the line the store writes them into.
fn own_script_of_live() -> String {
    const SOURCE: &str = include_str!("../../policy-runtime/src/rate_limiting/redis/gcra_one.lua");
    const QUOTA_LINE: &str = "local INTERVAL, BURST = nil, nil";
    assert!(
        SOURCE.contains(QUOTA_LINE),
        "gcra_one.lua has no line for the quota"
    );
    SOURCE.replacen(QUOTA_LINE, "local INTERVAL, BURST = 1000000, 1000000", 1)
}

/// (tasks, rounds, operations per case and round). One task takes many
/// short rounds: a loopback round trip changes speed from one second to the
/// next, and rounds of 1,000 left the ratios 0.05 apart from run to run.
const RUNS: [(usize, usize, u64); 2] = [(1, 1_000, 100), (64, 8, 12_800)];
/// Operations per case in the `INFO commandstats` pass.
const SERVER_PASS: u64 = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Ping,
    Floor,
    Check,
    CheckRecreated,
    FloorAsStore,
    FloorAsStoreConfigured,
    RawGcra,
    MinimalGcra,
}

const CASES: [Case; 8] = [
    Case::Ping,
    Case::Floor,
    Case::Check,
    Case::CheckRecreated,
    Case::FloorAsStore,
    Case::FloorAsStoreConfigured,
    Case::RawGcra,
    Case::MinimalGcra,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Ping => "ping",
            Case::Floor => "floor script (TIME + GET + SET)",
            Case::Check => "check, admitted",
            Case::CheckRecreated => "check, admitted, key recreated",
            Case::FloorAsStore => "floor script, as the store calls it",
            Case::FloorAsStoreConfigured => {
                "floor script, as the store calls it, on the store's connection settings"
            }
            Case::RawGcra => "the quota's own script, called directly",
            Case::MinimalGcra => "minimal GCRA script",
        }
    }
}

struct Targets {
    connection: ConnectionManager,
    /// A connection with the store's settings.
    configured: ConnectionManager,
    floor: redis::Script,
    /// The store's own script.
    gcra: redis::Script,
    minimal_gcra: redis::Script,
    floor_keys: Vec<String>,
    /// Keys of the minimal GCRA script, as short as the floor's.
    minimal_keys: Vec<String>,
    store: RedisStore,
    clients: Vec<ClientKey>,
}

impl Operations<Case> for Targets {
    /// One operation of `case`; `n` picks the key.
    async fn run(&self, case: Case, n: usize) {
        let (scope, quotas) = match case {
            Case::Ping => {
                let reply: String = redis::cmd("PING")
                    .query_async(&mut self.connection.clone())
                    .await
                    .expect("PING failed");
                assert_eq!(reply, "PONG");
                return;
            }
            Case::Floor => {
                let reply: i64 = self
                    .floor
                    .key(&self.floor_keys[n % KEYS])
                    .arg(n)
                    .invoke_async(&mut self.connection.clone())
                    .await
                    .expect("EVALSHA failed");
                assert_eq!(reply, 1);
                return;
            }
            Case::FloorAsStore | Case::FloorAsStoreConfigured => {
                // A scope of its own: the script writes a plain string, which
                // the store's keys must not hold.
                let key = self.store.key(FLOOR_SCOPE, &self.clients[n % KEYS]);
                let mut connection = if case == Case::FloorAsStore {
                    self.connection.clone()
                } else {
                    self.configured.clone()
                };
                let mut invocation = self.floor.key(key);
                invocation.arg("g:1000000:1");
                let reply: i64 = tokio::time::timeout(
                    Duration::from_secs(5),
                    invocation.invoke_async(&mut connection),
                )
                .await
                .expect("the floor script timed out")
                .expect("EVALSHA failed");
                assert_eq!(reply, 1);
                return;
            }
            Case::MinimalGcra => {
                let reply: i64 = self
                    .minimal_gcra
                    .key(&self.minimal_keys[n % KEYS])
                    .invoke_async(&mut self.connection.clone())
                    .await
                    .expect("EVALSHA failed");
                assert!(reply > 0);
                return;
            }
            Case::RawGcra => {
                let key = self.store.key(RAW_GCRA_SCOPE, &self.clients[n % KEYS]);
                let reply: i64 = self
                    .gcra
                    .key(key)
                    .invoke_async(&mut self.connection.clone())
                    .await
                    .expect("EVALSHA failed");
                assert!(reply > 0);
                return;
            }
            Case::Check => (SCOPE, &LIVE),
            Case::CheckRecreated => (RECREATED_SCOPE, &EXPIRING),
        };
        let request = LimitRequest {
            scope,
            key: &self.clients[n % KEYS],
            quotas,
            cost: 1,
        };
        let decision = self
            .store
            .check(std::slice::from_ref(&request))
            .await
            .expect("the store failed");
        assert!(decision.allowed, "{case:?}");
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// Redis' own microseconds per call of `command`, from `INFO commandstats`.
fn server_usec_per_call(server: &RedisServer, command: &str) -> Option<f64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.connection())
        .ok()?;
    let line = info
        .lines()
        .find(|line| line.starts_with(&format!("cmdstat_{command}:")))?;
    line.split(',')
        .find_map(|field| field.strip_prefix("usec_per_call="))
        .and_then(|value| value.parse().ok())
}

fn main() {
    if !timed_rounds::selected("redis_floor") {
        return;
    }

    let server = RedisServer::start();
    let runtime = timed_rounds::runtime();
    let targets = Arc::new(runtime.block_on(async {
        Targets {
            connection: redis::Client::open(server.url())
                .expect("the server URL")
                .get_connection_manager()
                .await
                .expect("a connection to redis-server"),
            configured: ConnectionManager::new_with_config(
                redis::Client::open(server.url()).expect("the server URL"),
                redis::aio::ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(5))),
            )
            .await
            .expect("a connection to redis-server"),
            floor: redis::Script::new(FLOOR_SCRIPT),
            gcra: redis::Script::new(&own_script_of_live()),
            minimal_gcra: redis::Script::new(MINIMAL_GCRA_SCRIPT),
            floor_keys: (0..KEYS).map(|i| format!("floor:{i}")).collect(),
            minimal_keys: (0..KEYS).map(|i| format!("gcra0:{i}")).collect(),
            store: RedisStore::builder()
                .url(server.url())
                .failure_mode(FailureMode::Closed)
                // Exactness, not speed, decides whether a call fails here.
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a Redis store"),
            clients: (0..KEYS)
                .map(|i| ClientKey::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32))))
                .collect(),
        }
    }));
    // The store connects on first use: connect it here, as the other
    // targets' connections are, so that its connection's task is spawned
    // from the same place as theirs.
    runtime
        .block_on(targets.store.ping())
        .expect("the store reaches redis-server");

    if let Ok(only) = std::env::var("ONLY_CASE") {
        let case = CASES
            .into_iter()
            .find(|case| format!("{case:?}") == only)
            .expect("a case");
        runtime.block_on(run(&targets, case, 1, 2_000, false));
        let (wall, mut recorded) = runtime.block_on(run(&targets, case, 1, 200_000, true));
        recorded.sort_unstable();
        println!(
            "{only}: {:?} total, p50 {:?}",
            wall,
            percentile(&recorded, 0.5)
        );
        return;
    }
    println!("## Redis store: the admitted check against the floor script\n");
    println!(
        "Loopback redis-server, 2 Tokio workers, one multiplexed connection per target, \
         {KEYS} keys. Interleaved rounds: {}.\n",
        RUNS.iter()
            .map(|(tasks, rounds, per_round)| format!(
                "{rounds} rounds of {per_round} operations per case with {tasks} task(s)"
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| operation | tasks | ops/s | p50 (µs) | p99 (µs) | p50 / floor p50 \
         | p50 / floor p50 on the store's keys | ops/s / floor ops/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (tasks, rounds, per_round) in RUNS {
        // Warm-up: connections made, script loaded, keys written.
        for case in CASES {
            runtime.block_on(run(&targets, case, tasks, 2_000, false));
        }
        let mut walls = [Duration::ZERO; CASES.len()];
        let mut latencies: [Vec<Duration>; CASES.len()] = Default::default();
        for _ in 0..rounds {
            for (index, case) in CASES.into_iter().enumerate() {
                let (wall, recorded) =
                    runtime.block_on(run(&targets, case, tasks, per_round, true));
                walls[index] += wall;
                latencies[index].extend(recorded);
            }
        }
        let mut figures = Vec::new();
        for (index, sorted) in latencies.iter_mut().enumerate() {
            sorted.sort_unstable();
            let rate = sorted.len() as f64 / walls[index].as_secs_f64();
            figures.push((rate, percentile(sorted, 0.50), percentile(sorted, 0.99)));
        }
        let at = |wanted: Case| {
            CASES
                .iter()
                .position(|&case| case == wanted)
                .expect("every case is in CASES")
        };
        let (floor_rate, floor_p50, _) = figures[at(Case::Floor)];
        let (_, store_keys_floor_p50, _) = figures[at(Case::FloorAsStoreConfigured)];
        for (case, (rate, p50, p99)) in CASES.into_iter().zip(figures) {
            println!(
                "| {} | {tasks} | {rate:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} |",
                case.name(),
                micros(p50),
                micros(p99),
                p50.as_secs_f64() / floor_p50.as_secs_f64(),
                p50.as_secs_f64() / store_keys_floor_p50.as_secs_f64(),
                rate / floor_rate,
            );
        }
    }

    println!(
        "\n### Redis' own time per call (`INFO commandstats`, {SERVER_PASS} calls from 1 task)\n"
    );
    println!("| operation | server µs per call |");
    println!("|---|---:|");
    for case in CASES {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut server.connection())
            .expect("CONFIG RESETSTAT");
        runtime.block_on(run(&targets, case, 1, SERVER_PASS, false));
        let command = if case == Case::Ping {
            "ping"
        } else {
            "evalsha"
        };
        match server_usec_per_call(&server, command) {
            Some(usec) => println!("| {} | {usec:.2} |", case.name()),
            None => println!("| {} | (not reported) |", case.name()),
        }
    }
    drop(server);
}
