//! Cost of a strict limit in `policy_runtime::MemoryStore`, through the
//! `LimiterStore` trait: the refusal of a client that exhausted a large
//! strict quota (`10000/day, strict`), against the refusal of a client that
//! exhausted the same quota without `strict` (GCRA), and an admitted request.
//!
//! - `bound_strict/strict_refusal`: the 10,001st request of the day of one
//!   client, refused.
//! - `bound_strict/gcra_refusal`: the same under GCRA, refused.
//! - `bound_strict/strict_admit`: an admitted request under a strict quota of
//!   the same count whose window is a nanosecond, so every request is admitted.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --bench bound_strict
//! ```

use benchmarks::ready_now;
use criterion::{Criterion, criterion_group, criterion_main};
use policy_runtime::{ClientKey, LimitRequest, LimiterStore, MemoryStore, Quota};
use std::hint::black_box;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);
static STRICT: [Quota; 1] = [Quota::new(10_000, DAY).strict()];
static GCRA: [Quota; 1] = [Quota::new(10_000, DAY)];
/// Always admits: each admission leaves the window a nanosecond later.
static ROOMY: [Quota; 1] = [Quota::new(10_000, Duration::from_nanos(1)).strict()];

fn check(store: &MemoryStore, scope: &'static str, quotas: &[Quota], key: &ClientKey) -> bool {
    ready_now(store.check(&[LimitRequest {
        scope,
        key,
        quotas,
        cost: 1,
    }]))
    .expect("the memory store does not fail")
    .allowed
}

/// A store in which `key` used up `quotas`.
fn exhausted(scope: &'static str, quotas: &[Quota], key: &ClientKey) -> MemoryStore {
    let store = MemoryStore::new();
    let mut admitted = 0;
    while check(&store, scope, quotas, key) {
        admitted += 1;
    }
    assert_eq!(admitted, 10_000);
    store
}

fn bound_strict(c: &mut Criterion) {
    let mut group = c.benchmark_group("bound_strict");
    let key = ClientKey::Header("user-1".into());

    let store = exhausted("strict", &STRICT, &key);
    group.bench_function("strict_refusal", |b| {
        b.iter(|| assert!(!check(&store, "strict", &STRICT, black_box(&key))))
    });

    let store = exhausted("gcra", &GCRA, &key);
    group.bench_function("gcra_refusal", |b| {
        b.iter(|| assert!(!check(&store, "gcra", &GCRA, black_box(&key))))
    });

    let store = MemoryStore::new();
    group.bench_function("strict_admit", |b| {
        b.iter(|| assert!(check(&store, "roomy", &ROOMY, black_box(&key))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = bound_strict
}
criterion_main!(benches);
