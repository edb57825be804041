//! The hosted backend (a FastAPI original), on `policy-runtime`.
//!
//! ```text
//! ENVIRONMENT=development JWT_SECRET="$(openssl rand -base64 48)" \
//!   CORS_ORIGINS=http://localhost:5173 cargo run -p hosted-backend
//! ```
//!
//! It serves on http://127.0.0.1:3004 (`PORT` to change it). Every setting
//! is checked at start-up: a wrong or missing one stops it with a list of
//! every problem, each naming its variable. See the README for the curl
//! commands.

use hosted_backend::{DEFAULT_PORT, Database, app, configure};
use policy_runtime::Environment;
use std::net::SocketAddr;

#[tokio::main]
async fn main() {
    // Logs at the environment's level (RUST_LOG overrides it), set up first
    // so that the engine's start-up report is logged too.
    let environment: Environment = std::env::var("ENVIRONMENT")
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| environment.default_log_level().into());
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let mut problems = Vec::new();
    let port = match std::env::var("PORT") {
        Ok(port) => port.parse::<u16>().unwrap_or_else(|_| {
            problems.push(format!(
                "PORT: `{port}` is not a port number; use 1 to 65535, such as {DEFAULT_PORT}"
            ));
            DEFAULT_PORT
        }),
        Err(_) => DEFAULT_PORT,
    };
    let engine = match configure(std::env::vars()) {
        Ok(engine) if problems.is_empty() => engine,
        Ok(_) => {
            eprintln!("invalid configuration:\n  - {}", problems.join("\n  - "));
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("{error}");
            for problem in problems {
                eprintln!("  - {problem}");
            }
            std::process::exit(1);
        }
    };

    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    tracing::info!(%address, environment = %engine.environment(), "hosted backend listening");
    let service =
        app(engine, Database::default()).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}
