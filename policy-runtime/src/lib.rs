//! Production endpoint policies for axum handlers, written as attributes.
//!
//! ```rust,standalone_crate
//! use axum::body::{to_bytes, Body};
//! use axum::extract::connect_info::MockConnectInfo;
//! use axum::http::Request;
//! use axum::routing::{get, post};
//! use axum::{Json, Router};
//! use policy_runtime::{api_error, rate_limit, require_api_key, ApiKeyId, Engine};
//! use std::net::SocketAddr;
//! use tower::ServiceExt;
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
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Production is the default: it refuses to start without a key for `score`.
//!     let engine = Engine::builder()
//!         .api_key("mobile-app", "mobile-app-key-0123456789") // or .api_keys_from_env()
//!         .build()?;
//!     let app = Router::new()
//!         .route("/score", post(score))
//!         .route("/health", get(health))
//!         .layer(engine)
//!         // A server passes the client's address with
//!         // `into_make_service_with_connect_info::<SocketAddr>()`; a test mocks it.
//!         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
//!
//!     let score = |text: &'static str| {
//!         let request = Request::post("/score")
//!             .header("x-api-key", "mobile-app-key-0123456789")
//!             .header("content-type", "application/json");
//!         app.clone().oneshot(request.body(Body::from(text)).unwrap())
//!     };
//!     let scored = score(r#""hello""#).await?;
//!     assert_eq!(scored.headers()["x-ratelimit-remaining"], "19");
//!     assert_eq!(to_bytes(scored.into_body(), 1024).await?, "mobile-app scored 5 characters");
//!     let empty = score(r#""""#).await?;
//!     assert_eq!(empty.status(), 400);
//!     assert_eq!(
//!         to_bytes(empty.into_body(), 1024).await?,
//!         r#"{"error":"text must not be empty","code":"VALIDATION_ERROR"}"#
//!     );
//!     Ok(())
//! }
//! ```
//!
//! The pieces:
//! - [`rate_limit`]: limits per client IP, with `X-RateLimit-*` headers and a JSON 429.
//! - [`require_api_key`]: `X-API-Key` or `Authorization: Bearer` keys, compared in constant time,
//!   with scopes; [`ApiKey`] and the key file give keys names, scopes and expiry, [`Lockout`]
//!   stops brute force, and the `policy-keygen` binary (its own crate) makes keys.
//! - [`api_error`]: an error enum whose variants map to statuses and JSON bodies.
//! - [`Engine`]: the configuration the policies run with, attached with `.layer(engine)`;
//!   [`Engine::default_limits`] applies default limits to the routes it wraps.
//! - [`RateLimit`] and [`RequireApiKey`]: the same policies as tower layers, for
//!   route groups, closures and services, without the macros.
//! - [`ErrorBody`] and [`ErrorFormat`]: every error (yours, the policies' and
//!   axum's extractor rejections, see [`extract`]) in one shape, chosen once
//!   on the engine: `{"error": "...", "code": "..."}` by default, or the
//!   Flask, FastAPI or RFC 9457 shapes, or your own.
//! - [`RequestLayer`]: request ids, one span and log event per request, slow
//!   requests; [`Metrics`]: Prometheus metrics; [`Health`]: `/health`,
//!   `/health/live` and `/health/ready`. Each is a Cargo feature, off by
//!   default.
//! - [`SecurityHeaders`]: `nosniff`, `X-Frame-Options`, `Referrer-Policy`, a
//!   CSP for JSON APIs and HSTS in production, on every response;
//!   [`JsonFallbacks`]: axum's 404 and 405 as JSON errors in the engine's
//!   format; [`Cors`] (feature `cors`): CORS from the engine's settings,
//!   checked at start-up, with refused preflights as JSON 403s.
//! - [`Clock`]: the time limits and lockouts run on; [`ManualClock`] moves
//!   it by hand in tests.
//!
//! Policy decisions are counted through the [`metrics`](https://docs.rs/metrics)
//! facade (`policy_decisions_total`), into whatever recorder the application
//! installs, with or without the `prometheus` feature.
//!
//! # Cargo features
//!
//! The policies, the engine, the error formats and the in-memory store are
//! always there. Each feature adds one part, and the dependencies it needs:
//!
//! | feature | default | adds | pulls in |
//! | --- | --- | --- | --- |
//! | `request-layer` | off | [`RequestLayer`]: request ids, one span and log event per request, request metrics | `tower-http` (and `uuid`) |
//! | `prometheus` | off | [`Metrics`]: installs the Prometheus recorder and serves `/metrics` | `metrics-exporter-prometheus` |
//! | `health` | off | [`Health`]: `/health`, `/health/live`, `/health/ready` | nothing |
//! | `redis` | off | [`RedisStore`]: limits shared by every instance, in Redis | `redis`, `tokio` |
//! | `cors` | off | [`Cors`]: CORS from `cors_origins` or `CORS_ORIGINS`, with JSON 403s for refused preflights | `tower-http` |
//! | `jwt` | off | `RequireJwt`, `Claims`: bearer JWTs from a secret, PEM keys, JWKS or OpenID Connect discovery | `jsonwebtoken` (pure Rust), `reqwest` (rustls), `base64`, `tokio` |
//! | `utoipa` | off | `Engine::document`: the policies' security, error responses, rate-limit headers and quotas in a utoipa `OpenApi`; `#[api_error]` enums as `utoipa::IntoResponses`; `Engine::document_layer` for the policy layers and the default limits | `utoipa` 5 |
//! | `utoipa-axum` | off | `OpenApiRouterExt`: the policy layers and the default limits on a `utoipa_axum` `OpenApiRouter`, documented on the operations they wrap (turns on `utoipa`) | `utoipa-axum` 0.2 |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// Refusals are axum `Response`s, as `FromRequestParts::Rejection` wants them;
// boxing them would cost an allocation on every refusal for no gain.
#![allow(clippy::result_large_err)]

extern crate self as policy_runtime;

mod api_key;
mod client_ip;
mod clock;
#[cfg(feature = "cors")]
mod cors;
mod default_limits;
mod engine;
mod environment;
mod error_body;
mod error_format;
mod error_response;
pub mod extract;
mod fallback;
mod forward;
mod gcra;
mod guard;
mod handler_checks;
mod handler_policy;
#[cfg(feature = "health")]
mod health;
#[cfg(feature = "jwt")]
mod jwt;
mod layer;
mod metrics;
mod named_state;
#[cfg(feature = "utoipa")]
mod openapi;
mod policy_layer;
mod quota;
mod rate_limiting;
mod request_id;
#[cfg(feature = "request-layer")]
mod request_layer;
mod request_limits;
mod security_headers;
mod timestamp;

pub use api_key::file::KeyFileError;
pub use api_key::id::ApiKeyId;
pub use api_key::key::ApiKey;
pub use api_key::lockout::{Lockout, LockoutStatus};
pub use api_key::store::{ApiKeyStore, KeyError};
pub use client_ip::{ClientIpError, ClientIpResolver};
pub use clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "cors")]
#[cfg_attr(docsrs, doc(cfg(feature = "cors")))]
pub use cors::Cors;
pub use default_limits::DefaultLimits;
pub use engine::{BuildError, Engine, EngineBuilder};
pub use environment::{Environment, UnknownEnvironment};
pub use error_body::{ErrorBody, FieldError, Severity};
pub use error_format::{ErrorFormat, ErrorRenderer, ErrorView};
pub use error_response::ApiError;
pub use fallback::{JsonFallbacks, method_not_allowed, not_found};
pub use gcra::Decision;
#[cfg(feature = "health")]
pub use health::Health;
#[cfg(feature = "jwt")]
pub use jwt::claims::{Claims, RegisteredClaims};
#[cfg(feature = "prometheus")]
pub use metrics::{Metrics, MetricsError};
#[cfg(feature = "utoipa-axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa-axum")))]
pub use openapi::router::OpenApiRouterExt;
#[cfg(feature = "utoipa")]
#[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
pub use openapi::{Documented, DocumentedOperation, LayerDocumented, PolicyLayer};
#[cfg(feature = "jwt")]
pub use policy_layer::jwt::RequireJwt;
pub use policy_layer::{RateLimit, RateLimitBuilder, RequireApiKey};
pub use quota::{Quota, QuotaError};
pub use rate_limiting::config::ScopeStats;
pub use rate_limiting::headers::HeaderStyle;
pub use rate_limiting::memory::MemoryStore;
pub use rate_limiting::penalty::Penalty;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use rate_limiting::redis::{FailureMode, RedisConfigError, RedisStore, RedisStoreBuilder};
pub use rate_limiting::store::{
    ClientKey, LimitRequest, LimiterStore, StoreError, StoreFuture, StrikeRule, StrikeState,
    StrikeStore, StrikeTable,
};
#[cfg(feature = "request-layer")]
pub use request_layer::{InvalidIdPrefix, RequestLayer};
pub use security_headers::SecurityHeaders;

/// The tower services and futures that the layers make: they appear in
/// types (`<Engine as Layer<S>>::Service` is [`WithEngine<S>`](service::WithEngine)),
/// and code rarely names them.
///
/// ```
/// use axum::Router;
/// use policy_runtime::{service::WithEngine, Engine};
/// use tower::Layer;
///
/// let engine = Engine::builder().build()?;
/// let service: WithEngine<Router> = engine.layer(Router::new());
/// # drop(service);
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
pub mod service {
    #[cfg(feature = "cors")]
    pub use crate::cors::{CorsFuture, WithCors};
    pub use crate::default_limits::WithDefaultLimits;
    pub use crate::layer::{WithEngine, WithEngineFuture};
    pub use crate::policy_layer::WithPolicy;
    #[cfg(feature = "request-layer")]
    pub use crate::request_layer::{RequestFuture, RequestService};
    pub use crate::security_headers::{SecurityHeadersFuture, WithSecurityHeaders};
}

/// Limits how often each client may call an async axum handler.
///
/// ```
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::routing::{get, post};
/// use axum::Router;
/// use policy_runtime::{rate_limit, Engine};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[rate_limit("20/hour")]
/// async fn score() -> &'static str {
///     "scored"
/// }
///
/// #[rate_limit("200/day; 50/hour")] // every limit must admit the request
/// async fn lookup() -> &'static str {
///     "found"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app = Router::new()
///         .route("/score", post(score))
///         .route("/lookup", get(lookup))
///         .layer(Engine::builder().build()?)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     for _ in 0..20 {
///         let response = app.clone().oneshot(Request::post("/score").body(Body::empty())?).await?;
///         assert_eq!(response.status(), 200);
///     }
///     let refused = app.clone().oneshot(Request::post("/score").body(Body::empty())?).await?;
///     assert_eq!(refused.status(), 429);
///     assert_eq!(refused.headers()["retry-after"], "180");
///     // `lookup` has a state of its own.
///     let found = app.oneshot(Request::get("/lookup").body(Body::empty())?).await?;
///     assert_eq!(found.headers()["x-ratelimit-remaining"], "49");
///     Ok(())
/// }
/// ```
///
/// **The limit string** is checked at compile time: `<count>/<period>` or
/// `<count> per <period>`, where the period is `second`, `minute`, `hour` or
/// `day` (plurals and `s`, `m`, `h`, `d` too), optionally with a multiplier
/// (`"10 per 5 minutes"`, `"10/30s"`). Several limits are separated by `;` or
/// `,`; a request must pass every one, and one refused by any of them counts
/// against none. A zero count, an unknown unit, an empty string, a count above
/// `u32::MAX` or stray text is a compile error on the string.
///
/// **What `N/period` admits**: GCRA, as in governor. A client may send `N`
/// requests at once, then one more every `period / N`; a client that waited a
/// whole period has its full burst again. Up to `2N - 1` requests can
/// therefore fall in one window of length `period`; `strict` guarantees at
/// most `N` in any such window.
///
/// **Arguments** after the limit string, all optional:
///
/// | argument | meaning |
/// | --- | --- |
/// | `key = ip` (default), `api_key`, `global`, `header("x-user-id")`, `path::to::fn` | what the limit counts by; a key function is `fn(&Parts) -> Result<String, ErrorBody>` |
/// | `on_missing = reject` (default) or `ip` | a missing header or API key: 400 JSON, or count by IP |
/// | `burst = N` | `N` requests at once, at the same rate |
/// | `cost = N` | one request counts as `N` |
/// | `scope = "name"` | share one state between handlers |
/// | `strict` | at most the count in any window of the period |
///
/// Instead of a string, `policy = "name"` takes the limits from the engine
/// ([`EngineBuilder::policy`] or `POLICY_LIMIT_<NAME>`), and `exempt` says a
/// handler has no limit on purpose (keep its route out of
/// [`Engine::default_limits`], which applies the engine's default limits to
/// the routes it wraps).
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::http::request::Parts;
/// use axum::routing::{get, post};
/// use axum::Router;
/// use policy_runtime::{rate_limit, require_api_key, Engine, ErrorBody};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// fn tenant(parts: &Parts) -> Result<String, ErrorBody> {
///     parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned).ok_or_else(|| {
///         ErrorBody::new(axum::http::StatusCode::BAD_REQUEST, "NO_TENANT", "x-tenant is required")
///     })
/// }
///
/// #[require_api_key]
/// #[rate_limit("1000/hour", key = api_key)]
/// #[rate_limit("100/minute", key = tenant, burst = 200, scope = "tenant-api")]
/// async fn report() -> &'static str {
///     "report"
/// }
///
/// #[rate_limit("5/hour", strict)]
/// async fn register() -> &'static str {
///     "registered"
/// }
///
/// #[rate_limit(exempt)]
/// async fn health() -> &'static str {
///     "ok"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder().api_key("reporting", "reporting-key-0123456789").build()?;
///     let app = Router::new()
///         .route("/report", get(report))
///         .route("/register", post(register))
///         .route("/health", get(health))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///
///     // The key function's `Err` is the response.
///     let request = Request::get("/report").header("x-api-key", "reporting-key-0123456789");
///     let refused = app.clone().oneshot(request.body(Body::empty())?).await?;
///     assert_eq!(refused.status(), 400);
///     let body = axum::body::to_bytes(refused.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"x-tenant is required","code":"NO_TENANT"}"#);
///
///     let health = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
///     assert_eq!(health.status(), 200);
///     assert!(health.headers().get("x-ratelimit-limit").is_none());
///     Ok(())
/// }
/// ```
///
/// **Who is counted** by default: the client IP of the connection, from axum's
/// `ConnectInfo` (forwarding headers count only from trusted proxies, see
/// [`ClientIpResolver`]). Serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`; without it every
/// limited request gets a 500 JSON error and the log says how to fix it (the
/// request never falls back to one bucket shared by every client). Each
/// handler has its own state, named by its module path and function name.
///
/// **Responses**: admitted responses carry `X-RateLimit-Limit`,
/// `X-RateLimit-Remaining` and `X-RateLimit-Reset` (epoch seconds at which the
/// quota is whole again). A refused request gets `429 Too Many Requests`, the
/// same headers, `Retry-After` in seconds (rounded up, so a retry at that time
/// succeeds) and the JSON body
/// `{"error": "Too Many Requests: 20 per 1 hour", "code": "RATE_LIMITED"}`.
///
/// **Order**: the policy runs before every other extractor of the handler, so
/// a refused request never has its body read. Policy attributes stacked on one
/// handler run top to bottom, in one wrapper. A return type that is not a
/// response, a future that is not `Send` and a body-reading extractor before
/// the last argument are each one compile error on your code, so
/// `#[axum::debug_handler]` is not needed; it still works below the policies
/// (closest to the `fn`).
pub use policy_macros::rate_limit;

/// Requires a valid API key, and optionally scopes, before an async axum handler runs.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{routing::{get, post}, Router};
/// use policy_runtime::{require_api_key, ApiKey, ApiKeyId, Engine};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[require_api_key]
/// async fn report(key: ApiKeyId) -> String {
///     format!("report for {}", key.name())
/// }
///
/// #[require_api_key(scope = "admin")]
/// async fn purge() -> &'static str {
///     "purged"
/// }
///
/// #[require_api_key(scope = any("reports:read", "reports:write"))]
/// async fn list() -> &'static str {
///     "reports"
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let engine = Engine::builder()
///         .api_key("reporting", "reporting-key-0123456789abcdef")
///         .api_key_with(ApiKey::new("ops", "ops-team-key-0123456789abcdef").scopes(["admin"]))
///         .api_keys_from_env() // API_KEYS, API_KEY_<N>, API_KEY_FILE
///         .build()?;
///     let app = Router::new()
///         .route("/report", get(report))
///         .route("/purge", post(purge))
///         .route("/reports", get(list))
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let send = |method: &str, uri: &str, key: &str| {
///         let request = Request::builder().method(method).uri(uri).header("x-api-key", key);
///         app.clone().oneshot(request.body(Body::empty()).unwrap())
///     };
///
///     let report = send("GET", "/report", "reporting-key-0123456789abcdef").await?;
///     assert_eq!(axum::body::to_bytes(report.into_body(), 1024).await?, "report for reporting");
///     assert_eq!(send("POST", "/purge", "ops-team-key-0123456789abcdef").await?.status(), 200);
///     assert_eq!(send("POST", "/purge", "reporting-key-0123456789abcdef").await?.status(), 403);
///     assert_eq!(send("GET", "/report", "not-a-key-0123456789").await?.status(), 401);
///     Ok(())
/// }
/// ```
///
/// **Scopes**: `scope = "admin"` needs a key holding that scope;
/// `scope = any("read", "write")` at least one of them; `scope = all("read",
/// "write")` every one. A scope name is 1 to 64 ASCII letters, digits, `_`,
/// `-`, `.` or `:`. An empty or invalid scope name, an empty `any()` or
/// `all()`, a scope listed twice and an unknown argument are compile errors
/// on the token. Keys get scopes from [`ApiKey::scopes`], `API_KEYS`
/// (`name:key:read|write`) or the key file (`scopes=read,write`).
///
/// **Where the key is read**: the `X-API-Key` header, or else
/// `Authorization: Bearer <key>` (the scheme in any case); an empty
/// `X-API-Key` counts as absent, so a bearer token is then used. Never the query
/// string: `?api_key=...` is ignored, so such a request has no key. The key is
/// compared as sent, byte for byte: no trimming (a key with surrounding spaces
/// is a different key), no decoding. Keys are held only as SHA-256 digests and
/// compared in constant time.
///
/// **Responses**, each with a JSON [`ErrorBody`]:
///
/// | request | status | `code` |
/// | --- | --- | --- |
/// | no key: no header, an empty value, `Bearer` without a token, another scheme | 401, `WWW-Authenticate: Bearer realm="api"` | `UNAUTHORIZED` (`"Missing API key"`) |
/// | an unknown key, the header sent twice, a key over 1 KiB | 401, `WWW-Authenticate` | `UNAUTHORIZED` (`"Invalid API key"`) |
/// | an expired or revoked key | 401, `WWW-Authenticate` | `UNAUTHORIZED` (`"Expired API key"`, `"Revoked API key"`) |
/// | a valid key without the scope | 403 | `FORBIDDEN`, naming the missing scope |
/// | any request from a client locked out (see [`Lockout`]) | 429, `Retry-After` | `LOCKED_OUT` |
/// | lockout on and no client address (served without connect info) | 500, the fix logged at error level | `INTERNAL_ERROR` |
///
/// **Brute force**: by default, 5 failed attempts (an unknown, expired,
/// revoked or malformed key; not a missing key, nor a missing scope) from one
/// client IP within 30 minutes lock that client out of every key-protected
/// handler for 30 minutes, valid key or not. The client IP is found as rate
/// limits find it (trusted proxies, IPv6 by prefix). See [`Lockout`] and
/// [`Engine::lockout_status`].
///
/// **Logs**: one event per decision, `policy = "api_key"`, with `reason`
/// (`missing`, `invalid`, `expired`, `revoked`, `insufficient_scope` or
/// `locked_out`) on refusals, `key_id` (the key's name) when known,
/// `client_ip`, and `request_id` from an `x-request-id` header of at most 128
/// characters of `[A-Za-z0-9._-]`. No key, and nothing else from the headers,
/// is ever logged. The handler may take [`ApiKeyId`] to learn the key's name.
///
/// **At start-up** [`EngineBuilder::build`] fails in production when a
/// key-protected handler exists but no key is configured (a warning in
/// development and staging). A key-protected handler that no engine wraps
/// (no `.layer(engine)` around its route) answers 500 and logs how to attach
/// one.
pub use policy_macros::require_api_key;

/// Requires a valid bearer JWT, and optionally scopes, before an async axum
/// handler runs. Needs the feature `jwt`.
///
/// ```rust,standalone_crate
/// use axum::{routing::get, Router};
/// use policy_runtime::{rate_limit, require_jwt, Claims};
///
/// #[require_jwt]
/// async fn me(Claims(claims): Claims) -> String {
///     claims.sub.unwrap_or_default()
/// }
///
/// #[require_jwt(scope = "reports:read")]
/// #[rate_limit("60/minute; 1000/hour", key = subject)]
/// async fn reports() -> &'static str {
///     "reports"
/// }
///
/// #[require_jwt(scope = any("billing:read", "billing:admin"), or_api_key)]
/// #[rate_limit("100/minute", key = claim("tenant_id"))]
/// async fn invoices() -> &'static str {
///     "invoices"
/// }
///
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .route("/reports", get(reports))
///     .route("/invoices", get(invoices));
/// # drop(app);
/// ```
///
/// **Arguments**, all optional, in any order:
///
/// | argument | meaning |
/// | --- | --- |
/// | `scope = "reports:read"` | the token must carry this scope |
/// | `scope = any("read", "write")` | at least one of them |
/// | `scope = all("read", "write")` | every one of them |
/// | `or_api_key` | a valid API key (with the scopes) is accepted instead of a token |
///
/// Scopes are written as for [`require_api_key`]: 1 to 64 ASCII letters,
/// digits, `_`, `-`, `.` or `:`. An empty or invalid scope name, an empty
/// `any()` or `all()`, a scope listed twice, an unknown argument and a second
/// `#[require_jwt]` on one handler are compile errors on the token.
///
/// **With `#[rate_limit]`**: below a `#[require_jwt]`, a rate limit may count
/// by `key = subject` (the token's `sub`; the key's name when an API key
/// admitted the request under `or_api_key`) or `key = claim("tenant_id")`
/// (one claim of the token, as text; the name is non-empty ASCII without
/// spaces). Either without a `#[require_jwt]` above the `#[rate_limit]` is a
/// compile error on `subject` or `claim`. `key = api_key` still needs a
/// `#[require_api_key]` above it.
///
/// **The handler** may take [`Claims<T>`](Claims) for the token's claims: a
/// handler with policy attributes that takes `Claims<T>` without a
/// `#[require_jwt]` is a compile error on the argument's type, while
/// `Option<Claims<T>>` is allowed (`None` when no token admitted the
/// request). Policy attributes compose in any order, top to bottom, as for
/// [`rate_limit`].
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use policy_macros::require_jwt;

/// Caps the request body an async axum handler may read, instead of the
/// engine's default.
///
/// ```rust,standalone_crate
/// use axum::{body::Bytes, routing::post, Router};
/// use policy_runtime::{body_limit, rate_limit, Engine};
///
/// #[body_limit("16MiB")]
/// async fn upload(body: Bytes) -> String {
///     format!("{} bytes", body.len())
/// }
///
/// #[rate_limit("20/hour")]
/// #[body_limit("1 KB")] // for the whole request, though it sits below the rate limit
/// async fn comment(body: String) -> String {
///     body
/// }
///
/// let app: Router = Router::new()
///     .route("/upload", post(upload))
///     .route("/comment", post(comment))
///     .layer(Engine::builder().build()?);
/// # drop(app);
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
///
/// **The size** is one string, checked at compile time: a whole number and a
/// unit, with or without a space (`"1MB"`, `"1 MB"`, `"512KiB"`):
///
/// | unit | bytes | also written |
/// | --- | --- | --- |
/// | `B` | 1 | `b` |
/// | `KB` | 1,000 | `kB`, `Kb`, `kb` |
/// | `MB` | 1,000,000 | any case, as `KB` |
/// | `GB` | 1,000,000,000 | any case, as `KB` |
/// | `KiB` | 1,024 | `kib` |
/// | `MiB` | 1,048,576 | `mib` |
/// | `GiB` | 1,073,741,824 | `gib` |
///
/// A zero size, a missing or unknown unit (`"10XB"`), a fraction (`"1.5MB"`)
/// and a size over `u64::MAX` bytes are compile errors on the string; no
/// argument, a value that is not a string literal, a second argument and a
/// second `#[body_limit]` on one handler are compile errors on the token.
///
/// **Stacking**: `#[body_limit]` applies to the whole request wherever it
/// sits among the attributes: it composes with `#[rate_limit]`,
/// `#[require_api_key]` and `#[timeout]` in any order, as they compose with
/// each other, and alone it still wraps the handler.
pub use policy_macros::body_limit;

/// Bounds how long a request to an async axum handler may take, instead of
/// the engine's default.
///
/// ```rust,standalone_crate
/// use axum::{routing::get, Router};
/// use policy_runtime::{require_api_key, timeout, Engine};
///
/// #[timeout("30s")]
/// async fn report() -> &'static str {
///     "report"
/// }
///
/// #[require_api_key]
/// #[timeout("2 minutes")] // for the whole request, though it sits below the key check
/// async fn export() -> &'static str {
///     "export"
/// }
///
/// let app: Router = Router::new()
///     .route("/report", get(report))
///     .route("/export", get(export))
///     .layer(Engine::builder().api_key("exports", "exports-key-0123456789abcdef").build()?);
/// # drop(app);
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
///
/// **The duration** is one string, checked at compile time: a whole number
/// and a lowercase unit, with or without a space (`"30s"`, `"30 s"`,
/// `"500ms"`, `"2 minutes"`):
///
/// | unit | also written |
/// | --- | --- |
/// | `ms` | `millisecond`, `milliseconds` |
/// | `s` | `second`, `seconds` |
/// | `m` | `min`, `minute`, `minutes` |
/// | `h` | `hour`, `hours` |
///
/// It is at least 1 ms and at most 24 hours. A zero duration (`"0s"`), a
/// missing or unknown unit (`"1 fortnight"`), a unit not in lowercase, a
/// fraction (`"1.5s"`) and a duration over 24 hours are compile errors on the
/// string; no argument, a value that is not a string literal (`30`), a second
/// argument and a second `#[timeout]` on one handler are compile errors on
/// the token.
///
/// **Stacking**: `#[timeout]` applies to the whole request wherever it sits
/// among the attributes: it composes with `#[rate_limit]`,
/// `#[require_api_key]` and `#[body_limit]` in any order, as they compose
/// with each other, and alone it still wraps the handler.
pub use policy_macros::timeout;

/// Maps each variant of an error enum to an HTTP status and a JSON body.
///
/// ```
/// use axum::{body::Body, extract::Path, http::Request, routing::get, Router};
/// use policy_runtime::api_error;
/// use tower::ServiceExt;
///
/// #[api_error]
/// #[derive(Debug, thiserror::Error)]
/// enum AppError {
///     #[error("user {0} not found")]
///     #[api(status = 404, code = "USER_NOT_FOUND")]
///     UserNotFound(u64),
///     #[error("email is invalid")]
///     #[api(status = 400)] // code: "VALIDATION"
///     Validation,
///     #[error("database unreachable")]
///     #[api(status = 503)]
///     Database(#[from] std::io::Error),
/// }
///
/// async fn user(Path(id): Path<u64>) -> Result<String, AppError> {
///     Err(AppError::UserNotFound(id))
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app: Router = Router::new().route("/users/{id}", get(user));
///     let response = app.oneshot(Request::get("/users/7").body(Body::empty())?).await?;
///     assert_eq!(response.status(), 404);
///     let body = axum::body::to_bytes(response.into_body(), 1024).await?;
///     assert_eq!(body, r#"{"error":"user 7 not found","code":"USER_NOT_FOUND"}"#);
///     Ok(())
/// }
/// ```
///
/// Put `#[api_error]` above `#[derive(...)]`, and give every variant
/// `#[api(status = <400..=599>)]`. The enum must implement
/// `std::error::Error`, as `thiserror` does (`#[from]` and `#[source]`
/// included); it gets [`ApiError`] and axum's `IntoResponse`.
///
/// | variant argument | meaning |
/// | --- | --- |
/// | `status = 404` | the HTTP status, 400 to 599 (required) |
/// | `code = "USER_NOT_FOUND"` | the machine-readable code; by default the variant's name in SCREAMING_SNAKE_CASE |
/// | `title = "User not found"` | the `problem` format's `title` (by default the reason phrase) |
/// | `severity = "low"` | the `detailed` format's `severity`: `low`, `medium`, `high` or `critical` (by default `high` for 5xx, `medium` for 4xx) |
/// | `category = "lookup"` | the `detailed` format's `category` (by default named after the status) |
/// | `expose` | show the message (and fields) even for a 5xx |
/// | `mask` | hide the message (and fields) even for a 4xx |
///
/// | field argument | meaning |
/// | --- | --- |
/// | `#[api(extension)]`, `#[api(extension = "name")]` | the field (any `serde::Serialize`) as an extension member, in the `problem` and `detailed` formats |
/// | `#[api(errors)]` | a `Vec<FieldError>` field: the per-field errors of a validation error (`details` or RFC 9457 `errors`) |
///
/// ```
/// use axum::response::IntoResponse;
/// use policy_runtime::{api_error, FieldError};
///
/// #[api_error]
/// #[derive(Debug, thiserror::Error)]
/// enum SignupError {
///     #[error("invalid signup")]
///     #[api(status = 422, code = "VALIDATION_ERROR", category = "validation")]
///     Invalid {
///         #[api(errors)]
///         errors: Vec<FieldError>,
///     },
///     #[error("you have {balance} credits, {cost} are needed")]
///     #[api(status = 402, title = "You do not have enough credit")]
///     OutOfCredit {
///         #[api(extension)]
///         balance: u32,
///         #[api(extension)]
///         cost: u32,
///     },
///     #[error("the quota of the day is used up")]
///     #[api(status = 503, expose, severity = "low")]
///     QuotaUsedUp,
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let body = |error: SignupError| axum::body::to_bytes(error.into_response().into_body(), 1024);
///     // Extension members show in the `problem` and `detailed` formats only.
///     assert_eq!(
///         body(SignupError::OutOfCredit { balance: 3, cost: 5 }).await?,
///         r#"{"error":"you have 3 credits, 5 are needed","code":"OUT_OF_CREDIT"}"#
///     );
///     // `expose`: a 5xx that shows its message.
///     assert_eq!(
///         body(SignupError::QuotaUsedUp).await?,
///         r#"{"error":"the quota of the day is used up","code":"QUOTA_USED_UP"}"#
///     );
///     let invalid = SignupError::Invalid { errors: vec![FieldError::new("email", "format", "not an email")] };
///     assert_eq!(
///         body(invalid).await?,
///         r#"{"error":"invalid signup","code":"VALIDATION_ERROR","details":[{"field":"email","message":"not an email","code":"format"}]}"#
///     );
///     Ok(())
/// }
/// ```
///
/// A shown variant answers its `Display` message, as in `{"error": "<message>",
/// "code": "<code>"}` in the default format ([`ErrorFormat`]). A hidden one
/// (5xx by default) answers only the status's generic reason, such as
/// `{"error": "Service Unavailable", "code": "DATABASE"}`, with no fields; in
/// development ([`Environment`]) behind an engine it shows the message and
/// its `source()` chain instead. Either way the error and its source chain
/// are logged, 5xx at error level, with the request id when a
/// [`RequestLayer`] runs.
///
/// Misuse is a compile error on the wrong token: the attribute on a struct, a
/// variant without a status, a status outside 400–599, a duplicate or unknown
/// argument, an unknown severity, an empty title or category, `expose` with
/// `mask`, an extension member named like a member of the formats or twice,
/// an unnamed tuple field as an extension, two `errors` fields, and a field
/// type that does not fit its role.
pub use policy_macros::api_error;

/// The README's examples, compiled and run as doctests. The README sits two
/// levels up only in the workspace (a published package has it at its root),
/// so it is included for `cargo test --doc` alone.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Keeps the tokens given to it: the feature `utoipa` is on.
#[cfg(feature = "utoipa")]
#[doc(hidden)]
#[macro_export]
macro_rules! __policy_utoipa_impl {
    ($($tokens:tt)*) => { $($tokens)* };
}

/// Drops the tokens given to it: the feature `utoipa` is off.
#[cfg(not(feature = "utoipa"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __policy_utoipa_impl {
    ($($tokens:tt)*) => {};
}
/// The examples of the Flask-Limiter migration guide (`MIGRATING.md`),
/// compiled and run as doctests, as the README's are.
#[cfg(doctest)]
#[doc = include_str!("../../MIGRATING.md")]
pub struct MigratingDoctests;

/// Support for the code the macros generate. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::ErrorBody;
    pub use crate::Quota;
    pub use crate::extract::{Extracted, ExtractedLast, Via};
    pub use crate::guard::Guard;
    pub use crate::handler_checks::{
        BodyExtractor, HandlerResponse, PartsExtractor, body_extractor, parts_extractor,
        send_future,
    };
    pub use crate::handler_policy::{
        Check, CountWhen, HandlerPolicy, KeyRequirement, KeySource, Limits, OnMissingKey, Policy,
        RateLimitSpec, Registration,
    };
    pub use crate::named_state::{ExtractLast, ExtractParts, NotAnExtractor, Probe};
    pub use crate::{FieldError, Severity};
    pub use axum::extract::{FromRequest, FromRequestParts, Request};
    pub use axum::http::StatusCode;
    pub use axum::http::request::Parts;
    pub use axum::response::{IntoResponse, Response};
    pub use core::time::Duration;
    pub use inventory;

    /// The code the macros write for utoipa: kept with the feature
    /// `utoipa`, dropped without it, so that it compiles either way.
    pub use crate::__policy_utoipa_impl as utoipa_impl;
    #[cfg(feature = "utoipa")]
    pub use crate::openapi::api_error::{ApiErrorDoc, api_error_responses};
    #[cfg(feature = "utoipa")]
    pub use crate::openapi::link::OperationLink;
    #[cfg(feature = "utoipa")]
    pub use utoipa;

    /// The response for an `#[api_error]` value.
    pub fn api_error_response<E: crate::ApiError + ?Sized>(error: &E) -> Response {
        crate::error_response::respond(error)
    }

    /// The per-field errors of an `#[api(errors)]` field, for its body.
    pub fn field_errors(errors: &[FieldError]) -> impl Iterator<Item = FieldError> + '_ {
        errors.iter().cloned()
    }
}
