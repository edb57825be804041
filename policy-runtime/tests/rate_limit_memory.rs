//! The in-memory store under load: bounded memory after a flood of distinct
//! clients, and exact counts under concurrency on a fake clock.

use policy_runtime::{ClientKey, LimitRequest, LimiterStore, ManualClock, MemoryStore, Quota};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn ip_key(n: u32) -> ClientKey {
    ClientKey::Ip(IpAddr::V4(Ipv4Addr::from(n)))
}

async fn check(store: &MemoryStore<ManualClock>, quotas: &[Quota], key: &ClientKey) -> bool {
    let requests = [LimitRequest {
        scope: "flood",
        key,
        quotas,
        cost: 1,
    }];
    store.check(&requests).await.unwrap().allowed
}

#[tokio::test]
async fn a_flood_of_a_million_clients_is_forgotten_after_expiry() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let quotas = [Quota::new(10, Duration::from_secs(60))];
    for n in 0..1_000_000 {
        assert!(check(&store, &quotas, &ip_key(n)).await);
    }
    // Nothing has expired yet: every client is held.
    assert_eq!(store.clients(), 1_000_000);

    clock.advance(Duration::from_secs(61));
    // No user code: the next eight requests after the period each sweep an
    // eighth of the clients.
    for _ in 0..8 {
        assert!(check(&store, &quotas, &ip_key(7)).await);
    }
    assert!(
        store.clients() <= 1,
        "{} clients still held",
        store.clients()
    );
}

#[tokio::test]
async fn one_request_sweeps_an_eighth_of_the_idle_clients() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock.clone());
    let quotas = [Quota::new(10, Duration::from_secs(60))];
    for n in 0..80_000 {
        assert!(check(&store, &quotas, &ip_key(n)).await);
    }
    clock.advance(Duration::from_secs(61));
    let mut held = vec![store.clients()];
    for _ in 0..8 {
        // A client already held, so that the count shows only what sweeps remove.
        assert!(check(&store, &quotas, &ip_key(0)).await);
        held.push(store.clients());
    }
    // Each request removed about 10,000 idle clients (an eighth, give or
    // take how the keys hash), never all of them at once...
    for pair in held.windows(2).take(7) {
        let removed = pair[0] - pair[1];
        assert!((8_000..12_000).contains(&removed), "{held:?}");
    }
    // ...and after eight requests only the client just seen is left.
    assert_eq!(held[8], 1, "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_key_admit_exactly_the_quota() {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let quotas: Arc<[Quota]> = Arc::from([Quota::new(50, Duration::from_secs(50))]);
    let key = ClientKey::Global;

    let round = |tasks: usize| {
        let admitted = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let (store, quotas, key, admitted) = (
                    Arc::clone(&store),
                    Arc::clone(&quotas),
                    key.clone(),
                    Arc::clone(&admitted),
                );
                tokio::spawn(async move {
                    for _ in 0..10 {
                        let requests = [LimitRequest {
                            scope: "hot",
                            key: &key,
                            quotas: &quotas,
                            cost: 1,
                        }];
                        if store.check(&requests).await.unwrap().allowed {
                            admitted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        async move {
            for handle in handles {
                handle.await.unwrap();
            }
            admitted.load(Ordering::SeqCst)
        }
    };

    // 64 tasks x 10 requests at one instant: exactly the burst of 50.
    assert_eq!(round(64).await, 50);
    // k intervals later (one interval is 1 s): exactly k more.
    for k in [1, 3, 7] {
        clock.advance(Duration::from_secs(k));
        assert_eq!(round(64).await, k as usize);
    }
}

/// Threads that race on one IPv4 client, and on clients of their own, get
/// exactly the quota: a check that loses a race runs again on the new state.
#[test]
fn threads_racing_on_clients_admit_exactly_the_quota() {
    let clock = ManualClock::new();
    let store = MemoryStore::with_clock(clock);
    let quotas = [Quota::new(1_000, Duration::from_secs(3_600))];
    let shared = ip_key(1);
    let admitted_by = |key: &ClientKey, tries: usize| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        (0..tries)
            .filter(|_| runtime.block_on(check(&store, &quotas, key)))
            .count()
    };
    let (on_shared, on_own): (Vec<usize>, Vec<usize>) = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..4u32)
            .map(|n| {
                let (shared, own) = (&shared, ip_key(100 + n));
                scope.spawn(move || {
                    let mut on_shared = 0;
                    let mut on_own = 0;
                    // Interleaved, so that every thread races on both kinds of key.
                    for _ in 0..10 {
                        on_shared += admitted_by(shared, 100);
                        on_own += admitted_by(&own, 100);
                    }
                    (on_shared, on_own)
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|racer| racer.join().unwrap())
            .unzip()
    });
    // 4 threads x 1,000 tries on the shared client: exactly its quota.
    assert_eq!(on_shared.iter().sum::<usize>(), 1_000);
    // 1,000 tries on each thread's own client: all admitted.
    assert_eq!(on_own, [1_000; 4]);
}
