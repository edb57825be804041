//! [`Engine`]: the policy configuration a router runs with.
//!
//! This module owns what an engine holds ([`EngineInner`]: one state value
//! per policy, [`RateLimits`] and [`ApiKeys`], with the client-address
//! resolver, the environment and the error format they share) and the
//! dispatch of a handler's checks, in order, to the policies. Building is
//! [`builder`]'s job, the start-up report [`startup`]'s, the operators'
//! methods [`operators`]'; attaching the engine to a router is
//! [`crate::layer`]'s. The policies own their settings, state and checks
//! (see [`mod@crate::rate_limiting`] and [`crate::api_key`]) and never reach the
//! engine: it hands them what they need.

mod builder;
#[cfg(feature = "jwt")]
mod jwt_settings;
mod operators;
mod startup;

pub use builder::{BuildError, EngineBuilder};

use crate::api_key::ApiKeys;
use crate::api_key::id::ApiKeyId;
use crate::api_key::scope::KeyRequirement;
use crate::client_ip::{self, ClientIpResolver};
use crate::handler_policy::{Check, HandlerPolicy};
use crate::rate_limiting::RateLimits;
use crate::rate_limiting::headers::RateLimitHeaders;
use crate::rate_limiting::key::KeyContext;
use crate::rate_limiting::reservation::{AfterHandler, Reservation};
use crate::request_limits::RequestLimits;
use crate::{Environment, ErrorFormat};
use axum::http::request::Parts;
use axum::response::Response;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

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
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use policy_runtime::{rate_limit, Engine};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[rate_limit("20/hour")]
/// async fn score() -> &'static str {
///     "ok"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().build()?;
///     let app = Router::new()
///         .route("/score", get(score))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let response = app.clone().oneshot(Request::get("/score").body(Body::empty())?).await?;
///     assert_eq!(response.headers()["x-ratelimit-remaining"], "19");
///
///     // Without an engine, the handler refuses to run.
///     let bare = Router::new()
///         .route("/score", get(score))
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let response = bare.oneshot(Request::get("/score").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 500);
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

/// What an engine holds: one state value per policy, and what they share.
pub(crate) struct EngineInner {
    /// The rate limits' store, settings and clock.
    pub(crate) rate_limits: RateLimits,
    /// The API keys in use, the lockout log and its clock.
    pub(crate) api_keys: ApiKeys,
    /// The JWT keys, validation rules and scope claim.
    #[cfg(feature = "jwt")]
    pub(crate) jwt: crate::jwt::Jwt,
    pub(crate) resolver: ClientIpResolver,
    pub(crate) environment: Environment,
    pub(crate) error_format: ErrorFormat,
    /// Whether error responses lose their per-field errors (production with
    /// [`EngineBuilder::field_errors_in_production`]`(false)`).
    pub(crate) hides_field_errors: bool,
    /// The body limit and timeout requests get, unless their handler has its own.
    pub(crate) request_limits: RequestLimits,
    /// The checked CORS settings, for [`Engine::cors`].
    #[cfg(feature = "cors")]
    pub(crate) cors: crate::cors::CorsConfig,
    /// Whether [`Engine::default_limits`] made a layer, and whether the
    /// engine warned that none was made.
    pub(crate) default_limits_layered: std::sync::atomic::AtomicBool,
    pub(crate) unused_defaults_reported: std::sync::atomic::AtomicBool,
}

impl EngineInner {
    /// Whether an error response must be rendered again on its way out: for
    /// the format, the environment, or per-field errors to drop.
    pub(crate) fn rewrites_errors(&self) -> bool {
        self.error_format.rewrites(self.environment) || self.hides_field_errors
    }
}

impl Engine {
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

    /// The shape of the engine's error responses.
    ///
    /// ```
    /// use policy_runtime::{Engine, ErrorFormat};
    ///
    /// let engine = Engine::builder().build().unwrap();
    /// assert!(matches!(engine.error_format(), ErrorFormat::Compact));
    /// ```
    pub fn error_format(&self) -> &ErrorFormat {
        &self.inner.error_format
    }

    /// Runs a handler's checks in declaration order; the first refusal wins.
    pub(crate) fn enforce<'a>(
        &'a self,
        policy: &'static HandlerPolicy,
        parts: &'a Parts,
    ) -> impl Future<Output = Result<Admitted, Response>> + Send + 'a {
        // No `async` wrapper: the checks' future itself, one state machine.
        self.enforce_with(policy, parts, None)
    }

    /// [`Engine::enforce`], with the API key a layer further out admitted.
    /// The conditional limits the request reserved go with the admission; a
    /// request refused after reserving settles them with the refusal.
    pub(crate) async fn enforce_with(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
        known_key: Option<ApiKeyId>,
    ) -> Result<Admitted, Response> {
        // A refusal: marked for the default-limits layer, and what the
        // request reserved settled with it (rare: not on the admitted path).
        macro_rules! refused {
            ($refusal:expr, $reserved:expr) => {{
                let mut refusal = $refusal;
                self.mark_refusal(policy, parts, &mut refusal);
                if !$reserved.is_empty() {
                    Reservation::new(self.clone(), std::mem::take(&mut $reserved))
                        .settle(refusal.status())
                        .await;
                }
                return Err(refusal);
            }};
        }
        let client_ip = self.client_ip(policy, parts);
        let mut admitted = Admitted {
            api_key: known_key,
            ..Admitted::default()
        };
        let mut reserved = Vec::new();
        if self.inner.rate_limits.config.defaults.is_some() {
            match self.defaults_to_add(policy, parts) {
                AddedDefaults::None => {}
                AddedDefaults::Counted(headers) => admitted.show_defaults(headers),
                AddedDefaults::Charge(defaults, scope) => {
                    let inner = &*self.inner;
                    match inner
                        .rate_limits
                        .enforce_defaults(defaults, &scope, client_ip, &inner.resolver)
                        .await
                    {
                        Ok(headers) => admitted.show(headers),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                }
            }
        }
        let mut checks = policy.checks;
        while let Some((first, rest)) = checks.split_first() {
            match first {
                Check::RateLimit(_) => {
                    // Consecutive limits are checked together: all or nothing.
                    let run = run_length(rest);
                    let context = self.key_context(parts, client_ip, &admitted);
                    match self
                        .inner
                        .rate_limits
                        .enforce(&checks[..run], &context, &mut reserved)
                        .await
                    {
                        Ok(headers) => admitted.show(headers),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                    checks = &checks[run..];
                    continue;
                }
                Check::ApiKey(requirement) => {
                    match self
                        .check_key_shared(policy, requirement, parts, client_ip)
                        .await
                    {
                        Ok(id) => admitted.api_key = Some(id),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                }
                Check::ApiKeyOrJwt(requirement)
                    if self.inner.api_keys.shares_lockout() && !presents_jwt(parts) =>
                {
                    match self
                        .check_key_shared(policy, requirement, parts, client_ip)
                        .await
                    {
                        Ok(id) => admitted.api_key = Some(id),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                }
                #[cfg(feature = "jwt")]
                Check::Jwt(requirement) | Check::ApiKeyOrJwt(requirement)
                    if self.inner.api_keys.shares_lockout()
                        && (matches!(first, Check::Jwt(_)) || presents_jwt(parts)) =>
                {
                    self.inner.jwt.refresh_if_due(parts).await;
                    if let Err(refusal) = self
                        .check_jwt_shared(policy, requirement, parts, client_ip, &mut admitted)
                        .await
                    {
                        refused!(refusal, reserved);
                    }
                }
                Check::Jwt(requirement) => {
                    #[cfg(feature = "jwt")]
                    self.inner.jwt.refresh_if_due(parts).await;
                    if let Err(refusal) =
                        self.check_jwt(policy, requirement, parts, client_ip, &mut admitted)
                    {
                        refused!(refusal, reserved);
                    }
                }
                Check::ApiKeyOrJwt(requirement) => {
                    #[cfg(feature = "jwt")]
                    if crate::jwt::presents_jwt(&parts.headers) {
                        self.inner.jwt.refresh_if_due(parts).await;
                    }
                    if let Err(refusal) =
                        self.check_key_or_jwt(policy, requirement, parts, client_ip, &mut admitted)
                    {
                        refused!(refusal, reserved);
                    }
                }
                Check::Exempt => {}
            }
            checks = rest;
        }
        if !reserved.is_empty() {
            admitted.after.get_or_insert_default().reservation =
                Some(Reservation::new(self.clone(), reserved));
        }
        Ok(admitted)
    }

    /// Runs a handler's checks to the end before returning, for a store that
    /// answers at once ([`LimiterStore::answers_at_once`](crate::LimiterStore::answers_at_once)):
    /// the same checks as [`Engine::enforce`], with no future made for them.
    pub(crate) fn enforce_now(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
    ) -> Result<Admitted, Response> {
        // See `enforce_with`.
        macro_rules! refused {
            ($refusal:expr, $reserved:expr) => {{
                let mut refusal = $refusal;
                self.mark_refusal(policy, parts, &mut refusal);
                if !$reserved.is_empty() {
                    Reservation::new(self.clone(), std::mem::take(&mut $reserved))
                        .settle_now(refusal.status());
                }
                return Err(refusal);
            }};
        }
        let client_ip = self.client_ip(policy, parts);
        let mut admitted = Admitted::default();
        let mut reserved = Vec::new();
        if self.inner.rate_limits.config.defaults.is_some() {
            match self.defaults_to_add(policy, parts) {
                AddedDefaults::None => {}
                AddedDefaults::Counted(headers) => admitted.show_defaults(headers),
                AddedDefaults::Charge(defaults, scope) => {
                    let inner = &*self.inner;
                    match inner.rate_limits.enforce_defaults_now(
                        defaults,
                        &scope,
                        client_ip,
                        &inner.resolver,
                    ) {
                        Ok(headers) => admitted.show(headers),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                }
            }
        }
        let mut checks = policy.checks;
        while let Some((first, rest)) = checks.split_first() {
            match first {
                Check::RateLimit(_) => {
                    // Consecutive limits are checked together: all or nothing.
                    let run = run_length(rest);
                    let context = self.key_context(parts, client_ip, &admitted);
                    match self.inner.rate_limits.enforce_now(
                        &checks[..run],
                        &context,
                        &mut reserved,
                    ) {
                        Ok(headers) => admitted.show(headers),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                    checks = &checks[run..];
                    continue;
                }
                Check::ApiKey(requirement) => {
                    match self.check_key(policy, requirement, parts, client_ip) {
                        Ok(id) => admitted.api_key = Some(id),
                        Err(refusal) => refused!(refusal, reserved),
                    }
                }
                Check::Jwt(requirement) => {
                    if let Err(refusal) =
                        self.check_jwt(policy, requirement, parts, client_ip, &mut admitted)
                    {
                        refused!(refusal, reserved);
                    }
                }
                Check::ApiKeyOrJwt(requirement) => {
                    if let Err(refusal) =
                        self.check_key_or_jwt(policy, requirement, parts, client_ip, &mut admitted)
                    {
                        refused!(refusal, reserved);
                    }
                }
                Check::Exempt => {}
            }
            checks = rest;
        }
        if !reserved.is_empty() {
            admitted.after.get_or_insert_default().reservation =
                Some(Reservation::new(self.clone(), reserved));
        }
        Ok(admitted)
    }

    /// The client's address after trusted-proxy resolution, for every check
    /// of a request; first, the start-up rule on default limits.
    fn client_ip(&self, policy: &'static HandlerPolicy, parts: &Parts) -> Option<IpAddr> {
        let inner = &*self.inner;
        if inner.rate_limits.config.defaults.is_some() {
            warn_if_under_default_limits(policy, parts);
        }
        client_ip::peer_ip(parts).map(|peer| inner.resolver.resolve(peer, &parts.headers))
    }

    /// A refusal of a handler with `add_to_defaults` under the default-limits
    /// layer keeps its own headers: the layer's would say the request may go on.
    fn mark_refusal(&self, policy: &'static HandlerPolicy, parts: &Parts, refusal: &mut Response) {
        if self.inner.rate_limits.config.defaults.is_some()
            && adds_to_defaults(policy)
            && parts.extensions.get::<DefaultLimitsCounted>().is_some()
        {
            refusal.extensions_mut().insert(DefaultsShown);
        }
    }

    /// What a handler with `add_to_defaults` does about the engine's
    /// default limits: show what the default-limits layer counted, or, when
    /// no layer counted the request, charge them itself in the route's
    /// default scope, wherever its route is.
    fn defaults_to_add(&self, policy: &'static HandlerPolicy, parts: &Parts) -> AddedDefaults<'_> {
        let Some(defaults) = self.inner.rate_limits.config.defaults.as_deref() else {
            return AddedDefaults::None;
        };
        if !adds_to_defaults(policy) {
            return AddedDefaults::None;
        }
        if let Some(counted) = parts.extensions.get::<DefaultLimitsCounted>() {
            return AddedDefaults::Counted(counted.0);
        }
        let scope = match parts.extensions.get::<axum::extract::MatchedPath>() {
            Some(route) => format!("default:{}", route.as_str()),
            None => "default:<unmatched>".to_owned(),
        };
        AddedDefaults::Charge(defaults, scope)
    }

    fn key_context<'r>(
        &'r self,
        parts: &'r Parts,
        client_ip: Option<IpAddr>,
        admitted: &'r Admitted,
    ) -> KeyContext<'r> {
        KeyContext {
            parts,
            client_ip,
            api_key: admitted.api_key.as_ref(),
            #[cfg(feature = "jwt")]
            claims: admitted
                .claims
                .as_ref()
                .or_else(|| parts.extensions.get::<crate::jwt::claims::VerifiedClaims>()),
            resolver: &self.inner.resolver,
            renders_errors: self.inner.rewrites_errors(),
        }
    }

    fn check_key(
        &self,
        policy: &'static HandlerPolicy,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
    ) -> Result<ApiKeyId, Response> {
        let inner = &*self.inner;
        inner.api_keys.enforce(
            policy.handler,
            requirement,
            parts,
            client_ip,
            &inner.resolver,
        )
    }

    /// [`Engine::check_key`] when the lockout is shared between instances:
    /// a failed attempt is counted in the store.
    async fn check_key_shared(
        &self,
        policy: &'static HandlerPolicy,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
    ) -> Result<ApiKeyId, Response> {
        let inner = &*self.inner;
        if !inner.api_keys.shares_lockout() {
            return self.check_key(policy, requirement, parts, client_ip);
        }
        inner
            .api_keys
            .enforce_shared(
                policy.handler,
                requirement,
                parts,
                client_ip,
                &inner.resolver,
            )
            .await
    }

    /// One `#[require_jwt]` check; the claims go to the handler.
    fn check_jwt(
        &self,
        policy: &'static HandlerPolicy,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        admitted: &mut Admitted,
    ) -> Result<(), Response> {
        #[cfg(feature = "jwt")]
        {
            let inner = &*self.inner;
            let claims = inner.jwt.enforce(
                policy.handler,
                requirement,
                parts,
                client_ip,
                &inner.api_keys,
                &inner.resolver,
            )?;
            admitted.claims = Some(claims);
            Ok(())
        }
        #[cfg(not(feature = "jwt"))]
        {
            let _ = (requirement, parts, client_ip, admitted);
            Err(jwt_feature_off(policy))
        }
    }

    /// [`Engine::check_jwt`] when the lockout is shared between instances:
    /// a failure is counted in the store, as a bad API key is.
    #[cfg(feature = "jwt")]
    async fn check_jwt_shared(
        &self,
        policy: &'static HandlerPolicy,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        admitted: &mut Admitted,
    ) -> Result<(), Response> {
        let inner = &*self.inner;
        let claims = inner
            .jwt
            .enforce_shared(
                policy.handler,
                requirement,
                parts,
                client_ip,
                &inner.api_keys,
                &inner.resolver,
            )
            .await?;
        admitted.claims = Some(claims);
        Ok(())
    }

    /// One `#[require_jwt(or_api_key)]` check: a JWT when the request
    /// presents one, else an API key.
    fn check_key_or_jwt(
        &self,
        policy: &'static HandlerPolicy,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        admitted: &mut Admitted,
    ) -> Result<(), Response> {
        #[cfg(feature = "jwt")]
        if crate::jwt::presents_jwt(&parts.headers) {
            return self.check_jwt(policy, requirement, parts, client_ip, admitted);
        }
        let id = self.check_key(policy, requirement, parts, client_ip)?;
        admitted.api_key = Some(id);
        Ok(())
    }

    /// Whether every check can run to the end without waiting: the store
    /// answers at once.
    pub(crate) fn answers_at_once(&self) -> bool {
        self.inner.rate_limits.store.answers_at_once()
    }

    /// Whether this request's checks can run without waiting: the store
    /// answers at once and no JWT check needs to fetch keys first.
    pub(crate) fn answers_at_once_for(
        &self,
        policy: &'static HandlerPolicy,
        parts: &Parts,
    ) -> bool {
        if !self.answers_at_once() {
            return false;
        }
        #[cfg(feature = "jwt")]
        if policy
            .checks
            .iter()
            .any(|check| matches!(check, Check::Jwt(_) | Check::ApiKeyOrJwt(_)))
            && self.inner.jwt.refresh_due(parts)
        {
            return false;
        }
        let _ = (policy, parts);
        true
    }
}

/// The refusal of a JWT check in a build without the `jwt` feature (the
/// engine's build refuses such handlers; a layer cannot be made without it).
#[cfg(not(feature = "jwt"))]
fn jwt_feature_off(policy: &'static HandlerPolicy) -> Response {
    tracing::error!(
        policy = "jwt",
        scope = policy.handler,
        outcome = "error",
        "a JWT check ran, but policy-runtime was built without its `jwt` feature, so the request was refused; \
         enable it: `policy-runtime = {{ features = [\"jwt\"] }}`"
    );
    crate::ErrorBody::internal_error()
}

/// Whether the request presents a JWT (never, without the `jwt` feature).
fn presents_jwt(parts: &Parts) -> bool {
    #[cfg(feature = "jwt")]
    return crate::jwt::presents_jwt(&parts.headers);
    #[cfg(not(feature = "jwt"))]
    {
        let _ = parts;
        false
    }
}

/// Put on a request by [`crate::DefaultLimits`] once the default limits
/// counted it.
#[derive(Clone, Copy)]
pub(crate) struct DefaultLimitsCounted(pub(crate) Option<RateLimitHeaders>);

/// Put on a response by a handler with `add_to_defaults` whose headers show
/// the default limits' decision with its own: the default-limits layer then
/// leaves them as they are.
#[derive(Clone, Copy)]
pub(crate) struct DefaultsShown;

/// See [`Engine::defaults_to_add`].
enum AddedDefaults<'e> {
    None,
    Counted(Option<RateLimitHeaders>),
    Charge(&'e [crate::Quota], String),
}

/// A handler with its own limit (or `exempt`) under `engine.default_limits()`
/// was charged the defaults too: the routes were composed against the rules.
/// Logged once per handler, as an error naming the fix.
fn warn_if_under_default_limits(policy: &'static HandlerPolicy, parts: &Parts) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static REPORTED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let own_limit = policy
        .checks
        .iter()
        .any(|check| matches!(check, Check::RateLimit(_) | Check::Exempt));
    if !own_limit
        || parts.extensions.get::<DefaultLimitsCounted>().is_none()
        || adds_to_defaults(policy)
    {
        return;
    }
    let mut reported = REPORTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if reported
        .get_or_insert_with(HashSet::new)
        .insert(policy.handler)
    {
        tracing::error!(
            handler = policy.handler,
            "a handler with a rate limit of its own (or `exempt`) runs under `engine.default_limits()`, so its \
             requests are charged the default limits too; add its route after the `route_layer(engine.default_limits())` \
             call, which wraps only the routes added before it"
        );
    }
}

/// Whether a handler's own limit applies on top of the default limits
/// (`#[rate_limit(.., add_to_defaults)]`) instead of replacing them.
pub(crate) fn adds_to_defaults(policy: &HandlerPolicy) -> bool {
    policy
        .checks
        .iter()
        .any(|check| matches!(check, Check::RateLimit(spec) if spec.add_to_defaults))
}

/// What a handler's checks produced when every one passed.
#[derive(Default)]
pub(crate) struct Admitted {
    pub(crate) rate_limit: Option<RateLimitHeaders>,
    /// What the response has to settle: conditional limits counted before
    /// the handler, headers that weigh the default-limits layer's decision.
    pub(crate) after: Option<Box<AfterHandler>>,
    pub(crate) api_key: Option<ApiKeyId>,
    /// The claims of the JWT that admitted the request.
    #[cfg(feature = "jwt")]
    pub(crate) claims: Option<crate::jwt::claims::VerifiedClaims>,
}

impl Admitted {
    /// The decision of the default-limits layer, weighed with the handler's own.
    fn show_defaults(&mut self, headers: Option<RateLimitHeaders>) {
        self.after.get_or_insert_default().shows_defaults = true;
        self.show(headers);
    }

    /// With several limits, the one with the fewest requests left is shown.
    fn show(&mut self, headers: Option<RateLimitHeaders>) {
        if let Some(headers) = headers {
            if self
                .rate_limit
                .as_ref()
                .is_none_or(|shown| headers.remaining() < shown.remaining())
            {
                self.rate_limit = Some(headers);
            }
        }
    }
}

/// How many checks from `rest`'s predecessor on are rate limits in a row.
fn run_length(rest: &[Check]) -> usize {
    1 + rest
        .iter()
        .take_while(|check| matches!(check, Check::RateLimit(_)))
        .count()
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("keys", &**self.inner.api_keys.keys.load())
            .field("resolver", &self.inner.resolver)
            .finish_non_exhaustive()
    }
}
