//! The start-up report: when an engine is built, one info event says how it
//! is configured, then one event per handler lists its policies in the order
//! they run.
//!
//! This module owns that report only, composed from the descriptions each
//! policy module gives of its checks. The handlers come from the macros'
//! registrations, so every policy-wrapped handler in the program is listed,
//! whether or not a router serves it.

use super::EngineInner;
use crate::handler_policy::{self, Check, HandlerPolicy};
use crate::rate_limiting::spec::Limits;

/// Logs the engine's configuration and every handler's policies.
pub(super) fn report(engine: &EngineInner) {
    let handlers = handler_policy::registered();
    tracing::info!(
        environment = engine.environment.name(),
        handlers = handlers.len(),
        api_keys = engine.api_keys.keys.load().len(),
        lockout = %engine.api_keys.describe_lockout(),
        max_body_size = %engine.request_limits.describe_body(),
        request_timeout = %engine.request_limits.describe_timeout(),
        "policy engine built"
    );
    #[cfg(feature = "jwt")]
    if engine.jwt.keys.has_source() {
        tracing::info!(policy = "jwt", settings = %engine.jwt.describe(), "JWT settings");
    }
    for policy in handlers {
        tracing::info!(
            handler = policy.handler,
            policies = %describe(engine, policy),
            "handler policy"
        );
    }
}

/// `rate_limit 20 per 1 hour per ip -> api_key requiring the scope `admin``,
/// from the description each policy gives of its check.
fn describe(engine: &EngineInner, policy: &HandlerPolicy) -> String {
    // The request limits apply first, wherever their attributes sit.
    let body_limit = policy
        .body_limit
        .map(|bytes| format!("body_limit {}", policy_grammar::size::display_size(bytes)));
    let timeout = policy.timeout.map(|timeout| {
        format!(
            "timeout {}",
            policy_grammar::duration::display_duration(timeout)
        )
    });
    let checks: Vec<String> = body_limit
        .into_iter()
        .chain(timeout)
        .chain(policy.checks.iter().map(|check| match check {
            Check::RateLimit(spec) => {
                let named = match spec.limits {
                    Limits::Named(name) => engine.rate_limits.config.named(name),
                    Limits::Fixed(_) => None,
                };
                crate::rate_limiting::describe(policy.handler, spec, named)
            }
            Check::Exempt => "rate_limit exempt".to_owned(),
            Check::ApiKey(requirement) => format!("api_key requiring {requirement}"),
            Check::Jwt(requirement) => format!("jwt requiring {requirement}"),
            Check::ApiKeyOrJwt(requirement) => format!("api_key or jwt requiring {requirement}"),
        }))
        .collect();
    checks.join(" -> ")
}
