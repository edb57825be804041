//! The Flask mobile-app backend (pronunciation scoring), rebuilt on
//! `policy-runtime`: the same routes, limits, error bodies, environments and
//! health route, with the scoring stubbed.
//!
//! | policy | here |
//! | --- | --- |
//! | 200 per day and 50 per hour per client IP by default | [`engine_builder`]: `default_limits`, and `route_layer(engine.default_limits())` in [`app`] |
//! | `POST /scoreDaily` 20 per hour | `#[rate_limit("20 per hour")]` on [`score_daily`] |
//! | `POST /auth/register` 5 per hour | `#[rate_limit("5 per hour")]` on [`register`] |
//! | `X-RateLimit-Limit`, `-Remaining`, `-Reset` | `rate_limit_headers(HeaderStyle::Legacy)` |
//! | `{"error": "..."}` for every error | `error_format(ErrorFormat::Simple)` |
//! | ValidationError 400, AuthenticationError 401, NotFoundError 404, upstream error 500 | `#[api_error]` on [`AppError`] |
//! | development, staging, production | `ENVIRONMENT`, read by `from_vars`; [`subscriber`] logs at its level |
//! | `/health` answers `{"status": "ok"}` | `Health::new(..).without_version()`, outside the limits |

use axum::Router;
use axum::routing::{get, post};
// The library's `Json` and `Path`: their rejections (a body that is not JSON,
// one over the size limit) are JSON errors in the engine's format, in plain
// handlers too (policy-wrapped handlers get that with axum's own).
use policy_runtime::extract::{Json, Path};
use policy_runtime::{
    BuildError, Engine, EngineBuilder, Environment, ErrorFormat, HeaderStyle, Health,
    JsonFallbacks, RequestLayer, api_error, rate_limit,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The port the app listens on unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3001;

/// The errors of the original's custom error classes, each with its status.
/// 5xx messages are logged with their source chain and, outside
/// development, never sent.
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The original's `ValidationError`.
    #[error("{0}")]
    #[api(status = 400, code = "VALIDATION_ERROR")]
    Validation(&'static str),
    /// The original's `AuthenticationError`.
    #[error("Invalid email or password")]
    #[api(status = 401, code = "AUTHENTICATION_ERROR")]
    Authentication,
    /// The original's `NotFoundError`.
    #[error("Word '{0}' not found")]
    #[api(status = 404, code = "NOT_FOUND")]
    NotFound(String),
    /// The paid evaluation API failed.
    #[error("Pronunciation evaluation failed")]
    #[api(status = 500, code = "EVALUATION_ERROR")]
    Evaluation(#[source] UpstreamError),
}

/// What the (stubbed) evaluation API answered when it failed.
#[derive(Debug, thiserror::Error)]
#[error("evaluation API at https://speech.internal/v1/score answered 502")]
pub struct UpstreamError;

/// A scoring request.
#[derive(Deserialize)]
pub struct ScoreRequest {
    /// The text the user read aloud.
    #[serde(default)]
    pub text: String,
    /// The recording, base64 (the stub only looks at whether it is empty).
    #[serde(default)]
    pub audio: String,
}

/// A score.
#[derive(Serialize)]
pub struct Score {
    /// The text scored.
    pub text: String,
    /// 0 to 100.
    pub score: u32,
}

/// Scores one recording against the paid upstream API: 20 an hour per
/// client IP. The scoring is a stub: an empty recording is what the
/// upstream refuses.
#[rate_limit("20 per hour")]
pub async fn score_daily(Json(request): Json<ScoreRequest>) -> Result<Json<Score>, AppError> {
    if request.text.trim().is_empty() {
        return Err(AppError::Validation("Field 'text' is required"));
    }
    if request.audio.is_empty() {
        return Err(AppError::Evaluation(UpstreamError));
    }
    let score = (request.text.len() * 7 + request.audio.len()) as u32 % 101;
    Ok(Json(Score {
        text: request.text,
        score,
    }))
}

/// Sign-up details.
#[derive(Deserialize)]
pub struct Credentials {
    /// The user's email address.
    #[serde(default)]
    pub email: String,
    /// The user's password.
    #[serde(default)]
    pub password: String,
}

/// Sign-ups: 5 an hour per client IP, against spam accounts. The account
/// store is a stub.
#[rate_limit("5 per hour")]
pub async fn register(Json(user): Json<Credentials>) -> Result<Json<serde_json::Value>, AppError> {
    if !user.email.contains('@') {
        return Err(AppError::Validation(
            "Field 'email' must be an email address",
        ));
    }
    if user.password.len() < 8 {
        return Err(AppError::Validation(
            "Field 'password' must be at least 8 characters",
        ));
    }
    Ok(Json(
        serde_json::json!({"status": "registered", "email": user.email}),
    ))
}

/// The demo account of the stubbed user store.
pub const DEMO_EMAIL: &str = "ada@example.com";
/// Its password.
pub const DEMO_PASSWORD: &str = "correct horse battery";

/// Log in: the engine's default limits (no limit of its own).
pub async fn login(Json(user): Json<Credentials>) -> Result<Json<serde_json::Value>, AppError> {
    if user.email == DEMO_EMAIL && user.password == DEMO_PASSWORD {
        Ok(Json(serde_json::json!({"token": "stub-session-token"})))
    } else {
        Err(AppError::Authentication)
    }
}

/// A word's reference pronunciation: the engine's default limits.
pub async fn word(Path(word): Path<String>) -> Result<Json<serde_json::Value>, AppError> {
    match word.as_str() {
        "hello" => Ok(Json(serde_json::json!({"word": "hello", "ipa": "həˈləʊ"}))),
        "water" => Ok(Json(serde_json::json!({"word": "water", "ipa": "ˈwɔːtə"}))),
        _ => Err(AppError::NotFound(word)),
    }
}

/// The engine's settings before the environment is read: the original's
/// Flask-Limiter and error-handler set-up.
pub fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .default_limits("200 per day; 50 per hour") // RATELIMIT_DEFAULT overrides
        .rate_limit_headers(HeaderStyle::Legacy) // X-RateLimit-Limit, -Remaining, -Reset
        .error_format(ErrorFormat::Simple) // {"error": "..."}
}

/// The engine, with `ENVIRONMENT`, `RATELIMIT_*` and `TRUSTED_PROXIES`
/// read from `vars` (`std::env::vars()` in `main`).
pub fn engine(vars: impl IntoIterator<Item = (String, String)>) -> Result<Engine, BuildError> {
    engine_builder().from_vars(vars).build()
}

/// The routes, under the engine's policies.
pub fn app(engine: Engine) -> Router {
    Router::new()
        // No limit of their own: 200 per day and 50 per hour per client IP.
        .route("/words/{word}", get(word))
        .route("/auth/login", post(login))
        .route_layer(engine.default_limits())
        // Their own limits, instead of the defaults.
        .route("/scoreDaily", post(score_daily))
        .route("/auth/register", post(register))
        .json_fallbacks()
        .layer(engine.clone())
        // Outside the engine: never limited.
        .merge(
            Health::new(env!("CARGO_PKG_VERSION"))
                .without_version()
                .router(),
        )
        .layer(RequestLayer::new())
}

/// The log subscriber of an environment: its level (debug in development,
/// info in staging and production; `RUST_LOG`, when given, instead), as text
/// lines to `writer`.
pub fn subscriber<W>(
    environment: Environment,
    rust_log: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = rust_log
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new(environment.default_log_level()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

/// Serves `app` on `listener` with the client addresses the limits count by.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
