//! The ChordPro conversion API: `cargo run -p chordpro-convert`, on
//! http://127.0.0.1:3003 (`PORT` to change it). See the README for the
//! environment variables and curl commands.

use chordpro_convert::{DEFAULT_PORT, app, engine, serve, subscriber};
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

    // Production, the default, refuses to start without a usable key (or
    // with a short or demo one): every problem is listed.
    let engine = match engine(std::env::vars()) {
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
    tracing::info!(%address, environment = %engine.environment(), "chordpro-convert listening");
    if let Err(error) = serve(listener, app(engine)).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}
