//! [`EngineBuilder`] and [`BuildError`]: every setting of an engine, and
//! the checks of the whole configuration when it is built.
//!
//! This module owns the builder's methods, each a thin method that hands its
//! setting to the policy's own configuration ([`RateLimitConfig`],
//! [`ApiKeyConfig`], the [`ClientIpResolver`]) and collects the problems it
//! returns; the start-up checks that need every handler's registration (the
//! named policies, shared scopes and costs of the rate limits, the
//! key-protected handlers), which it gathers and passes to the policies'
//! check functions as plain lists; and the assembly of the engine, including
//! the choice of the default store on the engine's clock.

use super::{Engine, EngineInner, startup};
use crate::api_key::ApiKeys;
use crate::api_key::config::ApiKeyConfig;
use crate::api_key::scope::KeyRequirement;
use crate::client_ip::ClientIpResolver;
use crate::clock::EngineClock;
use crate::handler_policy::{self, Check, HandlerPolicy, Registration};
use crate::rate_limiting::config::RateLimitConfig;
use crate::rate_limiting::spec::RateLimitSpec;
use crate::rate_limiting::{self, RateLimits};
use crate::request_limits::RequestLimitsConfig;
use crate::{
    ApiKey, Environment, ErrorFormat, HeaderStyle, LimiterStore, Lockout, ManualClock, Penalty,
};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Builds an [`Engine`]; every configuration problem is reported by [`EngineBuilder::build`] at once.
///
/// ```
/// let engine = policy_runtime::Engine::builder()
///     .api_key("partner-a", "partner-a-key-0123456789")
///     .build()
///     .unwrap();
/// assert_eq!(engine.api_keys().len(), 1);
/// ```
#[must_use = "call `.build()` to get an engine"]
pub struct EngineBuilder {
    limiter: Option<Box<dyn LimiterStore>>,
    api_keys: ApiKeyConfig,
    resolver: ClientIpResolver,
    clock: EngineClock,
    environment: Environment,
    rate_limit: RateLimitConfig,
    pub(crate) problems: Vec<String>,
    error_format: ErrorFormat,
    /// Whether per-field errors reach clients in production.
    field_errors_in_production: bool,
    request_limits: RequestLimitsConfig,
    #[cfg(feature = "cors")]
    cors: crate::cors::CorsSettings,
    /// The JWT settings; their methods are in `jwt_settings.rs`.
    #[cfg(feature = "jwt")]
    pub(crate) jwt: crate::jwt::config::JwtConfig,
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

impl Engine {
    /// Starts an engine configuration: in-memory limits, no API keys, the
    /// peer address as the client address.
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment, ErrorFormat};
    ///
    /// let engine = Engine::builder().build().unwrap();
    /// assert_eq!(engine.environment(), Environment::Production);
    /// assert!(engine.api_keys().is_empty());
    /// assert!(matches!(engine.error_format(), ErrorFormat::Compact));
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            limiter: None,
            api_keys: ApiKeyConfig::default(),
            resolver: ClientIpResolver::new(),
            clock: EngineClock::real(),
            environment: Environment::default(),
            rate_limit: RateLimitConfig::default(),
            problems: Vec::new(),
            error_format: ErrorFormat::default(),
            field_errors_in_production: true,
            request_limits: RequestLimitsConfig::default(),
            #[cfg(feature = "cors")]
            cors: Default::default(),
            #[cfg(feature = "jwt")]
            jwt: Default::default(),
        }
    }
}

impl EngineBuilder {
    /// Accepts `secret` as an API key named `name`, with no scope and no
    /// expiry (for those, see [`EngineBuilder::api_key_with`]). Only its
    /// SHA-256 digest is kept. Several keys may share a name, as while a
    /// client rotates its key.
    ///
    /// The name appears in logs and in [`ApiKeyId`](crate::ApiKeyId); the key never does.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("mobile-app", "mobile-app-key-0123456789")
    ///     .api_key("partner-a", "partner-a-key-0123456789")
    ///     .build()
    ///     .unwrap();
    /// let keys = engine.api_keys();
    /// assert_eq!(keys.verify(b"mobile-app-key-0123456789").unwrap().name(), "mobile-app");
    /// assert!(keys.verify(b"some-other-key-0123456789").is_none());
    /// ```
    pub fn api_key(mut self, name: &str, secret: impl AsRef<[u8]>) -> Self {
        if let Err(problem) = self.api_keys.insert(name, secret.as_ref()) {
            self.problems.push(problem);
        }
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
    ///   [`ApiKeyStore::from_key_file`](crate::ApiKeyStore::from_key_file).
    ///
    /// Entries are trimmed; a key itself cannot contain `:` or `,` here (use
    /// [`EngineBuilder::api_key`] for such keys). A bad entry is a build
    /// problem naming the variable, never the key.
    ///
    /// ```rust,standalone_crate
    /// // As if the process were started with these variables. (`set_var` is
    /// // `unsafe` since Rust 2024: sound here, before any other thread runs.)
    /// unsafe {
    ///     std::env::set_var("API_KEYS", "first-key-0123456789,partner:partner-key-0123456789:read|write");
    ///     std::env::set_var("API_KEY_1", "ops:ops-team-key-0123456789:admin");
    /// }
    ///
    /// let engine = policy_runtime::Engine::builder().api_keys_from_env().build()?;
    /// let keys = engine.api_keys();
    /// assert_eq!(keys.len(), 3);
    /// assert_eq!(keys.verify(b"first-key-0123456789").unwrap().name(), "API_KEYS#1");
    /// assert_eq!(keys.verify(b"partner-key-0123456789").unwrap().name(), "partner");
    /// assert_eq!(keys.verify(b"ops-team-key-0123456789").unwrap().name(), "ops");
    /// # Ok::<(), policy_runtime::BuildError>(())
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
    /// assert_eq!(engine.api_keys().verify(b"second-key-0123456789").unwrap().name(), "API_KEYS#2");
    ///
    /// // A bad entry names the variable and the entry's position, never the key.
    /// let vars = [("API_KEYS".to_string(), "ops:".to_string())];
    /// let error = policy_runtime::Engine::builder().api_keys_from_vars(vars).build().unwrap_err();
    /// assert!(error.problems()[0].starts_with("API_KEYS"));
    /// ```
    pub fn api_keys_from_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let problems = self.api_keys.read_vars(vars);
        self.problems.extend(problems);
        self
    }

    /// Reads every setting the environment holds:
    ///
    /// | variable | meaning |
    /// | --- | --- |
    /// | `ENVIRONMENT` | `development`, `staging` or `production` (the default); see [`Environment`] |
    /// | `API_KEYS`, `API_KEY_1`, `API_KEY_2`, ... | API keys, see [`EngineBuilder::api_keys_from_env`] |
    /// | `API_KEY_FILE` | the path of a key file of SHA-256 digests, see [`ApiKeyStore::from_key_file`](crate::ApiKeyStore::from_key_file) |
    /// | `TRUSTED_PROXIES` | comma list of proxy networks whose forwarding headers are believed |
    /// | `RATELIMIT_IPV6_PREFIX` | prefix length IPv6 clients are grouped by (default 64) |
    /// | `RATELIMIT_DEFAULT` | default limits, as `"200/day; 50/hour"` |
    /// | `RATELIMIT_EXEMPT_IPS` | comma list of addresses or networks never limited |
    /// | `POLICY_LIMIT_<NAME>` | the limits of `#[rate_limit(policy = "name")]` |
    /// | `CORS_ORIGINS` | comma list of the origins allowed to call from a browser (feature `cors`, see `cors_origins`) |
    /// | `RATELIMIT_ENABLED` | `false` turns every rate limit off, see [`EngineBuilder::rate_limits_enabled`] |
    /// | `RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION` | `true` lets production run with rate limits off |
    /// | `RATELIMIT_STORAGE_URI` | `memory://` (the default) or `redis://host:6379[/db]` (feature `redis`): the store |
    /// | `RATELIMIT_KEY_PREFIX` | the Redis key prefix (default `policy`) |
    /// | `RATELIMIT_HEADERS_ENABLED` | `false`: no rate-limit headers (only `Retry-After` on a 429) |
    /// | `RATELIMIT_SWALLOW_ERRORS`, `RATELIMIT_IN_MEMORY_FALLBACK_ENABLED` | the Redis store's failure mode: admit (`Open`), or count in memory (`FallbackToMemory`, which wins when both are `true`) |
    ///
    /// A value that does not parse is a build error naming the variable.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{Engine, Environment};
    ///
    /// // As if the process were started with ENVIRONMENT=staging (`set_var`
    /// // is `unsafe` since Rust 2024: sound here, before any other thread runs).
    /// unsafe { std::env::set_var("ENVIRONMENT", "staging") };
    /// let engine = Engine::builder().from_env().build()?;
    /// assert_eq!(engine.environment(), Environment::Staging);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn from_env(self) -> Self {
        self.from_vars(std::env::vars())
    }

    /// Like [`EngineBuilder::from_env`], from the given variables instead of
    /// the process environment.
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    ///
    /// let vars = [
    ///     ("ENVIRONMENT".to_string(), "development".to_string()),
    ///     ("TRUSTED_PROXIES".to_string(), "10.0.0.0/8".to_string()),
    ///     ("RATELIMIT_DEFAULT".to_string(), "200/day; 50/hour".to_string()),
    ///     ("POLICY_LIMIT_LOGIN".to_string(), "5/hour".to_string()),
    /// ];
    /// let engine = Engine::builder().from_vars(vars).build().unwrap();
    /// assert_eq!(engine.environment(), Environment::Development);
    ///
    /// // A value that does not parse is a problem naming the variable.
    /// let vars = [("RATELIMIT_IPV6_PREFIX".to_string(), "wide".to_string())];
    /// let error = Engine::builder().from_vars(vars).build().unwrap_err();
    /// assert_eq!(
    ///     error.problems(),
    ///     ["RATELIMIT_IPV6_PREFIX: `wide` is not a prefix length; use a number from 0 to 128, such as 64"]
    /// );
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
                #[cfg(feature = "cors")]
                crate::cors::VARIABLE => self.cors.read_var(value),
                _ => {}
            }
        }
        let problems = self.rate_limit.read_vars(&vars);
        self.problems.extend(problems);
        let flask = rate_limiting::flask_settings::read_vars(&mut self.rate_limit, &vars);
        self.problems.extend(flask.problems);
        if let Some(storage) = flask.storage {
            self.limiter = storage.into_store();
        }
        let problems = self.request_limits.read_vars(&vars);
        self.problems.extend(problems);
        #[cfg(feature = "jwt")]
        {
            let problems = self.jwt.read_vars(&vars);
            self.problems.extend(problems);
        }
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
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, ClientKey, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("10/minute", scope = "search")]
    /// async fn search() -> &'static str {
    ///     "results"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().trusted_proxies(["10.0.0.0/8", "::1"]).build()?;
    ///     let app = Router::new()
    ///         .route("/search", get(search))
    ///         .layer(engine.clone())
    ///         .layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 2], 40000)))); // the proxy
    ///     let request = Request::get("/search").header("x-forwarded-for", "203.0.113.9");
    ///     app.oneshot(request.body(Body::empty())?).await?;
    ///
    ///     // Counted against the client the proxy names, not against the proxy.
    ///     let client = ClientKey::Ip("203.0.113.9".parse()?);
    ///     assert_eq!(engine.limit_state("search", &client).await?.unwrap().remaining, 9);
    ///     let proxy = ClientKey::Ip("10.0.0.2".parse()?);
    ///     assert!(engine.limit_state("search", &proxy).await?.is_none());
    ///     Ok(())
    /// }
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
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, ClientKey, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("10/minute", scope = "search")]
    /// async fn search() -> &'static str {
    ///     "results"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().ipv6_prefix(56).build()?;
    ///     let peer: SocketAddr = "[2001:db8:1:2ff::9]:40000".parse()?;
    ///     let app = Router::new()
    ///         .route("/search", get(search))
    ///         .layer(engine.clone())
    ///         .layer(MockConnectInfo(peer));
    ///     app.oneshot(Request::get("/search").body(Body::empty())?).await?;
    ///
    ///     // The client is its /56 network.
    ///     let network = ClientKey::Ip("2001:db8:1:200::".parse()?);
    ///     assert_eq!(engine.limit_state("search", &network).await?.unwrap().remaining, 9);
    ///     assert!(Engine::builder().ipv6_prefix(129).build().is_err());
    ///     Ok(())
    /// }
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
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine, ManualClock, MemoryStore};
    /// use std::{net::SocketAddr, time::Duration};
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("1/minute")]
    /// async fn ping() -> &'static str {
    ///     "pong"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let clock = ManualClock::new();
    ///     let engine = Engine::builder().limiter_store(MemoryStore::with_clock(clock.clone())).build()?;
    ///     let app = Router::new()
    ///         .route("/ping", get(ping))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let ping = || app.clone().oneshot(Request::get("/ping").body(Body::empty()).unwrap());
    ///
    ///     assert_eq!(ping().await?.status(), 200);
    ///     assert_eq!(ping().await?.status(), 429);
    ///     clock.advance(Duration::from_secs(60)); // the store counts on `clock`
    ///     assert_eq!(ping().await?.status(), 200);
    ///     Ok(())
    /// }
    /// ```
    pub fn limiter_store(mut self, store: impl LimiterStore) -> Self {
        self.limiter = Some(Box::new(store));
        self
    }

    /// Runs the engine's own time (penalty blocks, the API-key lockout and
    /// the default in-memory store) on a [`ManualClock`] that tests move by
    /// hand, instead of the real [`SystemClock`](crate::SystemClock).
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine, ManualClock, Penalty};
    /// use std::{net::SocketAddr, time::Duration};
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("1/minute")]
    /// async fn ping() -> &'static str {
    ///     "pong"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let clock = ManualClock::new();
    ///     let minute = Duration::from_secs(60);
    ///     let engine = Engine::builder()
    ///         .clock(clock.clone())
    ///         .penalty(Penalty::new(1, minute, 10 * minute)) // blocked 10 minutes after one 429
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/ping", get(ping))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let ping = || app.clone().oneshot(Request::get("/ping").body(Body::empty()).unwrap());
    ///
    ///     assert_eq!(ping().await?.status(), 200);
    ///     assert_eq!(ping().await?.status(), 429); // a strike: blocked
    ///     clock.advance(minute);
    ///     assert_eq!(ping().await?.status(), 429); // the limit has room, the block holds
    ///     clock.advance(9 * minute);
    ///     assert_eq!(ping().await?.status(), 200);
    ///     Ok(())
    /// }
    /// ```
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = EngineClock::Manual(clock);
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
    /// let error = policy_runtime::Engine::builder()
    ///     .api_key("ci", "")
    ///     .api_key("ops", "short-key") // production refuses keys under 16 characters
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.problems().len(), 2);
    /// assert_eq!(error.problems()[0], "API key `ci` is empty");
    /// assert!(error.problems()[1].starts_with("API key `ops` is 9 characters long; use at least 16"));
    /// // Displayed, it lists every problem, one per line.
    /// assert!(error.to_string().starts_with("invalid policy configuration:\n  - API key `ci` is empty\n  - "));
    /// ```
    pub fn build(mut self) -> Result<Engine, BuildError> {
        let handlers = handler_policy::registered();
        let limits = handler_limits(&handlers);
        let names =
            rate_limiting::checks::policy_name_problems(&limits, self.rate_limit.defined_names());
        self.problems.extend(names);
        let undefined = self.rate_limit.resolve_policies(registered_specs());
        self.problems.extend(undefined);
        let config = &self.rate_limit;
        let scopes =
            rate_limiting::checks::shared_scope_problems(&limits, |name| config.named(name));
        let costs = rate_limiting::checks::cost_problems(&limits, |name| config.named(name));
        self.problems.extend(scopes.into_iter().chain(costs));
        let keys = self.api_keys.check(self.environment, &protected_handlers());
        self.problems.extend(keys);
        self.problems.extend(self.request_limits.problems());
        #[cfg(feature = "cors")]
        self.problems.extend(self.cors.problems(self.environment));
        self.problems.extend(self.jwt_problems());
        let switch = self.rate_limit.switch;
        self.problems.extend(switch.problem(self.environment));
        self.problems.dedup();
        if !self.problems.is_empty() {
            return Err(BuildError {
                problems: self.problems,
            });
        }
        self.rate_limit.apply_strategy();
        let engine = self.assemble();
        startup::report(&engine.inner);
        switch.report();
        Ok(engine)
    }

    fn assemble(mut self) -> Engine {
        self.rate_limit
            .register_scopes(registered_specs().map(|spec| spec.scope));
        let store = self.limiter.unwrap_or_else(|| memory_store(&self.clock));
        // A store that answers at once is in this process: nothing to share.
        let strikes = store.strike_store().filter(|_| !store.answers_at_once());
        if let (Some(penalty), Some(strikes)) = (&mut self.rate_limit.penalty, &strikes) {
            penalty.share(std::sync::Arc::clone(strikes));
        }
        Engine {
            inner: Arc::new(EngineInner {
                rate_limits: RateLimits {
                    store,
                    config: self.rate_limit,
                    clock: self.clock.clone(),
                },
                #[cfg(feature = "jwt")]
                jwt: crate::jwt::Jwt::new(self.jwt, self.clock.clone()),
                api_keys: ApiKeys::new(self.api_keys, self.clock, strikes),
                resolver: self.resolver,
                environment: self.environment,
                error_format: self.error_format,
                hides_field_errors: !self.field_errors_in_production
                    && self.environment == Environment::Production,
                request_limits: self.request_limits.build(
                    handler_policy::every_policy()
                        .into_iter()
                        .map(HandlerPolicy::own_limits),
                ),
                #[cfg(feature = "cors")]
                cors: self.cors.config(),
                default_limits_layered: Default::default(),
                unused_defaults_reported: Default::default(),
            }),
        }
    }

    /// Defines the limits of a named policy, used as `#[rate_limit(policy = "name")]`.
    ///
    /// A policy the code leaves undefined can be set by operators without
    /// recompiling, with `POLICY_LIMIT_<NAME>` (see
    /// [`EngineBuilder::from_env`]); a definition given here wins over that
    /// variable. A policy used by a handler but defined nowhere makes
    /// [`EngineBuilder::build`] fail.
    ///
    /// ```rust,standalone_crate
    /// use axum::{routing::post, Router};
    /// use policy_runtime::{rate_limit, Engine};
    ///
    /// #[rate_limit(policy = "login")]
    /// async fn login() -> &'static str {
    ///     "welcome"
    /// }
    ///
    /// let engine = Engine::builder().policy("login", "5/hour").build().unwrap();
    /// let app: Router = Router::new().route("/login", post(login)).layer(engine);
    ///
    /// // Undefined, it fails the build of every engine in the program.
    /// let error = Engine::builder().build().unwrap_err();
    /// assert!(error.problems()[0].contains("uses the rate-limit policy `login`, which is not defined"));
    /// # drop(app);
    /// ```
    pub fn policy(mut self, name: &str, limits: &str) -> Self {
        if let Err(problem) = self.rate_limit.define(name, limits) {
            self.problems.push(problem);
        }
        self
    }

    /// Default limits, as `"200/day; 50/hour"`, for the routes that
    /// [`Engine::default_limits`](crate::Engine::default_limits) wraps: the
    /// routes without a `#[rate_limit]` of their own. Each route counts per
    /// client IP in its own scope, `default:<route>`, from its first request.
    /// Which routes take them is said in code, never learned from traffic;
    /// an engine with default limits that no route takes logs a warning when
    /// it is layered.
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = policy_runtime::Engine::builder()
    ///         .default_limits("200/day; 50/hour")
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/about", get(|| async { "about" }))
    ///         .route_layer(engine.default_limits())
    ///         .route("/health", get(|| async { "ok" })) // added after: no default limits
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///
    ///     let about = app.clone().oneshot(Request::get("/about").body(Body::empty())?).await?;
    ///     assert_eq!(about.headers()["x-ratelimit-limit"], "50");
    ///     assert_eq!(about.headers()["x-ratelimit-remaining"], "49");
    ///     let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    ///     assert!(health.headers().get("x-ratelimit-limit").is_none());
    ///     Ok(())
    /// }
    /// ```
    pub fn default_limits(mut self, limits: &str) -> Self {
        if let Err(problem) = self.rate_limit.set_defaults(limits) {
            self.problems.push(problem);
        }
        self
    }

    /// Clients that are never limited: networks such as `"10.0.0.0/8"` or
    /// single addresses such as `"192.0.2.10"`, matched against the client IP
    /// after trusted-proxy resolution.
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("1/hour")]
    /// async fn report() -> &'static str {
    ///     "report"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().exempt_ips(["10.0.0.0/8", "192.0.2.10"]).build()?;
    ///     let app = Router::new()
    ///         .route("/report", get(report))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([10, 1, 2, 3], 40000))));
    ///     for _ in 0..3 {
    ///         let response = app.clone().oneshot(Request::get("/report").body(Body::empty())?).await?;
    ///         assert_eq!(response.status(), 200);
    ///     }
    ///
    ///     let error = Engine::builder().exempt_ips(["10.0.0.0/33"]).build().unwrap_err();
    ///     assert!(error.problems()[0].contains("is neither an IP address nor a network"));
    ///     Ok(())
    /// }
    /// ```
    pub fn exempt_ips<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let problems = self.rate_limit.exempt_ips(networks);
        self.problems.extend(problems);
        self
    }

    /// API keys, by name, that are never limited (for internal callers).
    /// Applies to limits that run after `#[require_api_key]` on a handler.
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::post, Router};
    /// use policy_runtime::{rate_limit, require_api_key, Engine};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[require_api_key]
    /// #[rate_limit("1/hour")]
    /// async fn import() -> &'static str {
    ///     "imported"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder()
    ///         .api_key("internal-batch", "internal-batch-key-0123456789")
    ///         .exempt_keys(["internal-batch"])
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/import", post(import))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     for _ in 0..3 {
    ///         let request = Request::post("/import").header("x-api-key", "internal-batch-key-0123456789");
    ///         assert_eq!(app.clone().oneshot(request.body(Body::empty())?).await?.status(), 200);
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn exempt_keys<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rate_limit.exempt_keys(names);
        self
    }

    /// Blocks clients that keep hitting 429; see [`Penalty`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{Engine, Penalty};
    ///
    /// // Five 429s within a minute block the client for ten minutes.
    /// let engine = Engine::builder()
    ///     .penalty(Penalty::new(5, Duration::from_secs(60), Duration::from_secs(600)))
    ///     .build();
    /// assert!(engine.is_ok());
    ///
    /// // At most 100 strikes: a penalty out of range is a build problem.
    /// let error = Engine::builder()
    ///     .penalty(Penalty::new(101, Duration::from_secs(60), Duration::from_secs(600)))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.problems().len(), 1);
    /// ```
    pub fn penalty(mut self, penalty: Penalty) -> Self {
        if let Err(problem) = self.rate_limit.set_penalty(penalty) {
            self.problems.push(problem);
        }
        self
    }

    /// Turns every rate limit of the engine on (the default) or off: the
    /// handlers' `#[rate_limit]`s, [`RateLimit`](crate::RateLimit) layers,
    /// the default limits and the penalty box. Off, requests are admitted
    /// without being counted and without rate-limit headers; API keys, JWTs
    /// and every other policy still apply. Also `RATELIMIT_ENABLED=false`
    /// (Flask-Limiter's name). A built engine with limits off logs it once
    /// at warn.
    ///
    /// Production refuses limits turned off, as a build problem, unless
    /// [`EngineBuilder::allow_disabled_rate_limits_in_production`] (or
    /// `RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION=true`) says it is meant.
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine, Environment};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("1/hour")]
    /// async fn report() -> &'static str {
    ///     "report"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder()
    ///         .environment(Environment::Development)
    ///         .rate_limits_enabled(false)
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/report", get(report))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     for _ in 0..3 {
    ///         let response = app.clone().oneshot(Request::get("/report").body(Body::empty())?).await?;
    ///         assert_eq!(response.status(), 200);
    ///         assert!(response.headers().get("x-ratelimit-limit").is_none());
    ///     }
    ///
    ///     let error = Engine::builder().rate_limits_enabled(false).build().unwrap_err();
    ///     assert_eq!(
    ///         error.problems(),
    ///         ["every rate limit is off (RATELIMIT_ENABLED=false or `rate_limits_enabled(false)`), which production \
    ///           refuses; to mean it, also set RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION=true or call \
    ///           `allow_disabled_rate_limits_in_production(true)`"]
    ///     );
    ///     Ok(())
    /// }
    /// ```
    pub fn rate_limits_enabled(mut self, enabled: bool) -> Self {
        self.rate_limit.switch.off = !enabled;
        self
    }

    /// Lets a production engine run with its rate limits off (see
    /// [`EngineBuilder::rate_limits_enabled`]); also
    /// `RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION=true`. It turns nothing off by itself.
    ///
    /// ```
    /// use policy_runtime::Engine;
    ///
    /// let engine = Engine::builder()
    ///     .rate_limits_enabled(false)
    ///     .allow_disabled_rate_limits_in_production(true)
    ///     .build();
    /// assert!(engine.is_ok());
    /// ```
    pub fn allow_disabled_rate_limits_in_production(mut self, allowed: bool) -> Self {
        self.rate_limit.switch.off_allowed_in_production = allowed;
        self
    }

    /// Which rate-limit header families responses carry (both by default).
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine, HeaderStyle};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("20/hour")]
    /// async fn score() -> &'static str {
    ///     "scored"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().rate_limit_headers(HeaderStyle::Legacy).build()?;
    ///     let app = Router::new()
    ///         .route("/score", get(score))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let response = app.oneshot(Request::get("/score").body(Body::empty())?).await?;
    ///     assert_eq!(response.headers()["x-ratelimit-remaining"], "19");
    ///     assert!(response.headers().get("ratelimit").is_none()); // no IETF family
    ///     Ok(())
    /// }
    /// ```
    pub fn rate_limit_headers(mut self, style: HeaderStyle) -> Self {
        self.rate_limit.header_style = style;
        self
    }

    /// Adds `X-RateLimit-Window` to the `X-RateLimit-*` headers (off by
    /// default): the period, in seconds, of the quota those headers
    /// describe, the one whose count `X-RateLimit-Limit` is. That is the
    /// quota with the fewest requests left on an admitted response, and on a
    /// 429 the quota that refused the request (for a client in the penalty
    /// box, the first quota of the refusing limit). A period that is not a
    /// whole number of seconds is rounded up, as in `RateLimit-Policy`'s `w`.
    ///
    /// Only with [`HeaderStyle::Legacy`] or [`HeaderStyle::Both`]: the IETF
    /// family names the window in `RateLimit-Policy` already, and
    /// [`HeaderStyle::None`] sends no rate-limit header.
    ///
    /// ```
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
    /// use policy_runtime::{rate_limit, Engine, HeaderStyle};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[rate_limit("2/minute; 100/hour")]
    /// async fn evaluate() -> &'static str {
    ///     "scored"
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder()
    ///         .rate_limit_headers(HeaderStyle::Legacy)
    ///         .rate_limit_window_header(true)
    ///         .build()?;
    ///     let app = Router::new()
    ///         .route("/evaluate", get(evaluate))
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let mut statuses = Vec::new();
    ///     for _ in 0..3 {
    ///         let response = app.clone().oneshot(Request::get("/evaluate").body(Body::empty())?).await?;
    ///         // The minute's quota has the fewest requests left, then refuses.
    ///         assert_eq!(response.headers()["x-ratelimit-limit"], "2");
    ///         assert_eq!(response.headers()["x-ratelimit-window"], "60");
    ///         statuses.push(response.status().as_u16());
    ///     }
    ///     assert_eq!(statuses, [200, 200, 429]);
    ///     Ok(())
    /// }
    /// ```
    pub fn rate_limit_window_header(mut self, on: bool) -> Self {
        self.rate_limit.window_header = on;
        self
    }

    /// Accepts a key with its scopes and expiry; see [`ApiKey`].
    ///
    /// ```
    /// use policy_runtime::{ApiKey, Engine};
    ///
    /// let engine = Engine::builder()
    ///     .api_key_with(ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"]))
    ///     .api_key_with(ApiKey::new("reader", "reader-key-0123456789").scopes(["read"]))
    ///     .build()?;
    /// assert_eq!(engine.api_keys().verify(b"reader-key-0123456789").unwrap().name(), "reader");
    ///
    /// // A scope name is checked here too.
    /// let error = Engine::builder()
    ///     .api_key_with(ApiKey::new("ops", "ops-team-key-0123456789").scopes(["has space"]))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.problems().len(), 1);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_key_with(mut self, key: ApiKey) -> Self {
        if let Err(problem) = self.api_keys.add(key) {
            self.problems.push(problem);
        }
        self
    }

    /// Accepts the keys of a key file, which holds only their SHA-256
    /// digests; see [`ApiKeyStore::from_key_file`](crate::ApiKeyStore::from_key_file) for the format. The file
    /// is read now; a file that cannot be read, and every bad line, is a
    /// build problem naming the file and line. `API_KEY_FILE` does the same
    /// from the environment.
    ///
    /// ```
    /// use policy_runtime::{ApiKey, Engine};
    ///
    /// let path = std::env::temp_dir().join(format!("doc-api-keys-{}", std::process::id()));
    /// let line = ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"]).key_file_line();
    /// std::fs::write(&path, format!("# operators\n{line}\n")).unwrap();
    ///
    /// let engine = Engine::builder().api_key_file(&path).build()?;
    /// assert_eq!(engine.api_keys().verify(b"ops-team-key-0123456789").unwrap().name(), "ops");
    /// # std::fs::remove_file(&path).unwrap();
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_key_file(mut self, path: impl AsRef<Path>) -> Self {
        let problems = self.api_keys.add_key_file(path.as_ref());
        self.problems.extend(problems);
        self
    }

    /// Sets the brute-force lockout; on by default as [`Lockout::default`].
    /// A setting out of range (see [`Lockout`]) is a problem `build` reports.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{Engine, Lockout};
    ///
    /// let engine = Engine::builder()
    ///     .lockout(Lockout::new(3, Duration::from_secs(60), Duration::from_secs(600)))
    ///     .build()?;
    /// assert_eq!(engine.lockout_status("192.0.2.1".parse().unwrap()).failures, 0);
    ///
    /// // `lock_for` is at most 365 days: a problem `build` lists.
    /// let year_and_a_day = Duration::from_secs(366 * 86_400);
    /// let error = Engine::builder()
    ///     .lockout(Lockout::new(3, Duration::from_secs(60), year_and_a_day))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.problems().len(), 1);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn lockout(mut self, lockout: Lockout) -> Self {
        let problems = self.api_keys.set_lockout(lockout);
        self.problems.extend(problems);
        self
    }

    /// Turns the brute-force lockout off: failed key attempts get 401, however many.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().no_lockout().build()?;
    /// assert_eq!(engine.lockout_status("192.0.2.1".parse().unwrap()).failures, 0);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn no_lockout(mut self) -> Self {
        self.api_keys.no_lockout();
        self
    }

    /// Sets the shape of every error response: `#[api_error]` errors, policy
    /// rejections and extractor rejections of the routes behind the engine
    /// ([`ErrorFormat::Compact`] by default). In development, errors hidden
    /// from clients (5xx by default) show their detail in any format.
    ///
    /// ```
    /// use policy_runtime::{Engine, ErrorFormat};
    ///
    /// let engine = Engine::builder().error_format(ErrorFormat::Detailed).build().unwrap();
    /// assert!(matches!(engine.error_format(), ErrorFormat::Detailed));
    /// ```
    pub fn error_format(mut self, format: ErrorFormat) -> Self {
        self.error_format = format;
        self
    }

    /// Whether per-field errors reach clients in production: `details` in
    /// the compact and detailed formats, `errors` in the problem format, and
    /// what a custom renderer gets from [`ErrorView::field_errors`](crate::ErrorView::field_errors).
    /// `true` by default; with `false`, a production engine sends every
    /// error without them (an empty `details` in the detailed format), as
    /// FastAPI services that hide validation details in production do.
    /// Development and staging show them either way.
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, http::Request, routing::post, Router};
    /// use policy_runtime::{api_error, Engine, Environment, FieldError};
    /// use tower::ServiceExt;
    ///
    /// #[api_error]
    /// #[derive(Debug, thiserror::Error)]
    /// enum AppError {
    ///     #[error("invalid signup")]
    ///     #[api(status = 422, code = "VALIDATION_ERROR")]
    ///     Invalid { #[api(errors)] errors: Vec<FieldError> },
    /// }
    ///
    /// async fn signup() -> Result<(), AppError> {
    ///     let email = FieldError::new("email", "value_error.email", "not a valid email address");
    ///     Err(AppError::Invalid { errors: vec![email] })
    /// }
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     for (environment, expected) in [
    ///         (Environment::Production, r#"{"error":"invalid signup","code":"VALIDATION_ERROR"}"#),
    ///         (
    ///             Environment::Staging,
    ///             r#"{"error":"invalid signup","code":"VALIDATION_ERROR","details":[{"field":"email","message":"not a valid email address","code":"value_error.email"}]}"#,
    ///         ),
    ///     ] {
    ///         let engine = Engine::builder()
    ///             .environment(environment)
    ///             .field_errors_in_production(false)
    ///             .build()?;
    ///         let app = Router::new().route("/signup", post(signup)).layer(engine);
    ///         let response = app.oneshot(Request::post("/signup").body(Body::empty())?).await?;
    ///         assert_eq!(response.status(), 422);
    ///         assert_eq!(axum::body::to_bytes(response.into_body(), 1024).await?, expected);
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn field_errors_in_production(mut self, shown: bool) -> Self {
        self.field_errors_in_production = shown;
        self
    }

    /// The most bytes of request body any handler behind the engine reads
    /// (also `REQUEST_MAX_BODY_SIZE=1MB`); a handler's `#[body_limit]`
    /// replaces it for that handler, larger or smaller.
    ///
    /// A request whose `Content-Length` is over the limit is refused before
    /// any byte of its body is read; a body without `Content-Length` is read
    /// up to the limit and refused there, never buffered further. Both
    /// answer 413 `PAYLOAD_TOO_LARGE` in the engine's error format. The limit
    /// is the one axum's body extractors honour ([`axum::extract::DefaultBodyLimit`]),
    /// so it applies to plain handlers too; their own rejection text is
    /// axum's unless they take `policy_runtime::extract::Json` and its siblings.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::post, Router};
    /// use policy_runtime::Engine;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().max_body_size(1024 * 1024).build()?;
    ///     let app = Router::new()
    ///         .route("/convert", post(|body: String| async move { body.len().to_string() }))
    ///         .layer(engine);
    ///     let request = Request::post("/convert")
    ///         .header("content-length", "2000000")
    ///         .body(Body::from(vec![b'a'; 2_000_000]))?;
    ///     let response = app.oneshot(request).await?;
    ///     assert_eq!(response.status(), 413);
    ///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
    ///     assert_eq!(
    ///         body,
    ///         r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#
    ///     );
    ///     Ok(())
    /// }
    /// ```
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.request_limits.max_body_size = Some(bytes);
        self
    }

    /// How long a request behind the engine may take, from its arrival at
    /// the engine layer to its response (also `REQUEST_TIMEOUT=30s`); a
    /// handler's `#[timeout]` replaces it for that handler, longer or
    /// shorter. At most 24 hours.
    ///
    /// When the time is up the request's future is dropped (the handler
    /// stops at its current `.await`) and the answer is 504 `TIMEOUT` in the
    /// engine's error format, logged at warn with the route and the elapsed
    /// time. The timer is tokio's: the runtime must have its time driver
    /// enabled, as `#[tokio::main]` does.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use policy_runtime::Engine;
    /// use std::time::Duration;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().request_timeout(Duration::from_millis(50)).build()?;
    ///     let app = Router::new()
    ///         .route("/slow", get(|| async {
    ///             tokio::time::sleep(Duration::from_secs(10)).await;
    ///             "done"
    ///         }))
    ///         .layer(engine);
    ///     let response = app.oneshot(Request::get("/slow").body(Body::empty())?).await?;
    ///     assert_eq!(response.status(), 504);
    ///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
    ///     assert_eq!(
    ///         body,
    ///         r#"{"error":"Gateway Timeout: the request took longer than 50ms","code":"TIMEOUT"}"#
    ///     );
    ///     Ok(())
    /// }
    /// ```
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_limits.timeout = Some(timeout);
        self
    }
}

/// CORS (feature `cors`): which origins may call from a browser; see
/// [`Engine::cors`](crate::Engine::cors) for the layer.
#[cfg(feature = "cors")]
#[cfg_attr(docsrs, doc(cfg(feature = "cors")))]
impl EngineBuilder {
    /// The origins (`scheme://host[:port]`, as browsers send them in
    /// `Origin`, compared without regard to case) whose pages may call the
    /// API, or `"*"` for every site (refused in production, and with
    /// credentials). Replaces the list of `CORS_ORIGINS`. An entry that is not an origin, such as one with a
    /// path or a trailing `/`, is a build problem naming it.
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    ///
    /// let engine = Engine::builder()
    ///     .cors_origins(["https://app.example.com", "http://localhost:5173"])
    ///     .build();
    /// assert!(engine.is_ok());
    ///
    /// let error = Engine::builder()
    ///     .cors_origins(["*", "https://app.example.com/"])
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.problems(),
    ///     [
    ///         "CORS origin `https://app.example.com/` is not an origin; use scheme://host[:port], such as https://app.example.com",
    ///         "CORS origin `*` lets every site call the API, which production refuses; list the allowed origins in CORS_ORIGINS or with `cors_origins`",
    ///     ]
    /// );
    /// // Everywhere else, `*` is allowed without credentials.
    /// let engine = Engine::builder().environment(Environment::Staging).cors_origins(["*"]).build();
    /// assert!(engine.is_ok());
    /// ```
    pub fn cors_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cors.set_origins(origins);
        self
    }

    /// Lets browsers send cookies and `Authorization` with cross-origin
    /// requests (`Access-Control-Allow-Credentials: true`); off by default.
    /// With the origin `"*"` it is a build problem in every environment.
    ///
    /// ```
    /// use policy_runtime::{Engine, Environment};
    ///
    /// let error = Engine::builder()
    ///     .environment(Environment::Development)
    ///     .cors_origins(["*"])
    ///     .cors_allow_credentials(true)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.problems(),
    ///     ["CORS origin `*` cannot be combined with credentials (browsers refuse it); list the allowed origins or turn credentials off"]
    /// );
    /// ```
    pub fn cors_allow_credentials(mut self, on: bool) -> Self {
        self.cors.set_credentials(on);
        self
    }

    /// The methods cross-origin requests may use (by default `GET`, `POST`,
    /// `PUT`, `PATCH` and `DELETE`). A preflight asking for another one is
    /// refused with a 403. `"*"` is not accepted: list them.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .cors_origins(["https://app.example.com"])
    ///     .cors_methods(["GET", "POST"])
    ///     .build();
    /// assert!(engine.is_ok());
    ///
    /// let error = policy_runtime::Engine::builder().cors_methods(["GET", "NOT A METHOD"]).build().unwrap_err();
    /// assert_eq!(
    ///     error.problems(),
    ///     ["CORS method `NOT A METHOD` is not an HTTP method; list methods such as GET or POST"]
    /// );
    /// ```
    pub fn cors_methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cors.set_methods(methods);
        self
    }

    /// The request headers cross-origin requests may send besides the
    /// CORS-safelisted ones (by default `content-type`, `authorization`,
    /// `x-api-key` and `x-request-id`). A preflight asking for another one
    /// is refused with a 403. `"*"` is not accepted: list them.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .cors_origins(["https://app.example.com"])
    ///     .cors_headers(["content-type", "x-api-key", "x-tenant"])
    ///     .build();
    /// assert!(engine.is_ok());
    ///
    /// let error = policy_runtime::Engine::builder().cors_headers(["x tenant"]).build().unwrap_err();
    /// assert_eq!(
    ///     error.problems(),
    ///     ["CORS header `x tenant` is not a header name; list names such as content-type"]
    /// );
    /// ```
    pub fn cors_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.cors.set_headers(headers);
        self
    }
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

/// Each `#[rate_limit]` of `handlers` with its handler's path, in the
/// handlers' order.
fn handler_limits(
    handlers: &[&'static HandlerPolicy],
) -> Vec<(&'static str, &'static RateLimitSpec)> {
    handlers
        .iter()
        .flat_map(|handler| {
            handler.checks.iter().filter_map(|check| match check {
                Check::RateLimit(spec) => Some((handler.handler, spec)),
                _ => None,
            })
        })
        .collect()
}

/// Every JWT-protected handler in the program: its path, what it
/// requires, and whether an API key may admit it instead.
fn jwt_handlers() -> Vec<(&'static str, KeyRequirement, bool)> {
    let mut handlers: Vec<(&'static str, KeyRequirement, bool)> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|registration| {
            let policy = registration.0;
            policy.checks.iter().find_map(|check| match check {
                Check::Jwt(requirement) => Some((policy.handler, *requirement, false)),
                Check::ApiKeyOrJwt(requirement) => Some((policy.handler, *requirement, true)),
                _ => None,
            })
        })
        .collect();
    handlers.sort_by_key(|(handler, _, _)| *handler);
    handlers
}

/// Every key-protected handler in the program, with what it requires, by path.
pub(super) fn protected_handlers() -> Vec<(&'static str, KeyRequirement)> {
    let mut handlers: Vec<(&'static str, KeyRequirement)> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|registration| {
            let policy = registration.0;
            policy.checks.iter().find_map(|check| match check {
                Check::ApiKey(requirement) => Some((policy.handler, *requirement)),
                _ => None,
            })
        })
        .collect();
    handlers.sort_by_key(|(handler, _)| *handler);
    handlers
}

/// The default store: in memory, on the engine's clock.
fn memory_store(clock: &EngineClock) -> Box<dyn LimiterStore> {
    match clock {
        EngineClock::System(_) => Box::new(crate::MemoryStore::new()),
        EngineClock::Manual(clock) => Box::new(crate::MemoryStore::with_clock(clock.clone())),
    }
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("keys", &self.api_keys.keys)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    /// The JWT policy's start-up problems: with the feature, the
    /// configuration's; without it, any `#[require_jwt]` handler is one.
    fn jwt_problems(&self) -> Vec<String> {
        let handlers = jwt_handlers();
        #[cfg(feature = "jwt")]
        {
            let api_keys = !self.api_keys.keys.is_empty();
            self.jwt.check(self.environment, &handlers, api_keys)
        }
        #[cfg(not(feature = "jwt"))]
        {
            handlers
                .iter()
                .map(|(handler, _, _)| {
                    format!(
                        "`{handler}` requires a JWT, but policy-runtime was built without its `jwt` feature; \
                         enable it: `policy-runtime = {{ features = [\"jwt\"] }}`"
                    )
                })
                .collect()
        }
    }
}
