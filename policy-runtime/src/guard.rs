//! The handler guard that `#[rate_limit]` and `#[require_api_key]` expand into.
//!
//! A policy-wrapped handler takes a [`Guard`] as its first argument. axum runs
//! extractors in order, so the guard's checks run before any other extractor
//! and a refused request never has its body read. After the handler returns,
//! [`Guard::finish`] adds the rate-limit headers to the response.
//!
//! This module owns the extractor that hands a request to the engine and
//! the answer of a handler that no engine wraps; what a handler's policy is
//! lives in [`crate::handler_policy`]. It is reachable only through
//! `policy_runtime::__private`.

use crate::Engine;
use crate::engine::{Admitted, DefaultsShown};
use crate::handler_policy::{HandlerPolicy, Policy};
use crate::rate_limiting::headers::RateLimitHeaders;
use crate::rate_limiting::reservation::AfterHandler;
use crate::request_limits;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The extractor a policy-wrapped handler takes first.
///
/// An error that names `Guard<__PolicyOf_handler>`, such as "the trait
/// `Handler<_, _>` is not implemented for fn item `fn(Guard<...>, ...)`", is
/// about the user's function `handler`: one of its arguments is not an
/// extractor for the router's state (see the rustdoc of `__PolicyOf_handler`).
pub struct Guard<P> {
    rate_limit: Option<RateLimitHeaders>,
    /// What the response settles: the conditional limits (`count = ...`)
    /// counted before the handler, and whether the headers show the
    /// default-limits layer's decision too (`add_to_defaults`), so that the
    /// layer leaves them as they are.
    after: Option<Box<AfterHandler>>,
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
        let policy = P::POLICY;
        let Some(mut engine) = parts.extensions.get::<Engine>() else {
            return GuardFuture::Ready(Some(Err(no_engine(policy))));
        };
        if policy.body_limit.is_some()
            || policy.timeout.is_some()
            || engine.inner.request_limits.active.is_some()
        {
            // The request limits come first, before anything is counted.
            let body = engine.inner.request_limits.body_default();
            if let Err(refused) = request_limits::admit(policy.own_limits(), body, parts) {
                return GuardFuture::Ready(Some(Err(refused)));
            }
            // They changed the extensions: find the engine in them again.
            let Some(again) = parts.extensions.get::<Engine>() else {
                return GuardFuture::Ready(Some(Err(no_engine(policy))));
            };
            engine = again;
        }
        if engine.answers_at_once_for(policy, parts) {
            let admitted = engine.enforce_now(policy, parts);
            return GuardFuture::Ready(Some(admit(policy, admitted, parts)));
        }
        let engine = engine.clone();
        GuardFuture::Waiting(Box::pin(async move {
            let admitted = engine.enforce(policy, parts).await;
            admit(policy, admitted, parts)
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
pub(crate) const NO_ENGINE_FIX: &str = "a policy-wrapped handler ran without a policy engine, so the request was refused; \
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
    // For the handler's `Claims`: one reference count.
    #[cfg(feature = "jwt")]
    if let Some(claims) = admitted.claims {
        parts.extensions.insert(claims);
    }
    Ok(Guard {
        rate_limit: admitted.rate_limit,
        after: admitted.after,
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
        if self.after.is_some_and(|after| after.shows_defaults) {
            response.extensions_mut().insert(DefaultsShown);
        }
        response
    }

    /// [`Guard::finish`] for a handler with a conditional limit
    /// (`count = failures`): the limits that the response's status does not
    /// count give back what they reserved before the handler, and the
    /// headers show it.
    pub async fn finish_counted(self, output: impl IntoResponse) -> Response {
        let mut response = output.into_response();
        let mut headers = self.rate_limit;
        let after = self.after.map(|after| *after).unwrap_or_default();
        if let Some(reservation) = after.reservation {
            let back = reservation.settle(response.status()).await;
            if let Some(headers) = &mut headers {
                headers.give_back(back);
            }
        }
        if let Some(headers) = &headers {
            headers.apply(response.headers_mut());
        }
        if after.shows_defaults {
            response.extensions_mut().insert(DefaultsShown);
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
