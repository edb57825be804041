//! Production endpoint policies for axum handlers, written as attributes.
//!
//! ```
//! use axum::{routing::{get, post}, Json, Router};
//! use policy_runtime::{api_error, rate_limit, require_api_key, ApiKeyId, Engine};
//!
//! #[api_error]
//! #[derive(Debug, thiserror::Error)]
//! enum AppError {
//!     #[error("text must not be empty")]
//!     #[api(status = 400, code = "VALIDATION_ERROR")]
//!     EmptyText,
//! }
//!
//! /// At most 20 scorings an hour per client IP, for API-key holders only.
//! #[rate_limit("20/hour")]
//! #[require_api_key]
//! async fn score(key: ApiKeyId, Json(text): Json<String>) -> Result<String, AppError> {
//!     if text.is_empty() {
//!         return Err(AppError::EmptyText);
//!     }
//!     Ok(format!("{} scored {} characters", key.name(), text.len()))
//! }
//!
//! #[rate_limit("200/day; 50/hour")]
//! async fn health() -> &'static str {
//!     "ok"
//! }
//!
//! let engine = Engine::builder().api_keys_from_env().build()?;
//! let app: Router = Router::new()
//!     .route("/score", post(score))
//!     .route("/health", get(health))
//!     .layer(engine);
//! # Ok::<(), policy_runtime::BuildError>(())
//! ```
//!
//! The pieces:
//! - [`rate_limit`]: limits per client IP, with `X-RateLimit-*` headers and a JSON 429.
//! - [`require_api_key`]: `X-API-Key` or `Authorization: Bearer` keys, compared in constant time.
//! - [`api_error`]: an error enum whose variants map to statuses and JSON bodies.
//! - [`Engine`]: the configuration the policies run with, attached with `.layer(engine)`.
//! - [`ErrorBody`]: the one JSON error shape, `{"error": "...", "code": "..."}`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate self as policy_runtime;

mod api_error;
mod api_key;
mod client_ip;
mod engine;
mod error_body;
mod guard;
mod layer;
mod quota;
mod rate_limit;

pub use api_error::ApiError;
pub use api_key::id::ApiKeyId;
pub use api_key::store::{ApiKeyStore, KeyError};
pub use engine::{BuildError, Engine, EngineBuilder};
pub use error_body::ErrorBody;
pub use governor::clock::FakeRelativeClock;
pub use layer::WithEngine;
pub use quota::Quota;
pub use rate_limit::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use rate_limit::redis::{FailureMode, RedisConfigError, RedisStore, RedisStoreBuilder};
pub use rate_limit::store::{
    ClientKey, Decision, LimitRequest, LimiterStore, StoreError, StoreFuture,
};

pub use policy_macros::{api_error, rate_limit, require_api_key};

/// Support for the code the macros generate. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{Check, Guard, HandlerPolicy, Policy};
    pub use crate::Quota;
    pub use axum::http::StatusCode;
    pub use axum::response::{IntoResponse, Response};
    pub use core::time::Duration;

    /// The response for an `#[api_error]` value.
    pub fn api_error_response<E: crate::ApiError + ?Sized>(error: &E) -> Response {
        crate::api_error::respond(error)
    }
}
