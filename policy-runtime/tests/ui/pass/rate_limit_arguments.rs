//! Every argument form of `#[rate_limit]`, compiling without a warning.
#![deny(warnings)]

use axum::http::request::Parts;
use axum::http::StatusCode;
use policy_runtime::{rate_limit, require_api_key, ErrorBody};

pub mod keys {
    use super::*;

    /// A custom key: the tenant from a header, or a refusal.
    pub fn tenant(parts: &Parts) -> Result<String, ErrorBody> {
        parts
            .headers
            .get("x-tenant")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                ErrorBody::new(StatusCode::BAD_REQUEST, "NO_TENANT", "x-tenant is required")
            })
    }
}

#[rate_limit("20/hour", key = ip)]
pub async fn by_ip() {}

#[require_api_key]
#[rate_limit("1000/hour", key = api_key, on_missing = reject)]
pub async fn by_key() {}

#[rate_limit("10000/hour", key = global)]
pub async fn by_everyone() {}

#[rate_limit("100/hour", key = header("X-User-Id"), on_missing = ip)]
pub async fn by_header() {}

#[rate_limit("100/hour", key = keys::tenant)]
pub async fn by_tenant() {}

#[rate_limit("10/second", burst = 30, cost = 3, scope = "search")]
pub async fn shaped() {}

#[rate_limit("5/hour", strict)]
pub async fn strict() {}

#[rate_limit(policy = "login")]
pub async fn named() {}

#[rate_limit(exempt)]
pub async fn exempt() {}

#[rate_limit("100/minute", key = ip)]
#[rate_limit("1000/day", key = global, scope = "daily")]
pub async fn stacked() {}

/// Counts only server errors.
pub fn server_errors(status: StatusCode) -> bool {
    status.is_server_error()
}

#[rate_limit("5/15 minutes", count = failures)]
pub async fn failed_logins() -> StatusCode {
    StatusCode::UNAUTHORIZED
}

#[rate_limit("10/minute", count = responses(crate::server_errors), strict, cost = 2)]
#[rate_limit(policy = "login", count = failures)]
pub async fn counted() -> Result<&'static str, StatusCode> {
    Ok("ok")
}

#[rate_limit("10000/hour", sliding, key = global)]
pub async fn sliding() {}

#[rate_limit("10/minute", add_to_defaults)]
#[rate_limit("100/day", sliding, add_to_defaults, scope = "daily-sliding")]
pub async fn on_top_of_defaults() {}

fn main() {}
