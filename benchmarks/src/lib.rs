//! Helpers shared by the benchmarks in `benches/`; the benchmarks themselves
//! and how to run them are described in BENCHMARKS.md at the repository root.
//!
//! Nothing here measures anything: it polls futures that are ready at once
//! without an executor (so no runtime cost is mixed into the figures) and
//! reads the resident set size of the process.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The criterion settings every bench runs with: 1 s of warm-up and 3 s of
/// measurement per benchmark, so a full `cargo bench` takes a few minutes.
///
/// ```
/// let _criterion = benchmarks::criterion();
/// ```
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Polls `future` once and returns its output.
///
/// Every future the benchmarks drive (a router call on an in-memory store, a
/// `MemoryStore` check) completes on its first poll; driving it with a no-op
/// waker instead of an executor keeps the executor's own cost out of the
/// figures. A future that is not ready is a bug in the benchmark setup.
///
/// ```
/// assert_eq!(benchmarks::ready_now(async { 7 }), 7);
/// ```
pub fn ready_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a benchmarked future was not ready on its first poll"),
    }
}

/// The resident set size of this process in bytes (`VmRSS`), on Linux.
///
/// ```
/// if cfg!(target_os = "linux") {
///     assert!(benchmarks::resident_bytes().unwrap() > 0);
/// }
/// ```
pub fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// The peak resident set size of this process in bytes (`VmHWM`), on Linux.
///
/// ```
/// if cfg!(target_os = "linux") {
///     assert!(benchmarks::peak_resident_bytes().unwrap() > 0);
/// }
/// ```
pub fn peak_resident_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
