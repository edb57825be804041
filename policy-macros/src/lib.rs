//! The attribute macros of `policy-runtime`. Depend on `policy-runtime`, which
//! re-exports them; the generated code calls into it.
//!
//! Each macro runs three separate steps: parse the attribute and its item into a
//! typed model, validate the model (collecting every error, each spanned on the
//! token that is wrong), then expand. On an error the user's item is emitted
//! unchanged beside the `compile_error!`, so one mistake gives one error.

mod api_error;
mod errors;
mod handler;

use proc_macro::TokenStream;

/// Limits how often a client may call an async axum handler. Documented and
/// re-exported by `policy_runtime`.
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand_attribute(handler::PolicyKind::RateLimit, args.into(), item.into()).into()
}

/// Requires a valid API key before an async axum handler runs. Documented and
/// re-exported by `policy_runtime`.
#[proc_macro_attribute]
pub fn require_api_key(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand_attribute(handler::PolicyKind::ApiKey, args.into(), item.into()).into()
}

/// Requires a valid bearer JWT (or, with `or_api_key`, an API key) before an
/// async axum handler runs. Documented and re-exported by `policy_runtime`
/// with its feature `jwt`.
#[proc_macro_attribute]
pub fn require_jwt(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand_attribute(handler::PolicyKind::Jwt, args.into(), item.into()).into()
}

/// Caps the body an async axum handler reads, for the whole request.
/// Documented and re-exported by `policy_runtime`.
#[proc_macro_attribute]
pub fn body_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand_attribute(handler::PolicyKind::BodyLimit, args.into(), item.into()).into()
}

/// Bounds how long a request to an async axum handler may take, for the
/// whole request. Documented and re-exported by `policy_runtime`.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand_attribute(handler::PolicyKind::Timeout, args.into(), item.into()).into()
}

/// Maps each variant of an error enum to an HTTP status and a JSON body.
/// Documented and re-exported by `policy_runtime`.
#[proc_macro_attribute]
pub fn api_error(args: TokenStream, item: TokenStream) -> TokenStream {
    api_error::expand_attribute(args.into(), item.into()).into()
}
