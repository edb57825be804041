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
//!
//! `cargo run -q -p hosted-backend -- token <sub> [scope]` prints a token
//! signed with `JWT_SECRET` (for `JWT_ISSUER` and `JWT_AUDIENCE` when set),
//! valid for an hour: for trying the user routes locally, where no identity
//! provider issues tokens.

use hosted_backend::{DEFAULT_PORT, Database, app, configure};
use policy_runtime::Environment;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// `token <sub> [scope]`: a local token signed with `JWT_SECRET`.
fn local_token(mut args: impl Iterator<Item = String>) -> Result<String, String> {
    let secret =
        std::env::var("JWT_SECRET").map_err(|_| "set JWT_SECRET to sign a token".to_owned())?;
    let subject = args.next().unwrap_or_else(|| "user-7".to_owned());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut claims = serde_json::json!({"sub": subject, "iat": now, "exp": now + 3600});
    if let Some(scope) = args.next() {
        claims["scope"] = scope.into();
    }
    for (variable, claim) in [("JWT_ISSUER", "iss"), ("JWT_AUDIENCE", "aud")] {
        if let Ok(value) = std::env::var(variable) {
            claims[claim] = value.into();
        }
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(), // HS256
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|error| format!("cannot sign the token: {error}"))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => {}
        Some("token") => match local_token(args) {
            Ok(token) => {
                println!("{token}");
                return;
            }
            Err(error) => {
                eprintln!("{error}");
                std::process::exit(1);
            }
        },
        Some(other) => {
            eprintln!("unknown argument `{other}`; usage: hosted-backend [token <sub> [scope]]");
            std::process::exit(2);
        }
    }

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
