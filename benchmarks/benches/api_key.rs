//! Cost of `policy_runtime::ApiKeyStore::verify`: a hit and a miss, with 1,
//! 1,000 and 100,000 configured keys, beside the SHA-256 digest of the
//! presented key that every verification starts with.
//!
//! Verification should not grow with the number of keys: the figures for one
//! key and for many should be the same within noise. Run from the repository
//! root:
//!
//! ```text
//! cargo bench -p benchmarks --bench api_key
//! cargo run -p benchmarks --release --bin report
//! ```

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use policy_runtime::ApiKeyStore;
use sha2::{Digest, Sha256};
use std::hint::black_box;

fn secret(index: usize) -> String {
    format!("bench-key-{index:08}-0123456789abcdef")
}

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("api_key_verify");
    // A key of the same length as the configured ones, so hashing costs the same.
    let miss = "bench-key-unknown0-0123456789abcdef";
    assert_eq!(miss.len(), secret(0).len());
    for keys in [1usize, 1_000, 100_000] {
        let mut store = ApiKeyStore::new();
        for index in 0..keys {
            store
                .insert(&format!("client-{index}"), secret(index))
                .expect("distinct, non-empty keys");
        }
        let hit = secret(keys / 2);
        assert!(store.verify(hit.as_bytes()).is_some());
        assert!(store.verify(miss.as_bytes()).is_none());
        group.bench_with_input(BenchmarkId::new("hit", keys), &hit, |b, hit| {
            b.iter(|| store.verify(black_box(hit.as_bytes())).is_some())
        });
        group.bench_with_input(BenchmarkId::new("miss", keys), &miss, |b, miss| {
            b.iter(|| store.verify(black_box(miss.as_bytes())).is_some())
        });
    }
    let presented = secret(0);
    group.bench_function("sha256_of_presented_key", |b| {
        b.iter(|| Sha256::digest(black_box(presented.as_bytes())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = verify
}
criterion_main!(benches);
