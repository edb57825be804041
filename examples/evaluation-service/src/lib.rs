//! The evaluation service: a FastAPI answer-scoring service's policy surface,
//! rebuilt on `policy-runtime`. The scoring itself is a stub.
//!
//! Every policy is an attribute on a handler or a call on the engine's
//! builder ([`engine_builder`]); [`configure`] adds what the environment
//! says (`ENVIRONMENT`, `API_KEYS`, `RATELIMIT_ENABLED`, `REDIS_URL`, ...)
//! and [`app`] makes the router. `src/main.rs` serves it; the tests in
//! `tests/` serve it on a free loopback port.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{
    ApiKeyId, BuildError, ClientKey, Engine, EngineBuilder, ErrorFormat, FailureMode, FieldError,
    Health, JsonFallbacks, Lockout, Penalty, RedisConfigError, RedisStore, RequestLayer,
    StoreError, api_error, body_limit, rate_limit, require_api_key,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;

/// The port `cargo run -p evaluation-service` listens on, unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3002;

/// The Redis key prefix of this service's limits, shared by its instances.
pub const REDIS_PREFIX: &str = "evaluation";

/// The longest answer accepted, in characters.
const MAX_ANSWER_CHARS: usize = 5_000;

/// Every error the handlers answer, in the engine's format (`Detailed`).
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    /// A request whose fields are wrong: 422 with one entry per field in
    /// `details` (an empty `details` in production).
    #[error("the evaluation request is invalid")]
    #[api(status = 422, code = "VALIDATION_ERROR", category = "validation")]
    Invalid {
        /// What is wrong, field by field.
        #[api(errors)]
        errors: Vec<FieldError>,
    },
    /// An evaluation id that names nothing.
    #[error("no evaluation with id {0}")]
    #[api(
        status = 404,
        code = "EVALUATION_NOT_FOUND",
        severity = "low",
        category = "lookup"
    )]
    NotFound(u64),
    /// The scoring model failed: 502, its details sent in development only.
    #[error("the scoring model at {0} did not answer")]
    #[api(status = 502, code = "SCORING_FAILED", category = "upstream")]
    Scoring(&'static str),
}

/// The operators' errors.
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store holds nothing for that client in that scope.
    #[error("no rate-limit state for `{client}` in `{scope}`")]
    #[api(status = 404, code = "NO_LIMIT_STATE", severity = "low")]
    NoState {
        /// The scope asked for.
        scope: String,
        /// The client asked for.
        client: String,
    },
    /// The rate-limit store could not be asked.
    #[error("the rate-limit store failed")]
    #[api(status = 503, code = "STORE_UNAVAILABLE")]
    Store(#[from] StoreError),
}

/// What `POST /api/v1/evaluate` takes.
#[derive(Debug, Deserialize)]
pub struct EvaluationRequest {
    /// The question answered.
    pub question_id: u64,
    /// The learner's answer.
    pub answer: String,
}

/// What `POST /api/v1/evaluate` answers.
#[derive(Debug, Serialize)]
pub struct Evaluation {
    /// The evaluation's id.
    pub id: u64,
    /// Who asked: the API key's name.
    pub user: String,
    /// The score, 0 to 100.
    pub score: u32,
}

/// The public rubrics: per client IP (30 a minute), within the global limit.
#[rate_limit("1000/minute", key = global, scope = "global")]
#[rate_limit("30/minute", scope = "rubrics")]
async fn rubrics() -> Json<Value> {
    Json(json!({"rubrics": ["grammar", "pronunciation", "fluency"]}))
}

/// Scoring: per user (the API key), 10 a minute with bursts of 15, within
/// the global limit; bodies over 64 KB are refused before anything else.
#[body_limit("64KB")]
#[require_api_key]
#[rate_limit("1000/minute", key = global, scope = "global")]
#[rate_limit("10/minute", key = api_key, burst = 15, scope = "evaluate")]
async fn evaluate(
    user: ApiKeyId,
    Json(request): Json<EvaluationRequest>,
) -> Result<Json<Evaluation>, EvaluationError> {
    let mut errors = Vec::new();
    if request.answer.trim().is_empty() {
        errors.push(FieldError::new(
            "answer",
            "value_error.missing",
            "the answer must not be empty",
        ));
    }
    if request.answer.chars().count() > MAX_ANSWER_CHARS {
        errors.push(FieldError::new(
            "answer",
            "value_error.any_str.max_length",
            "the answer must be at most 5000 characters",
        ));
    }
    if request.question_id == 0 {
        errors.push(FieldError::new(
            "question_id",
            "value_error.number.not_gt",
            "the question id must be greater than 0",
        ));
    }
    if !errors.is_empty() {
        return Err(EvaluationError::Invalid { errors });
    }
    // The stub of the scoring model: "model-down" plays its outage.
    if request.answer == "model-down" {
        return Err(EvaluationError::Scoring("10.0.3.7:8500"));
    }
    Ok(Json(Evaluation {
        id: request.question_id * 1000 + request.answer.len() as u64,
        user: user.name().to_owned(),
        score: (request.answer.split_whitespace().count() * 10).min(100) as u32,
    }))
}

/// One past evaluation: per user, 60 a minute.
#[require_api_key]
#[rate_limit("60/minute", key = api_key, scope = "evaluations")]
async fn evaluation(
    user: ApiKeyId,
    Path(id): Path<u64>,
) -> Result<Json<Evaluation>, EvaluationError> {
    // The stub of the evaluation store: ids under 1000 do not exist.
    if id < 1000 {
        return Err(EvaluationError::NotFound(id));
    }
    Ok(Json(Evaluation {
        id,
        user: user.name().to_owned(),
        score: (id % 101) as u32,
    }))
}

/// A duration in whole seconds, rounded up as `Retry-After` is.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

/// The client of an admin route: `global`, an IP address, or an API key's name.
fn client_key(client: &str) -> ClientKey {
    match client {
        "global" => ClientKey::Global,
        other => match other.parse::<IpAddr>() {
            Ok(ip) => ClientKey::Ip(ip),
            Err(_) => ClientKey::ApiKey(other.into()),
        },
    }
}

/// A client's state in a scope, without counting a request.
#[require_api_key(scope = "admin")]
async fn limit_state(
    State(engine): State<Engine>,
    Path((scope, client)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    match engine.limit_state(&scope, &client_key(&client)).await? {
        Some(state) => Ok(Json(json!({
            "scope": scope,
            "client": client,
            "limit": state.quota.count(),
            "period_seconds": state.quota.period().as_secs(),
            "remaining": state.remaining,
            "reset_after_seconds": whole_seconds(state.reset_after),
        }))),
        None => Err(AdminError::NoState { scope, client }),
    }
}

/// Clears a client's limit in a scope (and any penalty block on it).
#[require_api_key(scope = "admin")]
async fn clear_limit(
    State(engine): State<Engine>,
    Path((scope, client)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    engine.reset_limit(&scope, &client_key(&client)).await?;
    Ok(Json(
        json!({"scope": scope, "client": client, "cleared": true}),
    ))
}

/// Admitted and refused requests per scope since this instance started.
#[require_api_key(scope = "admin")]
async fn limit_stats(State(engine): State<Engine>) -> Json<Value> {
    let mut scopes: Vec<Value> = engine
        .rate_limit_stats()
        .into_iter()
        .map(|stats| json!({"scope": stats.scope, "allowed": stats.allowed, "rejected": stats.rejected}))
        .collect();
    scopes.sort_by(|a, b| a["scope"].as_str().cmp(&b["scope"].as_str()));
    Json(json!({"scopes": scopes}))
}

/// A client's lockout: failed key attempts, and how long it stays locked out.
#[require_api_key(scope = "admin")]
async fn lockout_status(State(engine): State<Engine>, Path(ip): Path<IpAddr>) -> Json<Value> {
    let status = engine.lockout_status(ip);
    Json(json!({
        "ip": ip,
        "failures": status.failures,
        "locked": status.locked_for.is_some(),
        "locked_for_seconds": status.locked_for.map(whole_seconds),
    }))
}

/// Lifts a client's lockout.
#[require_api_key(scope = "admin")]
async fn unlock(State(engine): State<Engine>, Path(ip): Path<IpAddr>) -> Json<Value> {
    let unlocked = engine.unlock(ip);
    Json(json!({"ip": ip, "unlocked": unlocked}))
}

/// The engine's settings before the environment is read: the detailed error
/// format with field details hidden in production, `X-RateLimit-Window`
/// with the other rate-limit headers, the penalty box, the lockout and the
/// body limit.
pub fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .error_format(ErrorFormat::Detailed)
        .field_errors_in_production(false)
        // As the original: `X-RateLimit-Window`, the deciding limit's period in seconds.
        .rate_limit_window_header(true)
        // 5 refusals by one scope within a minute: blocked by it for 5 minutes.
        .penalty(Penalty::new(
            5,
            Duration::from_secs(60),
            Duration::from_secs(300),
        ))
        // 5 bad API keys from one client within 30 minutes: locked out for 30 minutes.
        .lockout(Lockout::new(
            5,
            Duration::from_secs(30 * 60),
            Duration::from_secs(30 * 60),
        ))
        .max_body_size(1_000_000)
}

/// What the service runs with: the engine, and the Redis store when
/// `REDIS_URL` names one.
pub struct Config {
    /// The engine, with every setting checked.
    pub engine: Engine,
    /// The shared store, when `REDIS_URL` is set.
    pub redis: Option<RedisStore>,
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// `REDIS_URL` does not name a usable server.
    #[error("REDIS_URL: {0}")]
    Redis(#[from] RedisConfigError),
    /// Another setting is wrong; every problem is listed.
    #[error(transparent)]
    Engine(#[from] BuildError),
}

/// The engine from the given variables (the process environment in
/// `main`): [`engine_builder`], then `ENVIRONMENT`, `API_KEYS`,
/// `RATELIMIT_ENABLED` and the library's other variables, then `REDIS_URL`.
///
/// With `REDIS_URL`, limits are counted in Redis under the prefix
/// `evaluation`, shared by every instance; while Redis cannot be reached
/// they are counted in memory on each instance (logged once at warn when
/// the outage starts, at info when it ends). Without it, in memory.
pub fn configure(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, StartupError> {
    configure_from(engine_builder(), vars)
}

/// [`configure`] from a builder of the caller's: [`engine_builder`] with a
/// [`ManualClock`](policy_runtime::ManualClock), in the tests, so that
/// limits, penalties and lockouts wait for no real time.
pub fn configure_from(
    builder: EngineBuilder,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, StartupError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let redis_url = vars
        .iter()
        .find(|(name, value)| name == "REDIS_URL" && !value.is_empty())
        .map(|(_, url)| url.clone());
    let mut builder = builder.from_vars(vars);
    let redis = match redis_url {
        Some(url) => {
            let store = RedisStore::builder()
                .url(url)
                .prefix(REDIS_PREFIX)
                .failure_mode(FailureMode::FallbackToMemory)
                .build()?;
            builder = builder.limiter_store(store.clone());
            Some(store)
        }
        None => None,
    };
    Ok(Config {
        engine: builder.build()?,
        redis,
    })
}

/// Logs where the limits are counted, once at start-up: in Redis (info),
/// in memory because `REDIS_URL` is not set (warn), or in memory because
/// Redis does not answer a `PING` (warn; the store keeps trying, and logs
/// when it is back).
pub async fn log_limit_store(redis: Option<&RedisStore>) {
    match redis {
        None => {
            tracing::warn!("REDIS_URL is not set: rate limits are counted in memory, per instance")
        }
        Some(store) => match store.ping().await {
            Ok(()) => tracing::info!("rate limits are counted in Redis, shared by every instance"),
            Err(error) => tracing::warn!(
                %error,
                "Redis cannot be reached at start-up: rate limits are counted in memory on this \
                 instance until it answers"
            ),
        },
    }
}

/// The service's router: the API, the admin routes, the health routes
/// (never rate limited) and request ids (`req_` and 32 hex digits when the
/// client sends none).
pub fn app(engine: Engine) -> Router {
    let health = Health::new(env!("CARGO_PKG_VERSION"))
        .engine(&engine)
        .ping_route()
        .detailed_route()
        .metrics_route()
        .router();
    Router::new()
        .route("/api/v1/rubrics", get(rubrics))
        .route("/api/v1/evaluate", post(evaluate))
        .route("/api/v1/evaluations/{id}", get(evaluation))
        .route("/admin/rate-limits/stats", get(limit_stats))
        .route(
            "/admin/rate-limits/{scope}/{client}",
            get(limit_state).delete(clear_limit),
        )
        .route("/admin/lockouts/{ip}", get(lockout_status).delete(unlock))
        .with_state(engine.clone())
        .json_fallbacks()
        .layer(engine)
        .merge(health)
        .layer(
            RequestLayer::new()
                .id_prefix("req_")
                .expect("`req_` is a valid request id prefix"),
        )
}
