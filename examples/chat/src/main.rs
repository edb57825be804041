//! The chat service: `cargo run -p chat`, on http://127.0.0.1:3005 (`PORT`
//! to change it), its limits in Redis when `REDIS_URL` is set. See the
//! README for the environment variables and curl commands.

use chat::{DEFAULT_PORT, SLOW_REQUEST, app, engine, redis_store, serve, subscriber};
use policy_runtime::Environment;
use std::net::SocketAddr;

#[tokio::main]
async fn main() {
    // The log level follows ENVIRONMENT, which the engine reads too (a bad
    // value is one of the problems its build lists).
    let environment = Environment::from_env().unwrap_or_default();
    let rust_log = std::env::var("RUST_LOG").ok();
    let logs = subscriber(environment, rust_log.as_deref(), std::io::stdout);
    if let Err(error) = tracing::subscriber::set_global_default(logs) {
        eprintln!("cannot install the logger: {error}");
    }

    // The store and the engine read the same variables, taken once.
    let vars: Vec<(String, String)> = std::env::vars().collect();
    // REDIS_URL: limits shared by every instance; while Redis is away they
    // are counted in memory (the store's default failure mode), logged.
    let redis = match redis_store(vars.clone()) {
        Ok(Some(store)) => {
            tracing::info!(
                "rate limits are counted in Redis (REDIS_URL), shared by every instance"
            );
            Some(store)
        }
        Ok(None) => {
            tracing::warn!(
                "REDIS_URL is not set: rate limits are counted in memory, per instance; \
                 set REDIS_URL=redis://127.0.0.1:6379 to share them"
            );
            None
        }
        Err(error) => {
            eprintln!("REDIS_URL: {error}");
            std::process::exit(1);
        }
    };
    let engine = match engine(vars, redis) {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };
    let port = match std::env::var("PORT") {
        Ok(port) => port.parse().unwrap_or_else(|_| {
            eprintln!("PORT: `{port}` is not a port number");
            std::process::exit(1);
        }),
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
    tracing::info!(%address, environment = %engine.environment(), "chat listening");
    if let Err(error) = serve(listener, app(engine, SLOW_REQUEST)).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}
