//! What a policy-wrapped handler's own code must satisfy, checked where the
//! wrapper calls it, so that a mistake is reported on the user's code.
//!
//! The wrapper `#[rate_limit]` and `#[require_api_key]` generate calls the
//! user's function through [`send_future`] and [`HandlerResponse`], both
//! spanned on the user's tokens. A handler whose future is not `Send`, or
//! whose return type is not a response, is then one error on the `fn` name or
//! the return type, worded here, and the wrapper itself stays a valid axum
//! handler: the router adds no second error naming generated types.
//!
//! Both are identities once compiled: [`send_future`] returns the handler's
//! own future under an `impl Future + Send` type, and
//! [`HandlerResponse::into_handler_response`] is `IntoResponse::into_response`.
//! They are reachable only through `policy_runtime::__private`.
//!
//! A handler whose attribute names its state (`state = AppState`) also has
//! each argument checked against that state, on the argument's type, with
//! [`parts_extractor`] (every argument but the last) and [`body_extractor`]
//! (the last); `named_state` keeps the wrapper valid when one fails.

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use std::future::Future;

/// A policy-wrapped handler's return type: anything axum can answer with.
///
/// Implemented for every [`IntoResponse`] type. An error that names this
/// trait means the handler returns a type that is not a response: implement
/// `IntoResponse` for it, or return one that is (`String`, `Json<T>`,
/// `(StatusCode, T)`, `Result<T, E>` where both are).
///
/// ```
/// use policy_runtime::__private::HandlerResponse;
///
/// let response = "ok".into_handler_response();
/// assert_eq!(response.status(), axum::http::StatusCode::OK);
/// ```
#[diagnostic::on_unimplemented(
    message = "the handler returns `{Self}`, which is not a response",
    label = "`{Self}` does not implement axum's `IntoResponse`",
    note = "a handler must return a type that implements `IntoResponse` (such as `String`, \
            `Json<T>`, `StatusCode`, `(StatusCode, T)`, or `Result<T, E>` where both do): \
            implement it for `{Self}`, or return a type that does"
)]
pub trait HandlerResponse {
    /// The response: `IntoResponse::into_response`.
    fn into_handler_response(self) -> Response;
}

impl<T: IntoResponse> HandlerResponse for T {
    #[inline(always)]
    fn into_handler_response(self) -> Response {
        self.into_response()
    }
}

/// The future of a policy-wrapped handler's own function, which must be
/// `Send`: axum runs handlers on a multi-threaded runtime.
///
/// The future is returned as it is; only its type now promises `Send`, so a
/// handler whose future is not `Send` is one error here, on the `fn` name,
/// where rustc names the value held across an `.await`. Hold such a value
/// (an `Rc`, a `RefCell` borrow, a `MutexGuard` of `std`) only between two
/// `.await`s, in a block of its own, or use a `Send` one (`Arc`,
/// `tokio::sync::Mutex`).
///
/// ```
/// use policy_runtime::__private::send_future;
///
/// async fn handler() -> &'static str {
///     "ok"
/// }
///
/// fn assert_send<F: Send>(_: &F) {}
/// let future = send_future(handler());
/// assert_send(&future);
/// # drop(future);
/// ```
#[inline(always)]
pub fn send_future<F: Future + Send>(future: F) -> impl Future<Output = F::Output> + Send {
    future
}

/// A handler argument before the last, checked against the state its
/// policy attribute names (`state = AppState`): an extractor that does not
/// read the body.
///
/// Implemented for every `FromRequestParts<S>` type. An error that names
/// this trait means the argument cannot be extracted for a router of that
/// state: take an extractor (`Path<u32>`, not `u32`), give a `State<T>` a
/// `T` that is the state or `FromRef` of it, or implement
/// `FromRequestParts<S>` for your own type.
///
/// ```
/// use axum::extract::{Path, State};
/// use policy_runtime::__private::parts_extractor;
///
/// #[derive(Clone)]
/// struct AppState;
///
/// parts_extractor::<Path<u32>, AppState>();
/// parts_extractor::<State<AppState>, AppState>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor for the state `{S}`",
    label = "not an extractor for `{S}`",
    note = "each argument of a handler but the last must implement `FromRequestParts<{S}>`: \
            take an extractor (`Path<u32>`, not `u32`), a `State<T>` whose `T` is `{S}` or \
            `FromRef<{S}>`, or implement `FromRequestParts<{S}>` for your type"
)]
pub trait PartsExtractor<S> {}

impl<S, T: FromRequestParts<S>> PartsExtractor<S> for T {}

/// The last argument of a handler, checked against the state its policy
/// attribute names: any extractor, which may read the body.
///
/// Implemented for every `FromRequest<S, M>` type (which includes every
/// `FromRequestParts<S>` type); see [`PartsExtractor`].
///
/// ```
/// use axum::Json;
/// use axum::extract::Path;
/// use policy_runtime::__private::body_extractor;
///
/// #[derive(Clone)]
/// struct AppState;
///
/// body_extractor::<Json<u32>, AppState, _>();
/// body_extractor::<Path<u32>, AppState, _>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an extractor for the state `{S}`",
    label = "not an extractor for `{S}`",
    note = "the last argument of a handler must implement `FromRequest<{S}>` or \
            `FromRequestParts<{S}>`: take an extractor (`Json<T>`, `Path<u32>`, not `u32`), a \
            `State<T>` whose `T` is `{S}` or `FromRef<{S}>`, or implement one of them for your type"
)]
pub trait BodyExtractor<S, M> {}

impl<S, M, T: FromRequest<S, M>> BodyExtractor<S, M> for T {}

/// Asserts that `T` is an extractor for the state `S` (see [`PartsExtractor`]).
#[inline(always)]
pub fn parts_extractor<T: PartsExtractor<S>, S>() {}

/// Asserts that `T` is an extractor for the state `S`, last (see [`BodyExtractor`]).
#[inline(always)]
pub fn body_extractor<T: BodyExtractor<S, M>, S, M>() {}
