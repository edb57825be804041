//! The ChordPro document-conversion API, rebuilt on `policy-runtime`: secure
//! by default (production unless development is asked for, and no start
//! without API keys), with the original's request limits, security headers,
//! path-free error messages and structured logs. The conversion is a stub.
//!
//! | policy | here |
//! | --- | --- |
//! | production by default; refuses to start without keys | the engine's default environment and its start-up check of `#[require_api_key]` handlers |
//! | `API_KEYS="k1,k2"`, `API_KEY_1`, `API_KEY_2`, ... | `from_vars` (`from_env` in spirit: `main` passes `std::env::vars()`) |
//! | keys shorter than 16 characters | refused in production, a warning elsewhere (the engine's key check) |
//! | constant-time comparison, several keys | `#[require_api_key]` on [`convert`] |
//! | 1 MB request limit, 30 s processing timeout | `max_body_size`, `request_timeout` ([`engine_builder`]) |
//! | security headers | `engine.security_headers()` in [`app`] |
//! | error messages never disclose paths | `#[api_error]` on [`ConvertError`]: 5xx details are logged, never sent outside development |
//! | logs of requests, errors and authentication attempts | `RequestLayer`, the engine's decision events, as JSON ([`subscriber`]) |

use axum::routing::post;
use axum::{Json, Router};
use policy_runtime::{
    ApiKeyId, BuildError, Engine, EngineBuilder, Environment, Health, JsonFallbacks, RequestLayer,
    api_error, require_api_key,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The port the app listens on unless `PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 3003;

/// The largest request body: 1 MB (`REQUEST_MAX_BODY_SIZE` overrides it).
pub const MAX_BODY_BYTES: u64 = 1_000_000;

/// How long a conversion may take (`REQUEST_TIMEOUT` overrides it).
pub const PROCESSING_TIMEOUT: Duration = Duration::from_secs(30);

/// What a conversion can fail with.
#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The document has no content.
    #[error("the document is empty")]
    #[api(status = 400, code = "EMPTY_DOCUMENT")]
    Empty,
    /// A format the API does not produce.
    #[error("unsupported format `{0}`; use html, text or pdf")]
    #[api(status = 400, code = "UNSUPPORTED_FORMAT")]
    UnsupportedFormat(String),
    /// The renderer failed; its cause (a template path) is logged, not sent.
    #[error("the renderer failed")]
    #[api(status = 500, code = "RENDER_FAILED")]
    Render(#[source] std::io::Error),
}

/// A conversion request.
#[derive(Deserialize)]
pub struct ConvertRequest {
    /// The ChordPro source.
    pub chordpro: String,
    /// `html` or `text` (`pdf` needs the renderer's templates).
    #[serde(default = "text")]
    pub format: String,
}

fn text() -> String {
    "text".to_owned()
}

/// A converted document.
#[derive(Debug, Serialize)]
pub struct Converted {
    /// The format produced.
    pub format: String,
    /// The document.
    pub output: String,
    /// The API key's name, for the client's own records.
    pub client: String,
}

/// Converts one ChordPro document, for API key holders. The conversion is a
/// stub: `{title: ...}` becomes a heading, `[C]` chords are kept inline.
#[require_api_key]
pub async fn convert(
    key: ApiKeyId,
    Json(request): Json<ConvertRequest>,
) -> Result<Json<Converted>, ConvertError> {
    if request.chordpro.trim().is_empty() {
        return Err(ConvertError::Empty);
    }
    let output = match request.format.as_str() {
        "text" | "html" => render(&request.chordpro, request.format == "html"),
        // The stub has no PDF templates: the failure the original hid.
        "pdf" => {
            return Err(ConvertError::Render(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "/opt/chordpro/templates/songbook.pdf.tt: No such file or directory",
            )));
        }
        other => return Err(ConvertError::UnsupportedFormat(other.to_owned())),
    };
    Ok(Json(Converted {
        format: request.format,
        output,
        client: key.name().to_owned(),
    }))
}

fn render(source: &str, html: bool) -> String {
    source
        .lines()
        .map(|line| match line.trim().strip_prefix("{title:") {
            Some(title) if html => format!("<h1>{}</h1>", title.trim_end_matches('}').trim()),
            Some(title) => title.trim_end_matches('}').trim().to_uppercase(),
            None if html => format!("<p>{line}</p>"),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The engine's settings before the environment is read. Production stays
/// the default: development must be asked for with `ENVIRONMENT=development`.
pub fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .max_body_size(MAX_BODY_BYTES)
        .request_timeout(PROCESSING_TIMEOUT)
}

/// The engine, with `ENVIRONMENT`, `API_KEYS`, `API_KEY_<N>`,
/// `API_KEY_FILE`, `REQUEST_MAX_BODY_SIZE`, `REQUEST_TIMEOUT` and
/// `TRUSTED_PROXIES` read from `vars` (`std::env::vars()` in `main`). In
/// production it fails without a usable key, or with a short or demo key.
pub fn engine(vars: impl IntoIterator<Item = (String, String)>) -> Result<Engine, BuildError> {
    engine_builder().from_vars(vars).build()
}

/// The routes, under the engine's policies, with security headers on every
/// answer.
pub fn app(engine: Engine) -> Router {
    Router::new()
        .route("/convert", post(convert))
        .json_fallbacks()
        .layer(engine.clone())
        // Health needs no key.
        .merge(
            Health::new(env!("CARGO_PKG_VERSION"))
                .engine(&engine)
                .router(),
        )
        .layer(engine.security_headers())
        .layer(RequestLayer::new())
}

/// The JSON log subscriber of an environment: its level (debug in
/// development, info elsewhere; `RUST_LOG` instead when given), with every
/// API-key decision (accepted keys are debug events) and the request's
/// span (`request_id`, `method`, `route`) on each line.
pub fn subscriber<W>(
    environment: Environment,
    rust_log: Option<&str>,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let default = format!(
        "{},policy_runtime::api_key=debug",
        environment.default_log_level()
    );
    let filter = rust_log
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Serves `app` on `listener` with the client addresses the lockout counts by.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
