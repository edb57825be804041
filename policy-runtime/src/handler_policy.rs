//! What a handler's policy is: the checks `#[rate_limit]` and
//! `#[require_api_key]` (or the layers of [`crate::RateLimit`] and
//! [`crate::RequireApiKey`]) give it, in the order they run.
//!
//! This module owns [`HandlerPolicy`] and [`Check`], the start-up
//! registration of every handler's policy ([`Registration`], collected with
//! `inventory`), and the registry of the policies layers make at run time.
//! It is the contract between generated code and the engine, reachable only
//! through `policy_runtime::__private`; it runs no check itself.

pub use crate::api_key::scope::KeyRequirement;
pub use crate::rate_limiting::spec::{CountWhen, KeySource, Limits, OnMissingKey, RateLimitSpec};

/// The checks of one handler, in the order they run (the top attribute first).
#[derive(Debug)]
pub struct HandlerPolicy {
    /// The handler's module path and name.
    pub handler: &'static str,
    /// The checks, in order.
    pub checks: &'static [Check],
    /// Whether the handler takes [`crate::ApiKeyId`]: only then is the key's
    /// identity put in the request's extensions.
    pub takes_key_id: bool,
    /// `#[body_limit("1MB")]`: the most bytes of body the handler reads,
    /// instead of the engine's default. Applies to the whole request, wherever
    /// the attribute sits among the others.
    pub body_limit: Option<u64>,
    /// `#[timeout("30s")]`: how long the request may take from the engine
    /// layer on, instead of the engine's default.
    pub timeout: Option<std::time::Duration>,
}

impl HandlerPolicy {
    /// The handler's own body limit and timeout.
    pub(crate) fn own_limits(&self) -> crate::request_limits::OwnLimits {
        crate::request_limits::OwnLimits {
            body_limit: self.body_limit,
            timeout: self.timeout,
        }
    }
}

/// One check of a handler.
#[derive(Debug)]
pub enum Check {
    /// `#[rate_limit("...")]`: every quota must admit the request.
    RateLimit(RateLimitSpec),
    /// `#[rate_limit(exempt)]`: no limit, not even the engine's defaults.
    Exempt,
    /// `#[require_api_key]`, with the scopes it requires.
    ApiKey(KeyRequirement),
    /// `#[require_jwt]`: a valid bearer JWT carrying the required scopes.
    Jwt(KeyRequirement),
    /// `#[require_jwt(or_api_key)]`: a valid API key or a valid bearer JWT, with the scopes.
    ApiKeyOrJwt(KeyRequirement),
}

/// A handler's policy, registered at start-up so the engine can check named
/// policies when it is built and find a scope's quotas for operators.
#[derive(Debug)]
pub struct Registration(pub &'static HandlerPolicy);

inventory::collect!(Registration);

/// Policies made at run time by the layers of [`crate::RateLimit`] and
/// [`crate::RequireApiKey`], beside the handlers' registrations: one per
/// layer built, so as many as the program's configuration makes.
static LAYERED: std::sync::RwLock<Vec<&'static HandlerPolicy>> = std::sync::RwLock::new(Vec::new());

/// Records a layer's policy, so the engine finds its scope's quotas.
pub(crate) fn register_layered(policy: &'static HandlerPolicy) {
    LAYERED
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(policy);
}

/// Every policy in the program: the handlers' and the layers'.
pub(crate) fn every_policy() -> Vec<&'static HandlerPolicy> {
    let mut policies: Vec<&'static HandlerPolicy> = inventory::iter::<Registration>
        .into_iter()
        .map(|registration| registration.0)
        .collect();
    policies.extend(
        LAYERED
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .copied(),
    );
    policies
}

/// Ties a generated marker type to its handler's policy.
pub trait Policy: 'static {
    /// The handler's policy.
    const POLICY: &'static HandlerPolicy;
}

/// Every handler's policy registered by the macros, sorted by handler path
/// so that what is reported about them comes in a stable order.
pub(crate) fn registered() -> Vec<&'static HandlerPolicy> {
    let mut handlers: Vec<&'static HandlerPolicy> = inventory::iter::<Registration>
        .into_iter()
        .map(|registration| registration.0)
        .collect();
    handlers.sort_by_key(|policy| policy.handler);
    handlers
}
