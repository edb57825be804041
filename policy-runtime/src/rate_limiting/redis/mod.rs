//! [`RedisStore`]: rate-limit state in Redis, shared by every instance of an app.
//!
//! This module owns the store, its configuration ([`RedisStoreBuilder`]) and
//! the connection: one auto-reconnecting, multiplexed connection per store
//! (or the cluster client's, on a Redis Cluster), with a timeout on every
//! call. The rest is split by concept:
//! - [`key`]: the key layout, `<prefix>:<scope>:<sha256 of the client>`;
//! - [`script`], `gcra.lua` and `gcra_one.lua`: the atomic decision (GCRA,
//!   or a sliding log for strict quotas) on the server's clock, one round
//!   trip; a check of one GCRA quota runs a script of the quota's own;
//! - [`outage`]: the failure modes and outage tracking;
//! - [`blocked`]: the local cache of refusals that saves round trips;
//! - [`strikes`] and `strikes.lua`: the lockout's and the penalty box's
//!   strikes and blocks, shared by every instance;
//! - [`tls`]: the certificates of `rediss://` connections;
//! - [`cluster`]: Redis Cluster's seed nodes, connection and hash slots.

mod blocked;
mod cluster;
mod key;
mod outage;
mod script;
mod strikes;
mod tls;

pub use outage::FailureMode;

use crate::rate_limiting::memory::MemoryStore;
use crate::rate_limiting::store::{
    ClientKey, Decision, LimitRequest, LimiterStore, StoreError, StoreFuture,
};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisError, RedisResult, Value};
use blocked::BlockedCache;
use cluster::Connection;
use key::KeyLayout;
use outage::{Attempt, Failure, Outage};
use script::{Check, Op};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The environment variable [`RedisStore::from_env`] reads the server's URL from.
const URL_VARIABLE: &str = "REDIS_URL";

/// Rate-limit state in Redis: every instance of an app that uses the same
/// server and prefix shares the same limits.
///
/// Each decision is one round trip: a Lua script on the server's clock
/// checks every quota of every check of the request (GCRA with the quota's
/// burst and the request's cost; a sliding log for strict quotas) and counts
/// the request only if all admit it. A check of one GCRA quota, the common
/// case, runs a small script of that quota's own (at most 64 per store),
/// which leaves a state it does not read (left by other quotas of the
/// scope) to the general script: two round trips then, within one timeout.
/// The decisions match [`MemoryStore`](crate::MemoryStore)'s. Keys are
/// `<prefix>:<scope>:<sha256 hex of the client key>` (on a Redis Cluster,
/// the client part in braces, as a hash tag: see
/// [`RedisStoreBuilder::cluster_nodes`]), one string per client and scope,
/// and expire when their state is no longer needed. A strict
/// quota keeps up to `count` times per client, so its cost grows with its
/// count, as in memory.
///
/// Every call to Redis is bounded by a timeout (50 ms by default); when Redis
/// fails, the store follows its [`FailureMode`] (by default it falls back to
/// in-memory limits) and logs the outage once when it starts and once when it
/// ends. Refusals are remembered locally until their retry time, so a client
/// hammering an exhausted limit costs no round trip (a reset made through
/// another instance therefore takes effect here at the latest at that retry
/// time).
///
/// The store connects lazily, on the first check, and reconnects on its own.
/// It must be used inside a Tokio runtime with timers (as under
/// `#[tokio::main]`). Clones share the connection and the outage state.
///
/// Readiness ([`crate::Health::engine`], through [`LimiterStore::ready`])
/// fails while Redis is known to be away: from the moment a request or a
/// probe finds it down until one finds it back. Readiness probes cost no
/// round trip each: at most one of them per retry interval sends a `PING`
/// (so an outage is noticed within a retry interval even without traffic),
/// and the others answer from what the store already knows.
/// [`RedisStore::ping`] always asks Redis.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use policy_runtime::{rate_limit, Engine, RedisStore};
///
/// #[rate_limit("20/hour")]
/// async fn score() -> &'static str {
///     "ok"
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::from_env()?; // REDIS_URL=redis://127.0.0.1:6379
/// let engine = Engine::builder().limiter_store(store.clone()).build()?;
/// let app: Router = Router::new().route("/score", get(score)).layer(engine);
/// store.ping().await?; // fails fast if Redis is unreachable
/// # drop(app);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    /// Created on first use, inside the runtime the store runs in.
    connection: OnceLock<RedisResult<Connection>>,
    scripts: script::Scripts,
    keys: KeyLayout,
    timeout: Duration,
    mode: FailureMode,
    outage: Outage,
    /// The limits counted while Redis is away, with the epoch of the outage
    /// they belong to (see [`Inner::fallback`]): made by the first request an
    /// outage degrades, released when it ends.
    fallback: RwLock<Option<(u64, Arc<MemoryStore>)>>,
    blocked: BlockedCache,
    /// A TLS failure was logged in the current outage (logged once per outage).
    tls_reported: AtomicBool,
    /// Runs once, in the request that starts or ends an outage, right after
    /// it changed the outage state: it stands for the requests running at
    /// that moment.
    #[cfg(test)]
    on_transition: std::sync::Mutex<Option<TransitionHook>>,
}

/// A test's stand-in for the requests running as an outage starts or ends.
#[cfg(test)]
type TransitionHook = Box<dyn FnOnce(&Inner) + Send>;

/// What a store connects to.
enum Target {
    /// One server, through an auto-reconnecting multiplexed connection.
    Single {
        client: ::redis::Client,
        config: ConnectionManagerConfig,
    },
    /// A Redis Cluster, through the cluster client.
    Cluster {
        client: ::redis::cluster::ClusterClient,
        config: ::redis::cluster::ClusterConfig,
    },
}

/// Configures a [`RedisStore`]; [`RedisStoreBuilder::build`] reports what is wrong.
///
/// Defaults: key prefix `policy`, a 50 ms timeout per Redis call, 1 s to
/// establish a connection, a probe every 1 s during an outage,
/// [`FailureMode::FallbackToMemory`], and up to 10 000 cached refusals.
///
/// With a `rediss://` URL the connection uses TLS (rustls, TLS 1.2 or 1.3):
/// the server's certificate must chain to the WebPKI roots, or to the CA
/// file given with [`RedisStoreBuilder::tls_ca_file`], and be issued for the
/// URL's host; [`RedisStoreBuilder::tls_client_cert`] adds a client
/// certificate for servers that require one. [`RedisStoreBuilder::build`]
/// reads and checks those files, so a bad one is an error naming it.
///
/// ```
/// use std::time::Duration;
/// use policy_runtime::{FailureMode, RedisStore};
///
/// let store = RedisStore::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .prefix("myapp")
///     .timeout(Duration::from_millis(20))
///     .failure_mode(FailureMode::Open)
///     .build()?; // no connection yet: it connects on the first check
/// assert_eq!(store.failure_mode(), FailureMode::Open);
/// assert!(store.key("search", &policy_runtime::ClientKey::Global).starts_with("myapp:search:"));
/// # Ok::<(), policy_runtime::RedisConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "call `.build()` to get a store"]
pub struct RedisStoreBuilder {
    url: Result<Option<String>, RedisConfigError>,
    prefix: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry_interval: Duration,
    mode: FailureMode,
    blocked_capacity: usize,
    tls: Result<tls::TlsFiles, RedisConfigError>,
    /// The seed nodes of a Redis Cluster, instead of `url`.
    nodes: Option<Vec<String>>,
}

/// A [`RedisStore`] configuration that cannot work.
///
/// ```
/// use policy_runtime::{RedisConfigError, RedisStore};
///
/// let error = RedisStore::builder().build().unwrap_err();
/// assert!(matches!(error, RedisConfigError::MissingUrl));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// No URL was given and `REDIS_URL` is not set.
    ///
    /// ```
    /// let error = policy_runtime::RedisStore::builder().build().unwrap_err();
    /// assert!(error.to_string().contains("REDIS_URL"));
    /// ```
    #[error("no Redis URL: set REDIS_URL (e.g. redis://127.0.0.1:6379) or call `.url(...)`")]
    MissingUrl,
    /// The URL is not a Redis URL (`redis://`, `rediss://`, `redis+unix://`,
    /// `redis+cluster://` or `rediss+cluster://`).
    ///
    /// ```
    /// let error = policy_runtime::RedisStore::new("http://example.com").unwrap_err();
    /// assert!(matches!(error, policy_runtime::RedisConfigError::InvalidUrl { .. }));
    /// ```
    #[error("invalid Redis URL: {reason}")]
    InvalidUrl {
        /// Why the URL was refused (the URL itself is not repeated: it may hold a password).
        reason: String,
    },
    /// The key prefix is empty.
    ///
    /// ```
    /// let error = policy_runtime::RedisStore::builder().url("redis://localhost").prefix("").build();
    /// assert!(matches!(error, Err(policy_runtime::RedisConfigError::EmptyPrefix)));
    /// ```
    #[error("the Redis key prefix must not be empty")]
    EmptyPrefix,
    /// A timeout is zero, so no call could ever succeed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let error = policy_runtime::RedisStore::builder()
    ///     .url("redis://localhost")
    ///     .timeout(Duration::ZERO)
    ///     .build();
    /// assert!(matches!(error, Err(policy_runtime::RedisConfigError::ZeroTimeout)));
    /// ```
    #[error("Redis timeouts must be greater than zero")]
    ZeroTimeout,
    /// A TLS file cannot be read, holds no usable certificate or key, or
    /// the key does not go with the certificate.
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// let error = RedisStore::builder()
    ///     .url("rediss://redis.internal:6380")
    ///     .tls_ca_file("/nonexistent/ca.pem")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(&error, RedisConfigError::TlsFile { setting, .. } if setting == "tls_ca_file"));
    /// assert!(error.to_string().starts_with("tls_ca_file `/nonexistent/ca.pem`: cannot read it"));
    /// ```
    #[error("{setting} `{}`: {reason}", path.display())]
    TlsFile {
        /// The setting that named the file: `REDIS_TLS_CA_FILE`,
        /// `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`, or the builder
        /// method (`tls_ca_file`, `tls_client_cert`).
        setting: String,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings do not fit together: certificates for a URL that is
    /// not `rediss://`, half a client certificate, or certificate checks
    /// turned off (`#insecure`).
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// let error = RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .tls_ca_file("ca.pem")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, RedisConfigError::Tls { .. }));
    /// assert!(error.to_string().contains("rediss://"));
    /// ```
    #[error("Redis TLS: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
}

impl RedisStore {
    /// Starts a configuration with the defaults listed on [`RedisStoreBuilder`].
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// let store = RedisStore::builder().url("redis://127.0.0.1:6379").build();
    /// assert!(store.is_ok());
    /// // The URL is required.
    /// assert!(matches!(RedisStore::builder().build(), Err(RedisConfigError::MissingUrl)));
    /// ```
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: Ok(None),
            prefix: "policy".to_string(),
            timeout: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            retry_interval: Duration::from_secs(1),
            mode: FailureMode::default(),
            blocked_capacity: 10_000,
            tls: Ok(tls::TlsFiles::default()),
            nodes: None,
        }
    }

    /// A store on the server at `url` with the default configuration.
    ///
    /// No connection is made yet: this only checks the URL.
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// assert!(RedisStore::new("redis://127.0.0.1:6379").is_ok());
    /// assert!(matches!(RedisStore::new("http://127.0.0.1"), Err(RedisConfigError::InvalidUrl { .. })));
    /// ```
    pub fn new(url: &str) -> Result<Self, RedisConfigError> {
        Self::builder().url(url).build()
    }

    /// A store on the server named by the `REDIS_URL` environment variable,
    /// with the TLS files named by `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`
    /// and `REDIS_TLS_KEY_FILE` (see [`RedisStoreBuilder::tls_from_env`]) and
    /// otherwise the default configuration.
    ///
    /// ```no_run
    /// // REDIS_URL=redis://:password@redis.internal:6379/0
    /// // or, with TLS: REDIS_URL=rediss://:password@redis.internal:6380/0
    /// //               REDIS_TLS_CA_FILE=/etc/redis/ca.pem
    /// let store = policy_runtime::RedisStore::from_env()?;
    /// let engine = policy_runtime::Engine::builder().limiter_store(store).build()?;
    /// # drop(engine);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env() -> Result<Self, RedisConfigError> {
        Self::builder().url_from_env().tls_from_env().build()
    }

    /// Whether Redis answered the last call: `false` during an outage, `true`
    /// before the first call. For a check that asks Redis now, use
    /// [`RedisStore::ping`].
    ///
    /// ```
    /// let store = policy_runtime::RedisStore::new("redis://127.0.0.1:6379")?;
    /// assert!(store.is_available());
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn is_available(&self) -> bool {
        self.inner.outage.is_available()
    }

    /// Asks Redis for a `PING` within the timeout, for a readiness check. A
    /// success ends an outage at once, without waiting for the next probe.
    ///
    /// ```no_run
    /// # async fn ready(store: policy_runtime::RedisStore) {
    /// match store.ping().await {
    ///     Ok(()) => println!("rate limits are shared"),
    ///     Err(error) => eprintln!("not ready: {error}"),
    /// }
    /// # }
    /// ```
    pub async fn ping(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let attempt = inner.outage.forced_attempt();
        let result = inner
            .bounded(async {
                let mut connection = inner.connection()?;
                let command = ::redis::cmd("PING");
                match command.query_async::<Value>(&mut connection).await {
                    Err(error) if worth_retrying(&error) => {
                        command.query_async::<Value>(&mut connection).await
                    }
                    other => other,
                }
            })
            .await;
        match result {
            Ok(_) => {
                inner.succeeded(attempt);
                Ok(())
            }
            Err(error) => {
                if Failure::of(&error) == Failure::Unavailable {
                    inner.unavailable(&error);
                }
                Err(StoreError::new(match tls::problem(&error) {
                    Some(problem) => format!("Redis did not answer PING: {problem}"),
                    None => format!("Redis did not answer PING: {error}"),
                }))
            }
        }
    }

    /// What the store does when Redis fails.
    ///
    /// ```
    /// use policy_runtime::{FailureMode, RedisStore};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379")?;
    /// assert_eq!(store.failure_mode(), FailureMode::FallbackToMemory);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn failure_mode(&self) -> FailureMode {
        self.inner.mode
    }

    /// The Redis key holding `client`'s state for `scope`, e.g. to inspect
    /// it or to delete it and lift a client's limit by hand.
    ///
    /// A `#[rate_limit]` handler's scope is its module path and name, such as
    /// `my_app::routes::score`.
    ///
    /// ```
    /// use policy_runtime::{ClientKey, RedisStore};
    ///
    /// let store = RedisStore::new("redis://127.0.0.1:6379")?;
    /// let key = store.key("my_app::score", &ClientKey::Ip("192.0.2.7".parse().unwrap()));
    /// assert!(key.starts_with("policy:my_app::score:"));
    /// assert_eq!(key.len(), "policy:my_app::score:".len() + 64);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn key(&self, scope: &str, client: &ClientKey) -> String {
        self.inner.keys.key(scope, client)
    }

    async fn check_remote(
        &self,
        keys: Vec<String>,
        fingerprint: Option<String>,
        requests: &[LimitRequest<'_>],
    ) -> Result<Decision, StoreError> {
        let inner = &self.inner;
        let Some(attempt) = inner.outage.attempt() else {
            return inner.degraded_check(requests, None).await;
        };
        let checks = checks(&keys, requests);
        let sent = Instant::now();
        let result = inner.decide(&checks).await;
        match result {
            Ok(decision) => {
                inner.succeeded(attempt);
                if !decision.allowed {
                    let fingerprint = fingerprint.unwrap_or_else(|| script::fingerprint(&checks));
                    inner.blocked.insert(fingerprint, sent, decision);
                }
                Ok(decision)
            }
            Err(error) => {
                inner.failed(attempt, &error, requests);
                inner.degraded_check(requests, Some(&error)).await
            }
        }
    }

    async fn peek_remote(
        &self,
        key: String,
        request: LimitRequest<'_>,
    ) -> Result<Option<Decision>, StoreError> {
        let inner = &self.inner;
        let Some(attempt) = inner.outage.attempt() else {
            return inner.degraded_peek(request, None).await;
        };
        let checks = checks(std::slice::from_ref(&key), std::slice::from_ref(&request));
        let result = inner
            .eval(Op::Peek, &checks)
            .await
            .and_then(|reply| script::decision(reply, Op::Peek, &checks));
        match result {
            Ok(state) => {
                inner.succeeded(attempt);
                Ok(state)
            }
            Err(error) => {
                inner.failed(attempt, &error, std::slice::from_ref(&request));
                inner.degraded_peek(request, Some(&error)).await
            }
        }
    }

    async fn refund_remote(
        &self,
        keys: Vec<String>,
        requests: &[LimitRequest<'_>],
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        // A refusal remembered for these keys may no longer hold.
        for key in &keys {
            inner.blocked.forget(key);
        }
        let Some(attempt) = inner.outage.attempt() else {
            return inner.degraded_refund(requests, None).await;
        };
        let checks = checks(&keys, requests);
        match inner.refund(&checks).await {
            Ok(_) => {
                inner.succeeded(attempt);
                Ok(())
            }
            Err(error) => {
                inner.failed(attempt, &error, requests);
                inner.degraded_refund(requests, Some(&error)).await
            }
        }
    }

    async fn reset_remote(
        &self,
        key: String,
        scope: &str,
        client: &ClientKey,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        // Local state goes whatever Redis says: it must not outlive the reset.
        inner.blocked.forget(&key);
        let memory = inner.fallback();
        memory.reset(scope, client).await?;
        let attempt = inner.outage.forced_attempt();
        let result = inner.run_script(inner.scripts.reset_call(&key)).await;
        match result {
            Ok(_) => {
                inner.succeeded(attempt);
                Ok(())
            }
            Err(error) => {
                if Failure::of(&error) == Failure::Unavailable {
                    inner.unavailable(&error);
                }
                Err(StoreError::new(format!(
                    "could not reset the rate-limit state in Redis: {error}"
                )))
            }
        }
    }
}

/// The checks of a request as the script sees them.
fn checks<'a>(keys: &'a [String], requests: &'a [LimitRequest<'a>]) -> Vec<Check<'a>> {
    keys.iter()
        .zip(requests)
        .map(|(key, request)| Check {
            key,
            quotas: request.quotas,
            cost: request.cost,
        })
        .collect()
}

impl Inner {
    /// The connection, created on first use.
    fn connection(&self) -> RedisResult<Connection> {
        self.connection
            .get_or_init(|| match &self.target {
                Target::Single { client, config } => {
                    ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                        .map(Connection::Single)
                }
                // Connects in the background, as the single connection does.
                Target::Cluster { client, config } => Ok(Connection::Cluster(
                    client.get_pending_async_connection_with_config(config.clone()),
                )),
            })
            .clone()
    }

    /// The decision on `checks`, counting them if all admit the request:
    /// one call of the script, or on a cluster one per hash slot when the
    /// checks span several (see [`cluster`]), a refusal giving back what
    /// the earlier slots counted.
    async fn decide(&self, checks: &[Check<'_>]) -> RedisResult<Decision> {
        if !self.keys.is_clustered() {
            return self.decide_in_one_slot(checks).await;
        }
        let groups = cluster::groups(checks);
        if groups.len() == 1 {
            return self.decide_in_one_slot(checks).await;
        }
        // Boxed: its futures would otherwise enlarge every check's future.
        Box::pin(self.decide_slot_by_slot(groups)).await
    }

    /// The decision on checks in several hash slots: one call per slot, a
    /// refusal giving back what the earlier slots counted.
    async fn decide_slot_by_slot(&self, groups: Vec<Vec<Check<'_>>>) -> RedisResult<Decision> {
        let mut decisive: Option<Decision> = None;
        for (index, group) in groups.iter().enumerate() {
            let decision = self.decide_in_one_slot(group).await?;
            if !decision.allowed {
                for earlier in &groups[..index] {
                    // A refund that fails leaves the client counted once
                    // more than it should be: the strict side. The refusal
                    // stands either way.
                    if let Err(error) = self.eval(Op::Refund, earlier).await {
                        tracing::warn!(
                            store = "redis",
                            %error,
                            "could not give back a refused request's count in another hash slot"
                        );
                    }
                }
                return Ok(decision);
            }
            if decisive.is_none_or(|best| decision.remaining < best.remaining) {
                decisive = Some(decision);
            }
        }
        Ok(decisive.unwrap_or_else(Decision::unlimited))
    }

    /// The decision on `checks` in one call of the script.
    async fn decide_in_one_slot(&self, checks: &[Check<'_>]) -> RedisResult<Decision> {
        self.eval(Op::Check, checks)
            .await
            .and_then(|reply| script::decision(reply, Op::Check, checks))
            .and_then(|decision| {
                decision.ok_or_else(|| {
                    RedisError::from((
                        ::redis::ErrorKind::UnexpectedReturnType,
                        "the rate-limit script answered nil to a check",
                    ))
                })
            })
    }

    /// Gives back `checks`: one call of the script per hash slot.
    async fn refund(&self, checks: &[Check<'_>]) -> RedisResult<()> {
        if !self.keys.is_clustered() {
            return self.eval(Op::Refund, checks).await.map(drop);
        }
        for group in cluster::groups(checks) {
            self.eval(Op::Refund, &group).await?;
        }
        Ok(())
    }

    /// Runs the script on `checks` within the timeout: one call, or two
    /// when a quota's own script leaves a state it does not read to the
    /// shared script.
    async fn eval(&self, op: Op, checks: &[Check<'_>]) -> RedisResult<Value> {
        let call = self.scripts.call(op, checks);
        self.bounded(async {
            let reply = self.send(&call).await?;
            if script::asks_for_general(&reply) {
                // Rare (a scope whose limits changed, or bad data): boxed, so
                // that its future does not enlarge every check's.
                let general = self.scripts.general_call(op, checks);
                return Box::pin(self.send(&general)).await;
            }
            Ok(reply)
        })
        .await
    }

    /// Sends a call of a script within the timeout.
    async fn run_script(&self, call: script::Call<'_>) -> RedisResult<Value> {
        self.bounded(self.send(&call)).await
    }

    /// Sends a call of a script, once more if the link broke (see
    /// [`worth_retrying`]).
    async fn send(&self, call: &script::Call<'_>) -> RedisResult<Value> {
        let mut connection = self.connection()?;
        match call.send(&mut connection).await {
            Err(error) if worth_retrying(&error) => call.send(&mut connection).await,
            other => other,
        }
    }

    /// Bounds a call to Redis, connecting included, by the timeout.
    async fn bounded<T>(&self, call: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisError::from((
                ::redis::ErrorKind::Client,
                "RedisStore must be used inside a Tokio runtime",
            )));
        }
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("Redis did not answer within {:?}", self.timeout),
            ))),
        }
    }

    /// Records a failed decision: an outage, or a refusal about these keys.
    fn failed(&self, attempt: Attempt, error: &RedisError, requests: &[LimitRequest<'_>]) {
        match Failure::of(error) {
            Failure::Unavailable => self.unavailable(error),
            Failure::Rejected => {
                // Redis answered, so it is up; only these keys are affected.
                self.succeeded(attempt);
                let scopes: Vec<&str> = requests.iter().map(|request| request.scope).collect();
                tracing::error!(
                    store = "redis",
                    scopes = ?scopes,
                    %error,
                    failure_mode = %self.mode,
                    "Redis refused a rate-limit check for this client"
                );
            }
        }
    }

    /// Records that Redis answered. The end of an outage releases what the
    /// fallback counted in it: nothing reads it again, as the next outage
    /// starts afresh. Only that outage's store goes: if the next outage has
    /// already started (a request sent before this probe failed after it),
    /// its counts stay.
    fn succeeded(&self, attempt: Attempt) {
        if let Some(ended) = self.outage.succeeded(attempt) {
            self.transitioned();
            self.tls_reported.store(false, Ordering::Relaxed);
            let mut fallback = self
                .fallback
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if fallback.as_ref().is_some_and(|(epoch, _)| *epoch <= ended) {
                *fallback = None;
            }
        }
    }

    /// Records that Redis is away. The outage's fallback store is made by
    /// the first request that counts in it ([`Inner::fallback`]), not here,
    /// so that requests failing at the same moment count in the same store.
    /// A TLS failure is also said, once per outage, with what to fix: it
    /// will not go away by itself.
    fn unavailable(&self, error: &RedisError) {
        if let Some(problem) = tls::problem(error)
            && !self.tls_reported.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                store = "redis",
                %error,
                failure_mode = %self.mode,
                "{problem}"
            );
        }
        if self.outage.failed(error) {
            self.transitioned();
        }
    }

    /// The start or end of an outage, made by this request: nothing to do
    /// outside tests.
    #[cfg(not(test))]
    fn transitioned(&self) {}

    /// Runs the test hook set for the next transition of the outage state.
    #[cfg(test)]
    fn transitioned(&self) {
        let hook = self
            .on_transition
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(hook) = hook {
            hook(self);
        }
    }

    /// The in-memory store of the current outage (or, while Redis is up, of
    /// the next one: a key Redis refused counts there). Every request of one
    /// outage gets the same store, whenever it learnt of the outage: the
    /// store belongs to the outage's epoch, which changes in the same atomic
    /// step as the outage flag, and the first request of a new epoch
    /// replaces the older store. A request still finishing from an earlier
    /// outage counts in the newer store (erring on the strict side).
    fn fallback(&self) -> Arc<MemoryStore> {
        let epoch = self.outage.epoch();
        if let Some((current, store)) = &*self
            .fallback
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            && *current >= epoch
        {
            return Arc::clone(store);
        }
        let mut fallback = self
            .fallback
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*fallback {
            Some((current, store)) if *current >= epoch => Arc::clone(store),
            _ => {
                let store = Arc::new(MemoryStore::new());
                *fallback = Some((epoch, Arc::clone(&store)));
                store
            }
        }
    }

    /// The decision when Redis cannot give one: `error` is why, or `None`
    /// when an outage is under way and Redis was not asked.
    async fn degraded_check(
        &self,
        requests: &[LimitRequest<'_>],
        error: Option<&RedisError>,
    ) -> Result<Decision, StoreError> {
        match self.mode {
            FailureMode::Open => {
                tracing::debug!(
                    store = "redis",
                    "Redis unavailable; admitting the request without a limit (fail open)"
                );
                Ok(open_decision(requests))
            }
            FailureMode::Closed => Err(closed(error)),
            FailureMode::FallbackToMemory => self.fallback().check(requests).await,
        }
    }

    /// Giving back a reservation when Redis cannot take it: to the fallback
    /// store, which counted it; nothing to give back when failing open.
    async fn degraded_refund(
        &self,
        requests: &[LimitRequest<'_>],
        error: Option<&RedisError>,
    ) -> Result<(), StoreError> {
        match self.mode {
            FailureMode::Open => Ok(()),
            FailureMode::Closed => Err(closed(error)),
            FailureMode::FallbackToMemory => self.fallback().refund(requests).await,
        }
    }

    /// A client's state when Redis cannot give it: unknown when failing open.
    async fn degraded_peek(
        &self,
        request: LimitRequest<'_>,
        error: Option<&RedisError>,
    ) -> Result<Option<Decision>, StoreError> {
        match self.mode {
            FailureMode::Open => Ok(None),
            FailureMode::Closed => Err(closed(error)),
            FailureMode::FallbackToMemory => self.fallback().peek(request).await,
        }
    }
}

fn closed(error: Option<&RedisError>) -> StoreError {
    StoreError::new(match error {
        Some(error) => format!("Redis failed ({error}); failing closed"),
        None => "Redis is unavailable (outage under way); failing closed".to_string(),
    })
}

/// An admission without a limit, shown as a fresh state of the smallest quota.
fn open_decision(requests: &[LimitRequest<'_>]) -> Decision {
    let smallest = requests
        .iter()
        .flat_map(|request| request.quotas)
        .min_by_key(|quota| quota.count());
    match smallest {
        Some(quota) => Decision {
            allowed: true,
            quota: *quota,
            remaining: quota.count().saturating_sub(1),
            reset_after: quota.replenish_interval(),
            retry_after: Duration::ZERO,
        },
        None => Decision::unlimited(),
    }
}

/// Whether a failed call is worth one immediate retry on the same connection
/// handle: the link broke or the connection could not be made, and the
/// connection manager has just started a new one. (A script whose reply was
/// lost with the link may then count twice, which only errs on the strict side.)
fn worth_retrying(error: &RedisError) -> bool {
    error.is_connection_dropped() || error.is_connection_refusal()
}

impl LimiterStore for RedisStore {
    fn check<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a> {
        if requests.is_empty() {
            return StoreFuture::ready(Ok(Decision::unlimited()));
        }
        if let Some(empty) = requests.iter().find(|request| request.quotas.is_empty()) {
            return StoreFuture::ready(Err(StoreError::new(format!(
                "the rate-limit check of `{}` declared no quota",
                empty.scope
            ))));
        }
        let keys: Vec<String> = requests
            .iter()
            .map(|request| self.inner.keys.key(request.scope, request.key))
            .collect();
        let mut fingerprint = None;
        if self.inner.blocked.may_hold(&keys[0]) {
            let known = script::fingerprint(&checks(&keys, requests));
            if let Some(refusal) = self.inner.blocked.get(&known, Instant::now()) {
                return StoreFuture::ready(Ok(refusal));
            }
            fingerprint = Some(known);
        }
        StoreFuture::boxed(self.check_remote(keys, fingerprint, requests))
    }

    fn peek<'a>(&'a self, request: LimitRequest<'a>) -> StoreFuture<'a, Option<Decision>> {
        if request.quotas.is_empty() {
            return StoreFuture::ready(Ok(None));
        }
        let key = self.inner.keys.key(request.scope, request.key);
        StoreFuture::boxed(self.peek_remote(key, request))
    }

    fn reset<'a>(&'a self, scope: &'a str, key: &'a ClientKey) -> StoreFuture<'a, ()> {
        let redis_key = self.inner.keys.key(scope, key);
        StoreFuture::boxed(self.reset_remote(redis_key, scope, key))
    }

    /// Gives the requests back in one call of the script: a GCRA time moves
    /// back, a strict log loses its newest entries, a sliding counter its
    /// newest counts. A refusal this instance remembers for the keys is
    /// forgotten.
    fn refund<'a>(&'a self, requests: &'a [LimitRequest<'a>]) -> StoreFuture<'a, ()> {
        if requests.is_empty() {
            return StoreFuture::ready(Ok(()));
        }
        let keys: Vec<String> = requests
            .iter()
            .map(|request| self.inner.keys.key(request.scope, request.key))
            .collect();
        StoreFuture::boxed(self.refund_remote(keys, requests))
    }

    /// The lockout's and the penalty box's strikes live in Redis too, so
    /// every instance sees them (see [`StrikeStore`](crate::StrikeStore)).
    fn strike_store(&self) -> Option<Arc<dyn crate::StrikeStore>> {
        Some(Arc::new(self.clone()))
    }

    /// Fails while Redis is known to be away. One call per retry interval
    /// sends a `PING` (as [`RedisStore::ping`]); the others answer from the
    /// outage state, without a round trip.
    fn ready(&self) -> StoreFuture<'_, ()> {
        if self.inner.outage.readiness_ping_due() {
            return StoreFuture::boxed(self.ping());
        }
        StoreFuture::ready(if self.inner.outage.is_available() {
            Ok(())
        } else {
            Err(StoreError::new(
                "Redis is unavailable (outage under way); it is asked again within the retry interval",
            ))
        })
    }
}

impl RedisStoreBuilder {
    /// The server: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://...` for TLS (see [`RedisStoreBuilder::tls_ca_file`] and
    /// [`RedisStoreBuilder::tls_client_cert`]) or `redis+unix:///path/to/socket`.
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// assert!(RedisStore::builder().url("redis://127.0.0.1:6379/2").build().is_ok());
    /// let error = RedisStore::builder().url("127.0.0.1:6379").build(); // no scheme
    /// assert!(matches!(error, Err(RedisConfigError::InvalidUrl { .. })));
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Ok(Some(url.into()));
        self
    }

    /// The server named by the `REDIS_URL` environment variable;
    /// [`RedisStoreBuilder::build`] fails with [`RedisConfigError::MissingUrl`]
    /// when it is not set.
    ///
    /// ```no_run
    /// use policy_runtime::{FailureMode, RedisStore};
    ///
    /// let store = RedisStore::builder().url_from_env().failure_mode(FailureMode::Closed).build()?;
    /// # drop(store);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn url_from_env(mut self) -> Self {
        self.url = match std::env::var(URL_VARIABLE) {
            Ok(url) if !url.trim().is_empty() => Ok(Some(url)),
            Ok(_) | Err(std::env::VarError::NotPresent) => Err(RedisConfigError::MissingUrl),
            Err(std::env::VarError::NotUnicode(_)) => Err(RedisConfigError::InvalidUrl {
                reason: format!("{URL_VARIABLE} is not valid UTF-8"),
            }),
        };
        self
    }

    /// The server named by `REDIS_URL` in `vars`, and the TLS files named by
    /// `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE` and `REDIS_TLS_KEY_FILE`,
    /// read as [`RedisStoreBuilder::url_from_env`] and
    /// [`RedisStoreBuilder::tls_from_env`] read the process environment,
    /// from a list of (name, value) pairs instead (as
    /// [`EngineBuilder::from_vars`](crate::EngineBuilder::from_vars) takes
    /// them): an app configured from a map needs no process environment.
    /// When a name appears more than once, its last value counts.
    /// [`RedisStoreBuilder::build`] fails with [`RedisConfigError::MissingUrl`]
    /// when `REDIS_URL` is absent or blank.
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// let vars = [("REDIS_URL".to_string(), "redis://127.0.0.1:6379/2".to_string())];
    /// assert!(RedisStore::builder().url_from_vars(vars).build().is_ok());
    /// let none = RedisStore::builder().url_from_vars(Vec::new()).build();
    /// assert!(matches!(none, Err(RedisConfigError::MissingUrl)));
    /// // The TLS files are read and checked by `build`; errors name the variable.
    /// let vars = [
    ///     ("REDIS_URL".to_string(), "rediss://127.0.0.1:6380".to_string()),
    ///     ("REDIS_TLS_CA_FILE".to_string(), "/no/such/ca.pem".to_string()),
    /// ];
    /// let error = RedisStore::builder().url_from_vars(vars).build().unwrap_err();
    /// assert!(error.to_string().contains("REDIS_TLS_CA_FILE"), "{error}");
    /// ```
    pub fn url_from_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        self.url = match vars.iter().rev().find(|(name, _)| name == URL_VARIABLE) {
            Some((_, url)) if !url.trim().is_empty() => Ok(Some(url.clone())),
            _ => Err(RedisConfigError::MissingUrl),
        };
        self.tls_from_vars(&vars)
    }

    /// The CA certificates (a PEM file, one or more) that the server's TLS
    /// certificate must chain to, instead of the WebPKI roots: for a server
    /// whose certificate a private CA signed. Needs a `rediss://` URL.
    ///
    /// ```no_run
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("rediss://redis.internal:6380")
    ///     .tls_ca_file("/etc/redis/tls/ca.pem")
    ///     .build()?; // reads and checks the file
    /// # drop(store);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        if let Ok(files) = &mut self.tls {
            files.set_ca(path.into());
        }
        self
    }

    /// A client certificate chain and its private key (PEM files: PKCS#8,
    /// PKCS#1 or SEC1 keys), presented to a server that requires one
    /// (`tls-auth-clients yes`). Needs a `rediss://` URL.
    ///
    /// ```no_run
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("rediss://redis.internal:6380")
    ///     .tls_ca_file("/etc/redis/tls/ca.pem")
    ///     .tls_client_cert("/etc/redis/tls/client.pem", "/etc/redis/tls/client.key")
    ///     .build()?; // fails if the key is not the certificate's
    /// # drop(store);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        if let Ok(files) = &mut self.tls {
            files.set_client(cert.into(), key.into());
        }
        self
    }

    /// The TLS files named by the environment: `REDIS_TLS_CA_FILE` (as
    /// [`RedisStoreBuilder::tls_ca_file`]), and `REDIS_TLS_CERT_FILE` with
    /// `REDIS_TLS_KEY_FILE` (as [`RedisStoreBuilder::tls_client_cert`]). A
    /// variable that is unset or empty leaves its setting as it was; errors
    /// name the variable.
    ///
    /// ```
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// // With none of the variables set, this changes nothing.
    /// # unsafe { std::env::remove_var("REDIS_TLS_CA_FILE") };
    /// # unsafe { std::env::remove_var("REDIS_TLS_CERT_FILE") };
    /// # unsafe { std::env::remove_var("REDIS_TLS_KEY_FILE") };
    /// let store = RedisStore::builder().url("redis://127.0.0.1:6379").tls_from_env().build();
    /// assert!(store.is_ok());
    /// ```
    pub fn tls_from_env(self) -> Self {
        self.tls_from(|name| match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(RedisConfigError::Tls {
                reason: format!("{name} is not valid UTF-8"),
            }),
        })
    }

    /// [`RedisStoreBuilder::tls_from_env`] on a list of variables, as
    /// `Engine::builder().from_vars(...)` reads them.
    pub(crate) fn tls_from_vars(self, vars: &[(String, String)]) -> Self {
        self.tls_from(|name| {
            Ok(vars
                .iter()
                .rev()
                .find(|(variable, _)| variable == name)
                .map(|(_, value)| value.clone()))
        })
    }

    fn tls_from(
        mut self,
        lookup: impl Fn(&str) -> Result<Option<String>, RedisConfigError>,
    ) -> Self {
        if let Ok(files) = &mut self.tls
            && let Err(error) = files.read_variables(lookup)
        {
            self.tls = Err(error);
        }
        self
    }

    /// A Redis Cluster, reached through these seed nodes (`redis://host:port`
    /// or `rediss://host:port` each; one is enough, the others are tried
    /// when it is away), instead of [`RedisStoreBuilder::url`]. A URL
    /// `redis+cluster://host:port,host:port` (`rediss+cluster://` with
    /// TLS), given to `url` or in `REDIS_URL`, does the same.
    ///
    /// On a cluster, the client part of every key is a hash tag
    /// (`<prefix>:<scope>:{<client>}`), so all the limits of one client
    /// are in one hash slot: a request's limits on one client are one
    /// atomic script, one round trip. Limits of different clients in one
    /// request are checked one slot after the other, and a refusal gives
    /// back what the earlier ones counted.
    ///
    /// ```
    /// use policy_runtime::{ClientKey, RedisStore};
    ///
    /// let store = RedisStore::builder()
    ///     .cluster_nodes(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .build()?; // no connection yet
    /// let key = store.key("search", &ClientKey::Global);
    /// assert!(key.starts_with("policy:search:{") && key.ends_with('}'));
    /// let same = RedisStore::new("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")?;
    /// assert_eq!(same.key("search", &ClientKey::Global), key);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn cluster_nodes<I>(mut self, nodes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.nodes = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// The first part of every key (default `policy`), to share a server
    /// between apps or environments: keys are `<prefix>:<scope>:<client>`.
    ///
    /// ```
    /// use policy_runtime::ClientKey;
    ///
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .prefix("staging:billing")
    ///     .build()?;
    /// assert!(store.key("invoices", &ClientKey::Global).starts_with("staging:billing:invoices:"));
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest a request waits for Redis (default 50 ms), connecting
    /// included; past it, the failure mode answers. A check that timed out
    /// may still be counted if it reaches a slow server later.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .timeout(Duration::from_millis(10))
    ///     .build();
    /// assert!(store.is_ok());
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest one connection attempt may take (default 1 s). Attempts run
    /// in the background: requests never wait longer than
    /// [`RedisStoreBuilder::timeout`] for one. The connection itself gives
    /// up a reply after the longer of the two, so that a server that
    /// accepts and never answers holds nothing forever.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use policy_runtime::{RedisConfigError, RedisStore};
    ///
    /// let store = RedisStore::builder().url("redis://127.0.0.1:6379").connect_timeout(Duration::from_millis(250));
    /// assert!(store.build().is_ok());
    /// let zero = RedisStore::builder().url("redis://127.0.0.1:6379").connect_timeout(Duration::ZERO);
    /// assert!(matches!(zero.build(), Err(RedisConfigError::ZeroTimeout)));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often a request is let through to Redis during an outage, to find
    /// out whether it is back (default 1 s). The other requests of an outage
    /// go straight to the failure mode, without waiting for Redis. Readiness
    /// checks ([`LimiterStore::ready`]) send at most one `PING` per interval
    /// too, outage or not; the others answer from the store's state.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .retry_interval(Duration::from_millis(200))
    ///     .build()?;
    /// assert!(store.is_available()); // no outage is known before the first call
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// What to answer when Redis fails (default [`FailureMode::FallbackToMemory`]).
    ///
    /// ```
    /// use policy_runtime::{FailureMode, RedisStore};
    ///
    /// let store = RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .failure_mode(FailureMode::Open)
    ///     .build()?;
    /// assert_eq!(store.failure_mode(), FailureMode::Open);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many refused clients to remember locally (default 10 000; 0 turns
    /// the cache off). Until its retry time, a remembered client is refused
    /// without a round trip to Redis.
    ///
    /// When the cache is full of refusals that have not expired, a new
    /// refusal is not remembered: that client's retries each cost a round
    /// trip, and Redis refuses them as before. This is logged once at warn.
    /// Expired refusals are swept out at most once per half a capacity of
    /// new refusals, so a full cache costs each request O(1) amortised.
    ///
    /// ```
    /// let store = policy_runtime::RedisStore::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .blocked_cache_capacity(0) // every refusal asks Redis
    ///     .build();
    /// assert!(store.is_ok());
    /// ```
    pub fn blocked_cache_capacity(mut self, capacity: usize) -> Self {
        self.blocked_capacity = capacity;
        self
    }

    /// Checks the configuration and returns the store. No connection is made
    /// yet: the store connects on its first check (or [`RedisStore::ping`]).
    ///
    /// ```
    /// use policy_runtime::{Engine, RedisStore};
    ///
    /// let store = RedisStore::builder().url("redis://127.0.0.1:6379").build()?;
    /// let engine = Engine::builder().limiter_store(store).build().unwrap();
    /// let _app: axum::Router = axum::Router::new().layer(engine);
    /// # Ok::<(), policy_runtime::RedisConfigError>(())
    /// ```
    pub fn build(self) -> Result<RedisStore, RedisConfigError> {
        let url = self.url?;
        let seeds = match (self.nodes, &url) {
            (Some(nodes), _) => Some(nodes),
            (None, Some(url)) => cluster::seeds(url).transpose()?,
            (None, None) => return Err(RedisConfigError::MissingUrl),
        };
        if self.prefix.is_empty() {
            return Err(RedisConfigError::EmptyPrefix);
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(RedisConfigError::ZeroTimeout);
        }
        let files = self.tls?;
        // One connection attempt per reconnection: during an outage the
        // store's probes decide when to try again. Every call is bounded by
        // the store's timeout, connecting included (`Inner::bounded`). The
        // connection gives up a reply on its own too, so that a server that
        // accepts and never answers holds nothing forever, whatever awaits
        // it: after the store's timeout, but not before the connection
        // timeout, as the connection's set-up commands (run in the
        // background, under the same limit) must have the time that
        // connecting has; under load they can take longer than a request
        // may wait, and failing them would fail the connection.
        let response_timeout = self.timeout.max(self.connect_timeout);
        let (target, keys) = match seeds {
            None => {
                let url = url.ok_or(RedisConfigError::MissingUrl)?;
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(self.connect_timeout))
                    .set_response_timeout(Some(response_timeout));
                let client = client(&url, &files)?;
                (
                    Target::Single { client, config },
                    KeyLayout::new(self.prefix),
                )
            }
            Some(seeds) => {
                let client = cluster_client(&seeds, &files)?;
                let config = ::redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(self.connect_timeout)
                    .set_response_timeout(response_timeout);
                (
                    Target::Cluster { client, config },
                    KeyLayout::clustered(self.prefix),
                )
            }
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                target,
                connection: OnceLock::new(),
                scripts: script::Scripts::new(),
                keys,
                timeout: self.timeout,
                mode: self.mode,
                outage: Outage::new(self.retry_interval, self.mode),
                fallback: RwLock::new(None),
                blocked: BlockedCache::new(self.blocked_capacity),
                tls_reported: AtomicBool::new(false),
                #[cfg(test)]
                on_transition: std::sync::Mutex::new(None),
            }),
        })
    }
}

/// The TLS certificates a connection to `info` is given: `None` for the
/// defaults (plaintext, or TLS with the WebPKI roots).
fn certificates(
    info: &::redis::ConnectionInfo,
    files: &tls::TlsFiles,
) -> Result<Option<::redis::TlsCertificates>, RedisConfigError> {
    match info.addr() {
        ::redis::ConnectionAddr::TcpTls { insecure: true, .. } => Err(RedisConfigError::Tls {
            reason: format!(
                "the URL turns certificate checks off (`#insecure`), which this store does not do; \
                 give the CA that signed the server's certificate with {} or `tls_ca_file`",
                tls::CA_VARIABLE
            ),
        }),
        ::redis::ConnectionAddr::TcpTls { .. } => {
            tls::ensure_provider();
            if files.is_empty() {
                return Ok(None);
            }
            Ok(Some(files.load()?.certificates))
        }
        _ if !files.is_empty() => Err(RedisConfigError::Tls {
            reason: format!(
                "TLS files are set ({}) but the URL is not `rediss://`; use rediss://host:port for TLS",
                files.names()
            ),
        }),
        _ => Ok(None),
    }
}

fn invalid_url(error: RedisError) -> RedisConfigError {
    RedisConfigError::InvalidUrl {
        reason: error.to_string(),
    }
}

/// The client of `url`, with the TLS files for a `rediss://` URL.
fn client(url: &str, files: &tls::TlsFiles) -> Result<::redis::Client, RedisConfigError> {
    use ::redis::IntoConnectionInfo;
    let info = url.into_connection_info().map_err(invalid_url)?;
    match certificates(&info, files)? {
        Some(certificates) => {
            ::redis::Client::build_with_tls(info, certificates).map_err(|error| {
                RedisConfigError::Tls {
                    reason: error.to_string(),
                }
            })
        }
        None => ::redis::Client::open(info).map_err(invalid_url),
    }
}

/// The cluster client of `seeds`, all `redis://` or all `rediss://` (with
/// the TLS files).
fn cluster_client(
    seeds: &[String],
    files: &tls::TlsFiles,
) -> Result<::redis::cluster::ClusterClient, RedisConfigError> {
    use ::redis::{ConnectionAddr, IntoConnectionInfo};
    if seeds.is_empty() {
        return Err(RedisConfigError::InvalidUrl {
            reason: "a Redis Cluster needs at least one seed node".to_owned(),
        });
    }
    let mut infos = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let info = seed.as_str().into_connection_info().map_err(invalid_url)?;
        match info.addr() {
            ConnectionAddr::Tcp(..) | ConnectionAddr::TcpTls { .. } => infos.push(info),
            _ => {
                return Err(RedisConfigError::InvalidUrl {
                    reason: "a Redis Cluster node is redis://host:port or rediss://host:port"
                        .to_owned(),
                });
            }
        }
    }
    let tls = |info: &::redis::ConnectionInfo| matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    if infos.iter().any(|info| tls(info) != tls(&infos[0])) {
        return Err(RedisConfigError::InvalidUrl {
            reason: "the seed nodes of a Redis Cluster are all redis:// or all rediss://"
                .to_owned(),
        });
    }
    let certificates = certificates(&infos[0], files)?;
    let mut builder = ::redis::cluster::ClusterClientBuilder::new(infos);
    if let Some(certificates) = certificates {
        builder = builder.certs(certificates);
    }
    builder
        .build()
        .map_err(|error| RedisConfigError::InvalidUrl {
            reason: error.to_string(),
        })
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is left out: it may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix())
            .field("timeout", &self.inner.timeout)
            .field("failure_mode", &self.inner.mode)
            .field("available", &self.is_available())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry_interval", &self.retry_interval)
            .field("failure_mode", &self.mode)
            .field("blocked_cache_capacity", &self.blocked_capacity)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    #[test]
    fn the_connection_has_the_store_timeouts() {
        let store = RedisStore::builder()
            .url("redis://127.0.0.1:6379")
            .timeout(Duration::from_millis(20))
            .connect_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let Target::Single { config, .. } = &store.inner.target else {
            panic!("one server")
        };
        // Not before the connection timeout: the set-up commands run under it.
        assert_eq!(config.response_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(
            config.connection_timeout(),
            Some(Duration::from_millis(300))
        );
        assert_eq!(config.number_of_retries(), 0);
        let slow = RedisStore::builder()
            .url("redis://127.0.0.1:6379")
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let Target::Single { config, .. } = &slow.inner.target else {
            panic!("one server")
        };
        assert_eq!(config.response_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(config.connection_timeout(), Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn the_end_of_an_outage_releases_the_fallback_state() {
        // Nothing listens on port 1: every call fails at once.
        let store = RedisStore::builder()
            .url("redis://127.0.0.1:1")
            .retry_interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let quotas = [Quota::new(1, Duration::from_secs(3600))];
        for i in 0..10u8 {
            let key = ClientKey::Ip(std::net::IpAddr::from([192, 0, 2, i]));
            let request = LimitRequest {
                scope: "s",
                key: &key,
                quotas: &quotas,
                cost: 1,
            };
            assert!(store.check(&[request]).await.unwrap().allowed);
        }
        assert!(!store.is_available());
        assert_eq!(store.inner.fallback().clients(), 10);
        // A probe that gets an answer ends the outage.
        store.inner.succeeded(store.inner.outage.forced_attempt());
        assert!(store.is_available());
        assert_eq!(store.inner.fallback().clients(), 0);
    }

    fn refused_store() -> RedisStore {
        // Nothing listens on port 1: every call fails at once.
        RedisStore::builder()
            .url("redis://127.0.0.1:1")
            .retry_interval(Duration::from_secs(3600))
            .build()
            .unwrap()
    }

    fn connection_refused() -> RedisError {
        std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()
    }

    /// One check of `key` against `quotas` in the fallback, as a request
    /// degraded by an outage makes it (the memory store answers at once).
    fn degraded(inner: &Inner, key: &ClientKey, quotas: &[Quota]) -> bool {
        use futures_util::FutureExt;
        let request = LimitRequest {
            scope: "s",
            key,
            quotas,
            cost: 1,
        };
        let error = connection_refused();
        inner
            .degraded_check(&[request], Some(&error))
            .now_or_never()
            .expect("the fallback answers at once")
            .unwrap()
            .allowed
    }

    fn set_hook(store: &RedisStore, hook: impl FnOnce(&Inner) + Send + 'static) {
        *store.inner.on_transition.lock().unwrap() = Some(Box::new(hook));
    }

    #[tokio::test]
    async fn requests_failing_as_an_outage_starts_count_in_the_one_fallback() {
        let store = refused_store();
        let key = ClientKey::Ip(std::net::IpAddr::from([192, 0, 2, 1]));
        let quotas = [Quota::new(2, Duration::from_secs(3600))];
        // Another request fails at the moment this one starts the outage,
        // and counts in the fallback.
        set_hook(&store, move |inner| {
            let key = ClientKey::Ip(std::net::IpAddr::from([192, 0, 2, 1]));
            inner.unavailable(&connection_refused());
            assert!(degraded(
                inner,
                &key,
                &[Quota::new(2, Duration::from_secs(3600))]
            ));
        });
        let request = LimitRequest {
            scope: "s",
            key: &key,
            quotas: &quotas,
            cost: 1,
        };
        assert!(store.check(&[request]).await.unwrap().allowed);
        assert!(!store.is_available());
        assert!(store.inner.on_transition.lock().unwrap().is_none());
        // Two requests were counted against a quota of two.
        assert!(!store.check(&[request]).await.unwrap().allowed);
        assert_eq!(store.inner.fallback().clients(), 1);
    }

    #[tokio::test]
    async fn an_outage_starting_as_the_last_one_ends_keeps_its_counts() {
        let store = refused_store();
        let key = ClientKey::Ip(std::net::IpAddr::from([192, 0, 2, 2]));
        let quotas = [Quota::new(2, Duration::from_secs(3600))];
        let request = LimitRequest {
            scope: "s",
            key: &key,
            quotas: &quotas,
            cost: 1,
        };
        assert!(store.check(&[request]).await.unwrap().allowed);
        assert!(!store.is_available());
        // As a probe ends the outage, a request that was sent before fails
        // and starts the next one, in which it counts.
        set_hook(&store, move |inner| {
            let key = ClientKey::Ip(std::net::IpAddr::from([192, 0, 2, 2]));
            inner.unavailable(&connection_refused());
            assert!(degraded(
                inner,
                &key,
                &[Quota::new(2, Duration::from_secs(3600))]
            ));
        });
        store.inner.succeeded(store.inner.outage.forced_attempt());
        assert!(store.inner.on_transition.lock().unwrap().is_none());
        assert!(!store.is_available());
        // The new outage counted one request: one more is admitted, not two.
        assert!(store.check(&[request]).await.unwrap().allowed);
        assert!(!store.check(&[request]).await.unwrap().allowed);
    }

    fn var(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn url_from_vars_reads_the_url_and_the_tls_files_from_the_list() {
        let url = |vars: Vec<(String, String)>| {
            RedisStore::builder()
                .url_from_vars(vars)
                .build()
                .map(|_| ())
        };
        assert!(matches!(url(vec![]), Err(RedisConfigError::MissingUrl)));
        assert!(matches!(
            url(vec![var("REDIS_URL", "  ")]),
            Err(RedisConfigError::MissingUrl)
        ));
        assert!(matches!(
            url(vec![var("OTHER", "redis://127.0.0.1")]),
            Err(RedisConfigError::MissingUrl)
        ));
        // The last value of a name counts.
        let error = url(vec![
            var("REDIS_URL", "redis://127.0.0.1:6379"),
            var("REDIS_URL", "http://127.0.0.1"),
        ]);
        assert!(matches!(error, Err(RedisConfigError::InvalidUrl { .. })));
        assert!(
            url(vec![
                var("REDIS_URL", "http://127.0.0.1"),
                var("REDIS_URL", "redis://127.0.0.1:6379"),
            ])
            .is_ok()
        );
        // A later `.url(...)` replaces it, as it does `url_from_env`'s.
        assert!(
            RedisStore::builder()
                .url_from_vars(vec![])
                .url("redis://127.0.0.1:6379")
                .build()
                .is_ok()
        );
        for name in [
            "REDIS_TLS_CA_FILE",
            "REDIS_TLS_CERT_FILE",
            "REDIS_TLS_KEY_FILE",
        ] {
            let error = RedisStore::builder()
                .url_from_vars(vec![
                    var("REDIS_URL", "rediss://127.0.0.1:6380"),
                    var(name, "/no/such/file.pem"),
                ])
                .build()
                .err()
                .unwrap();
            assert!(error.to_string().contains(name), "{name}: {error}");
        }
        // Blank TLS variables change nothing.
        let store = RedisStore::builder()
            .url_from_vars(vec![
                var("REDIS_URL", "redis://127.0.0.1:6379"),
                var("REDIS_TLS_CA_FILE", ""),
            ])
            .build();
        assert!(store.is_ok());
    }
}
