//! The Flask chat service, rebuilt on `policy-runtime`: default and
//! per-endpoint-type limits shared through Redis, a 16 MB request limit,
//! input length limits as field errors, slow-request logs, a health route
//! with its dependencies, generic error messages and JSON logs. The chat
//! itself (the assistant and the conversation database) is a stub.
//!
//! | policy | here |
//! | --- | --- |
//! | `RATELIMIT_DEFAULT="10 per minute"` | `default_limits("10 per minute")`, `RATELIMIT_DEFAULT` through `from_vars`, `route_layer(engine.default_limits())` |
//! | limits per endpoint type | `#[rate_limit("5 per minute")]` on log-in, `"30 per minute"` on chat messages, `"60 per minute"` on reads |
//! | `REDIS_URL` for distributed limits | a `RedisStore` from the same variables ([`redis_store`]) handed to the engine ([`engine`]); in memory, logged, without it |
//! | 16 MB request limit | `max_body_size(16 MiB)` |
//! | input length limits | [`ChatError::Invalid`], an `#[api_error]` variant with `#[api(errors)]` field errors |
//! | requests slower than 5 s logged | `RequestLayer::new().slow_threshold(..)` |
//! | `/health` with the dependencies' status | `Health::check("database", ..)`, `.engine(&engine)` (the Redis store), `.status_from_checks()` |
//! | generic error messages | `#[api_error]`: 5xx details logged, never sent outside development |
//! | JSON logs | [`subscriber`] |

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
// The library's `Json` and `Path`: their rejections are JSON errors in the
// engine's format, in plain handlers too.
use policy_runtime::extract::{Json, Path};
use policy_runtime::{
    BuildError, Engine, EngineBuilder, Environment, FieldError, Health, JsonFallbacks,
    RedisConfigError, RedisStore, RequestLayer, api_error, rate_limit,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The port the app listens on unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3005;

/// The largest request body: 16 MB, as Flask's `MAX_CONTENT_LENGTH = 16 * 1024 * 1024`
/// (`REQUEST_MAX_BODY_SIZE` overrides it).
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Requests that take at least this long are logged as slow.
pub const SLOW_REQUEST: Duration = Duration::from_secs(5);

/// The longest chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// The longest conversation id, user name and password, in characters.
pub const MAX_ID_CHARS: usize = 64;
/// The longest user name.
pub const MAX_USERNAME_CHARS: usize = 50;
/// The longest password.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// The message the stubbed assistant fails on, to show a 5xx.
pub const FAILING_MESSAGE: &str = "/simulate-assistant-failure";

/// What the chat endpoints answer when they fail: short, generic messages.
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// Input over its length limit, or missing: one field error each.
    #[error("Invalid input")]
    #[api(status = 400, code = "VALIDATION_ERROR")]
    Invalid {
        /// What is wrong with which field.
        #[api(errors)]
        errors: Vec<FieldError>,
    },
    /// Wrong user name or password (which one is not said).
    #[error("Invalid credentials")]
    #[api(status = 401, code = "UNAUTHORIZED")]
    Credentials,
    /// No such conversation.
    #[error("Conversation not found")]
    #[api(status = 404, code = "NOT_FOUND")]
    NoConversation,
    /// The assistant failed; the cause is logged, never sent.
    #[error("the assistant failed")]
    #[api(status = 502, code = "UPSTREAM_ERROR")]
    Assistant(#[source] std::io::Error),
}

/// Field errors for the values outside their length limits.
fn lengths(fields: &[(&'static str, &str, usize, usize)]) -> Result<(), ChatError> {
    let errors: Vec<FieldError> = fields
        .iter()
        .filter_map(|&(field, value, min, max)| {
            let chars = value.chars().count();
            if chars < min {
                Some(FieldError::new(
                    field,
                    "required",
                    format!("{field} is required"),
                ))
            } else if chars > max {
                Some(FieldError::new(
                    field,
                    "too_long",
                    format!("{field} must be at most {max} characters"),
                ))
            } else {
                None
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ChatError::Invalid { errors })
    }
}

/// The conversation store: a stub of the original's database.
#[derive(Clone, Default)]
pub struct Database(Arc<Mutex<HashMap<String, Vec<String>>>>);

impl Database {
    /// Whether the database answers (the stub always does).
    pub async fn ping(&self) -> Result<(), String> {
        self.0.lock().map(|_| ()).map_err(|_| "poisoned".to_owned())
    }
}

/// A chat message.
#[derive(Deserialize)]
pub struct ChatRequest {
    /// 1 to 4000 characters.
    #[serde(default)]
    pub message: String,
    /// 1 to 64 characters.
    #[serde(default)]
    pub conversation_id: String,
}

/// The assistant's answer.
#[derive(Serialize)]
pub struct ChatReply {
    /// The conversation.
    pub conversation_id: String,
    /// The answer.
    pub reply: String,
}

/// Sends a message to the assistant: a chat endpoint, 30 a minute per client IP.
#[rate_limit("30 per minute")]
pub async fn send_message(
    State(database): State<Database>,
    Json(request): Json<ChatRequest>,
) -> Result<Json<ChatReply>, ChatError> {
    lengths(&[
        ("message", &request.message, 1, MAX_MESSAGE_CHARS),
        ("conversation_id", &request.conversation_id, 1, MAX_ID_CHARS),
    ])?;
    if request.message == FAILING_MESSAGE {
        return Err(ChatError::Assistant(std::io::Error::other(
            "model endpoint http://10.0.4.2:8000/v1/chat refused the connection",
        )));
    }
    let reply = format!("You said: {}", request.message);
    let mut conversations = database.0.lock().unwrap_or_else(|e| e.into_inner());
    let history = conversations
        .entry(request.conversation_id.clone())
        .or_default();
    history.push(request.message);
    history.push(reply.clone());
    Ok(Json(ChatReply {
        conversation_id: request.conversation_id,
        reply,
    }))
}

/// A conversation's messages: a read endpoint, 60 a minute per client IP.
#[rate_limit("60 per minute")]
pub async fn conversation(
    State(database): State<Database>,
    Path(id): Path<String>,
) -> Result<Json<Vec<String>>, ChatError> {
    lengths(&[("conversation_id", &id, 1, MAX_ID_CHARS)])?;
    let conversations = database.0.lock().unwrap_or_else(|e| e.into_inner());
    conversations
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or(ChatError::NoConversation)
}

/// Deletes a conversation: no limit of its own, so the default limits.
pub async fn delete_conversation(
    State(database): State<Database>,
    Path(id): Path<String>,
) -> Result<StatusCode, ChatError> {
    let mut conversations = database.0.lock().unwrap_or_else(|e| e.into_inner());
    match conversations.remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ChatError::NoConversation),
    }
}

/// Log-in details.
#[derive(Deserialize)]
pub struct Login {
    /// 1 to 50 characters.
    #[serde(default)]
    pub username: String,
    /// 1 to 128 characters.
    #[serde(default)]
    pub password: String,
}

/// The stubbed user store's one user.
pub const DEMO_USER: (&str, &str) = ("ada", "correct horse battery");

/// Logs in: an authentication endpoint, 5 a minute per client IP.
#[rate_limit("5 per minute")]
pub async fn login(Json(login): Json<Login>) -> Result<Json<serde_json::Value>, ChatError> {
    lengths(&[
        ("username", &login.username, 1, MAX_USERNAME_CHARS),
        ("password", &login.password, 1, MAX_PASSWORD_CHARS),
    ])?;
    if (login.username.as_str(), login.password.as_str()) == DEMO_USER {
        Ok(Json(serde_json::json!({"token": "stub-session-token"})))
    } else {
        Err(ChatError::Credentials)
    }
}

/// The engine's settings before the environment is read: the original's
/// `RATELIMIT_DEFAULT` and its body limit. The limits of each endpoint type
/// are the handlers' attributes.
pub fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .default_limits("10 per minute") // RATELIMIT_DEFAULT overrides
        .max_body_size(MAX_BODY_BYTES) // REQUEST_MAX_BODY_SIZE overrides
}

/// The Redis store named by `REDIS_URL` in `vars` (`std::env::vars()` in
/// `main`), with the TLS files of `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`
/// and `REDIS_TLS_KEY_FILE`, its keys under `chat:`; `None` when `REDIS_URL`
/// is not set.
pub fn redis_store(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Option<RedisStore>, RedisConfigError> {
    match RedisStore::builder()
        .url_from_vars(vars)
        .prefix("chat")
        .build()
    {
        Ok(store) => Ok(Some(store)),
        Err(RedisConfigError::MissingUrl) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The engine, with `ENVIRONMENT`, `RATELIMIT_*`, `REQUEST_MAX_BODY_SIZE` and `TRUSTED_PROXIES` read from `vars`
/// (`std::env::vars()` in `main`), its limits counted in `redis` when given
/// ([`redis_store`], from the same variables, in `main`) and in memory otherwise.
pub fn engine(
    vars: impl IntoIterator<Item = (String, String)>,
    redis: Option<RedisStore>,
) -> Result<Engine, BuildError> {
    let builder = engine_builder().from_vars(vars);
    match redis {
        Some(store) => builder.limiter_store(store),
        None => builder,
    }
    .build()
}

/// The routes under the engine's policies, with requests that take
/// `slow_request` or longer logged as slow ([`SLOW_REQUEST`] in `main`).
pub fn app(engine: Engine, slow_request: Duration) -> Router {
    let database = Database::default();
    let probe = database.clone();
    let health = Health::new(env!("CARGO_PKG_VERSION"))
        .check("database", move || {
            let database = probe.clone();
            async move { database.ping().await }
        })
        .engine(&engine) // the rate-limit store: Redis, when configured
        .status_from_checks();
    Router::new()
        .route("/api/conversations/{id}", delete(delete_conversation))
        .route_layer(engine.default_limits())
        .route("/api/chat", post(send_message))
        .route("/api/conversations/{id}/messages", get(conversation))
        .route("/api/auth/login", post(login))
        .with_state(database)
        .json_fallbacks()
        .layer(engine.clone())
        .merge(health.router())
        .layer(RequestLayer::new().slow_threshold(slow_request))
}

/// The JSON log subscriber of an environment: its level (debug in
/// development, info elsewhere; `RUST_LOG` instead when given), one JSON
/// object per line with the request's span (`request_id`, `method`, `route`).
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
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
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
