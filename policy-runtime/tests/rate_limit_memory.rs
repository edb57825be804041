//! The in-memory store under load: bounded memory after a flood of distinct
//! clients, and exact counts under concurrency on a fake clock.

use policy_runtime::{
    ClientKey, FakeRelativeClock, LimitRequest, LimiterStore, MemoryStore, Quota,
};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn ip_key(n: u32) -> ClientKey {
    ClientKey::Ip(IpAddr::V4(Ipv4Addr::from(n)))
}

async fn check(store: &MemoryStore<FakeRelativeClock>, quotas: &[Quota], key: &ClientKey) -> bool {
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
    let clock = FakeRelativeClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let quotas = [Quota::new(10, Duration::from_secs(60))];
    for n in 0..1_000_000 {
        assert!(check(&store, &quotas, &ip_key(n)).await);
    }
    // Nothing has expired yet: every client is held.
    assert_eq!(store.clients(), 1_000_000);

    clock.advance(Duration::from_secs(61));
    // No user code: the next request after the period sweeps the idle clients.
    assert!(check(&store, &quotas, &ip_key(7)).await);
    assert!(
        store.clients() <= 1,
        "{} clients still held",
        store.clients()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_on_one_key_admit_exactly_the_quota() {
    let clock = FakeRelativeClock::default();
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
