//! The quickstart: an API that uses every policy.
//!
//! Run it:
//!
//! ```text
//! cargo run -p quickstart
//! ```
//!
//! It serves on http://127.0.0.1:3000 and prints curl commands that show a
//! 429, a 401, JSON errors, a JWT-protected route, a 413, a 504 and CORS.
//! Its OpenAPI document, with every policy in it, is on /openapi.json, and a
//! page to browse it on /docs. `LOG_FORMAT=json cargo run -p quickstart` logs
//! JSON lines.
//!
//! A development token for `GET /reports` (signed with the demo secret,
//! scope `reports:read`, valid for an hour):
//!
//! ```text
//! cargo run -q -p quickstart -- token ada
//! ```
//!
//! The API key and the JWT secret it prints are demo values for local use
//! only: they are compiled into this example, so never deploy them.

use axum::extract::{Path, Query};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{EncodingKey, Header};
use policy_runtime::{
    ApiKeyId, Claims, Engine, EngineBuilder, Environment, Health, JsonFallbacks, Metrics,
    RequestLayer, api_error, body_limit, rate_limit, require_api_key, require_jwt, timeout,
};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use utoipa::{OpenApi, ToSchema};

/// Demo-only key, printed at start. Real deployments read `API_KEYS` or `API_KEY_N`.
const DEMO_KEY: &str = "demo-key-for-local-testing-only";

/// Demo-only HS256 secret (38 bytes; at least 32 are required), printed at
/// start; `token` signs with it. Real deployments read `JWT_SECRET`, or
/// verify their identity provider's keys (`JWT_JWKS_URL`, `JWT_OIDC_ISSUER`).
const DEMO_JWT_SECRET: &str = "demo-jwt-secret-for-local-testing-only";
/// The `iss` and `aud` the engine requires of tokens (`JWT_ISSUER`, `JWT_AUDIENCE`).
const JWT_ISSUER: &str = "quickstart-dev";
const JWT_AUDIENCE: &str = "quickstart-api";

/// The origin of a local front-end dev server (Vite's default), allowed by
/// CORS unless `CORS_ORIGINS` lists others.
const DEV_ORIGIN: &str = "http://localhost:5173";

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

#[derive(Deserialize, ToSchema)]
struct ScoreRequest {
    text: String,
}

#[derive(Serialize, ToSchema)]
struct Score {
    client: String,
    score: u32,
}

/// Paid upstream: at most 3 calls a minute per client IP, key holders only,
/// and at most 16 KB of text (the engine allows 1 MB elsewhere). The body
/// limit is checked first: an oversized body gets its 413 before it is
/// counted or its key is checked.
#[body_limit("16KB")]
#[rate_limit("3/minute")]
#[require_api_key]
#[utoipa::path(post, path = "/score", request_body = ScoreRequest,
    responses((status = 200, description = "The score", body = Score), AppError))]
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
#[utoipa::path(get, path = "/words/{id}", params(("id" = u32, Path, description = "The word's id")),
    responses((status = 200, description = "The word", body = String), AppError))]
async fn word(Path(id): Path<u32>) -> Result<String, AppError> {
    match id {
        1 => Ok("hello".into()),
        other => Err(AppError::WordNotFound(other)),
    }
}

/// Sign-ups: 5 an hour per client IP, literally (strict: never 6 in any hour).
#[rate_limit("5 per hour", strict)]
#[utoipa::path(post, path = "/auth/register", responses((status = 200, description = "Registered", body = String)))]
async fn register() -> &'static str {
    "registered"
}

/// Search: one budget shared with `/suggest`, per API key, with room for bursts.
#[require_api_key]
#[rate_limit("30/minute", key = api_key, burst = 60, scope = "search")]
#[utoipa::path(get, path = "/search", responses((status = 200, description = "Results", body = String)))]
async fn search() -> &'static str {
    "results"
}

#[require_api_key]
#[rate_limit("30/minute", key = api_key, burst = 60, scope = "search")]
#[utoipa::path(get, path = "/suggest", responses((status = 200, description = "Suggestions", body = String)))]
async fn suggest() -> &'static str {
    "suggestions"
}

/// Login attempts: limits set by the operator (`POLICY_LIMIT_LOGIN`), 10/hour here.
#[rate_limit(policy = "login")]
#[utoipa::path(post, path = "/auth/login", responses((status = 200, description = "Welcome", body = String)))]
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
#[utoipa::path(get, path = "/admin", responses((status = 200, description = "The admin area", body = String)))]
async fn admin() -> &'static str {
    "admin area"
}

/// Prometheus metrics, for keys with the `metrics` scope.
#[require_api_key(scope = "metrics")]
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus metrics", body = String)))]
async fn metrics() -> Response {
    Metrics::scrape()
}

/// The claims `GET /reports` reads from its token.
#[derive(Deserialize)]
struct ReportClaims {
    sub: String,
}

#[derive(Serialize, ToSchema)]
struct Reports {
    user: String,
    reports: [&'static str; 2],
}

/// Signed-in users: a bearer JWT with the `reports:read` scope, 60 a minute
/// and 1000 an hour per user (the token's `sub`), whatever their address.
#[require_jwt(scope = "reports:read")]
#[rate_limit("60/minute; 1000/hour", key = subject)]
#[utoipa::path(get, path = "/reports", responses((status = 200, description = "The user's reports", body = Reports)))]
async fn reports(Claims(claims): Claims<ReportClaims>) -> Json<Reports> {
    Json(Reports {
        user: claims.sub,
        reports: ["usage-2026-11", "billing-2026-11"],
    })
}

#[derive(Deserialize)]
struct SlowQuery {
    seconds: Option<u64>,
}

/// A slow job (3 s of work unless `?seconds=` says otherwise), stopped at
/// its own 2 s: 504 `TIMEOUT` (the engine's timeout is 30 s).
#[timeout("2s")]
#[rate_limit("10/minute")]
#[utoipa::path(get, path = "/slow", params(("seconds" = Option<u64>, Query, description = "How long the job takes (3 s)")),
    responses((status = 200, description = "Done", body = String)))]
async fn slow(Query(query): Query<SlowQuery>) -> String {
    let seconds = query.seconds.unwrap_or(3);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    format!("done after {seconds}s")
}

/// The API's OpenAPI document: the handlers' own `#[utoipa::path]`, and
/// (added by `Engine::document` in `app`) what their policies require and answer.
#[derive(OpenApi)]
#[openapi(
    info(title = "policy-runtime quickstart"),
    paths(
        score, word, register, search, suggest, login, admin, metrics, reports, slow
    )
)]
struct ApiDoc;

/// A page to browse `/openapi.json`: Redoc, which the browser loads from its
/// CDN (nothing is downloaded at build time).
async fn docs() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<html>
  <head><meta charset="utf-8"><title>policy-runtime quickstart API</title></head>
  <body>
    <redoc spec-url="/openapi.json"></redoc>
    <script src="https://cdn.redoc.ly/redoc/v2.1.5/bundles/redoc.standalone.js"></script>
  </body>
</html>"#,
    )
}

fn app(engine: Engine) -> Router {
    // The OpenAPI document, with every policy-wrapped handler's security,
    // error responses, rate-limit headers and quotas added by the engine.
    let mut openapi = ApiDoc::openapi();
    let report = engine.document(&mut openapi);
    if !report.is_complete() {
        tracing::warn!(%report, "some policy-wrapped handlers are not in the OpenAPI document");
    }
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
        .route("/reports", get(reports))
        .route("/slow", get(slow))
        .route(
            "/openapi.json",
            get(move || std::future::ready(Json(openapi.clone()))),
        )
        .route("/docs", get(docs))
        // JSON 404 and 405 (with `Allow`): after the last route, before the engine.
        .json_fallbacks()
        .layer(engine.clone())
        // Merged after the engine layer: health checks are never rate limited.
        .merge(health)
        // CORS preflights are answered here, before any policy: never
        // counted, never asked for a key.
        .layer(engine.cors())
        // nosniff, X-Frame-Options, Referrer-Policy, CSP (and HSTS in
        // production) on every response, errors and preflights included.
        .layer(engine.security_headers())
        // Request ids, one span per request, slow-request warnings.
        .layer(RequestLayer::new())
}

/// `cargo run -p quickstart -- token [subject]`: a development token for
/// `GET /reports`, signed with the demo secret, valid for an hour.
fn development_token(subject: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let claims = serde_json::json!({
        "sub": subject,
        "scope": "reports:read",
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": now,
        "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &Header::default(), // HS256
        &claims,
        &EncodingKey::from_secret(DEMO_JWT_SECRET.as_bytes()),
    )
}

/// The quickstart's engine settings, before the environment is read.
fn engine_builder() -> EngineBuilder {
    Engine::builder()
        .environment(Environment::Development)
        .api_key("demo-client", DEMO_KEY)
        .policy("login", "10/hour")
        .default_limits("3/minute")
        .max_body_size(1_000_000) // 1 MB; REQUEST_MAX_BODY_SIZE overrides it
        .request_timeout(Duration::from_secs(30)) // REQUEST_TIMEOUT overrides it
        .cors_origins([DEV_ORIGIN]) // CORS_ORIGINS replaces the list
        .jwt_secret(DEMO_JWT_SECRET)
        .jwt_issuer(JWT_ISSUER)
        .jwt_audience(JWT_AUDIENCE)
    // `main` then reads ENVIRONMENT, API_KEYS, TRUSTED_PROXIES,
    // POLICY_LIMIT_LOGIN, REQUEST_MAX_BODY_SIZE, REQUEST_TIMEOUT,
    // CORS_ORIGINS, JWT_*, ... over these.
}

#[tokio::main]
async fn main() {
    // `token [subject]`: print a development token and exit, before any
    // log line, so that `$(cargo run -q -p quickstart -- token)` is the token alone.
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        None => {}
        Some("token") => {
            let subject = args.next().unwrap_or_else(|| "ada".to_owned());
            match development_token(&subject) {
                Ok(token) => println!("{token}"),
                Err(error) => {
                    eprintln!("cannot sign the token: {error}");
                    std::process::exit(1);
                }
            }
            return;
        }
        Some(other) => {
            eprintln!(
                "unknown argument `{other}`; usage: quickstart (serves the API) or quickstart token [subject]"
            );
            std::process::exit(2);
        }
    }

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
    let engine = match engine_builder().from_env().build() {
        Ok(engine) => engine,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1);
        }
    };

    if engine.environment() == Environment::Development {
        tracing::warn!(
            "running in DEVELOPMENT: the demo key is accepted and 5xx details are shown; \
             set ENVIRONMENT=production and real keys (API_KEYS, API_KEY_FILE) to deploy, \
             with a real JWT key (JWT_SECRET, JWT_JWKS_URL or JWT_OIDC_ISSUER) instead of the demo secret"
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
    println!(
        "demo JWT secret, HS256 (local use only, never deploy it): {DEMO_JWT_SECRET} (issuer `{JWT_ISSUER}`, audience `{JWT_AUDIENCE}`)"
    );
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
    println!(
        "# JSON errors: 404 with its message, 502 (its details are sent in development only):"
    );
    println!("curl -si http://{address}/words/7");
    println!(
        "curl -si -X POST http://{address}/score -H 'X-API-Key: {DEMO_KEY}' -H 'content-type: application/json' -d '{{\"text\":\"upstream\"}}'"
    );
    println!(
        "# JWT: GET /reports with a development token (`cargo run -q -p quickstart -- token ada` signs one with the demo secret, scope reports:read, valid 1 hour), then 401 without one:"
    );
    println!(
        "curl -si -H \"Authorization: Bearer $(cargo run -q -p quickstart -- token ada)\" http://{address}/reports"
    );
    println!("curl -si http://{address}/reports");
    println!(
        "# 413: 20 KB over /score's own 16 KB limit (refused before the key is checked), and 2 MB over the engine's 1 MB:"
    );
    println!(
        "head -c 20000 /dev/zero | curl -si -X POST http://{address}/score -H 'content-type: application/json' --data-binary @-"
    );
    println!(
        "head -c 2000000 /dev/zero | curl -si -X POST http://{address}/auth/login --data-binary @-"
    );
    println!("# 504: /slow works 3 s, past its own 2 s timeout:");
    println!("curl -si http://{address}/slow");
    println!("# JSON 404 and 405 (with Allow):");
    println!("curl -si http://{address}/nowhere");
    println!("curl -si -X DELETE http://{address}/words/1");
    println!(
        "# CORS: a preflight from the allowed origin ({DEV_ORIGIN}, or CORS_ORIGINS), and one refused:"
    );
    println!(
        "curl -si -X OPTIONS http://{address}/reports -H 'Origin: {DEV_ORIGIN}' -H 'Access-Control-Request-Method: GET' -H 'Access-Control-Request-Headers: authorization'"
    );
    println!(
        "curl -si -X OPTIONS http://{address}/reports -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: GET'"
    );
    println!(
        "# the OpenAPI document (security, 401/403/429 responses, rate-limit headers), and a page to browse it:"
    );
    println!("curl -s http://{address}/openapi.json");
    println!("open http://{address}/docs");

    let service = app(engine).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(error) = axum::serve(listener, service).await {
        eprintln!("server error: {error}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    //! The quickstart's OpenAPI document, as `/openapi.json` serves it.

    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    async fn spec() -> Value {
        let engine = engine_builder()
            .build()
            .expect("the quickstart's engine builds");
        let response = app(engine)
            .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[tokio::test]
    async fn three_handlers_tell_their_policies() {
        let spec = spec().await;
        assert_eq!(spec["openapi"], "3.1.0");
        let schemes = &spec["components"]["securitySchemes"];
        assert_eq!(keys(schemes), ["api_key", "api_key_bearer", "jwt"]);
        assert_eq!(
            schemes["api_key"],
            json!({"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "An API key in the `X-API-Key` header."})
        );
        assert_eq!(
            schemes["jwt"],
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A JWT as a bearer token: `Authorization: Bearer <token>`."})
        );

        // An API key with a scope, and the engine's body limit and timeout.
        let admin = &spec["paths"]["/admin"]["get"];
        assert_eq!(
            admin["security"],
            json!([{"api_key": ["admin"]}, {"api_key_bearer": ["admin"]}])
        );
        assert_eq!(
            keys(&admin["responses"]),
            ["200", "401", "403", "413", "429", "504"]
        );
        assert_eq!(
            keys(&admin["responses"]["401"]["headers"]),
            ["WWW-Authenticate"]
        );

        // Two quotas per client IP, no credential, an `#[api_error]` enum.
        let word = &spec["paths"]["/words/{id}"]["get"];
        assert!(word.get("security").is_none());
        assert_eq!(
            keys(&word["responses"]),
            ["200", "400", "404", "413", "429", "502", "504"]
        );
        assert_eq!(
            word["x-rate-limit"],
            json!([
                "200 per 1 day, per client IP",
                "50 per 1 hour, per client IP"
            ])
        );
        assert_eq!(
            keys(&word["responses"]["429"]["headers"]),
            [
                "RateLimit",
                "RateLimit-Policy",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset"
            ]
        );

        // A JWT with a scope, counted per subject: a token without `sub` is a 400.
        let reports = &spec["paths"]["/reports"]["get"];
        assert_eq!(reports["security"], json!([{"jwt": ["reports:read"]}]));
        assert_eq!(
            keys(&reports["responses"]),
            ["200", "400", "401", "403", "413", "429", "504"]
        );
        assert_eq!(
            reports["x-rate-limit"],
            json!([
                "60 per 1 minute, per JWT subject",
                "1000 per 1 hour, per JWT subject"
            ])
        );

        // Every error has the engine's (Compact) error schema.
        for (path, method, status) in [
            ("/admin", "get", "403"),
            ("/words/{id}", "get", "429"),
            ("/reports", "get", "401"),
        ] {
            let content = &spec["paths"][path][method]["responses"][status]["content"];
            assert_eq!(keys(content), ["application/json"], "{path} {status}");
            assert_eq!(
                content["application/json"]["schema"],
                json!({"$ref": "#/components/schemas/PolicyError"}),
                "{path} {status}"
            );
        }
        let schema = &spec["components"]["schemas"]["PolicyError"];
        assert_eq!(keys(&schema["properties"]), ["code", "details", "error"]);
        assert_eq!(schema["required"], json!(["error", "code"]));
    }
}
