//! The rate-limit policy: key the request, ask the store, answer 429 or go on.
//!
//! This module owns the decision flow and its log events. Where state lives is
//! [`store`]'s business; the header format is [`headers`]'.

pub(crate) mod gcra;
pub(crate) mod headers;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod store;

use crate::client_ip::MISSING_CONNECT_INFO_FIX;
use crate::{ErrorBody, Quota};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use headers::RateLimitHeaders;
use std::net::IpAddr;
use store::{ClientKey, LimitRequest, LimiterStore};

/// Checks one `#[rate_limit]` policy for one request.
pub(crate) async fn enforce(
    store: &dyn LimiterStore,
    scope: &'static str,
    quotas: &'static [Quota],
    client_ip: Option<IpAddr>,
) -> Result<RateLimitHeaders, Response> {
    let Some(ip) = client_ip else {
        tracing::error!(
            policy = "rate_limit",
            scope,
            outcome = "error",
            "{MISSING_CONNECT_INFO_FIX}"
        );
        return Err(ErrorBody::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal Server Error",
        )
        .into_response());
    };
    let key = ClientKey::Ip(ip);
    let decision = match store
        .check(LimitRequest {
            scope,
            key: &key,
            quotas,
        })
        .await
    {
        Ok(decision) => decision,
        Err(error) => {
            tracing::error!(policy = "rate_limit", scope, client_ip = %ip, outcome = "error", %error, "rate-limit store failed; refusing the request");
            return Err(ErrorBody::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Service Unavailable",
            )
            .into_response());
        }
    };
    let headers = RateLimitHeaders::new(&decision);
    if decision.allowed {
        tracing::debug!(policy = "rate_limit", scope, client_ip = %ip, limit = %decision.quota, remaining = decision.remaining, outcome = "allow", "rate limit passed");
        return Ok(headers);
    }
    tracing::warn!(policy = "rate_limit", scope, client_ip = %ip, limit = %decision.quota, retry_after_ms = decision.retry_after.as_millis() as u64, outcome = "deny", "rate limit exceeded");
    let mut response = ErrorBody::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("Too Many Requests: {}", decision.quota),
    )
    .into_response();
    headers.apply(response.headers_mut());
    Err(response)
}
