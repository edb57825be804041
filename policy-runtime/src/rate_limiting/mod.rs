//! The rate-limit policy: key the request, ask the store, answer 429 or go on.
//!
//! This module owns an engine's rate-limit state ([`RateLimits`]: the store,
//! the settings, the clock), the decision flow of the rate-limit checks of
//! one request (exemptions, penalty blocks, one atomic store call, counters)
//! and its log events, for a handler's own limits and for the engine's
//! default limits, and the start-up description of a limit ([`describe`]).
//! Where state lives is [`store`]'s business; the key is [`key`]'s; the
//! header format is [`headers`]'; the 429 is [`refusal`]'s; the settings and
//! their checks are [`config`]'s and [`checks`]'.

pub(crate) mod checks;
pub(crate) mod client_map;
pub(crate) mod config;
pub(crate) mod flask_settings;
pub(crate) mod headers;
pub(crate) mod key;
pub(crate) mod memory;
pub(crate) mod penalty;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod refusal;
pub(crate) mod reservation;
pub(crate) mod spec;
pub(crate) mod store;

use crate::client_ip::ClientIpResolver;
use crate::clock::EngineClock;
use crate::handler_policy::Check;
use crate::{ErrorBody, Quota};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use config::{LimitPlan, PlanRef, RateLimitConfig};
use headers::{HeaderStyle, QuotaHeaders, RateLimitHeaders};
use key::KeyContext;
use refusal::{Reason, too_many_requests};
use reservation::ReservedLimit;
use smallvec::SmallVec;
use spec::{Limits, RateLimitSpec};
use std::fmt::Write;
use std::net::IpAddr;
use store::{ClientKey, Decision, LimitRequest, LimiterStore, StoreError};

/// The rate-limit state of one engine: where limits are counted, the
/// settings they are counted with, and the clock of penalty blocks.
pub(crate) struct RateLimits {
    pub(crate) store: Box<dyn LimiterStore>,
    pub(crate) config: RateLimitConfig,
    pub(crate) clock: EngineClock,
}

impl RateLimits {
    /// Checks consecutive `#[rate_limit]` attributes of one request together: the
    /// request counts against all of them or none. `Ok(None)` when exempt or
    /// rate limits are off, or
    /// admitted under [`HeaderStyle::None`]: no header to show.
    /// `run` is the checks, each a [`Check::RateLimit`], as long as the run
    /// goes; what they need is worked out once ([`RateLimitConfig::plan`]).
    /// An admitted request's conditional limits (`count = ...`) are pushed
    /// on `reserved`, to be settled once the response is known.
    pub(crate) async fn enforce(
        &self,
        run: &'static [Check],
        context: &KeyContext<'_>,
        reserved: &mut Vec<ReservedLimit>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let Some(checked) = self.prepare(run, context)? else {
            return Ok(None);
        };
        let requests = checked.requests();
        let judged = Judged::from(context);
        self.before_store(&requests, checked.counts(), checked.headers, &judged)?;
        let answer = self.store.check(&requests).await;
        let denied = self.shared_denial(&answer);
        let judgement = self.after_run(&checked, answer, &requests, &judged, reserved);
        match denied {
            Some(decision) => {
                self.strike_shared(judgement, &decision, &requests, checked.headers, &judged)
                    .await
            }
            None => judgement,
        }
    }

    /// [`RateLimits::enforce`] to the end before returning, for a store that
    /// answers at once ([`LimiterStore::answers_at_once`]): no future is
    /// made, and a store that would wait is refused with a 500.
    pub(crate) fn enforce_now(
        &self,
        run: &'static [Check],
        context: &KeyContext<'_>,
        reserved: &mut Vec<ReservedLimit>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let Some(checked) = self.prepare(run, context)? else {
            return Ok(None);
        };
        let requests = checked.requests();
        let judged = Judged::from(context);
        self.before_store(&requests, checked.counts(), checked.headers, &judged)?;
        let Some(answer) = self.store.check(&requests).now() else {
            tracing::error!(
                policy = "rate_limit",
                scope = requests[0].scope,
                outcome = "error",
                "the rate-limit store said it answers at once but did not; refusing the request"
            );
            return Err(ErrorBody::internal_error());
        };
        self.after_run(&checked, answer, &requests, &judged, reserved)
    }

    /// [`RateLimits::after_store`] for a run of checks; an admitted run's
    /// conditional limits (`count = ...`) are pushed on `reserved`, to be
    /// settled once the response is known.
    // Inlined into both runs: as a call it costs the admitted path about 30
    // instructions (`benchmarks/instructions.sh`).
    #[inline(always)]
    fn after_run(
        &self,
        checked: &Checked<'_>,
        answer: Result<Decision, StoreError>,
        requests: &[LimitRequest<'_>],
        judged: &Judged<'_>,
        reserved: &mut Vec<ReservedLimit>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        if !checked.plan.conditional {
            return self.after_store(answer, requests, checked.counts(), checked.headers, judged);
        }
        let decisive = checked.decisive(&answer);
        let headers =
            self.after_store(answer, requests, checked.counts(), checked.headers, judged)?;
        checked.reserve(decisive, reserved);
        Ok(headers)
    }

    /// The plan and the keys of a run, or `None` for an exempt client or
    /// when rate limits are off.
    fn prepare<'a>(
        &'a self,
        run: &'static [Check],
        context: &KeyContext<'_>,
    ) -> Result<Option<Checked<'a>>, Response> {
        if self.config.switch.off {
            // `RATELIMIT_ENABLED=false`: nothing is counted, nothing shown.
            return Ok(None);
        }
        let plan = self.config.plan(run);
        if self.config.is_exempt(context) {
            let scope = plan.limits[0].spec.scope;
            tracing::debug!(
                policy = "rate_limit",
                scope,
                client_ip = context.client_ip.map(tracing::field::display),
                outcome = "exempt",
                "rate limit skipped for an exempt client"
            );
            crate::metrics::decision("rate_limit", "exempt", "exempt_client", scope);
            return Ok(None);
        }
        let keys = match &*plan.limits {
            // One attribute, the common case: no list to build.
            [limit] => {
                let key = key::resolve(limit.spec, context)?;
                quotas_of(limit)?;
                Keys::One(key)
            }
            limits => {
                let mut keys = SmallVec::new();
                for limit in limits {
                    keys.push(key::resolve(limit.spec, context)?);
                    quotas_of(limit)?;
                }
                Keys::Many(keys)
            }
        };
        let headers = plan.headers.ok_or_else(undefined)?;
        Ok(Some(Checked {
            plan,
            keys,
            headers,
        }))
    }

    /// Checks the default limits of a route without a policy of its own, keyed
    /// by client IP in the route's scope.
    pub(crate) async fn enforce_defaults(
        &self,
        defaults: &[Quota],
        scope: &str,
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let Some((key, headers)) = self.defaults_check(defaults, scope, client_ip, resolver)?
        else {
            return Ok(None);
        };
        let requests = [LimitRequest {
            scope,
            key: &key,
            quotas: defaults,
            cost: 1,
        }];
        let judged = Judged::defaults(client_ip, resolver);
        self.judge(&requests, Counts::Scopes, headers, &judged)
            .await
    }

    /// [`RateLimits::enforce_defaults`] to the end before returning, for a
    /// store that answers at once: the defaults a handler with
    /// `add_to_defaults` is charged when no default-limits layer charged them.
    pub(crate) fn enforce_defaults_now(
        &self,
        defaults: &[Quota],
        scope: &str,
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let Some((key, headers)) = self.defaults_check(defaults, scope, client_ip, resolver)?
        else {
            return Ok(None);
        };
        let requests = [LimitRequest {
            scope,
            key: &key,
            quotas: defaults,
            cost: 1,
        }];
        let judged = Judged::defaults(client_ip, resolver);
        self.before_store(&requests, Counts::Scopes, headers, &judged)?;
        let answer = self.store.check(&requests).now().unwrap_or_else(|| {
            Err(StoreError::new(
                "the rate-limit store said it answers at once but did not",
            ))
        });
        self.after_store(answer, &requests, Counts::Scopes, headers, &judged)
    }

    /// What checking the default limits needs: the client's key and the
    /// header values, or `None` for an exempt client.
    fn defaults_check(
        &self,
        defaults: &[Quota],
        scope: &str,
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<Option<(ClientKey, &'static QuotaHeaders)>, Response> {
        if self.config.switch.off {
            return Ok(None);
        }
        let Some(ip) = client_ip else {
            tracing::error!(
                policy = "rate_limit",
                scope,
                outcome = "error",
                "{}",
                crate::client_ip::MISSING_CONNECT_INFO_FIX
            );
            return Err(ErrorBody::internal_error());
        };
        if self.config.is_exempt_ip(ip) {
            tracing::debug!(policy = "rate_limit", scope, client_ip = %ip, outcome = "exempt", "rate limit skipped for an exempt client");
            crate::metrics::decision("rate_limit", "exempt", "exempt_client", scope);
            return Ok(None);
        }
        let key = ClientKey::Ip(resolver.group(ip));
        // The engine's own defaults, the only ones passed here, have their
        // header values made once.
        let headers = match self.config.defaults_headers() {
            Some(headers) if self.config.defaults.as_deref() == Some(defaults) => headers,
            _ => QuotaHeaders::of(defaults),
        };
        Ok(Some((key, headers)))
    }

    /// The default limits' checks: [`RateLimits::before_store`], the store,
    /// [`RateLimits::after_store`].
    async fn judge(
        &self,
        requests: &[LimitRequest<'_>],
        counts: Counts<'_>,
        headers: &'static QuotaHeaders,
        judged: &Judged<'_>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        self.before_store(requests, counts, headers, judged)?;
        let answer = self.store.check(requests).await;
        let denied = self.shared_denial(&answer);
        let judgement = self.after_store(answer, requests, counts, headers, judged);
        match denied {
            Some(decision) => {
                self.strike_shared(judgement, &decision, requests, headers, judged)
                    .await
            }
            None => judgement,
        }
    }

    /// A refusal whose strike goes to a shared penalty box, if this is one.
    fn shared_denial(&self, answer: &Result<Decision, StoreError>) -> Option<Decision> {
        self.config.penalty.as_ref().filter(|p| p.is_shared())?;
        match answer {
            Ok(decision) if !decision.allowed => Some(*decision),
            _ => None,
        }
    }

    /// Counts a refusal's strike in the shared penalty box (one round trip,
    /// on the refusal path only). A strike that starts a block is logged as
    /// [`RateLimits::after_store`] logs one; a client found blocked already
    /// (through another instance) gets the 429 of a block, as it would have
    /// had if this instance had known.
    async fn strike_shared(
        &self,
        judgement: Result<Option<RateLimitHeaders>, Response>,
        decision: &Decision,
        requests: &[LimitRequest<'_>],
        headers: &'static QuotaHeaders,
        judged: &Judged<'_>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let Some(penalty) = &self.config.penalty else {
            return judgement;
        };
        let decisive = requests
            .iter()
            .find(|request| request.quotas.contains(&decision.quota))
            .unwrap_or(&requests[0]);
        let (scope, key) = (decisive.scope, decisive.key);
        let struck = penalty
            .strike_shared(scope, key, judged.penalty_ip(), self.clock.now())
            .await;
        let client_ip = judged.client_ip.map(tracing::field::display);
        let key_id = match key {
            ClientKey::ApiKey(name) => Some(&**name),
            _ => None,
        };
        match struck {
            None => judgement,
            Some(penalty::Struck::Started(block)) => {
                tracing::warn!(
                    policy = "rate_limit",
                    scope,
                    key_kind = key.kind(),
                    client_ip,
                    key_id,
                    block_secs = block.as_secs(),
                    outcome = "block",
                    "client blocked after repeated violations"
                );
                judgement
            }
            Some(penalty::Struck::Blocked(left)) => {
                tracing::warn!(
                    policy = "rate_limit",
                    scope,
                    key_kind = key.kind(),
                    client_ip,
                    outcome = "deny",
                    reason = "blocked",
                    "client blocked after repeated violations"
                );
                let blocked = Decision {
                    allowed: false,
                    quota: decisive.quotas[0],
                    remaining: 0,
                    reset_after: left,
                    retry_after: left,
                };
                Err(too_many_requests(
                    self.config.header_style,
                    self.config.window_header,
                    Reason::Blocked,
                    &blocked,
                    headers,
                    judged.keeps_body,
                ))
            }
        }
    }

    /// What comes before the store's decision: a client blocked by the
    /// penalty box is refused.
    fn before_store(
        &self,
        requests: &[LimitRequest<'_>],
        counts: Counts<'_>,
        headers: &'static QuotaHeaders,
        judged: &Judged<'_>,
    ) -> Result<(), Response> {
        let Some(penalty) = &self.config.penalty else {
            return Ok(());
        };
        let client_ip = judged.client_ip.map(tracing::field::display);
        let now = self.clock.now();
        let ip = judged.penalty_ip();
        for (index, request) in requests.iter().enumerate() {
            if let Some(left) = penalty.blocked(request.scope, request.key, ip, now) {
                tracing::warn!(
                    policy = "rate_limit",
                    scope = request.scope,
                    key_kind = request.key.kind(),
                    client_ip,
                    outcome = "deny",
                    reason = "blocked",
                    "client blocked after repeated violations"
                );
                counts.count(&self.config, index, request.scope, false);
                crate::metrics::decision("rate_limit", "deny", "blocked", request.scope);
                let decision = Decision {
                    allowed: false,
                    quota: request.quotas[0],
                    remaining: 0,
                    reset_after: left,
                    retry_after: left,
                };
                return Err(too_many_requests(
                    self.config.header_style,
                    self.config.window_header,
                    Reason::Blocked,
                    &decision,
                    headers,
                    judged.keeps_body,
                ));
            }
        }
        Ok(())
    }

    /// What comes of the store's decision: counters, logs, headers and the 429.
    fn after_store(
        &self,
        answer: Result<Decision, StoreError>,
        requests: &[LimitRequest<'_>],
        counts: Counts<'_>,
        headers: &'static QuotaHeaders,
        judged: &Judged<'_>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        let client_ip = judged.client_ip.map(tracing::field::display);
        let decision = match answer {
            Ok(decision) => decision,
            Err(error) => {
                tracing::error!(policy = "rate_limit", scope = requests[0].scope, client_ip, outcome = "error", %error, "rate-limit store failed; refusing the request");
                crate::metrics::store_error("rate_limit");
                return Err(ErrorBody::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "Service Unavailable",
                )
                .into_response());
            }
        };
        // The check whose quota decided, for the log.
        let decisive = match requests {
            [only] => only,
            _ => requests
                .iter()
                .find(|request| request.quotas.contains(&decision.quota))
                .unwrap_or(&requests[0]),
        };
        let (scope, key) = (decisive.scope, decisive.key);
        // An API key's name, never its secret (the key holds only the name).
        let key_id = match key {
            ClientKey::ApiKey(name) => Some(&**name),
            _ => None,
        };
        for (index, request) in requests.iter().enumerate() {
            counts.count(&self.config, index, request.scope, decision.allowed);
            let (outcome, reason) = match decision.allowed {
                true => ("allow", "none"),
                false => ("deny", "limit_exceeded"),
            };
            crate::metrics::decision("rate_limit", outcome, reason, request.scope);
        }
        if decision.allowed {
            tracing::debug!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, remaining = decision.remaining, outcome = "allow", "rate limit passed");
            if self.config.header_style == HeaderStyle::None {
                // An admitted response carries no rate-limit header.
                return Ok(None);
            }
            return Ok(Some(RateLimitHeaders::new(
                self.config.header_style,
                self.config.window_header,
                &decision,
                headers,
            )));
        }
        tracing::warn!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, retry_after_ms = decision.retry_after.as_millis() as u64, outcome = "deny", "rate limit exceeded");
        if let Some(penalty) = &self.config.penalty {
            if let Some(block) = penalty.strike(scope, key, judged.penalty_ip(), self.clock.now()) {
                tracing::warn!(
                    policy = "rate_limit",
                    scope,
                    key_kind = key.kind(),
                    client_ip,
                    key_id,
                    block_secs = block.as_secs(),
                    outcome = "block",
                    "client blocked after repeated violations"
                );
            }
        }
        Err(too_many_requests(
            self.config.header_style,
            self.config.window_header,
            Reason::Exceeded(decision.quota),
            &decision,
            headers,
            judged.keeps_body,
        ))
    }

    /// The quotas a scope's state is laid out for, and the requests a client has
    /// left in it, without counting a request. `None` when the store holds
    /// nothing for it.
    pub(crate) async fn peek(
        &self,
        scope: &str,
        key: &ClientKey,
        quotas: &[Quota],
    ) -> Result<Option<Decision>, StoreError> {
        let request = LimitRequest {
            scope,
            key,
            quotas,
            cost: 1,
        };
        self.store.peek(request).await
    }

    /// Forgets a client's state in a scope, and lifts any penalty block on it.
    pub(crate) async fn reset(&self, scope: &str, key: &ClientKey) -> Result<(), StoreError> {
        if let Some(penalty) = &self.config.penalty {
            penalty.pardon(key);
            penalty.pardon_shared(scope, key).await?;
        }
        self.store.reset(scope, key).await
    }
}

/// Where the counters of a check's scope are: in its plan, or found by the scope's name.
#[derive(Clone, Copy)]
enum Counts<'p> {
    Plan(&'p [LimitPlan]),
    Scopes,
}

impl Counts<'_> {
    fn count(self, config: &RateLimitConfig, index: usize, scope: &str, allowed: bool) {
        match self {
            Counts::Plan(limits) => limits[index].count(allowed),
            Counts::Scopes => config.count(scope, allowed),
        }
    }
}

/// What judging a request needs to know of its client.
struct Judged<'r> {
    client_ip: Option<IpAddr>,
    resolver: &'r ClientIpResolver,
    /// Whether a 429 carries the body it was rendered from, for an engine
    /// that renders it again (see [`too_many_requests`]).
    keeps_body: bool,
}

impl<'r> Judged<'r> {
    /// How the default limits are judged: the default limits' layer does
    /// not say how errors are rendered, so a 429 keeps its body.
    fn defaults(client_ip: Option<IpAddr>, resolver: &'r ClientIpResolver) -> Self {
        Judged {
            client_ip,
            resolver,
            keeps_body: true,
        }
    }

    /// A penalty on a `global` limit counts by client IP, grouped as IP
    /// keys are (an IPv6 /64 is one client); only a penalty needs it.
    fn penalty_ip(&self) -> Option<IpAddr> {
        self.client_ip.map(|ip| self.resolver.group(ip))
    }
}

/// A run of checks about to be judged: its plan, and the key of each check.
struct Checked<'a> {
    plan: PlanRef<'a>,
    keys: Keys,
    headers: &'static QuotaHeaders,
}

/// The key of each check of a run: one, the common case, without a list.
enum Keys {
    One(ClientKey),
    Many(SmallVec<[ClientKey; 2]>),
}

/// The store's requests of a run, one per check.
enum Requests<'a> {
    One([LimitRequest<'a>; 1]),
    Many(SmallVec<[LimitRequest<'a>; 2]>),
}

impl<'a> std::ops::Deref for Requests<'a> {
    type Target = [LimitRequest<'a>];

    fn deref(&self) -> &[LimitRequest<'a>] {
        match self {
            Requests::One(one) => one,
            Requests::Many(many) => many,
        }
    }
}

/// The store's request of one limit of a plan, for `key`.
fn request<'a>(limit: &'a LimitPlan, key: &'a ClientKey) -> LimitRequest<'a> {
    LimitRequest {
        scope: limit.spec.scope,
        key,
        // Checked present by `prepare`.
        quotas: limit.quotas.as_deref().unwrap_or_default(),
        cost: limit.spec.cost,
    }
}

impl Checked<'_> {
    fn requests(&self) -> Requests<'_> {
        match (&self.keys, &*self.plan.limits) {
            (Keys::One(key), [limit, ..]) => Requests::One([request(limit, key)]),
            (Keys::Many(keys), limits) => Requests::Many(
                limits
                    .iter()
                    .zip(keys)
                    .map(|(limit, key)| request(limit, key))
                    .collect(),
            ),
            // `prepare` makes a key for each limit, and a plan has one limit or more.
            (Keys::One(_), []) => Requests::Many(SmallVec::new()),
        }
    }

    fn counts(&self) -> Counts<'_> {
        Counts::Plan(&self.plan.limits)
    }

    /// The quota the store's answer shows.
    fn decisive(&self, answer: &Result<Decision, StoreError>) -> Option<Quota> {
        answer.as_ref().ok().map(|decision| decision.quota)
    }

    /// Pushes the run's conditional limits on `reserved`: the request was
    /// admitted, so each counted it. `decisive` is the quota the headers show.
    fn reserve(&self, decisive: Option<Quota>, reserved: &mut Vec<ReservedLimit>) {
        for (index, limit) in self.plan.limits.iter().enumerate() {
            if matches!(limit.spec.count, spec::CountWhen::Always) {
                continue;
            }
            let key = match &self.keys {
                Keys::One(key) => key,
                Keys::Many(keys) => &keys[index],
            };
            let quotas: Box<[Quota]> = limit.quotas.as_deref().unwrap_or_default().into();
            reserved.push(ReservedLimit {
                scope: limit.spec.scope,
                key: key.clone(),
                shown: decisive.is_some_and(|quota| quotas.contains(&quota)),
                quotas,
                cost: limit.spec.cost,
                count: limit.spec.count,
            });
        }
    }
}

impl<'r> From<&KeyContext<'r>> for Judged<'r> {
    fn from(context: &KeyContext<'r>) -> Self {
        Judged {
            client_ip: context.client_ip,
            resolver: context.resolver,
            keeps_body: context.renders_errors,
        }
    }
}

/// A limit's quotas, or the 500 of a named policy no one defined.
fn quotas_of(limit: &LimitPlan) -> Result<&[Quota], Response> {
    limit.quotas.as_deref().ok_or_else(|| {
        let name = match limit.spec.limits {
            Limits::Named(name) => name,
            Limits::Fixed(_) => "",
        };
        tracing::error!(policy = "rate_limit", scope = limit.spec.scope, "no limits are defined for policy `{name}`; define them with `EngineBuilder::policy` or POLICY_LIMIT_<NAME>");
        ErrorBody::internal_error()
    })
}

/// The answer of a run whose header values could not be made: only when a
/// named policy is undefined, which [`quotas_of`] refuses first.
fn undefined() -> Response {
    ErrorBody::internal_error()
}

/// One limit for the start-up report: `20 per 1 hour per client ip`, with
/// its named policy, burst, strictness, cost and shared scope. `named` is
/// the named policy's limits, `None` when undefined; `handler` is the path
/// of the handler it belongs to.
pub(crate) fn describe(handler: &str, spec: &RateLimitSpec, named: Option<&[Quota]>) -> String {
    let mut text = String::from("rate_limit ");
    match &spec.limits {
        Limits::Fixed(quotas) => text.push_str(&quotas_text(quotas)),
        Limits::Named(name) => {
            let _ = write!(text, "policy `{name}` = ");
            match named {
                Some(quotas) => text.push_str(&quotas_text(quotas)),
                None => text.push_str("undefined"),
            }
        }
    }
    text.push_str(match spec.key {
        spec::KeySource::Ip => " per client ip",
        spec::KeySource::ApiKey => " per api key",
        spec::KeySource::Global => " global",
        spec::KeySource::Header(_) => " per header",
        spec::KeySource::Custom(_) => " per custom key",
        spec::KeySource::Subject => " per subject",
        spec::KeySource::Claim(_) => " per claim",
    });
    if let spec::KeySource::Header(name) | spec::KeySource::Claim(name) = spec.key {
        let _ = write!(text, " `{name}`");
    }
    if spec.cost != 1 {
        let _ = write!(text, " cost {}", spec.cost);
    }
    match spec.count {
        spec::CountWhen::Always => {}
        spec::CountWhen::Failures => text.push_str(" counting failures"),
        spec::CountWhen::Responses(_) => text.push_str(" counting chosen responses"),
    }
    if spec.scope != handler {
        let _ = write!(text, " scope `{}`", spec.scope);
    }
    text
}

fn quotas_text(quotas: &[Quota]) -> String {
    let quotas: Vec<String> = quotas
        .iter()
        .map(|quota| {
            let mut text = quota.to_string();
            if quota.is_strict() {
                text.push_str(" strict");
            } else if quota.is_sliding() {
                text.push_str(" sliding");
            } else if quota.burst() != quota.count() {
                let _ = write!(text, " burst {}", quota.burst());
            }
            text
        })
        .collect();
    quotas.join("; ")
}
