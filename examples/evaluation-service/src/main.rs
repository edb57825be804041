//! The evaluation service (a FastAPI original), on `policy-runtime`.
//!
//! ```text
//! redis-server --port 6379 --save "" --appendonly no &   # optional
//! ENVIRONMENT=development REDIS_URL=redis://127.0.0.1:6379 \
//!   API_KEYS='ops:ops-admin-key-0123456789:admin,alice:alice-key-0123456789' \
//!   cargo run -p evaluation-service
//! ```
//!
//! It serves on http://127.0.0.1:3002 (`PORT` to change it). Without
//! `REDIS_URL`, or while Redis cannot be reached, limits are counted in
//! memory, and the log says so. See the README for the curl commands.

use evaluation_service::{DEFAULT_PORT, app, configure, log_limit_store};
use policy_runtime::{Engine, Environment, Metrics};
use std::net::SocketAddr;

#[tokio::main]
async fn main() {
    // JSON logs at the environment's level (RUST_LOG overrides it), set up
    // first so that the engine's start-up report is logged too.
    let environment: Environment = std::env::var("ENVIRONMENT")
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| environment.default_log_level().into());
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .init();
    let config = match configure(std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    let engine: Engine = config.engine;
    if let Err(error) = Metrics::install() {
        eprintln!("{error}");
        std::process::exit(1);
    }

    log_limit_store(config.redis.as_ref()).await;

    let port = match std::env::var("PORT") {
        Ok(port) => match port.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!(
                    "PORT: `{port}` is not a port number; use 1 to 65535, such as {DEFAULT_PORT}"
                );
                std::process::exit(1);
            }
        },
        Err(_) => DEFAULT_PORT,
    };
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    tracing::info!(%address, environment = %engine.environment(), "evaluation service listening");
    let service = app(engine).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}
