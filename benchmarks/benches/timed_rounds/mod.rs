//! What the Redis benches (`redis_store`, `redis_floor`) share: choosing
//! whether to run under `cargo bench -- <filter>`, their two-worker Tokio
//! runtime, running one case's operations over concurrent tasks with each
//! operation's latency, and reading a percentile of those latencies.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the bench `name` runs: `cargo bench -- <filter>` passes the filter
/// to every bench binary, so it runs when there is none or one names it.
/// `--list` (as `cargo bench -- --list` asks) prints its name instead.
pub fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let named = |filter: &String| filter.contains(name) || name.contains(filter.as_str());
    if !filters.is_empty() && !filters.iter().any(named) {
        return false;
    }
    if std::env::args().any(|arg| arg == "--list") {
        println!("{name}: bench");
        return false;
    }
    true
}

/// The runtime every case runs on: two workers, as the machine has two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// The targets of a bench: one operation of `case` on the `n`-th key.
pub trait Operations<C>: Send + Sync + 'static {
    fn run(&self, case: C, n: usize) -> impl Future<Output = ()> + Send;
}

/// Runs `total` operations of `case` split over `tasks` tasks; the wall time
/// and, when `record`, every operation's latency.
pub async fn run<T, C>(
    targets: &Arc<T>,
    case: C,
    tasks: usize,
    total: u64,
    record: bool,
) -> (Duration, Vec<Duration>)
where
    T: Operations<C>,
    C: Copy + Send + 'static,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let targets = Arc::clone(targets);
            let count = total / tasks as u64 + u64::from((task as u64) < total % tasks as u64);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(if record { count as usize } else { 0 });
                for i in 0..count as usize {
                    let before = Instant::now();
                    targets.run(case, task * 7919 + i).await;
                    if record {
                        latencies.push(before.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("a benchmark task panicked"));
    }
    (started.elapsed(), latencies)
}

/// The `p`-th quantile (0 to 1) of latencies sorted in ascending order.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
