//! The hosted backend: a FastAPI backend's policy surface on a hosting
//! platform, rebuilt on `policy-runtime`. The profile store and the reports
//! are stubs; the database is a flag ([`Database`]) the tests can flip.
//!
//! Every policy is an attribute on a handler or a call on the engine's
//! builder ([`engine_builder`]); [`configure`] adds the environment's
//! settings (`ENVIRONMENT`, `JWT_*`, `CORS_ORIGINS`, ...) and checks them all
//! at once, and [`app`] makes the router. `src/main.rs` serves it; the
//! tests in `tests/` serve it on a free loopback port.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{
    BuildError, Claims, Engine, EngineBuilder, FieldError, Health, JsonFallbacks, RequestLayer,
    api_error, require_jwt,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The port `cargo run -p hosted-backend` listens on, unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3004;

/// The stub of the service's database: up unless a test (or an operator)
/// says otherwise. Clones share one state.
#[derive(Clone, Debug)]
pub struct Database {
    up: Arc<AtomicBool>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            up: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Database {
    /// Makes the database answer, or not.
    pub fn set_available(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Whether it answers: the readiness check, as a driver's `SELECT 1` would.
    pub async fn ping(&self) -> Result<(), String> {
        if self.up.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("db.internal:5432 refused the connection".to_owned())
        }
    }
}

/// Every error the handlers answer, in the engine's (compact) format.
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A profile whose fields are wrong.
    #[error("the profile is invalid")]
    #[api(status = 422, code = "VALIDATION_ERROR")]
    Invalid {
        /// What is wrong, field by field.
        #[api(errors)]
        errors: Vec<FieldError>,
    },
    /// The database did not answer: 503, its details sent in development only.
    #[error("database error: {0}")]
    #[api(status = 503, code = "DATABASE_UNAVAILABLE")]
    Database(String),
}

/// The claims the user routes read from the token.
#[derive(Debug, Deserialize)]
pub struct UserClaims {
    /// The user's id.
    pub sub: String,
    /// The user's e-mail address, when the identity provider sends it.
    pub email: Option<String>,
}

/// A user's profile.
#[derive(Debug, Serialize, Deserialize)]
pub struct Profile {
    /// The name others see.
    pub display_name: String,
}

/// Public: the catalogue (the engine's default limits, per client IP).
async fn items() -> Json<Value> {
    Json(json!({"items": [{"id": 1, "name": "starter"}, {"id": 2, "name": "pro"}]}))
}

/// The signed-in user: any valid token.
#[require_jwt]
async fn me(Claims(claims): Claims<UserClaims>) -> Json<Value> {
    Json(json!({"id": claims.sub, "email": claims.email}))
}

/// Changes the user's profile: a token with the `profile:write` scope.
#[require_jwt(scope = "profile:write")]
async fn update_me(
    Claims(claims): Claims<UserClaims>,
    Json(profile): Json<Profile>,
) -> Result<Json<Value>, AppError> {
    let name = profile.display_name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        return Err(AppError::Invalid {
            errors: vec![FieldError::new(
                "display_name",
                "value_error.length",
                "the display name must have 1 to 50 characters",
            )],
        });
    }
    Ok(Json(json!({"id": claims.sub, "display_name": name})))
}

/// The user's reports, from the database.
#[require_jwt]
async fn reports(
    State(database): State<Database>,
    Claims(claims): Claims<UserClaims>,
) -> Result<Json<Value>, AppError> {
    database.ping().await.map_err(AppError::Database)?;
    Ok(Json(
        json!({"user": claims.sub, "reports": ["2026-10", "2026-11"]}),
    ))
}

/// The engine's settings before the environment is read: 60 requests a
/// minute and 1000 an hour per client IP on every API route, and 1 MB bodies.
pub fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .default_limits("60/minute; 1000/hour")
        .max_body_size(1_000_000)
}

/// The engine from the given variables (the process environment in `main`):
/// [`engine_builder`], then `ENVIRONMENT`, `JWT_SECRET`, `JWT_ISSUER`,
/// `JWT_AUDIENCE`, `CORS_ORIGINS`, `RATELIMIT_DEFAULT`, `TRUSTED_PROXIES`,
/// `REQUEST_MAX_BODY_SIZE` and the library's other variables. Every problem
/// is listed at once, each naming its variable and the fix.
pub fn configure(vars: impl IntoIterator<Item = (String, String)>) -> Result<Engine, BuildError> {
    configure_from(engine_builder(), vars)
}

/// [`configure`] from a builder of the caller's: [`engine_builder`] with a
/// [`ManualClock`](policy_runtime::ManualClock), in the tests, so that
/// limits wait for no real time.
pub fn configure_from(
    builder: EngineBuilder,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Engine, BuildError> {
    builder.from_vars(vars).build()
}

/// The service's router: the API under the default limits, `/health`
/// (200, or 503 while the database is away) outside them, CORS, security
/// headers (HSTS in production) and request ids on every answer.
pub fn app(engine: Engine, database: Database) -> Router {
    let checked = database.clone();
    let health = Health::new(env!("CARGO_PKG_VERSION"))
        .engine(&engine)
        .check("database", move || {
            let database = checked.clone();
            async move { database.ping().await }
        })
        .status_from_checks()
        .router();
    Router::new()
        .route("/api/items", get(items))
        .route("/api/users/me", get(me).put(update_me))
        .route("/api/reports", post(reports))
        .route_layer(engine.default_limits())
        .with_state(database)
        .json_fallbacks()
        .layer(engine.clone())
        .merge(health)
        .layer(engine.cors())
        .layer(engine.security_headers())
        .layer(RequestLayer::new())
}
