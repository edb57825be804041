//! Memory per client key of `policy_runtime::MemoryStore` against governor's
//! keyed DashMap limiter, and what the store's eviction of idle clients costs.
//!
//! Every figure comes from a fresh child process (this binary run again), so
//! memory freed by one measurement cannot be reused by the next.
//!
//! - Memory: the child reads the bytes its heap holds (counted by a wrapper
//!   around the system allocator) and its resident set size (`VmRSS` in
//!   /proc/self/status), puts N client keys in (one allowed check each, on a
//!   quota of one request a day so every key holds live state), and reads
//!   both again; the growth over N is the bytes per key. The peak (`VmHWM`)
//!   shows the extra room taken while tables grow. The time to add the N
//!   keys, over N, is the amortised cost of a new client, sweeps included.
//! - Sweeps: `MemoryStore` keeps a scope's clients in eight parts and forgets
//!   idle clients one part at a time, in a sweep that runs inside the check
//!   that adds a client, once an eighth as many clients were added as the
//!   store held. Every check is timed while keys go in; a slow check that
//!   grew the heap grew a DashMap shard's table, the slowest one that did not
//!   is a sweep. With no key idle a sweep visits a part's keys and removes
//!   none. With every key idle (a fake clock moved past their quotas after N
//!   keys went in) new keys are added until the store holds less than 1% of
//!   the N idle keys: the first eight of those checks each swept a part.
//!   governor's `retain_recent` over N live keys is timed for reference.
//!
//! Not a criterion benchmark: it prints Markdown tables. Run from the
//! repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench memory
//! ```

use benchmarks::{peak_resident_bytes, ready_now, resident_bytes};
use governor::RateLimiter;
use policy_runtime::{ClientKey, LimitRequest, LimiterStore, ManualClock, MemoryStore, Quota};
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the bytes currently allocated, so memory per
/// key can be read exactly as well as through the RSS (which also shows what
/// the allocator keeps and what a table has not touched yet).
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(pointer, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> u64 {
    LIVE_BYTES.load(Ordering::Relaxed) as u64
}

/// Set in a child: which measurement to make, as `<task>:<keys>`.
const CHILD_ENV: &str = "POLICY_BENCH_MEMORY_CHILD";

const DAY: Duration = Duration::from_secs(86_400);
static ONE_A_DAY: [Quota; 1] = [Quota::new(1, DAY)];
static ONE_A_SECOND: [Quota; 1] = [Quota::new(1, Duration::from_secs(1))];
const SCOPE: &str = "benchmarks::memory";

const KEY_COUNTS: [usize; 2] = [100_000, 1_000_000];
/// The key counts when run as a test (`cargo test --benches`): a smoke run.
const TEST_KEY_COUNTS: [usize; 2] = [1_000, 10_000];

fn ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + index as u32))
}

fn main() {
    if let Ok(task) = std::env::var(CHILD_ENV) {
        child(&task);
        return;
    }
    // `cargo bench -- <filter>` passes the filter to every bench binary: run
    // only when there is none or it names this bench.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "memory".contains(f.as_str())) {
        return;
    }
    if std::env::args().any(|arg| arg == "--list") {
        println!("memory: bench");
        return;
    }
    // As criterion does: `cargo bench` passes `--bench`; without it (or with
    // `--test`) this is a test run, which only checks that everything works.
    let benchmarking = std::env::args().any(|arg| arg == "--bench")
        && !std::env::args().any(|arg| arg == "--test");
    let key_counts = if benchmarking {
        KEY_COUNTS
    } else {
        println!("test mode: small key counts, figures not meaningful");
        TEST_KEY_COUNTS
    };

    println!(
        "## Memory per key\n\nKey and state sizes: ClientKey {} B, IpAddr {} B, governor state {} B.\n",
        std::mem::size_of::<ClientKey>(),
        std::mem::size_of::<IpAddr>(),
        std::mem::size_of::<governor::state::InMemoryState>(),
    );
    println!(
        "| limiter | keys | heap bytes per key | RSS growth (MiB) | RSS bytes per key | peak RSS growth (MiB) | new-key ns (amortised) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for limiter in ["memory_store", "governor_dashmap"] {
        for keys in key_counts {
            run_child(&format!("{limiter}:{keys}"));
        }
    }
    println!("\n## Eviction\n");
    println!(
        "| store | keys | slowest sweep (ms @ key #) | slowest table growth (ms @ key #) | heap before → after (MiB) | RSS before → after (MiB) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for task in ["sweep_visit", "sweep_evict", "governor_retain_recent"] {
        for keys in key_counts {
            run_child(&format!("{task}:{keys}"));
        }
    }
}

fn run_child(task: &str) {
    let exe = std::env::current_exe().expect("the path of this benchmark binary");
    let output = Command::new(exe)
        .env(CHILD_ENV, task)
        .output()
        .expect("the measuring child process starts");
    if !output.status.success() {
        eprintln!(
            "the measurement {task} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::process::exit(1);
    }
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

fn rss() -> u64 {
    resident_bytes().expect("VmRSS is readable")
}

fn peak() -> u64 {
    peak_resident_bytes().expect("VmHWM is readable")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn check<C>(store: &MemoryStore<C>, index: usize, quotas: &'static [Quota]) -> bool
where
    MemoryStore<C>: LimiterStore,
    C: policy_runtime::Clock,
{
    let key = ClientKey::Ip(ip(index));
    ready_now(store.check(&[LimitRequest {
        scope: SCOPE,
        key: &key,
        quotas,
        cost: 1,
    }]))
    .expect("the memory store does not fail")
    .allowed
}

/// Makes one measurement and prints it as a table row.
fn child(task: &str) {
    let (task, keys) = task.split_once(':').expect("task is <task>:<keys>");
    let keys: usize = keys.parse().expect("key count is a number");
    match task {
        "memory_store" => {
            let before = Before::now();
            let started = Instant::now();
            let store = MemoryStore::new();
            for index in 0..keys {
                assert!(check(&store, index, &ONE_A_DAY));
            }
            let elapsed = started.elapsed();
            memory_row(task, keys, &before, elapsed);
            drop(std::hint::black_box(store));
        }
        "governor_dashmap" => {
            let before = Before::now();
            let started = Instant::now();
            let limiter =
                RateLimiter::dashmap(governor::Quota::with_period(DAY).expect("not zero"));
            for index in 0..keys {
                assert!(limiter.check_key(&ip(index)).is_ok());
            }
            let elapsed = started.elapsed();
            memory_row(task, keys, &before, elapsed);
            drop(std::hint::black_box(limiter));
        }
        "sweep_visit" => {
            let store = MemoryStore::new();
            let mut slowest = Slowest::default();
            for index in 0..keys {
                slowest.time(index, || assert!(check(&store, index, &ONE_A_DAY)));
            }
            slowest.row("memory_store, no key idle", keys, None);
        }
        "sweep_evict" => {
            let clock = ManualClock::new();
            let store = MemoryStore::with_clock(clock.clone());
            for index in 0..keys {
                assert!(check(&store, index, &ONE_A_SECOND));
            }
            let (rss_before, heap_before) = (rss(), live_bytes());
            clock.advance(Duration::from_secs(2));
            let mut slowest = Slowest::default();
            for index in keys..3 * keys {
                slowest.time(index - keys, || {
                    assert!(check(&store, index, &ONE_A_SECOND))
                });
                // The sweeps have given the idle keys' memory back.
                if store.clients() < keys / 100 {
                    break;
                }
            }
            slowest.row(
                "memory_store, every key idle (key # counts new keys)",
                keys,
                Some(((rss_before, rss()), (heap_before, live_bytes()))),
            );
        }
        "governor_retain_recent" => {
            let limiter =
                RateLimiter::dashmap(governor::Quota::with_period(DAY).expect("not zero"));
            for index in 0..keys {
                assert!(limiter.check_key(&ip(index)).is_ok());
            }
            let started = Instant::now();
            limiter.retain_recent();
            let took = started.elapsed();
            assert_eq!(limiter.len(), keys, "every key is live, none is removed");
            println!(
                "| governor `retain_recent`, no key idle | {keys} | {:.2} | – | – | – |",
                ms(took)
            );
        }
        other => panic!("unknown task {other}"),
    }
}

/// The process's memory before a measurement.
struct Before {
    heap: u64,
    rss: u64,
    peak: u64,
}

impl Before {
    fn now() -> Self {
        Before {
            heap: live_bytes(),
            rss: rss(),
            peak: peak(),
        }
    }
}

fn memory_row(task: &str, keys: usize, before: &Before, elapsed: Duration) {
    let heap = live_bytes().saturating_sub(before.heap);
    let growth = rss().saturating_sub(before.rss);
    println!(
        "| {task} | {keys} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
        heap as f64 / keys as f64,
        mib(growth),
        growth as f64 / keys as f64,
        mib(peak().saturating_sub(before.peak)),
        elapsed.as_nanos() as f64 / keys as f64,
    );
}

/// The slowest check that grew the heap (a table growing) and the slowest
/// that did not (a sweep, or noise), with their key numbers.
#[derive(Default)]
struct Slowest {
    growing: (Duration, usize),
    other: (Duration, usize),
}

impl Slowest {
    /// Times `check` as the check of key number `index`.
    fn time(&mut self, index: usize, check: impl FnOnce()) {
        let heap_before = live_bytes();
        let started = Instant::now();
        check();
        let took = started.elapsed();
        let heap_after = live_bytes();
        let slot = if heap_after > heap_before {
            &mut self.growing
        } else {
            &mut self.other
        };
        if took > slot.0 {
            *slot = (took, index);
        }
    }

    /// `memory` is ((RSS before, after), (heap before, after)).
    fn row(&self, name: &str, keys: usize, memory: Option<((u64, u64), (u64, u64))>) {
        let (heap, rss) = memory.map_or_else(
            || (String::from("–"), String::from("–")),
            |((rss_before, rss_after), (heap_before, heap_after))| {
                (
                    format!("{:.1} → {:.1}", mib(heap_before), mib(heap_after)),
                    format!("{:.1} → {:.1}", mib(rss_before), mib(rss_after)),
                )
            },
        );
        let show = |(took, index): (Duration, usize)| {
            if took.is_zero() {
                String::from("none")
            } else {
                format!("{:.2} @ {index}", ms(took))
            }
        };
        println!(
            "| {name} | {keys} | {} | {} | {heap} | {rss} |",
            show(self.other),
            show(self.growing)
        );
    }
}
