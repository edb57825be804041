//! The handler guard that `#[rate_limit]` and `#[require_api_key]` expand into.
//!
//! A policy-wrapped handler takes a [`Guard`] as its first argument. axum runs
//! extractors in order, so the guard's checks run before any other extractor
//! and a refused request never has its body read. After the handler returns,
//! [`Guard::finish`] adds the rate-limit headers to the response.
//!
//! This module owns the contract between generated code and the engine; it is
//! reachable only through `policy_runtime::__private`.

pub use crate::api_key::scope::KeyRequirement;
use crate::rate_limit::headers::RateLimitHeaders;
pub use crate::rate_limit::spec::{KeySource, Limits, OnMissingKey, RateLimitSpec};
use crate::Engine;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::marker::PhantomData;

/// The checks of one handler, in the order they run (the top attribute first).
#[derive(Debug)]
pub struct HandlerPolicy {
    /// The handler's module path and name.
    pub handler: &'static str,
    /// The checks, in order.
    pub checks: &'static [Check],
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
}

/// A handler's policy, registered at start-up so the engine can check named
/// policies when it is built and find a scope's quotas for operators.
#[derive(Debug)]
pub struct Registration(pub &'static HandlerPolicy);

inventory::collect!(Registration);

/// Ties a generated marker type to its handler's policy.
pub trait Policy: 'static {
    /// The handler's policy.
    const POLICY: &'static HandlerPolicy;
}

/// The extractor a policy-wrapped handler takes first.
pub struct Guard<P> {
    rate_limit: Option<RateLimitHeaders>,
    policy: PhantomData<fn() -> P>,
}

impl<P, S> FromRequestParts<S> for Guard<P>
where
    P: Policy,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let admitted = Engine::current().enforce(P::POLICY, parts).await?;
        if let Some(id) = admitted.api_key {
            parts.extensions.insert(id);
        }
        Ok(Guard {
            rate_limit: admitted.rate_limit,
            policy: PhantomData,
        })
    }
}

impl<P> Guard<P> {
    /// Turns the handler's output into the response, with the policies' headers.
    pub fn finish(self, output: impl IntoResponse) -> Response {
        let mut response = output.into_response();
        if let Some(headers) = &self.rate_limit {
            headers.apply(response.headers_mut());
        }
        response
    }
}

impl<P: Policy> fmt::Debug for Guard<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("handler", &P::POLICY.handler)
            .finish_non_exhaustive()
    }
}
