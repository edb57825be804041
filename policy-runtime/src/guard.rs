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
use crate::engine::Admitted;
use crate::rate_limit::headers::RateLimitHeaders;
pub use crate::rate_limit::spec::{KeySource, Limits, OnMissingKey, RateLimitSpec};
use crate::Engine;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

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

    /// With a store that answers at once (the in-memory one), every check
    /// runs before this returns and the future is only the answer: the
    /// handler's future stays small and nothing is allocated for the checks.
    /// A networked store's checks run in a boxed future.
    fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        let Some(engine) = parts.extensions.get::<Engine>() else {
            return GuardFuture::Ready(Some(Err(no_engine(P::POLICY))));
        };
        if engine.answers_at_once() {
            let admitted = engine.enforce_now(P::POLICY, parts);
            return GuardFuture::Ready(Some(admit(P::POLICY, admitted, parts)));
        }
        let engine = engine.clone();
        GuardFuture::Waiting(Box::pin(async move {
            let admitted = engine.enforce(P::POLICY, parts).await;
            admit(P::POLICY, admitted, parts)
        }))
    }
}

/// The answer of a policy-wrapped handler that no engine wraps: refused,
/// never checked with settings the application did not choose.
pub(crate) fn no_engine(policy: &HandlerPolicy) -> Response {
    tracing::error!(
        handler = policy.handler,
        outcome = "error",
        "{NO_ENGINE_FIX}"
    );
    crate::ErrorBody::internal_error()
}

/// What the log says when a policy runs without an engine.
pub(crate) const NO_ENGINE_FIX: &str =
    "a policy-wrapped handler ran without a policy engine, so the request was refused; \
     attach one to the router after its routes: `Router::new().route(..).layer(engine)` \
     (a route added after `.layer(engine)` is not wrapped by it)";

/// The guard of a request whose checks all passed, with the API key's
/// identity made available to the handler's `ApiKeyId` extractor.
fn admit<P>(
    policy: &HandlerPolicy,
    admitted: Result<Admitted, Response>,
    parts: &mut Parts,
) -> Result<Guard<P>, Response> {
    let admitted = admitted?;
    if policy.takes_key_id {
        if let Some(id) = admitted.api_key {
            parts.extensions.insert(id);
        }
    }
    Ok(Guard {
        rate_limit: admitted.rate_limit,
        policy: PhantomData,
    })
}

type Answer<P> = Result<Guard<P>, Response>;

/// The future [`Guard`]'s extraction returns: the answer itself, or the
/// checks still waiting for a networked store.
enum GuardFuture<'a, P> {
    Ready(Option<Answer<P>>),
    Waiting(Pin<Box<dyn Future<Output = Answer<P>> + Send + 'a>>),
}

impl<P> Future for GuardFuture<'_, P> {
    type Output = Answer<P>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            GuardFuture::Ready(answer) => match answer.take() {
                Some(answer) => Poll::Ready(answer),
                None => Poll::Pending,
            },
            GuardFuture::Waiting(future) => future.as_mut().poll(cx),
        }
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
