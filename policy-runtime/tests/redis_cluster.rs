//! `RedisStore` on a Redis Cluster of three masters on loopback that each
//! test starts (`redis-server --cluster-enabled yes`, slots assigned with
//! `CLUSTER ADDSLOTSRANGE`, nodes joined with `CLUSTER MEET`) and stops by
//! PID: exact limits from two engines, one hash slot per client, limits of
//! several clients in one request, and a node killed.
#![cfg(feature = "redis")]

mod common;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/redis_tls_pki.rs"]
mod redis_tls_pki;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{
    ClientKey, Engine, FailureMode, LimitRequest, LimiterStore, Quota, RedisStore,
};
use redis_server::RedisServer;
use redis_tls_pki::Pki;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const OK: StatusCode = StatusCode::OK;
const REFUSED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
const HOUR: Duration = Duration::from_secs(3600);
/// Generous: these tests are about where keys go and exact counts, and a
/// timeout on a busy machine must not stand in for an answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The slots of each master.
const RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

#[policy_runtime::rate_limit("3/minute", scope = "cluster-minute")]
#[policy_runtime::rate_limit("100/hour", scope = "cluster-hour")]
async fn one_client() -> &'static str {
    "ok"
}

#[policy_runtime::rate_limit("5/hour", key = ip, scope = "cluster-ip")]
#[policy_runtime::rate_limit("2/hour", key = global, scope = "cluster-global")]
async fn two_clients() -> &'static str {
    "ok"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("no free loopback port")
        .port()
}

/// Three masters, each with a third of the slots, and their config files.
struct Cluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
    /// The CA the nodes' certificates chain to, when they speak TLS only.
    ca: Option<PathBuf>,
}

impl Cluster {
    fn start() -> Self {
        Self::start_on(None)
    }

    /// A cluster that speaks TLS only, to clients and between its nodes,
    /// with `pki`'s `server` certificate.
    fn start_tls(pki: &Pki) -> Self {
        Self::start_on(Some(pki))
    }

    fn start_on(pki: Option<&Pki>) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "policy-redis-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let bus_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                let cluster_args = [
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    dir.join(format!("nodes-{i}.conf"))
                        .to_string_lossy()
                        .into_owned(),
                    // The bus port is not the default port + 10000, which
                    // may be past 65535 for a free port.
                    "--cluster-port".into(),
                    bus_ports[i].to_string(),
                    "--cluster-node-timeout".into(),
                    "1000".into(),
                ];
                match pki {
                    None => RedisServer::start_with(&cluster_args),
                    Some(pki) => {
                        let mut args = pki.server_args("server", false);
                        args.extend(cluster_args);
                        args.extend(["--tls-cluster".into(), "yes".into()]);
                        RedisServer::start_tls(&args)
                    }
                }
            })
            .collect();
        let cluster = Self {
            nodes,
            dir,
            ca: pki.map(|pki| pki.path("ca.pem")),
        };
        let nodes = &cluster.nodes;
        for (node, (first, last)) in nodes.iter().zip(RANGES) {
            let _: () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(&mut cluster.admin(node))
                .unwrap();
        }
        let mut first = cluster.admin(&nodes[0]);
        for (node, bus_port) in nodes.iter().zip(&bus_ports).skip(1) {
            let _: () = redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(node.port())
                .arg(bus_port)
                .query(&mut first)
                .unwrap();
        }
        cluster.wait_until_ok();
        cluster
    }

    /// A blocking connection to `node`, for setting up and inspecting.
    fn admin(&self, node: &RedisServer) -> redis::Connection {
        let Some(ca) = &self.ca else {
            return node.connection();
        };
        redis::Client::build_with_tls(
            format!("rediss://127.0.0.1:{}", node.port()),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(ca).unwrap()),
            },
        )
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
        .expect("cannot connect to the test redis-server over TLS")
    }

    /// Waits until every node sees the three masters and every slot.
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self.nodes.iter().all(|node| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut self.admin(node))
                    .unwrap();
                info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:3")
                    && info.contains("cluster_slots_assigned:16384")
            });
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not form");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        // Two seeds: either is enough to find the third.
        format!(
            "{}://127.0.0.1:{},127.0.0.1:{}",
            if self.ca.is_some() {
                "rediss+cluster"
            } else {
                "redis+cluster"
            },
            self.nodes[0].port(),
            self.nodes[1].port()
        )
    }

    fn store(&self, mode: FailureMode) -> RedisStore {
        let builder = match &self.ca {
            Some(ca) => RedisStore::builder().tls_ca_file(ca),
            None => RedisStore::builder(),
        };
        builder
            .url(self.url())
            .timeout(TIMEOUT)
            .retry_interval(Duration::from_millis(100))
            .failure_mode(mode)
            .build()
            .unwrap()
    }

    /// The keys on each node.
    fn keys(&self) -> Vec<Vec<String>> {
        self.nodes
            .iter()
            .map(|node| {
                redis::cmd("KEYS")
                    .arg("*")
                    .query(&mut self.admin(node))
                    .unwrap()
            })
            .collect()
    }

    /// The `EVALSHA` calls that ran a script, over all nodes (a call
    /// answered `NOSCRIPT`, before the script is loaded, is a failed call).
    fn script_runs(&self) -> u64 {
        self.nodes
            .iter()
            .map(|node| {
                let stats: String = redis::cmd("INFO")
                    .arg("commandstats")
                    .query(&mut self.admin(node))
                    .unwrap();
                let Some(line) = stats
                    .lines()
                    .find(|line| line.starts_with("cmdstat_evalsha:"))
                else {
                    return 0;
                };
                let field = |name: &str| -> u64 {
                    line.split([':', ','])
                        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                        .unwrap()
                        .parse()
                        .unwrap()
                };
                field("calls") - field("failed_calls")
            })
            .sum()
    }

    /// The node that holds `key`'s slot.
    fn node_of(&self, key: &str) -> usize {
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut self.admin(&self.nodes[0]))
            .unwrap();
        RANGES
            .iter()
            .position(|(first, last)| (*first..=*last).contains(&slot))
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn app(store: &RedisStore) -> Router {
    let engine = Engine::builder()
        .limiter_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/one", get(one_client))
        .route("/two", get(two_clients))
        .layer(engine)
}

async fn status(app: &Router, ip: &str, path: &str) -> StatusCode {
    let request = from(ip, "GET", path).body(Body::empty()).unwrap();
    send(app, request).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_a_cluster_admit_exactly_the_quota() {
    static QUOTA: [Quota; 1] = [Quota::new(50, HOUR)];
    let cluster = Cluster::start();
    let instances = [
        cluster.store(FailureMode::Closed),
        cluster.store(FailureMode::Closed),
    ];
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = instances[i % 2].clone();
            tokio::spawn(async move {
                let key = ClientKey::Ip("198.51.100.4".parse().unwrap());
                let request = LimitRequest {
                    scope: "cluster-shared",
                    key: &key,
                    quotas: &QUOTA,
                    cost: 1,
                };
                store.check(&[request]).await.unwrap().allowed
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 50);
}

#[tokio::test]
async fn the_limits_of_one_client_share_a_slot_and_clients_spread_over_the_nodes() {
    let cluster = Cluster::start();
    let first = app(&cluster.store(FailureMode::Closed));
    let second = app(&cluster.store(FailureMode::Closed));
    // Both limits of the handler, counted together from two engines.
    let mut statuses = Vec::new();
    for app in [&first, &second, &first, &second] {
        statuses.push(status(app, "192.0.2.1", "/one").await);
    }
    assert_eq!(statuses, [OK, OK, OK, REFUSED]);
    // One script run per request for both limits: one round trip.
    assert_eq!(cluster.script_runs(), 4);

    let keys: Vec<String> = cluster.keys().concat();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let store = cluster.store(FailureMode::Closed);
    let client = ClientKey::Ip("192.0.2.1".parse().unwrap());
    let minute = store.key("cluster-minute", &client);
    let hour = store.key("cluster-hour", &client);
    assert_eq!(
        keys.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([minute.clone(), hour.clone()])
    );
    assert_eq!(cluster.node_of(&minute), cluster.node_of(&hour));

    // Many clients: every master holds some.
    for i in 2..40 {
        assert_eq!(status(&first, &format!("192.0.2.{i}"), "/one").await, OK);
    }
    let per_node: Vec<usize> = cluster.keys().iter().map(Vec::len).collect();
    assert!(per_node.iter().all(|&keys| keys > 0), "{per_node:?}");
    assert_eq!(per_node.iter().sum::<usize>(), 2 * 39);
}

#[tokio::test]
async fn limits_of_two_clients_in_one_request_give_back_a_refused_count() {
    let cluster = Cluster::start();
    let store = cluster.store(FailureMode::Closed);
    let app = app(&store);
    let global = store.key("cluster-global", &ClientKey::Global);
    // A client whose per-IP key is on another node than the global key.
    let ip = (1..=254)
        .map(|i| format!("192.0.2.{i}"))
        .find(|ip| {
            let key = store.key("cluster-ip", &ClientKey::Ip(ip.parse().unwrap()));
            cluster.node_of(&key) != cluster.node_of(&global)
        })
        .unwrap();
    // The global limit (2/hour) refuses the third request; the per-IP limit
    // (5/hour), on another node, is given back what that request counted.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(&app, &ip, "/two").await);
    }
    assert_eq!(statuses, [OK, OK, REFUSED, REFUSED]);
    // Two counted of five: three left.
    static IP_QUOTA: [Quota; 1] = [Quota::new(5, HOUR)];
    let client = ClientKey::Ip(ip.parse().unwrap());
    let state = store
        .peek(LimitRequest {
            scope: "cluster-ip",
            key: &client,
            quotas: &IP_QUOTA,
            cost: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 3);
}

#[tokio::test]
async fn a_killed_node_is_an_outage_answered_by_the_failure_mode() {
    let mut cluster = Cluster::start();
    let closed = cluster.store(FailureMode::Closed);
    let fallback = cluster.store(FailureMode::FallbackToMemory);
    let (closed_app, fallback_app) = (app(&closed), app(&fallback));
    // A client whose slot is on the node that will be killed.
    let ip = (1..=254)
        .map(|i| format!("198.51.100.{i}"))
        .find(|ip| {
            let key = closed.key("cluster-minute", &ClientKey::Ip(ip.parse().unwrap()));
            cluster.node_of(&key) == 2
        })
        .unwrap();
    assert_eq!(status(&closed_app, &ip, "/one").await, OK);
    assert_eq!(status(&fallback_app, &ip, "/one").await, OK);

    cluster.nodes[2].kill();
    assert_eq!(status(&closed_app, &ip, "/one").await, UNAVAILABLE);
    assert!(!closed.is_available());
    // The fallback counts afresh in memory, and keeps the limit.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(&fallback_app, &ip, "/one").await);
    }
    assert_eq!(statuses, [OK, OK, OK, REFUSED]);
    assert!(!fallback.is_available());
}

/// `RATELIMIT_STORAGE_URI=redis+cluster://...` selects the cluster store.
#[tokio::test]
async fn a_cluster_storage_uri_selects_the_cluster_store() {
    let cluster = Cluster::start();
    let app = |uri: String| {
        let engine = Engine::builder()
            .environment(policy_runtime::Environment::Development)
            .from_vars([
                ("RATELIMIT_STORAGE_URI".to_string(), uri),
                ("RATELIMIT_KEY_PREFIX".to_string(), "flask".to_string()),
            ])
            .build()
            .unwrap();
        Router::new().route("/one", get(one_client)).layer(engine)
    };
    let (first, second) = (app(cluster.url()), app(cluster.url()));
    let mut statuses = Vec::new();
    for app in [&first, &second, &first, &second] {
        statuses.push(status(app, "192.0.2.99", "/one").await);
    }
    assert_eq!(statuses, [OK, OK, OK, REFUSED]);
    let keys = cluster.keys().concat();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .all(|key| key.starts_with("flask:cluster-") && key.ends_with('}')),
        "{keys:?}"
    );
}

/// A cluster that speaks TLS only: `rediss+cluster://` with the CA.
#[tokio::test]
async fn a_cluster_over_tls() {
    let pki = Pki::new();
    let cluster = Cluster::start_tls(&pki);
    let first = app(&cluster.store(FailureMode::Closed));
    let second = app(&cluster.store(FailureMode::Closed));
    let mut statuses = Vec::new();
    for app in [&first, &second, &first, &second] {
        statuses.push(status(app, "192.0.2.77", "/one").await);
    }
    assert_eq!(statuses, [OK, OK, OK, REFUSED]);
    assert_eq!(cluster.keys().concat().len(), 2);
}
