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
pub(crate) mod headers;
pub(crate) mod key;
pub(crate) mod memory;
pub(crate) mod penalty;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod refusal;
pub(crate) mod spec;
pub(crate) mod store;

use crate::client_ip::ClientIpResolver;
use crate::clock::EngineClock;
use crate::{ErrorBody, Quota};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use config::RateLimitConfig;
use headers::RateLimitHeaders;
use key::KeyContext;
use refusal::{too_many_requests, Reason};
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
    /// request counts against all of them or none. `Ok(None)` when exempt.
    pub(crate) async fn enforce(
        &self,
        specs: &[&RateLimitSpec],
        context: &KeyContext<'_>,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        if self.config.is_exempt(context) {
            tracing::debug!(
                policy = "rate_limit",
                scope = specs[0].scope,
                client_ip = context.client_ip.map(tracing::field::display),
                outcome = "exempt",
                "rate limit skipped for an exempt client"
            );
            crate::metrics::decision("rate_limit", "exempt", "exempt_client", specs[0].scope);
            return Ok(None);
        }
        if let [spec] = specs {
            // One attribute, the common case: no lists to build.
            let key = key::resolve(spec, context)?;
            let requests = [LimitRequest {
                scope: spec.scope,
                key: &key,
                quotas: self.quotas_of(spec)?,
                cost: spec.cost,
            }];
            return self
                .judge(&requests, context.client_ip, context.resolver)
                .await;
        }
        let mut keys: SmallVec<[ClientKey; 2]> = SmallVec::new();
        let mut quotas: SmallVec<[&[Quota]; 2]> = SmallVec::new();
        for spec in specs {
            keys.push(key::resolve(spec, context)?);
            quotas.push(self.quotas_of(spec)?);
        }
        let requests: SmallVec<[LimitRequest<'_>; 2]> = specs
            .iter()
            .zip(&keys)
            .zip(&quotas)
            .map(|((spec, key), quotas)| LimitRequest {
                scope: spec.scope,
                key,
                quotas,
                cost: spec.cost,
            })
            .collect();
        self.judge(&requests, context.client_ip, context.resolver)
            .await
    }

    /// The quotas of a limit: its own, or those its named policy is given.
    fn quotas_of<'e>(&'e self, spec: &'e RateLimitSpec) -> Result<&'e [Quota], Response> {
        match &spec.limits {
        Limits::Fixed(quotas) => Ok(quotas),
        Limits::Named(name) => self.config.named(name).ok_or_else(|| {
            tracing::error!(policy = "rate_limit", scope = spec.scope, "no limits are defined for policy `{name}`; define them with `EngineBuilder::policy` or POLICY_LIMIT_<NAME>");
            ErrorBody::internal_error()
        }),
    }
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
        let requests = [LimitRequest {
            scope,
            key: &key,
            quotas: defaults,
            cost: 1,
        }];
        self.judge(&requests, client_ip, resolver).await
    }

    /// The common part: penalty blocks, the store's decision, counters, logs,
    /// headers and the 429.
    async fn judge(
        &self,
        requests: &[LimitRequest<'_>],
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<Option<RateLimitHeaders>, Response> {
        // A penalty on a `global` limit counts by client IP, grouped as IP
        // keys are (an IPv6 /64 is one client); only a penalty needs it.
        let penalty_ip = || client_ip.map(|ip| resolver.group(ip));
        let client_ip = client_ip.map(tracing::field::display);
        let all_quotas = || requests.iter().flat_map(|request| request.quotas.iter());
        if let Some(penalty) = &self.config.penalty {
            let now = self.clock.now();
            let ip = penalty_ip();
            for request in requests {
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
                    self.config.count(request.scope, false);
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
                        Reason::Blocked,
                        &decision,
                        all_quotas(),
                    ));
                }
            }
        }
        let decision = match self.store.check(requests).await {
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
        let decisive = requests
            .iter()
            .find(|request| request.quotas.contains(&decision.quota))
            .unwrap_or(&requests[0]);
        let (scope, key) = (decisive.scope, decisive.key);
        // An API key's name, never its secret (the key holds only the name).
        let key_id = match key {
            ClientKey::ApiKey(name) => Some(&**name),
            _ => None,
        };
        for request in requests {
            self.config.count(request.scope, decision.allowed);
            let (outcome, reason) = match decision.allowed {
                true => ("allow", "none"),
                false => ("deny", "limit_exceeded"),
            };
            crate::metrics::decision("rate_limit", outcome, reason, request.scope);
        }
        if decision.allowed {
            tracing::debug!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, remaining = decision.remaining, outcome = "allow", "rate limit passed");
            return Ok(Some(RateLimitHeaders::new(
                self.config.header_style,
                &decision,
                all_quotas(),
            )));
        }
        tracing::warn!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, retry_after_ms = decision.retry_after.as_millis() as u64, outcome = "deny", "rate limit exceeded");
        if let Some(penalty) = &self.config.penalty {
            if let Some(block) = penalty.strike(scope, key, penalty_ip(), self.clock.now()) {
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
            Reason::Exceeded(decision.quota),
            &decision,
            all_quotas(),
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
        }
        self.store.reset(scope, key).await
    }
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
    });
    if let spec::KeySource::Header(name) = spec.key {
        let _ = write!(text, " `{name}`");
    }
    if spec.cost != 1 {
        let _ = write!(text, " cost {}", spec.cost);
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
            } else if quota.burst() != quota.count() {
                let _ = write!(text, " burst {}", quota.burst());
            }
            text
        })
        .collect();
    quotas.join("; ")
}
