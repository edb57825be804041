//! The operators' methods of [`Engine`]: a client's rate-limit state, its
//! reset and the per-scope counters; the API keys in use, their reload and
//! revocation; a client's lockout, its lifting and the lockout's size.
//!
//! This module owns those public methods only. Each hands the request to the
//! policy state that owns it ([`crate::rate_limiting::RateLimits`],
//! [`crate::api_key::ApiKeys`]), with what the engine knows that the policy
//! does not: the registered handlers, the resolver, the environment.

use super::builder::protected_handlers;
use super::{BuildError, Engine};
use crate::handler_policy::{self, Check};
use crate::{ApiKeyStore, ClientKey, Decision, LockoutStatus, Quota, ScopeStats, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

impl Engine {
    /// A client's current state in a scope, without counting a request: the
    /// requests it has left and when its quota is whole again. `None` when
    /// the store holds nothing for it. An IPv6 address may be any address of
    /// the client's network: it is grouped by the engine's prefix
    /// ([`EngineBuilder::ipv6_prefix`](crate::EngineBuilder::ipv6_prefix)), as
    /// requests are counted. The scope is a handler's path (as in
    /// the logs), or the name given with `scope = "..."`.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// let key = policy_runtime::ClientKey::Global;
    /// assert_eq!(engine.limit_state("app::search", &key).await.unwrap(), None);
    /// # });
    /// ```
    pub async fn limit_state(
        &self,
        scope: &str,
        key: &ClientKey,
    ) -> Result<Option<Decision>, StoreError> {
        let Some(quotas) = self.quotas_of(scope) else {
            return Ok(None);
        };
        self.inner
            .rate_limits
            .peek(scope, &self.as_counted(key), &quotas)
            .await
    }

    /// Forgets a client's state in a scope, and lifts any penalty block on
    /// it: its next request starts afresh. An IPv6 address is grouped by the
    /// engine's prefix, as in [`Engine::limit_state`].
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, ClientKey, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("1/hour", scope = "search")]
    /// async fn search() -> &'static str {
    ///     "results"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().build()?;
    ///     let app = Router::new()
    ///         .route("/search", get(search))
    ///         .layer(engine.clone())
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let search = || app.clone().oneshot(Request::get("/search").body(Body::empty()).unwrap());
    ///     assert_eq!(search().await?.status(), 200);
    ///     assert_eq!(search().await?.status(), 429);
    ///
    ///     engine.reset_limit("search", &ClientKey::Ip("192.0.2.1".parse()?)).await?;
    ///     assert_eq!(search().await?.status(), 200);
    ///     Ok(())
    /// }
    /// ```
    pub async fn reset_limit(&self, scope: &str, key: &ClientKey) -> Result<(), StoreError> {
        self.inner
            .rate_limits
            .reset(scope, &self.as_counted(key))
            .await
    }

    /// The key as the policies count it: an IPv6 address grouped by the
    /// engine's prefix (as [`Engine::lockout_status`] groups it), so an
    /// operator may pass any address of the client's network.
    fn as_counted(&self, key: &ClientKey) -> ClientKey {
        match key {
            ClientKey::Ip(ip) => ClientKey::Ip(self.inner.resolver.group(*ip)),
            other => other.clone(),
        }
    }

    /// Admitted and refused requests per rate-limit scope since the engine started.
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("2/hour", scope = "search")]
    /// async fn search() -> &'static str {
    ///     "results"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().build()?;
    ///     let app = Router::new()
    ///         .route("/search", get(search))
    ///         .layer(engine.clone())
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     for _ in 0..3 {
    ///         app.clone().oneshot(Request::get("/search").body(Body::empty())?).await?;
    ///     }
    ///
    ///     let stats = engine.rate_limit_stats();
    ///     let search = stats.iter().find(|stats| stats.scope == "search").unwrap();
    ///     assert_eq!((search.allowed, search.rejected), (2, 1));
    ///     Ok(())
    /// }
    /// ```
    pub fn rate_limit_stats(&self) -> Vec<ScopeStats> {
        self.inner.rate_limits.config.stats()
    }

    /// The quotas of a scope, from the registered handlers or the defaults.
    fn quotas_of(&self, scope: &str) -> Option<Vec<Quota>> {
        if scope.starts_with("default:") {
            return self
                .inner
                .rate_limits
                .config
                .defaults
                .as_ref()
                .map(|q| q.to_vec());
        }
        handler_policy::every_policy()
            .into_iter()
            .flat_map(|policy| policy.checks.iter())
            .find_map(|check| match check {
                Check::RateLimit(spec) if spec.scope == scope => Some(spec),
                _ => None,
            })
            .and_then(|spec| self.inner.rate_limits.config.quotas_of(spec))
            .map(Vec::from)
    }
    /// Replaces the engine's API keys with `keys`, from the next request on.
    ///
    /// The new set is checked as [`EngineBuilder::build`](crate::EngineBuilder::build)
    /// checks keys (in production, no usable key for key-protected handlers,
    /// or a short or demo key, is refused); when refused, the old keys stay.
    ///
    /// ```
    /// use policy_runtime::{ApiKeyStore, Engine};
    ///
    /// let engine = Engine::builder().api_key("old", "old-key-0123456789abcdef").build()?;
    /// let mut keys = ApiKeyStore::new();
    /// keys.insert("new", "new-key-0123456789abcdef").unwrap();
    /// engine.reload_keys(keys)?;
    /// assert_eq!(engine.api_keys().len(), 1);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn reload_keys(&self, keys: ApiKeyStore) -> Result<(), BuildError> {
        self.inner
            .api_keys
            .reload(keys, self.inner.environment, &protected_handlers())
            .map_err(|problems| BuildError { problems })
    }

    /// Revokes every key named `name`, from the next request on, and returns
    /// how many were revoked. A revoked key gets 401 and is logged as
    /// `revoked`. Reloading keys (or restarting) brings back whatever the
    /// new set holds, so remove the key from its source too.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("partner", "partner-key-0123456789abcdef")
    ///     .build()?;
    /// assert_eq!(engine.revoke_key("partner"), 1);
    /// assert!(engine.api_keys().verify(b"partner-key-0123456789abcdef").is_none());
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn revoke_key(&self, name: &str) -> usize {
        self.inner.api_keys.revoke(name)
    }

    /// The API keys in use now: a snapshot, which later reloads and
    /// revocations do not change. Clone it, change it and give it to
    /// [`Engine::reload_keys`] to add a key while the server runs.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("ci", "ci-key-0123456789abcdef")
    ///     .build()?;
    /// let mut keys = (*engine.api_keys()).clone();
    /// keys.insert("ci", "ci-key-rotated-0123456789").unwrap();
    /// engine.reload_keys(keys)?;
    /// assert_eq!(engine.api_keys().len(), 2);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_keys(&self) -> Arc<ApiKeyStore> {
        self.inner.api_keys.snapshot()
    }

    /// A client's lockout state: its recent failed key attempts, and how much
    /// longer it is locked out. `ip` is grouped as the lockout counts it (an
    /// IPv6 address by its prefix).
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// let status = engine.lockout_status("203.0.113.7".parse().unwrap());
    /// assert_eq!(status.failures, 0);
    /// assert!(status.locked_for.is_none());
    /// ```
    ///
    /// With a store that shares the lockout between instances
    /// ([`LimiterStore::strike_store`](crate::LimiterStore::strike_store),
    /// as `RedisStore` does) this is what this instance
    /// knows: the lockouts it learned, and failures it counted while the
    /// store was unavailable. [`Engine::shared_lockout_status`] asks the
    /// store.
    pub fn lockout_status(&self, ip: IpAddr) -> LockoutStatus {
        self.inner.api_keys.lockout_status(ip, &self.inner.resolver)
    }

    /// Lifts a client's lockout and forgets its failed attempts; returns
    /// whether there was anything to forget.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// assert!(!engine.unlock("203.0.113.7".parse().unwrap()));
    /// ```
    ///
    /// With a store that shares the lockout between instances, this lifts
    /// only what this instance holds; [`Engine::unlock_everywhere`] lifts
    /// the lockout in the store, for every instance.
    pub fn unlock(&self, ip: IpAddr) -> bool {
        self.inner.api_keys.unlock(ip, &self.inner.resolver)
    }

    /// A client's lockout state as every instance sees it: asked of the
    /// store when it shares the lockout (one round trip), else this
    /// engine's, as [`Engine::lockout_status`]. `ip` is grouped as the
    /// lockout counts it. Fails when the store cannot answer.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// let status = engine.shared_lockout_status("203.0.113.7".parse().unwrap()).await.unwrap();
    /// assert_eq!(status, policy_runtime::LockoutStatus::default());
    /// # });
    /// ```
    pub async fn shared_lockout_status(&self, ip: IpAddr) -> Result<LockoutStatus, StoreError> {
        self.inner
            .api_keys
            .lockout_status_shared(ip, &self.inner.resolver)
            .await
    }

    /// Lifts a client's lockout and forgets its failed attempts, here and,
    /// when the store shares the lockout, in the store (one round trip), so
    /// that no instance refuses it any more; returns whether there was
    /// anything to forget. Without a shared store this is [`Engine::unlock`].
    /// Fails when the store cannot answer (what this instance held is
    /// lifted anyway).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// assert!(!engine.unlock_everywhere("203.0.113.7".parse().unwrap()).await.unwrap());
    /// # });
    /// ```
    pub async fn unlock_everywhere(&self, ip: IpAddr) -> Result<bool, StoreError> {
        self.inner
            .api_keys
            .unlock_shared(ip, &self.inner.resolver)
            .await
    }

    /// How many clients the API-key lockout tracks now (0 with the lockout
    /// off); never more than [`Lockout::max_clients`](crate::Lockout::max_clients).
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// assert_eq!(engine.lockout_tracked_clients(), 0);
    /// ```
    pub fn lockout_tracked_clients(&self) -> usize {
        self.inner.api_keys.lockout_tracked_clients()
    }
}
