//! [`Engine`]: the policy configuration a router runs with.
//!
//! This module owns building and validating the configuration (limiter store,
//! API keys) and running a handler's checks in order. Attaching the engine to
//! a router is [`crate::layer`]'s job; each check lives in its own module.

use crate::api_key::id::ApiKeyId;
use crate::api_key::store::{keys_from_vars, ApiKeyStore};
use crate::guard::{Check, HandlerPolicy};
use crate::rate_limit::headers::RateLimitHeaders;
use crate::rate_limit::memory::MemoryStore;
use crate::rate_limit::store::LimiterStore;
use crate::{api_key, client_ip, rate_limit};
use axum::http::request::Parts;
use axum::response::Response;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The policy configuration: where limits are counted and which API keys exist.
///
/// Build one with [`Engine::builder`] and attach it to the router with
/// `.layer(engine)`. Handlers on a router without an engine fall back to a
/// built-in one: in-memory limits and no API keys (so key-protected routes
/// answer 401), with a warning in the log.
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
    inner: Arc<EngineInner>,
}

struct EngineInner {
    limiter: Box<dyn LimiterStore>,
    keys: ApiKeyStore,
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
    keys: ApiKeyStore,
    problems: Vec<String>,
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
    problems: Vec<String>,
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
    /// Starts an engine configuration: in-memory limits, no API keys.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().build().unwrap();
    /// # drop(engine);
    /// ```
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            limiter: None,
            keys: ApiKeyStore::new(),
            problems: Vec::new(),
        }
    }

    /// Runs a handler's checks in declaration order; the first refusal wins.
    pub(crate) async fn enforce(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
    ) -> Result<Admitted, Response> {
        let client_ip = client_ip::peer_ip(parts);
        let mut admitted = Admitted::default();
        for check in policy.checks {
            match check {
                Check::RateLimit { scope, quotas } => {
                    let headers =
                        rate_limit::enforce(&*self.inner.limiter, scope, quotas, client_ip).await?;
                    // With several limits, the one with the fewest requests left is shown.
                    if admitted
                        .rate_limit
                        .is_none_or(|shown| headers.remaining() < shown.remaining())
                    {
                        admitted.rate_limit = Some(headers);
                    }
                }
                Check::ApiKey => {
                    let id = api_key::enforce(&self.inner.keys, policy.handler, parts, client_ip)?;
                    admitted.api_key = Some(id);
                }
            }
        }
        Ok(admitted)
    }

    /// The engine of a request: the attached one, or the built-in fallback.
    pub(crate) fn of(parts: &Parts) -> &Engine {
        match parts.extensions.get::<Engine>() {
            Some(engine) => engine,
            None => fallback(),
        }
    }
}

/// What a handler's checks produced when every one passed.
#[derive(Default)]
pub(crate) struct Admitted {
    pub(crate) rate_limit: Option<RateLimitHeaders>,
    pub(crate) api_key: Option<ApiKeyId>,
}

fn fallback() -> &'static Engine {
    static FALLBACK: OnceLock<Engine> = OnceLock::new();
    FALLBACK.get_or_init(|| {
        tracing::warn!(
            "a policy ran on a router with no policy engine attached; using in-memory limits and no API keys \
             (key-protected routes answer 401). Attach one with \
             `router.layer(policy_runtime::Engine::builder().build()?)`"
        );
        EngineBuilder::new_unchecked()
    })
}

impl EngineBuilder {
    fn new_unchecked() -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                limiter: Box::new(MemoryStore::new()),
                keys: ApiKeyStore::new(),
            }),
        }
    }

    /// Accepts `secret` as an API key named `name`. Only its SHA-256 digest is kept.
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

    /// Accepts the API keys in the process environment: `API_KEYS` as a comma
    /// list (named `API_KEYS#1`, `API_KEYS#2`, ...) and `API_KEY_1`,
    /// `API_KEY_2`, ... (named after their variable).
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
        for (name, secret) in keys_from_vars(vars) {
            self.add_key(&name, secret.as_bytes());
        }
        self
    }

    /// Counts limits in `store` instead of the default [`MemoryStore`].
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

    /// Checks the whole configuration and returns the engine, or every problem found.
    ///
    /// ```
    /// match policy_runtime::Engine::builder().api_key("ci", "").build() {
    ///     Ok(_) => unreachable!(),
    ///     Err(error) => eprintln!("{error}"), // lists every problem, one per line
    /// }
    /// ```
    pub fn build(self) -> Result<Engine, BuildError> {
        if !self.problems.is_empty() {
            return Err(BuildError {
                problems: self.problems,
            });
        }
        Ok(Engine {
            inner: Arc::new(EngineInner {
                limiter: self.limiter.unwrap_or_else(|| Box::new(MemoryStore::new())),
                keys: self.keys,
            }),
        })
    }

    fn add_key(&mut self, name: &str, secret: &[u8]) {
        if let Err(error) = self.keys.insert(name, secret) {
            self.problems.push(error.to_string());
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("keys", &self.inner.keys)
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
