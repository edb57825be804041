//! Extracting a policy-wrapped handler's arguments against the state its
//! attribute names (`#[rate_limit("5/minute", state = AppState)]`).
//!
//! Whether an argument is an extractor depends on the router's state, which
//! a macro cannot see. Told the state, the macros check each argument
//! against it on the argument's own type (see `handler_checks`), and wrap
//! each one in a type of the handler's own that implements the extractor
//! traits for that one state, whatever the argument is. The wrapper is then
//! a valid handler for a router of that state even when an argument is not
//! an extractor, so that mistake is one error, on its type, and never a
//! second one at the router.
//!
//! Each wrapper type's extraction is chosen on the concrete argument type
//! with [`Probe`]: `(&Probe::<T, S>::NEW).extract_parts(..)` is `T`'s own
//! extractor when `T` implements `FromRequestParts<S>` (through
//! [`ExtractParts`], implemented for `Probe`, whose `&self` is the receiver
//! as written, so method resolution tries it first), and otherwise the
//! method of [`NotAnExtractor`] (implemented for `&Probe`, found at the next
//! step, with the receiver borrowed once more), which is never called: the
//! check on the argument has already failed the build. Rejections become the engine's error
//! bodies exactly as they do for every other policy-wrapped handler.
//!
//! Rust offers no way to ask "does `T` implement this trait" other than
//! method resolution on concrete types, which is why this is a probe rather
//! than a trait bound; nothing here exists at run time beyond the chosen
//! extractor's own call.

use crate::extract::{Extracted, ExtractedLast};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::Response;
use std::future::Future;
use std::marker::PhantomData;

/// The argument type `T` of a handler whose state is `S`, for method
/// resolution to pick its extractor.
pub struct Probe<T, S>(PhantomData<fn() -> (T, S)>);

impl<T, S> Probe<T, S> {
    /// The probe.
    pub const NEW: Self = Probe(PhantomData);
}

/// `T`'s own `FromRequestParts<S>`, its rejection as the engine's error.
pub trait ExtractParts<T, S> {
    /// Runs `T`'s extractor.
    fn extract_parts<'a>(
        &self,
        parts: &'a mut Parts,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a;
}

impl<T, S> ExtractParts<T, S> for Probe<T, S>
where
    S: Send + Sync,
    T: FromRequestParts<S> + 'static,
    T::Rejection: 'static,
{
    #[inline(always)]
    fn extract_parts<'a>(
        &self,
        parts: &'a mut Parts,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a {
        let extracted = <Extracted<T> as FromRequestParts<S>>::from_request_parts(parts, state);
        async move { extracted.await.map(|Extracted(value)| value) }
    }
}

/// `T`'s own `FromRequest<S, M>`, its rejection as the engine's error.
pub trait ExtractLast<T, S, M> {
    /// Runs `T`'s extractor.
    fn extract_last<'a>(
        &self,
        request: Request,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a;
}

impl<T, S, M> ExtractLast<T, S, M> for Probe<T, S>
where
    S: Send + Sync,
    T: FromRequest<S, M> + 'static,
    T::Rejection: 'static,
    M: 'static,
{
    #[inline(always)]
    fn extract_last<'a>(
        &self,
        request: Request,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a {
        let extracted = <ExtractedLast<T> as FromRequest<S, _>>::from_request(request, state);
        async move { extracted.await.map(|ExtractedLast(value)| value) }
    }
}

/// The extraction of an argument that is not an extractor for the state:
/// never run, since the check on the argument's type fails the build.
pub trait NotAnExtractor<T, S> {
    /// Never called in a program that compiles.
    fn extract_parts<'a>(
        &self,
        parts: &'a mut Parts,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a;

    /// Never called in a program that compiles.
    fn extract_last<'a>(
        &self,
        request: Request,
        state: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a;
}

// Not `async fn`: its future would borrow `self`, which the trait's `'a`
// does not allow.
#[allow(clippy::manual_async_fn)]
impl<T, S> NotAnExtractor<T, S> for &Probe<T, S> {
    fn extract_parts<'a>(
        &self,
        _: &'a mut Parts,
        _: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a {
        async { unreachable!("an argument that is not an extractor fails the build") }
    }

    fn extract_last<'a>(
        &self,
        _: Request,
        _: &'a S,
    ) -> impl Future<Output = Result<T, Response>> + Send + 'a {
        async { unreachable!("an argument that is not an extractor fails the build") }
    }
}
