//! The quickstart: an API that uses every policy.
//!
//! Run it:
//!
//! ```text
//! cargo run -p quickstart
//! ```
//!
//! It serves on http://127.0.0.1:3000 and prints curl commands that show a
//! 429, a 401 and a JSON error. `LOG_FORMAT=json cargo run -p quickstart`
//! logs JSON lines. The API key it prints is a demo key for local
//! use only: it is compiled into this example, so never deploy it.

use axum::extract::Path;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use policy_runtime::{
    ApiKeyId, Engine, Environment, Health, Metrics, RequestLayer, api_error, rate_limit,
    require_api_key,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Demo-only key, printed at start. Real deployments read `API_KEYS` or `API_KEY_N`.
const DEMO_KEY: &str = "demo-key-for-local-testing-only";

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("text must not be empty")]
    #[api(status = 400, code = "VALIDATION_ERROR")]
    EmptyText,
    #[error("no word with id {0}")]
    #[api(status = 404)]
    WordNotFound(u32),
    #[error("scoring backend at 10.0.0.7:9000 refused the connection")]
    #[api(status = 502, code = "UPSTREAM_FAILED")]
    Upstream,
}

#[derive(Deserialize)]
struct ScoreRequest {
    text: String,
}

#[derive(Serialize)]
struct Score {
    client: String,
    score: u32,
}

/// Paid upstream: at most 3 calls a minute per client IP, key holders only.
#[rate_limit("3/minute")]
#[require_api_key]
async fn score(key: ApiKeyId, Json(request): Json<ScoreRequest>) -> Result<Json<Score>, AppError> {
    if request.text.trim().is_empty() {
        return Err(AppError::EmptyText);
    }
    if request.text == "upstream" {
        return Err(AppError::Upstream);
    }
    Ok(Json(Score {
        client: key.name().to_owned(),
        score: request.text.len() as u32 % 100,
    }))
}

/// Public lookup, with the Flask backend's default limits.
#[rate_limit("200/day; 50/hour")]
async fn word(Path(id): Path<u32>) -> Result<String, AppError> {
    match id {
        1 => Ok("hello".into()),
        other => Err(AppError::WordNotFound(other)),
    }
}

/// Sign-ups: 5 an hour per client IP, literally (strict: never 6 in any hour).
#[rate_limit("5 per hour", strict)]
async fn register() -> &'static str {
    "registered"
}

/// Search: one budget shared with `/suggest`, per API key, with room for bursts.
#[require_api_key]
#[rate_limit("30/minute", key = api_key, burst = 60, scope = "search")]
async fn search() -> &'static str {
    "results"
}

#[require_api_key]
#[rate_limit("30/minute", key = api_key, burst = 60, scope = "search")]
async fn suggest() -> &'static str {
    "suggestions"
}

/// Login attempts: limits set by the operator (`POLICY_LIMIT_LOGIN`), 10/hour here.
#[rate_limit(policy = "login")]
async fn login() -> &'static str {
    "welcome"
}

/// No policy of its own: the engine's default limits (3/minute here) apply,
/// through `engine.default_limits()` in `app`.
async fn about() -> &'static str {
    "policy-runtime quickstart"
}

/// Operators only: a key with the `admin` scope (the demo key has none: 403).
#[require_api_key(scope = "admin")]
async fn admin() -> &'static str {
    "admin area"
}

/// Prometheus metrics, for keys with the `metrics` scope.
#[require_api_key(scope = "metrics")]
async fn metrics() -> Response {
    Metrics::scrape()
}

fn app(engine: Engine) -> Router {
    // /health, /health/live and /health/ready (which checks the limiter store).
    let health = Health::new(env!("CARGO_PKG_VERSION"))
        .engine(&engine)
        .router();
    Router::new()
        // Routes without a policy of their own take the engine's default limits.
        .route("/about", get(about))
        .route_layer(engine.default_limits())
        .route("/score", post(score))
        .route("/words/{id}", get(word))
        .route("/auth/register", post(register))
        .route("/search", get(search))
        .route("/suggest", get(suggest))
        .route("/auth/login", post(login))
        .route("/admin", get(admin))
        .route("/metrics", get(metrics))
        .layer(engine)
        // Merged after the engine layer: health checks are never rate limited.
        .merge(health)
        // Request ids, one span per request, slow-request warnings.
        .layer(RequestLayer::new())
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,policy_runtime=debug".into());
    // LOG_FORMAT=json logs one JSON object per line, with the request's span.
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if let Err(error) = Metrics::install() {
        eprintln!("{error}");
        std::process::exit(1);
    }

    // Development must be asked for: production (the default) refuses the demo
    // key. ENVIRONMENT=production in the environment still overrides this.
    let engine = match Engine::builder()
        .environment(Environment::Development)
        .api_key("demo-client", DEMO_KEY)
        .policy("login", "10/hour")
        .default_limits("3/minute")
        .from_env() // ENVIRONMENT, API_KEYS, TRUSTED_PROXIES, POLICY_LIMIT_LOGIN, ...
        .build()
    {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };

    if engine.environment() == Environment::Development {
        tracing::warn!(
            "running in DEVELOPMENT: the demo key is accepted and 5xx details are shown; \
             set ENVIRONMENT=production and real keys (API_KEYS, API_KEY_FILE) to deploy"
        );
    }

    let address = SocketAddr::from(([127, 0, 0, 1], 3000));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    println!("quickstart listening on http://{address}");
    println!("demo API key (local use only, never deploy it): {DEMO_KEY}");
    println!();
    println!("# 200, then 429 after 3 calls a minute (JSON body, Retry-After, X-RateLimit-*):");
    println!(
        "for i in 1 2 3 4; do curl -si -X POST http://{address}/score -H 'X-API-Key: {DEMO_KEY}' -H 'content-type: application/json' -d '{{\"text\":\"hello\"}}'; echo; done"
    );
    println!("# 401 (no key) and 401 (wrong key):");
    println!(
        "curl -si -X POST http://{address}/score -H 'content-type: application/json' -d '{{\"text\":\"hello\"}}'"
    );
    println!(
        "curl -si -X POST http://{address}/score -H 'Authorization: Bearer wrong' -H 'content-type: application/json' -d '{{\"text\":\"hello\"}}'"
    );
    println!(
        "# 403: a valid key without the `admin` scope (make real keys with `cargo run -p policy-keygen`):"
    );
    println!("curl -si http://{address}/admin -H 'X-API-Key: {DEMO_KEY}'");
    println!("# default limits on a route without a policy: the 4th call in a minute gets 429:");
    println!(
        "for i in 1 2 3 4; do curl -s -o /dev/null -w '%{{http_code}}\\n' http://{address}/about; done"
    );
    println!("# JSON errors: 404 with its message, 502 with the details hidden:");
    println!("curl -si http://{address}/words/7");
    println!(
        "curl -si -X POST http://{address}/score -H 'X-API-Key: {DEMO_KEY}' -H 'content-type: application/json' -d '{{\"text\":\"upstream\"}}'"
    );

    let service = app(engine).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}
