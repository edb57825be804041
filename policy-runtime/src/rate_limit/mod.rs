//! The rate-limit policy: key the request, ask the store, answer 429 or go on.
//!
//! This module owns the decision flow of the rate-limit checks of one request
//! (exemptions, penalty blocks, one atomic store call, counters) and its log
//! events, for a handler's own limits and for the engine's default limits.
//! Where state lives is [`store`]'s business; the key is [`key`]'s; the
//! header format is [`headers`]'; the 429 is [`refusal`]'s.

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

use crate::engine::EngineInner;
use crate::{ErrorBody, Quota};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use headers::RateLimitHeaders;
use key::KeyContext;
use refusal::{too_many_requests, Reason};
use smallvec::SmallVec;
use spec::{Limits, RateLimitSpec};
use std::net::IpAddr;
use store::{ClientKey, Decision, LimitRequest};

/// Checks consecutive `#[rate_limit]` attributes of one request together: the
/// request counts against all of them or none. `Ok(None)` when exempt.
pub(crate) async fn enforce(
    engine: &EngineInner,
    specs: &[&RateLimitSpec],
    context: &KeyContext<'_>,
) -> Result<Option<RateLimitHeaders>, Response> {
    if engine.rate_limit.is_exempt(context) {
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
            quotas: quotas_of(engine, spec)?,
            cost: spec.cost,
        }];
        return judge(engine, &requests, context.client_ip).await;
    }
    let mut keys: SmallVec<[ClientKey; 2]> = SmallVec::new();
    let mut quotas: SmallVec<[&[Quota]; 2]> = SmallVec::new();
    for spec in specs {
        keys.push(key::resolve(spec, context)?);
        quotas.push(quotas_of(engine, spec)?);
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
    judge(engine, &requests, context.client_ip).await
}

/// The quotas of a limit: its own, or those its named policy is given.
fn quotas_of<'e>(
    engine: &'e EngineInner,
    spec: &'e RateLimitSpec,
) -> Result<&'e [Quota], Response> {
    match &spec.limits {
        Limits::Fixed(quotas) => Ok(quotas),
        Limits::Named(name) => engine.rate_limit.named(name).ok_or_else(|| {
            tracing::error!(policy = "rate_limit", scope = spec.scope, "no limits are defined for policy `{name}`; define them with `EngineBuilder::policy` or POLICY_LIMIT_<NAME>");
            ErrorBody::internal_error()
        }),
    }
}

/// Checks the default limits of a route without a policy of its own, keyed
/// by client IP in the route's scope.
pub(crate) async fn enforce_defaults(
    engine: &EngineInner,
    defaults: &[Quota],
    scope: &str,
    client_ip: Option<IpAddr>,
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
    if engine.rate_limit.is_exempt_ip(ip) {
        tracing::debug!(policy = "rate_limit", scope, client_ip = %ip, outcome = "exempt", "rate limit skipped for an exempt client");
        crate::metrics::decision("rate_limit", "exempt", "exempt_client", scope);
        return Ok(None);
    }
    let key = ClientKey::Ip(engine.resolver.group(ip));
    let requests = [LimitRequest {
        scope,
        key: &key,
        quotas: defaults,
        cost: 1,
    }];
    judge(engine, &requests, client_ip).await
}

/// The common part: penalty blocks, the store's decision, counters, logs,
/// headers and the 429.
async fn judge(
    engine: &EngineInner,
    requests: &[LimitRequest<'_>],
    client_ip: Option<IpAddr>,
) -> Result<Option<RateLimitHeaders>, Response> {
    let ip = client_ip;
    let client_ip = client_ip.map(tracing::field::display);
    let all_quotas = || requests.iter().flat_map(|request| request.quotas.iter());
    if let Some(penalty) = &engine.rate_limit.penalty {
        let now = engine.clock.now();
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
                engine.rate_limit.count(request.scope, false);
                crate::metrics::decision("rate_limit", "rate_limited", "blocked", request.scope);
                let decision = Decision {
                    allowed: false,
                    quota: request.quotas[0],
                    remaining: 0,
                    reset_after: left,
                    retry_after: left,
                };
                return Err(too_many_requests(
                    engine.rate_limit.header_style,
                    Reason::Blocked,
                    &decision,
                    all_quotas(),
                ));
            }
        }
    }
    let decision = match engine.limiter.check(requests).await {
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
        engine.rate_limit.count(request.scope, decision.allowed);
        let (outcome, reason) = match decision.allowed {
            true => ("allowed", "none"),
            false => ("rate_limited", "limit_exceeded"),
        };
        crate::metrics::decision("rate_limit", outcome, reason, request.scope);
    }
    if decision.allowed {
        tracing::debug!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, remaining = decision.remaining, outcome = "allow", "rate limit passed");
        return Ok(Some(RateLimitHeaders::new(
            engine.rate_limit.header_style,
            &decision,
            all_quotas(),
        )));
    }
    tracing::warn!(policy = "rate_limit", scope, key_kind = key.kind(), client_ip, key_id, limit = %decision.quota, retry_after_ms = decision.retry_after.as_millis() as u64, outcome = "deny", "rate limit exceeded");
    if let Some(penalty) = &engine.rate_limit.penalty {
        if let Some(block) = penalty.strike(scope, key, ip, engine.clock.now()) {
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
        engine.rate_limit.header_style,
        Reason::Exceeded(decision.quota),
        &decision,
        all_quotas(),
    ))
}
