//! What one `#[rate_limit(...)]` attribute asks for, as the macro emits it.
//!
//! This module owns the declarative description only; resolving a key is
//! [`super::key`]'s job and counting is the store's.

use crate::{ErrorBody, Quota};
use axum::http::StatusCode;
use axum::http::request::Parts;

/// One `#[rate_limit]` attribute.
#[derive(Debug)]
pub struct RateLimitSpec {
    /// Whose state the quotas count in: the handler's path, or `scope = "..."`.
    pub scope: &'static str,
    /// The quotas, written in the attribute or named for the engine to define.
    pub limits: Limits,
    /// What the limit is keyed by.
    pub key: KeySource,
    /// What happens when the key is absent.
    pub on_missing: OnMissingKey,
    /// How many requests one request counts as.
    pub cost: u32,
    /// Which requests are counted: every one, or only those whose response
    /// matches (`count = failures`, `count = responses(path::to::fn)`).
    pub count: CountWhen,
    /// `add_to_defaults`: the engine's default limits apply to the handler
    /// too, on top of this limit, instead of being replaced by it.
    pub add_to_defaults: bool,
}

/// Which requests a limit counts (Flask-Limiter's `deduct_when`).
///
/// A conditional limit reserves its cost before the handler runs (so a
/// client over the limit is refused with 429 before the handler, and
/// concurrent requests cannot overshoot it), and gives the reservation back
/// when the response does not match.
#[derive(Clone, Copy, Debug)]
pub enum CountWhen {
    /// Every admitted request (the default).
    Always,
    /// `count = failures`: responses with a status of 400 or more.
    Failures,
    /// `count = responses(path::to::fn)`: responses whose status the
    /// function says to count.
    Responses(fn(StatusCode) -> bool),
}

impl CountWhen {
    /// Whether a response with `status` is counted.
    pub fn counts(self, status: StatusCode) -> bool {
        match self {
            CountWhen::Always => true,
            CountWhen::Failures => status.as_u16() >= 400,
            CountWhen::Responses(condition) => condition(status),
        }
    }
}

/// Where a limit's quotas come from.
#[derive(Debug)]
pub enum Limits {
    /// Written in the attribute.
    Fixed(&'static [Quota]),
    /// `policy = "name"`: defined in the engine builder or the environment.
    Named(&'static str),
}

/// What a limit is keyed by.
#[derive(Debug)]
pub enum KeySource {
    /// `key = ip` (the default): the client IP, through trusted proxies.
    Ip,
    /// `key = api_key`: the name of the key `#[require_api_key]` accepted.
    ApiKey,
    /// `key = global`: one bucket for every client.
    Global,
    /// `key = header("x-user-id")`: a request header's value.
    Header(&'static str),
    /// `key = path::to::fn`: the application's key function.
    Custom(CustomKey),
    /// `key = subject`: the JWT's `sub` (the API key's name when a key admitted the request).
    Subject,
    /// `key = claim("tenant_id")`: one claim of the JWT, as text.
    Claim(&'static str),
}

/// The signature of a custom key function: a key, or the refusal to send.
pub type CustomKey = fn(&Parts) -> Result<String, ErrorBody>;

/// What happens when a request lacks the key a limit needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMissingKey {
    /// Refuse with a 400 JSON error naming what is missing (the default).
    Reject,
    /// Count the request against the client IP instead.
    Ip,
}
