//! [`Engine`]: the policy configuration a router runs with.
//!
//! This module owns building and validating the configuration (limiter store,
//! API keys, client-address resolution, the clock), running a handler's
//! checks in order, and the operators' view of rate-limit state. Attaching
//! the engine to a router is [`crate::layer`]'s job; each check lives in its
//! own module, and rate-limit settings in [`crate::rate_limit`]'s `config`.

use crate::api_key::id::ApiKeyId;
use crate::api_key::lockout::{Lockout, LockoutLog};
use crate::api_key::store::ApiKeyStore;
use crate::client_ip::{self, ClientIpResolver};
use crate::clock::EngineClock;
use crate::guard::{Check, HandlerPolicy, Registration};
use crate::rate_limit::config::{policy_variable, RateLimitConfig, ScopeStats};
use crate::rate_limit::headers::RateLimitHeaders;
use crate::rate_limit::key::KeyContext;
use crate::rate_limit::spec::{Limits, RateLimitSpec};
use crate::rate_limit::store::{ClientKey, Decision, LimitRequest, LimiterStore, StoreError};
use crate::{api_key, rate_limit, startup, Environment, FakeRelativeClock};
use arc_swap::ArcSwap;
use axum::http::request::Parts;
use axum::response::Response;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The policy configuration: where limits are counted, which API keys exist,
/// and how the client address is found.
///
/// Build one with [`Engine::builder`] and attach it to the router with
/// `.layer(engine)`, after the routes it wraps. The layer puts the engine in
/// each request's extensions, where the handlers' policies read it. A
/// policy-wrapped handler that runs without an engine answers a 500 JSON
/// error and logs, at error level, how to attach one: there is no built-in
/// fallback engine. When engines are layered inside each other (a nested
/// router with its own), a handler runs with the one closest to its route.
///
/// ```
/// use axum::{routing::get, Router};
/// use policy_runtime::{rate_limit, Engine};
///
/// #[rate_limit("20/hour")]
/// async fn score() -> &'static str {
///     "ok"
/// }
///
/// let engine = Engine::builder().api_key("mobile-app", "mobile-app-key-0123456789").build()?;
/// let app: Router = Router::new().route("/score", get(score)).layer(engine);
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) limiter: Box<dyn LimiterStore>,
    pub(crate) keys: ArcSwap<ApiKeyStore>,
    pub(crate) lockout: Option<LockoutLog>,
    pub(crate) resolver: ClientIpResolver,
    pub(crate) rate_limit: RateLimitConfig,
    pub(crate) clock: EngineClock,
    pub(crate) environment: Environment,
    pub(crate) error_format: crate::ErrorFormat,
    /// Whether [`Engine::default_limits`] made a layer, and whether the
    /// engine warned that none was made.
    pub(crate) default_limits_layered: std::sync::atomic::AtomicBool,
    pub(crate) unused_defaults_reported: std::sync::atomic::AtomicBool,
}

/// Builds an [`Engine`]; every configuration problem is reported by [`EngineBuilder::build`] at once.
///
/// ```
/// let engine = policy_runtime::Engine::builder()
///     .api_key("partner-a", "partner-a-key-0123456789")
///     .build()
///     .unwrap();
/// # drop(engine);
/// ```
#[must_use = "call `.build()` to get an engine"]
pub struct EngineBuilder {
    limiter: Option<Box<dyn LimiterStore>>,
    pub(crate) keys: ApiKeyStore,
    pub(crate) lockout: Option<Lockout>,
    resolver: ClientIpResolver,
    clock: EngineClock,
    pub(crate) environment: Environment,
    pub(crate) rate_limit: RateLimitConfig,
    pub(crate) problems: Vec<String>,
    pub(crate) error_format: crate::ErrorFormat,
}

/// Everything wrong with an engine's configuration, listed at once.
///
/// ```
/// let error = policy_runtime::Engine::builder()
///     .api_key("a", "")
///     .api_key("", "some-key-value")
///     .build()
///     .unwrap_err();
/// assert_eq!(error.problems().len(), 2);
/// assert!(error.to_string().contains("API key `a` is empty"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("invalid policy configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct BuildError {
    pub(crate) problems: Vec<String>,
}

impl BuildError {
    /// Each problem as an actionable message.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder().api_key("x", "").build().unwrap_err();
    /// assert_eq!(error.problems(), ["API key `x` is empty"]);
    /// ```
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// A client's state in one rate-limit scope, for operators.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use policy_runtime::{ClientKey, Engine};
///
/// let engine = Engine::builder().build().unwrap();
/// let key = ClientKey::Ip("192.0.2.1".parse().unwrap());
/// // A scope no handler declares has no state.
/// assert!(engine.limit_state("app::nothing", &key).await.unwrap().is_none());
/// # });
/// ```
pub type LimitState = Decision;

impl Engine {
    /// Starts an engine configuration: in-memory limits, no API keys, the
    /// peer address as the client address.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            limiter: None,
            keys: ApiKeyStore::new(),
            lockout: Some(Lockout::default()),
            resolver: ClientIpResolver::new(),
            clock: EngineClock::real(),
            environment: Environment::default(),
            rate_limit: RateLimitConfig::default(),
            problems: Vec::new(),
            error_format: crate::ErrorFormat::default(),
        }
    }

    /// A client's current state in a scope, without counting a request: the
    /// requests it has left and when its quota is whole again. `None` when
    /// the store holds nothing for it. The scope is a handler's path (as in
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
    ) -> Result<Option<LimitState>, StoreError> {
        let Some(quotas) = self.quotas_of(scope) else {
            return Ok(None);
        };
        let request = LimitRequest {
            scope,
            key,
            quotas: &quotas,
            cost: 1,
        };
        self.inner.limiter.peek(request).await
    }

    /// Forgets a client's state in a scope, and lifts any penalty block on
    /// it: its next request starts afresh.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// let key = policy_runtime::ClientKey::Ip("192.0.2.1".parse().unwrap());
    /// engine.reset_limit("app::search", &key).await.unwrap();
    /// # });
    /// ```
    pub async fn reset_limit(&self, scope: &str, key: &ClientKey) -> Result<(), StoreError> {
        if let Some(penalty) = &self.inner.rate_limit.penalty {
            penalty.pardon(key);
        }
        self.inner.limiter.reset(scope, key).await
    }

    /// The environment the engine was built for.
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    ///
    /// let engine = Engine::builder().build().unwrap();
    /// assert_eq!(engine.environment(), Environment::Production);
    /// ```
    pub fn environment(&self) -> Environment {
        self.inner.environment
    }

    /// Admitted and refused requests per rate-limit scope since the engine started.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// for scope in engine.rate_limit_stats() {
    ///     println!("{}: {} allowed, {} rejected", scope.scope, scope.allowed, scope.rejected);
    /// }
    /// ```
    pub fn rate_limit_stats(&self) -> Vec<ScopeStats> {
        self.inner.rate_limit.stats()
    }

    /// The quotas of a scope, from the registered handlers or the defaults.
    fn quotas_of(&self, scope: &str) -> Option<Vec<crate::Quota>> {
        if scope.starts_with("default:") {
            return self.inner.rate_limit.defaults.as_ref().map(|q| q.to_vec());
        }
        crate::guard::every_policy()
            .into_iter()
            .flat_map(|policy| policy.checks.iter())
            .find_map(|check| match check {
                Check::RateLimit(spec) if spec.scope == scope => Some(spec),
                _ => None,
            })
            .and_then(|spec| match &spec.limits {
                Limits::Fixed(quotas) => Some(quotas.to_vec()),
                Limits::Named(name) => self.inner.rate_limit.named(name).map(<[_]>::to_vec),
            })
    }

    /// Runs a handler's checks in declaration order; the first refusal wins.
    pub(crate) async fn enforce(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
    ) -> Result<Admitted, Response> {
        self.enforce_with(policy, parts, None).await
    }

    /// [`Engine::enforce`], with the API key a layer further out admitted.
    pub(crate) async fn enforce_with(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
        known_key: Option<ApiKeyId>,
    ) -> Result<Admitted, Response> {
        let inner = &*self.inner;
        let client_ip =
            client_ip::peer_ip(parts).map(|peer| inner.resolver.resolve(peer, &parts.headers));
        let mut admitted = Admitted {
            rate_limit: None,
            api_key: known_key,
        };
        let mut checks = policy.checks;
        while let Some((first, rest)) = checks.split_first() {
            match first {
                Check::RateLimit(spec) => {
                    // Consecutive limits are checked together: all or nothing.
                    let run = 1 + rest
                        .iter()
                        .take_while(|check| matches!(check, Check::RateLimit(_)))
                        .count();
                    let many: smallvec::SmallVec<[&RateLimitSpec; 2]>;
                    let specs: &[&RateLimitSpec] = if run == 1 {
                        std::slice::from_ref(&spec)
                    } else {
                        many = checks[..run]
                            .iter()
                            .filter_map(|check| match check {
                                Check::RateLimit(spec) => Some(spec),
                                _ => None,
                            })
                            .collect();
                        &many
                    };
                    let context = KeyContext {
                        parts,
                        client_ip,
                        api_key: admitted.api_key.as_ref(),
                        resolver: &inner.resolver,
                    };
                    if let Some(headers) = rate_limit::enforce(inner, specs, &context).await? {
                        // With several limits, the one with the fewest requests left is shown.
                        if admitted
                            .rate_limit
                            .as_ref()
                            .is_none_or(|shown| headers.remaining() < shown.remaining())
                        {
                            admitted.rate_limit = Some(headers);
                        }
                    }
                    checks = &checks[run..];
                    continue;
                }
                Check::ApiKey(requirement) => {
                    let id =
                        api_key::enforce(inner, policy.handler, requirement, parts, client_ip)?;
                    admitted.api_key = Some(id);
                }
                Check::Exempt => {}
            }
            checks = rest;
        }
        Ok(admitted)
    }

    /// Runs a handler's checks to the end before returning, for a store that
    /// answers at once ([`LimiterStore::answers_at_once`]): the checks'
    /// future lives on this stack frame only, so it is never allocated.
    pub(crate) fn enforce_now(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
    ) -> Result<Admitted, Response> {
        let checks = std::pin::pin!(self.enforce(policy, parts));
        match checks.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(answer) => answer,
            Poll::Pending => {
                tracing::error!(
                    handler = policy.handler,
                    outcome = "error",
                    "the rate-limit store said it answers at once but did not; refusing the request"
                );
                Err(crate::ErrorBody::internal_error())
            }
        }
    }

    /// Whether every check can run to the end without waiting: the store
    /// answers at once.
    pub(crate) fn answers_at_once(&self) -> bool {
        self.inner.limiter.answers_at_once()
    }
}

/// What a handler's checks produced when every one passed.
#[derive(Default)]
pub(crate) struct Admitted {
    pub(crate) rate_limit: Option<RateLimitHeaders>,
    pub(crate) api_key: Option<ApiKeyId>,
}

/// Every `#[rate_limit]` of every handler in the program.
fn registered_specs() -> impl Iterator<Item = &'static RateLimitSpec> {
    inventory::iter::<Registration>
        .into_iter()
        .flat_map(|registration| registration.0.checks.iter())
        .filter_map(|check| match check {
            Check::RateLimit(spec) => Some(spec),
            _ => None,
        })
}

impl EngineBuilder {
    /// Accepts `secret` as an API key named `name`, with no scope and no
    /// expiry (for those, see [`EngineBuilder::api_key_with`]). Only its
    /// SHA-256 digest is kept. Several keys may share a name, as while a
    /// client rotates its key.
    ///
    /// The name appears in logs and in [`ApiKeyId`]; the key never does.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("mobile-app", "mobile-app-key-0123456789")
    ///     .api_key("partner-a", "partner-a-key-0123456789")
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn api_key(mut self, name: &str, secret: impl AsRef<[u8]>) -> Self {
        self.add_key(name, secret.as_ref());
        self
    }

    /// Accepts the API keys in the process environment:
    ///
    /// - `API_KEYS`: a comma list. A plain entry is a key named `API_KEYS#1`,
    ///   `API_KEYS#2`, ... by position; `name:key` names it, and
    ///   `name:key:scope1|scope2` gives it scopes too.
    /// - `API_KEY_1`, `API_KEY_2`, ...: one key each, plain (named after the
    ///   variable) or in the same `name:key:scopes` form.
    /// - `API_KEY_FILE`: the path of a key file of digests; see
    ///   [`ApiKeyStore::from_key_file`].
    ///
    /// Entries are trimmed; a key itself cannot contain `:` or `,` here (use
    /// [`EngineBuilder::api_key`] for such keys). A bad entry is a build
    /// problem naming the variable, never the key.
    ///
    /// ```
    /// // With API_KEYS="k1,k2" in the environment, both keys are accepted.
    /// let engine = policy_runtime::Engine::builder().api_keys_from_env().build();
    /// # drop(engine);
    /// ```
    pub fn api_keys_from_env(self) -> Self {
        self.api_keys_from_vars(std::env::vars())
    }

    /// Like [`EngineBuilder::api_keys_from_env`], from the given variables
    /// instead of the process environment.
    ///
    /// ```
    /// let vars = [("API_KEYS".to_string(), "first-key-0123456789,second-key-0123456789".to_string())];
    /// let engine = policy_runtime::Engine::builder().api_keys_from_vars(vars).build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn api_keys_from_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.read_key_vars(vars);
        self
    }

    /// Reads every setting the environment holds:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `ENVIRONMENT` | `development`, `staging` or `production` (the default); see [`Environment`] |
    /// | `API_KEYS`, `API_KEY_1`, `API_KEY_2`, ... | API keys, see [`EngineBuilder::api_keys_from_env`] |
    /// | `API_KEY_FILE` | the path of a key file of SHA-256 digests, see [`ApiKeyStore::from_key_file`] |
    /// | `TRUSTED_PROXIES` | comma list of proxy networks whose forwarding headers are believed |
    /// | `RATELIMIT_IPV6_PREFIX` | prefix length IPv6 clients are grouped by (default 64) |
    /// | `RATELIMIT_DEFAULT` | default limits, as `"200/day; 50/hour"` |
    /// | `RATELIMIT_EXEMPT_IPS` | comma list of addresses or networks never limited |
    /// | `POLICY_LIMIT_<NAME>` | the limits of `#[rate_limit(policy = "name")]` |
    ///
    /// A value that does not parse is a build error naming the variable.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().from_env().build();
    /// # drop(engine);
    /// ```
    pub fn from_env(self) -> Self {
        self.from_vars(std::env::vars())
    }

    /// Like [`EngineBuilder::from_env`], from the given variables instead of
    /// the process environment.
    ///
    /// ```
    /// let vars = [
    ///     ("TRUSTED_PROXIES".to_string(), "10.0.0.0/8".to_string()),
    ///     ("RATELIMIT_DEFAULT".to_string(), "200/day; 50/hour".to_string()),
    ///     ("POLICY_LIMIT_LOGIN".to_string(), "5/hour".to_string()),
    /// ];
    /// let engine = policy_runtime::Engine::builder().from_vars(vars).build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn from_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        for (variable, value) in &vars {
            match variable.as_str() {
                "ENVIRONMENT" => match value.parse::<Environment>() {
                    Ok(environment) => self.environment = environment,
                    Err(error) => self.problems.push(format!("{variable}: {error}")),
                },
                "TRUSTED_PROXIES" => {
                    let resolver = std::mem::take(&mut self.resolver);
                    self.resolver =
                        match resolver.clone().trusted_proxies_from_list(variable, value) {
                            Ok(resolver) => resolver,
                            Err(error) => {
                                self.problems.push(error.to_string());
                                resolver
                            }
                        };
                }
                "RATELIMIT_IPV6_PREFIX" => {
                    let parsed = value.trim().parse::<u8>().ok();
                    let resolver = std::mem::take(&mut self.resolver);
                    self.resolver = match parsed.map(|bits| resolver.clone().ipv6_prefix(bits)) {
                        Some(Ok(resolver)) => resolver,
                        _ => {
                            self.problems.push(format!(
                                "{variable}: `{value}` is not a prefix length; use a number from 0 to 128, such as 64"
                            ));
                            resolver
                        }
                    };
                }
                _ => {}
            }
        }
        self = self.rate_limits_from_vars(&vars);
        self.api_keys_from_vars(vars)
    }

    /// Sets the environment (production by default); see [`Environment`].
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    ///
    /// let engine = Engine::builder().environment(Environment::Development).build().unwrap();
    /// assert_eq!(engine.environment(), Environment::Development);
    /// ```
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Believes `X-Forwarded-For`, `Forwarded` and `X-Real-IP` only from
    /// these proxy networks; the client is then the right-most address that
    /// is not a trusted proxy. See [`ClientIpResolver`].
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .trusted_proxies(["10.0.0.0/8", "::1"])
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn trusted_proxies<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let resolver = std::mem::take(&mut self.resolver);
        self.resolver = match resolver.clone().trusted_proxies(networks) {
            Ok(resolver) => resolver,
            Err(error) => {
                self.problems.push(error.to_string());
                resolver
            }
        };
        self
    }

    /// Groups IPv6 clients by this prefix length for limiting (64 by default),
    /// so one host cannot rotate through the addresses of its network.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().ipv6_prefix(56).build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        let resolver = std::mem::take(&mut self.resolver);
        self.resolver = match resolver.clone().ipv6_prefix(bits) {
            Ok(resolver) => resolver,
            Err(error) => {
                self.problems.push(error.to_string());
                resolver
            }
        };
        self
    }

    /// Counts limits in `store` instead of the default [`crate::MemoryStore`].
    ///
    /// ```
    /// use policy_runtime::{Engine, FakeRelativeClock, MemoryStore};
    ///
    /// let clock = FakeRelativeClock::default();
    /// let engine = Engine::builder().limiter_store(MemoryStore::with_clock(clock)).build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn limiter_store(mut self, store: impl LimiterStore) -> Self {
        self.limiter = Some(Box::new(store));
        self
    }

    /// Runs the engine's own time (penalty blocks, and the default in-memory
    /// store) on a fake clock that tests move by hand.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{Engine, FakeRelativeClock};
    ///
    /// let clock = FakeRelativeClock::default();
    /// let engine = Engine::builder().clock(clock.clone()).build().unwrap();
    /// clock.advance(Duration::from_secs(60));
    /// # drop(engine);
    /// ```
    pub fn clock(mut self, clock: FakeRelativeClock) -> Self {
        self.clock = EngineClock::Fake(clock);
        self
    }

    /// Checks the whole configuration and returns the engine, or every problem found.
    ///
    /// Among the checks: every `#[rate_limit(policy = "name")]` in the
    /// program must be defined, by [`EngineBuilder::policy`] or
    /// `POLICY_LIMIT_<NAME>`. API keys, by [`Environment`]:
    ///
    /// | | production | development, staging |
    /// | --- | --- | --- |
    /// | a `#[require_api_key]` handler but no usable key | error | warning |
    /// | a key shorter than 16 characters | error | warning |
    /// | a demo key (beginning with `demo`, `example`, `sample`, `test`, `changeme`, `change-me` or `placeholder`) | error | warning |
    /// | a handler's scope that no key holds, an expired key | warning | warning |
    ///
    /// Warnings are logged at build. A built engine logs, at info level, its
    /// settings and then one event per policy-wrapped handler with its
    /// policies in order (`handler`, `policies`).
    ///
    /// ```
    /// match policy_runtime::Engine::builder().api_key("ci", "").build() {
    ///     Ok(_) => unreachable!(),
    ///     Err(error) => eprintln!("{error}"), // lists every problem, one per line
    /// }
    /// ```
    pub fn build(mut self) -> Result<Engine, BuildError> {
        let handlers = rate_limit::checks::registered_handlers();
        let names =
            rate_limit::checks::policy_name_problems(&handlers, self.rate_limit.defined_names());
        self.problems.extend(names);
        for spec in registered_specs() {
            if let Limits::Named(name) = spec.limits {
                if !self.rate_limit.resolve_named(name) {
                    self.problems.push(format!(
                        "`{}` uses the rate-limit policy `{name}`, which is not defined; define it with \
                         `EngineBuilder::policy(\"{name}\", \"5/hour\")` or the environment variable {}",
                        spec.scope,
                        policy_variable(name)
                    ));
                }
            }
        }
        let config = &self.rate_limit;
        let scopes =
            rate_limit::checks::shared_scope_problems(&handlers, |name| config.named(name));
        let costs = rate_limit::checks::cost_problems(&handlers, |name| config.named(name));
        self.problems.extend(scopes.into_iter().chain(costs));
        self.check_api_keys();
        self.problems.dedup();
        if !self.problems.is_empty() {
            return Err(BuildError {
                problems: self.problems,
            });
        }
        let engine = self.assemble();
        startup::report(&engine.inner);
        Ok(engine)
    }

    fn assemble(mut self) -> Engine {
        self.rate_limit
            .register_scopes(registered_specs().map(|spec| spec.scope));
        let limiter = self.limiter.unwrap_or_else(|| memory_store(&self.clock));
        Engine {
            inner: Arc::new(EngineInner {
                limiter,
                keys: ArcSwap::from_pointee(self.keys),
                lockout: self.lockout.map(LockoutLog::new),
                resolver: self.resolver,
                rate_limit: self.rate_limit,
                clock: self.clock,
                environment: self.environment,
                error_format: self.error_format,
                default_limits_layered: Default::default(),
                unused_defaults_reported: Default::default(),
            }),
        }
    }

    fn add_key(&mut self, name: &str, secret: &[u8]) {
        if let Err(error) = self.keys.insert(name, secret) {
            self.problems.push(error.to_string());
        }
    }
}

/// The default store: in memory, on the engine's clock.
fn memory_store(clock: &EngineClock) -> Box<dyn LimiterStore> {
    match clock {
        EngineClock::Real { .. } => Box::new(crate::MemoryStore::new()),
        EngineClock::Fake(clock) => Box::new(crate::MemoryStore::with_clock(clock.clone())),
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("keys", &**self.inner.keys.load())
            .field("resolver", &self.inner.resolver)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("keys", &self.keys)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}
