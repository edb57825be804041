//! The start-up report: when an engine is built, one info event says how it
//! is configured, then one event per handler lists its policies in the order
//! they run.
//!
//! This module owns that report only. The handlers come from the macros'
//! registrations, so every policy-wrapped handler in the program is listed,
//! whether or not a router serves it.

use crate::engine::EngineInner;
use crate::guard::{Check, HandlerPolicy, KeySource, Limits, RateLimitSpec, Registration};
use crate::Quota;
use std::fmt::Write;

/// Logs the engine's configuration and every handler's policies.
pub(crate) fn report(engine: &EngineInner) {
    let mut handlers: Vec<&HandlerPolicy> = inventory::iter::<Registration>
        .into_iter()
        .map(|registration| registration.0)
        .collect();
    handlers.sort_by_key(|policy| policy.handler);
    let lockout = match &engine.lockout {
        Some(log) => {
            let lockout = log.settings();
            format!(
                "{} failures within {}s lock a client out for {}s",
                lockout.failures(),
                lockout.within().as_secs(),
                lockout.lock_for().as_secs()
            )
        }
        None => "off".to_owned(),
    };
    tracing::info!(
        environment = engine.environment.name(),
        handlers = handlers.len(),
        api_keys = engine.keys.load().len(),
        lockout = %lockout,
        "policy engine built"
    );
    for policy in handlers {
        tracing::info!(
            handler = policy.handler,
            policies = %describe(engine, policy),
            "handler policy"
        );
    }
}

/// `rate_limit 20 per 1 hour per ip -> api_key requiring the scope `admin``.
fn describe(engine: &EngineInner, policy: &HandlerPolicy) -> String {
    let checks: Vec<String> = policy
        .checks
        .iter()
        .map(|check| match check {
            Check::RateLimit(spec) => rate_limit(engine, policy.handler, spec),
            Check::Exempt => "rate_limit exempt".to_owned(),
            Check::ApiKey(requirement) => format!("api_key requiring {requirement}"),
        })
        .collect();
    checks.join(" -> ")
}

fn rate_limit(engine: &EngineInner, handler: &str, spec: &RateLimitSpec) -> String {
    let mut text = String::from("rate_limit ");
    match &spec.limits {
        Limits::Fixed(quotas) => text.push_str(&quotas_text(quotas)),
        Limits::Named(name) => {
            let _ = write!(text, "policy `{name}` = ");
            match engine.rate_limit.named(name) {
                Some(quotas) => text.push_str(&quotas_text(quotas)),
                None => text.push_str("undefined"),
            }
        }
    }
    text.push_str(match spec.key {
        KeySource::Ip => " per client ip",
        KeySource::ApiKey => " per api key",
        KeySource::Global => " global",
        KeySource::Header(_) => " per header",
        KeySource::Custom(_) => " per custom key",
    });
    if let KeySource::Header(name) = spec.key {
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
