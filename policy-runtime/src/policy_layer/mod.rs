//! The policies without macros: [`RateLimit`] and [`RequireApiKey`] as tower
//! layers, for a group of routes (`Router::route_layer`), a closure handler
//! or a service such as `ServeDir`.
//!
//! This module owns turning such a layer's settings into the same
//! [`HandlerPolicy`] an attribute expands into, and running it through the
//! same [`Engine::enforce`] the attributes' guard runs: one code path, one
//! set of answers, logs and headers. Each layer's policy is made once, when
//! the layer is built, and lives as long as the program (a layer is
//! configuration, built a bounded number of times).

#[cfg(feature = "jwt")]
pub(crate) mod jwt;

use crate::api_key::scope::{KeyRequirement, scope_name_problem};
use crate::forward::{forward, take_ready};
use crate::guard::no_engine;
use crate::handler_policy::{Check, HandlerPolicy, register_layered};
use crate::rate_limiting::spec::{
    CountWhen, CustomKey, KeySource, Limits, OnMissingKey, RateLimitSpec,
};
use crate::{ApiKeyId, BuildError, Engine, Quota};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// `#[rate_limit]` as a layer: limits every request to the routes or the
/// service it wraps, with the engine of the request ([`Engine`] layered
/// outside it), exactly as the attribute does.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{routing::{get, post}, Router};
/// use policy_runtime::{Engine, RateLimit};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let uploads = RateLimit::new("uploads", "20/hour")?;
///     let per_user = RateLimit::builder("reports", "100/minute")
///         .per_header("x-user-id")
///         .burst(200)
///         .build()?;
///     let engine = Engine::builder().build()?;
///     let app = Router::new()
///         .route("/upload", post(|| async { "stored" }))
///         .route("/upload/{id}", post(|| async { "stored" }))
///         .route_layer(uploads)                 // the two routes above share one count
///         .route("/report", get(|| async { "report" }).route_layer(per_user))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///
///     app.clone().oneshot(Request::post("/upload").body(Body::empty())?).await?;
///     let second = app.clone().oneshot(Request::post("/upload/7").body(Body::empty())?).await?;
///     assert_eq!(second.headers()["x-ratelimit-remaining"], "18");
///     // Without its header, a per-header limit answers 400.
///     let report = app.oneshot(Request::get("/report").body(Body::empty())?).await?;
///     assert_eq!(report.status(), 400);
///     Ok(())
/// }
/// ```
///
/// The scope names the layer's state, as `scope = "..."` does on the
/// attribute: in logs, metrics, [`Engine::limit_state`] and Redis keys. A
/// scope that a handler also uses must have the same limits.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    policy: &'static HandlerPolicy,
}

/// Builds a [`RateLimit`]: the key, burst, cost and strictness of the
/// attribute's arguments. Every problem is reported by [`RateLimitBuilder::build`].
#[derive(Debug)]
#[must_use = "call `.build()` to get the layer"]
pub struct RateLimitBuilder {
    scope: String,
    limits: Result<Vec<Quota>, String>,
    key: Key,
    on_missing: OnMissingKey,
    burst: Option<u32>,
    cost: u32,
    strict: bool,
    sliding: bool,
    count: CountWhen,
}

// The variants mirror `KeySource`'s and the attribute's `key = api_key`.
#[allow(clippy::enum_variant_names)]
#[derive(Debug)]
enum Key {
    Ip,
    ApiKey,
    Global,
    Header(String),
    Custom(CustomKey),
    #[cfg(feature = "jwt")]
    Subject,
    #[cfg(feature = "jwt")]
    Claim(String),
}

impl RateLimit {
    /// What the layer enforces: the policy its service runs, which the
    /// OpenAPI document reads (feature `utoipa`).
    #[cfg_attr(not(feature = "utoipa"), allow(dead_code))]
    pub(crate) fn policy(&self) -> &'static HandlerPolicy {
        self.policy
    }

    /// A limit per client IP in `scope`, from a limit string such as
    /// `"20/hour"` or `"200/day; 50/hour"` (as the attribute takes it).
    ///
    /// ```rust,standalone_crate
    /// let limit = policy_runtime::RateLimit::new("search", "10/minute")?;
    /// assert!(policy_runtime::RateLimit::new("search", "10/fortnight").is_err());
    /// # drop(limit);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn new(scope: &str, limits: &str) -> Result<Self, BuildError> {
        Self::builder(scope, limits).build()
    }

    /// Starts a limit with more settings than [`RateLimit::new`]'s.
    ///
    /// ```rust,standalone_crate
    /// let limit = policy_runtime::RateLimit::builder("exports", "5/hour")
    ///     .per_api_key()
    ///     .strict()
    ///     .build();
    /// assert!(limit.is_ok());
    ///
    /// // Every problem at once: `strict` with `burst`, and a cost over the burst.
    /// let error = policy_runtime::RateLimit::builder("imports", "5/hour")
    ///     .strict()
    ///     .burst(10)
    ///     .cost(11)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(error.problems().len(), 2);
    /// ```
    pub fn builder(scope: &str, limits: &str) -> RateLimitBuilder {
        RateLimitBuilder {
            scope: scope.to_owned(),
            limits: Quota::parse_list(limits).map_err(|error| error.to_string()),
            key: Key::Ip,
            on_missing: OnMissingKey::Reject,
            burst: None,
            cost: 1,
            strict: false,
            sliding: false,
            count: CountWhen::Always,
        }
    }
}

impl RateLimitBuilder {
    /// Counts per client IP (the default).
    pub fn per_ip(mut self) -> Self {
        self.key = Key::Ip;
        self
    }

    /// Counts per API key name: the request must have been admitted by a
    /// [`RequireApiKey`] layered outside this one (a request without a key
    /// gets the 400 `MISSING_RATE_LIMIT_KEY`, or is counted by IP after
    /// [`RateLimitBuilder::on_missing_ip`]).
    pub fn per_api_key(mut self) -> Self {
        self.key = Key::ApiKey;
        self
    }

    /// Counts per JWT subject (`key = subject`): the `sub` of the token a
    /// [`RequireJwt`](crate::RequireJwt) layered outside this one admitted,
    /// or the API key's name when a key admitted the request (`or_api_key`).
    /// Without either, the 400 `MISSING_RATE_LIMIT_KEY` (or the IP after
    /// [`RateLimitBuilder::on_missing_ip`]).
    #[cfg(feature = "jwt")]
    pub fn per_subject(mut self) -> Self {
        self.key = Key::Subject;
        self
    }

    /// Counts per value of one claim of the admitting JWT
    /// (`key = claim("tenant_id")`): a string as is, a number as written.
    /// A token without it gets the 400 `MISSING_RATE_LIMIT_KEY` naming the
    /// claim (or is counted by IP after [`RateLimitBuilder::on_missing_ip`]).
    #[cfg(feature = "jwt")]
    pub fn per_claim(mut self, name: &str) -> Self {
        self.key = Key::Claim(name.to_owned());
        self
    }

    /// One count for every client.
    pub fn global(mut self) -> Self {
        self.key = Key::Global;
        self
    }

    /// Counts per value of a request header, such as `x-user-id`.
    pub fn per_header(mut self, name: &str) -> Self {
        self.key = Key::Header(name.to_ascii_lowercase());
        self
    }

    /// Counts per key of a function, as `key = path::to::fn` does.
    pub fn per_key_fn(mut self, key: CustomKey) -> Self {
        self.key = Key::Custom(key);
        self
    }

    /// A request whose header or API key is missing is counted by its
    /// client IP instead of refused with 400.
    pub fn on_missing_ip(mut self) -> Self {
        self.on_missing = OnMissingKey::Ip;
        self
    }

    /// Lets `burst` requests through at once, at the same rate.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// One request counts as `cost`.
    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    /// At most the count in any window of the period.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// About the count in any window of the period, by a sliding window
    /// counter: two counters per client whatever the count (see
    /// [`Quota::sliding`]). Takes no burst and excludes
    /// [`RateLimitBuilder::strict`].
    ///
    /// ```rust,standalone_crate
    /// let limit = policy_runtime::RateLimit::builder("exports", "10000/hour").sliding().build();
    /// assert!(limit.is_ok());
    /// let both = policy_runtime::RateLimit::builder("exports", "10/hour").sliding().strict().build();
    /// assert!(both.is_err());
    /// ```
    pub fn sliding(mut self) -> Self {
        self.sliding = true;
        self
    }

    /// Counts only the requests whose response is a failure, a status of 400
    /// or more (`count = failures` on the attribute), such as failed logins.
    /// A client over the limit is still refused before the service runs.
    /// Each request reserves its cost before the service runs and gives it
    /// back when the response is not a failure, so concurrent requests
    /// never count past the limit.
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::{Request, StatusCode}};
    /// use axum::{routing::post, Router};
    /// use policy_runtime::{Engine, RateLimit};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let failed_logins = RateLimit::builder("login", "2/hour").count_failures().build()?;
    ///     let app = Router::new()
    ///         .route("/login", post(|body: String| async move {
    ///             if body == "right" { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
    ///         }))
    ///         .route_layer(failed_logins)
    ///         .layer(Engine::builder().build()?)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let login = |password: &'static str| {
    ///         let app = app.clone();
    ///         async move {
    ///             let request = Request::post("/login").body(Body::from(password)).unwrap();
    ///             app.oneshot(request).await.unwrap().status().as_u16()
    ///         }
    ///     };
    ///     assert_eq!(login("right").await, 200); // not counted
    ///     assert_eq!(login("wrong").await, 401);
    ///     assert_eq!(login("wrong").await, 401);
    ///     assert_eq!(login("right").await, 429); // two failures: refused before the handler
    ///     Ok(())
    /// }
    /// ```
    pub fn count_failures(mut self) -> Self {
        self.count = CountWhen::Failures;
        self
    }

    /// Counts only the requests whose response status `condition` accepts
    /// (`count = responses(path::to::fn)` on the attribute); otherwise as
    /// [`RateLimitBuilder::count_failures`].
    ///
    /// ```rust,standalone_crate
    /// use axum::http::StatusCode;
    ///
    /// fn server_errors(status: StatusCode) -> bool {
    ///     status.is_server_error()
    /// }
    ///
    /// let limit = policy_runtime::RateLimit::builder("upstream", "10/minute")
    ///     .count_responses(server_errors)
    ///     .build();
    /// assert!(limit.is_ok());
    /// ```
    pub fn count_responses(mut self, condition: fn(StatusCode) -> bool) -> Self {
        self.count = CountWhen::Responses(condition);
        self
    }

    /// Checks the settings and returns the layer, or every problem found:
    /// a limit string that does not parse, an empty scope or one beginning
    /// with `default:`, an invalid header name, `burst` with `strict`, a zero
    /// burst or cost, a burst out of range (see [`Quota::validate`]), or a
    /// cost larger than a quota's burst.
    pub fn build(self) -> Result<RateLimit, BuildError> {
        let mut problems = Vec::new();
        let scope = self.scope.trim();
        if scope.is_empty() {
            problems.push("rate-limit layer: the scope is empty; name it, as in `RateLimit::new(\"search\", ..)`".to_owned());
        } else if scope.starts_with("default:") {
            problems.push(format!("rate-limit layer `{scope}`: scope names beginning with `default:` belong to the engine's default limits"));
        }
        let mut quotas = match self.limits {
            Ok(quotas) => quotas,
            Err(error) => {
                problems.push(format!("rate-limit layer `{scope}`: {error}"));
                Vec::new()
            }
        };
        if self.strict && self.burst.is_some() {
            problems.push(format!(
                "rate-limit layer `{scope}`: `strict` admits at most the count in any window, so it takes no burst"
            ));
        }
        if self.sliding && self.strict {
            problems.push(format!(
                "rate-limit layer `{scope}`: `sliding` and `strict` are two ways of counting; keep one"
            ));
        }
        if self.sliding && self.burst.is_some() {
            problems.push(format!(
                "rate-limit layer `{scope}`: a sliding window counter takes no burst"
            ));
        }
        if self.burst == Some(0) || self.cost == 0 {
            problems.push(format!(
                "rate-limit layer `{scope}`: burst and cost must be at least 1"
            ));
        }
        for quota in &mut quotas {
            if let Some(burst) = self.burst {
                *quota = quota.with_burst(burst);
            }
            if self.strict {
                *quota = quota.strict();
            }
            if self.sliding {
                *quota = quota.sliding();
            }
            // A burst from the builder gets the same range check as one
            // from a limit string.
            if let Err(error) = quota.validate() {
                problems.push(format!("rate-limit layer `{scope}`: {error}"));
            }
            if self.cost > quota.burst() {
                problems.push(format!(
                    "rate-limit layer `{scope}`: a cost of {} is more than the {} requests `{quota}` admits at once, so no request could pass",
                    self.cost,
                    quota.burst()
                ));
            }
        }
        let key = match self.key {
            Key::Ip => KeySource::Ip,
            Key::ApiKey => KeySource::ApiKey,
            Key::Global => KeySource::Global,
            Key::Custom(key) => KeySource::Custom(key),
            #[cfg(feature = "jwt")]
            Key::Subject => KeySource::Subject,
            #[cfg(feature = "jwt")]
            Key::Claim(name) => {
                if name.is_empty() {
                    problems.push(format!(
                        "rate-limit layer `{scope}`: the claim's name is empty"
                    ));
                }
                KeySource::Claim(leak_str(&name))
            }
            Key::Header(name) => {
                if HeaderName::from_bytes(name.as_bytes()).is_err() || name.is_empty() {
                    problems.push(format!(
                        "rate-limit layer `{scope}`: `{name}` is not a valid header name"
                    ));
                }
                KeySource::Header(leak_str(&name))
            }
        };
        if let Some(other) = scope_taken_with_other_limits(scope, &quotas) {
            problems.push(format!(
                "rate-limit layer `{scope}`: the scope already has other limits (in `{other}`); \
                 give them the same limits or different scopes"
            ));
        }
        if !problems.is_empty() {
            return Err(BuildError { problems });
        }
        let scope = leak_str(scope);
        let spec = RateLimitSpec {
            scope,
            limits: Limits::Fixed(Box::leak(quotas.into_boxed_slice())),
            key,
            on_missing: self.on_missing,
            cost: self.cost,
            count: self.count,
            add_to_defaults: false,
        };
        Ok(RateLimit {
            policy: leak_policy(scope, Check::RateLimit(spec)),
        })
    }
}

/// A handler or an earlier layer that gives `scope` other limits than
/// `quotas`: one scope keeps one state, laid out for one set of limits.
/// (Named policies are resolved by an engine, so they are not compared here.)
fn scope_taken_with_other_limits(scope: &str, quotas: &[Quota]) -> Option<&'static str> {
    crate::handler_policy::every_policy()
        .into_iter()
        .find_map(|policy| {
            policy.checks.iter().find_map(|check| match check {
                Check::RateLimit(RateLimitSpec {
                    scope: taken,
                    limits: Limits::Fixed(limits),
                    ..
                }) if *taken == scope && *limits != quotas => Some(policy.handler),
                _ => None,
            })
        })
}

/// `#[require_api_key]` as a layer: requires a valid key (and scopes) for
/// every request to the routes or the service it wraps, with the engine of
/// the request, exactly as the attribute does. The handler behind it can
/// take [`ApiKeyId`].
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{routing::get, Router};
/// use policy_runtime::{ApiKeyId, Engine, RequireApiKey};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().api_key("ops", "ops-team-key-0123456789").build()?;
///     let app = Router::new()
///         .route("/admin/who", get(|key: ApiKeyId| async move { key.name().to_owned() }))
///         .route_layer(RequireApiKey::new())
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///
///     let request = Request::get("/admin/who").header("x-api-key", "ops-team-key-0123456789");
///     let response = app.clone().oneshot(request.body(Body::empty())?).await?;
///     assert_eq!(axum::body::to_bytes(response.into_body(), 1024).await?, "ops");
///     let without = app.oneshot(Request::get("/admin/who").body(Body::empty())?).await?;
///     assert_eq!(without.status(), 401);
///     Ok(())
/// }
/// ```
///
/// Keys, scopes, lockout, logs and the 401/403/429 answers are those of
/// [`crate::require_api_key`]. The engine's start-up check that a key is
/// configured sees only the attributes; a layer on an engine with no key
/// answers 401 to every request.
#[derive(Clone, Copy, Debug)]
pub struct RequireApiKey {
    policy: &'static HandlerPolicy,
}

impl Default for RequireApiKey {
    fn default() -> Self {
        Self::new()
    }
}

impl RequireApiKey {
    /// What the layer enforces: the policy its service runs, which the
    /// OpenAPI document reads (feature `utoipa`).
    #[cfg_attr(not(feature = "utoipa"), allow(dead_code))]
    pub(crate) fn policy(&self) -> &'static HandlerPolicy {
        self.policy
    }

    /// Any valid key.
    ///
    /// ```rust,standalone_crate
    /// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
    /// use axum::{routing::get, Router};
    /// use policy_runtime::{Engine, RequireApiKey};
    /// use std::net::SocketAddr;
    /// use tower::ServiceExt;
    ///
    /// #[tokio::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let engine = Engine::builder().api_key("ops", "ops-team-key-0123456789").build()?;
    ///     let app = Router::new()
    ///         .route("/admin", get(|| async { "admin" }))
    ///         .route_layer(RequireApiKey::new())
    ///         .layer(engine)
    ///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    ///     let request = Request::get("/admin").header("authorization", "Bearer ops-team-key-0123456789");
    ///     assert_eq!(app.oneshot(request.body(Body::empty())?).await?.status(), 200);
    ///     Ok(())
    /// }
    /// ```
    pub fn new() -> Self {
        use std::sync::OnceLock;
        static ANY: OnceLock<&'static HandlerPolicy> = OnceLock::new();
        RequireApiKey {
            policy: ANY
                .get_or_init(|| leak_policy("require_api_key", Check::ApiKey(KeyRequirement::Any))),
        }
    }

    /// A valid key holding `scope` (else 403).
    ///
    /// ```rust,standalone_crate
    /// let layer = policy_runtime::RequireApiKey::scope("admin")?;
    /// assert!(policy_runtime::RequireApiKey::scope("has space").is_err());
    /// # drop(layer);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn scope(scope: &str) -> Result<Self, BuildError> {
        check_scopes(&[scope])?;
        Ok(Self::requiring(KeyRequirement::Scope(leak_str(scope))))
    }

    /// A valid key holding at least one of `scopes`.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::RequireApiKey;
    ///
    /// assert!(RequireApiKey::any_of(["read", "write"]).is_ok());
    /// assert!(RequireApiKey::any_of(Vec::<&str>::new()).is_err()); // at least one scope
    /// ```
    pub fn any_of<I, S>(scopes: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes = leak_scopes(scopes)?;
        Ok(Self::requiring(KeyRequirement::AnyOf(scopes)))
    }

    /// A valid key holding every one of `scopes`.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::RequireApiKey;
    ///
    /// assert!(RequireApiKey::all_of(["read", "write"]).is_ok());
    /// assert!(RequireApiKey::all_of(["read", "read"]).is_err()); // a scope listed twice
    /// ```
    pub fn all_of<I, S>(scopes: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scopes = leak_scopes(scopes)?;
        Ok(Self::requiring(KeyRequirement::AllOf(scopes)))
    }

    fn requiring(requirement: KeyRequirement) -> Self {
        RequireApiKey {
            policy: leak_policy("require_api_key", Check::ApiKey(requirement)),
        }
    }
}

pub(crate) fn check_scopes(scopes: &[&str]) -> Result<(), BuildError> {
    let mut problems: Vec<String> = scopes
        .iter()
        .filter_map(|scope| {
            scope_name_problem(scope).map(|problem| format!("API-key scope `{scope}`: {problem}"))
        })
        .collect();
    if scopes.is_empty() {
        problems.push("an API-key layer needs at least one scope".to_owned());
    }
    for (at, scope) in scopes.iter().enumerate() {
        if scopes[..at].contains(scope) {
            problems.push(format!("API-key scope `{scope}` is listed twice"));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(BuildError { problems }),
    }
}

pub(crate) fn leak_scopes<I, S>(scopes: I) -> Result<&'static [&'static str], BuildError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let owned: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_owned()).collect();
    let borrowed: Vec<&str> = owned.iter().map(String::as_str).collect();
    check_scopes(&borrowed)?;
    let leaked: Vec<&'static str> = owned.iter().map(|scope| leak_str(scope)).collect();
    Ok(Box::leak(leaked.into_boxed_slice()))
}

/// Layer settings live as long as the program, as a handler's policy does
/// (it is a `static`): the generated and the layered policies are one type.
pub(crate) fn leak_str(text: &str) -> &'static str {
    Box::leak(Box::from(text))
}

pub(crate) fn leak_policy(name: &'static str, check: Check) -> &'static HandlerPolicy {
    let policy = Box::leak(Box::new(HandlerPolicy {
        handler: name,
        checks: Box::leak(Box::new([check])),
        takes_key_id: true,
        body_limit: None,
        timeout: None,
    }));
    register_layered(policy);
    policy
}

impl<S> Layer<S> for RateLimit {
    type Service = WithPolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithPolicy {
            inner,
            policy: self.policy,
        }
    }
}

impl<S> Layer<S> for RequireApiKey {
    type Service = WithPolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithPolicy {
            inner,
            policy: self.policy,
        }
    }
}

/// The service of a [`RateLimit`] or [`RequireApiKey`] layer.
#[derive(Clone)]
pub struct WithPolicy<S> {
    pub(crate) inner: S,
    pub(crate) policy: &'static HandlerPolicy,
}

impl<S> std::fmt::Debug for WithPolicy<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithPolicy")
            .field("policy", &self.policy.handler)
            .finish_non_exhaustive()
    }
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for WithPolicy<S>
where
    S: Service<Request<B>, Response = axum::http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxedResponse<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = take_ready(&mut self.inner);
        let policy = self.policy;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let Some(engine) = parts.extensions.get::<Engine>().cloned() else {
                return Ok(no_engine(policy));
            };
            // A key admitted by a layer further out is known to this one.
            let known_key = parts.extensions.get::<ApiKeyId>().cloned();
            let admitted = match engine.enforce_with(policy, &parts, known_key).await {
                Ok(admitted) => admitted,
                Err(refusal) => return Ok(refusal),
            };
            if let Some(id) = admitted.api_key {
                parts.extensions.insert(id);
            }
            #[cfg(feature = "jwt")]
            if let Some(claims) = admitted.claims {
                parts.extensions.insert(claims);
            }
            let request = Request::from_parts(parts, body);
            let Some(reservation) = admitted.after.and_then(|after| after.reservation) else {
                return forward(inner, request, admitted.rate_limit.as_ref()).await;
            };
            // A conditional limit: the response says whether the request counts.
            let mut response = forward(inner, request, None).await?;
            let back = reservation.settle(response.status()).await;
            if let Some(mut headers) = admitted.rate_limit {
                headers.give_back(back);
                headers.apply(response.headers_mut());
            }
            Ok(response)
        })
    }
}
