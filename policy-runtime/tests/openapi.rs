//! The policies in the OpenAPI document (`Engine::document`): three handlers
//! mirroring the quickstart's policies, routed and documented through
//! `utoipa_axum`, with `#[utoipa::path]` below and above the policy
//! attributes; the security requirements, response codes, headers, error
//! schema and examples; the report of handlers the document does not
//! mention; and the document read back as OpenAPI 3.1.
#![cfg(feature = "utoipa")]

mod common;

use axum::Json;
use axum::extract::Path;
use common::{from, send};
use policy_runtime::{
    ApiKeyId, Engine, Environment, ErrorFormat, HeaderStyle, api_error, body_limit, rate_limit,
    require_api_key, timeout,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::{OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const KEY: &str = "demo-key-for-local-testing-only";

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

/// Paid upstream: at most 3 calls a minute per client IP, key holders only.
#[rate_limit("3/minute")]
#[require_api_key]
#[utoipa::path(
    post,
    path = "/score",
    request_body = ScoreRequest,
    responses((status = 200, description = "The score", body = Score), AppError)
)]
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
#[utoipa::path(
    get,
    path = "/words/{id}",
    params(("id" = u32, Path, description = "The word's id")),
    responses((status = 200, description = "The word", body = String))
)]
#[rate_limit("200/day; 50/hour")]
async fn word(Path(id): Path<u32>) -> Result<String, AppError> {
    match id {
        1 => Ok("hello".into()),
        other => Err(AppError::WordNotFound(other)),
    }
}

/// Operators only: a key with the `admin` scope.
#[require_api_key(scope = "admin")]
#[utoipa::path(get, path = "/admin", responses((status = 200, description = "The admin area")))]
async fn admin() -> &'static str {
    "admin area"
}

/// Uploads: a header key that can be missing, a body limit and a timeout.
#[rate_limit("10/minute", key = header("x-tenant"))]
#[body_limit("1KB")]
#[timeout("5s")]
#[utoipa::path(post, path = "/upload", responses((status = 200, description = "Stored")))]
async fn upload(body: String) -> String {
    body
}

/// Search: per API key, with room for bursts, each request counting 2.
#[require_api_key]
#[rate_limit("30/minute", key = api_key, burst = 60, cost = 2)]
#[rate_limit("5 per hour", strict, scope = "search-hourly")]
#[utoipa::path(get, path = "/search", responses((status = 200, description = "Results")))]
async fn search() -> &'static str {
    "results"
}

/// No limit on purpose.
#[rate_limit(exempt)]
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Healthy")))]
async fn health() -> &'static str {
    "ok"
}

/// A limited handler that no document mentions.
#[rate_limit("1/second")]
async fn unlisted() -> &'static str {
    "unlisted"
}

/// A handler with a JWT (or an API key) and scopes, counted by a claim.
#[cfg(feature = "jwt")]
mod jwt {
    use policy_runtime::{rate_limit, require_jwt};

    #[require_jwt(scope = any("billing:read", "billing:admin"), or_api_key)]
    #[rate_limit("100/minute", key = claim("tenant_id"))]
    #[utoipa::path(get, path = "/invoices", responses((status = 200, description = "Invoices")))]
    pub async fn invoices() -> &'static str {
        "invoices"
    }

    #[require_jwt(scope = "reports:read")]
    #[utoipa::path(get, path = "/reports", responses((status = 200, description = "Reports")))]
    pub async fn reports() -> &'static str {
        "reports"
    }
}

fn engine(builder: policy_runtime::EngineBuilder) -> Engine {
    let builder = builder
        .environment(Environment::Development)
        .api_key("demo-client", KEY);
    #[cfg(feature = "jwt")]
    let builder = builder
        .jwt_secret("a-test-secret-of-32-bytes-or-more!")
        .jwt_issuer("https://issuer.example");
    builder.build().unwrap()
}

/// The handlers with policies of this file but those `listed`, sorted: what
/// a document listing only those reports missing.
fn all_but(listed: &[&str]) -> Vec<&'static str> {
    let mut handlers = vec![
        "openapi::admin",
        "openapi::health",
        "openapi::score",
        "openapi::search",
        "openapi::unlisted",
        "openapi::upload",
        "openapi::word",
    ];
    if cfg!(feature = "jwt") {
        handlers.push("openapi::jwt::invoices");
        handlers.push("openapi::jwt::reports");
    }
    handlers.retain(|handler| !listed.contains(handler));
    handlers.sort_unstable();
    handlers
}

/// The quickstart's three handlers, routed and documented by `utoipa_axum`,
/// the spec served on `/openapi.json`.
fn quickstart(engine: &Engine) -> (axum::Router, OpenApi) {
    let (router, mut openapi) = OpenApiRouter::new()
        .routes(routes!(score))
        .routes(routes!(word))
        .routes(routes!(admin))
        .split_for_parts();
    let report = engine.document(&mut openapi);
    assert_eq!(
        report
            .operations()
            .iter()
            .map(|op| (op.handler, op.method, op.path.as_str(), op.by_name))
            .collect::<Vec<_>>(),
        [
            ("openapi::admin", "GET", "/admin", false),
            ("openapi::score", "POST", "/score", false),
            ("openapi::word", "GET", "/words/{id}", true),
        ]
    );
    // Handlers with policies the document does not mention are reported.
    assert_eq!(
        report.missing(),
        all_but(&["openapi::admin", "openapi::score", "openapi::word"])
    );
    assert!(report.ambiguous().is_empty());
    assert!(!report.is_complete());
    let spec = openapi.clone();
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let spec = spec.clone();
                async move { Json(spec) }
            }),
        )
        .layer(engine.clone());
    (router, openapi)
}

fn operation<'a>(spec: &'a Value, path: &str, method: &str) -> &'a Value {
    &spec["paths"][path][method]
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn the_quickstart_spec_tells_each_handlers_policies() {
    let engine = engine(Engine::builder());
    let (app, _) = quickstart(&engine);
    let served = send(
        &app,
        from("192.0.2.1", "GET", "/openapi.json")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(served.status, 200);
    let spec = served.json();
    assert_eq!(spec["openapi"], "3.1.0");

    // Security schemes: the API key in `X-API-Key` or as a bearer token.
    assert_eq!(
        spec["components"]["securitySchemes"],
        json!({
            "api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                        "description": "An API key in the `X-API-Key` header."},
            "api_key_bearer": {"type": "http", "scheme": "bearer",
                               "description": "An API key as a bearer token: `Authorization: Bearer <key>`."}
        })
    );
    // The error schema of the default (compact) format.
    let schema = &spec["components"]["schemas"]["PolicyError"];
    assert_eq!(schema["required"], json!(["error", "code"]));
    assert_eq!(keys(&schema["properties"]), ["code", "details", "error"]);

    // score: API key, 3/minute per client IP, and the AppError responses.
    let score = operation(&spec, "/score", "post");
    assert_eq!(
        score["security"],
        json!([{"api_key": []}, {"api_key_bearer": []}])
    );
    assert_eq!(
        keys(&score["responses"]),
        ["200", "400", "401", "404", "429", "502"]
    );
    assert_eq!(
        score["x-rate-limit"],
        json!(["3 per 1 minute, per client IP"])
    );
    let refused = &score["responses"]["429"];
    assert_eq!(
        keys(&refused["headers"]),
        [
            "RateLimit",
            "RateLimit-Policy",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset"
        ]
    );
    let content = &refused["content"]["application/json"];
    assert_eq!(
        content["schema"],
        json!({"$ref": "#/components/schemas/PolicyError"})
    );
    assert_eq!(
        content["examples"]["RATE_LIMITED"]["value"],
        json!({"error": "Too Many Requests: 3 per 1 minute", "code": "RATE_LIMITED"})
    );
    assert_eq!(
        content["examples"]["LOCKED_OUT"]["value"],
        json!({"error": "Too Many Requests: too many failed API key attempts from this client",
               "code": "LOCKED_OUT"})
    );
    let unauthorized = &score["responses"]["401"];
    assert_eq!(keys(&unauthorized["headers"]), ["WWW-Authenticate"]);
    assert_eq!(
        unauthorized["content"]["application/json"]["examples"]["missing_api_key"]["value"],
        json!({"error": "Missing API key", "code": "UNAUTHORIZED"})
    );
    // The handler's own response carries the rate-limit headers too.
    assert_eq!(
        keys(&score["responses"]["200"]["headers"]),
        [
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset"
        ]
    );
    // `#[api_error]` variants: status, code and the message shown.
    assert_eq!(
        score["responses"]["400"]["content"]["application/json"]["examples"]["VALIDATION_ERROR"]["value"],
        json!({"error": "text must not be empty", "code": "VALIDATION_ERROR"})
    );
    assert_eq!(
        score["responses"]["502"]["content"]["application/json"]["examples"]["UPSTREAM_FAILED"]["value"],
        json!({"error": "Bad Gateway", "code": "UPSTREAM_FAILED"})
    );

    // word: no credential, two quotas, matched by name (`#[utoipa::path]` above).
    let word = operation(&spec, "/words/{id}", "get");
    assert!(word.get("security").is_none());
    assert_eq!(keys(&word["responses"]), ["200", "429"]);
    assert_eq!(
        word["x-rate-limit"],
        json!([
            "200 per 1 day, per client IP",
            "50 per 1 hour, per client IP"
        ])
    );
    assert_eq!(
        keys(&word["responses"]["429"]["content"]["application/json"]["examples"]),
        ["RATE_LIMITED_1", "RATE_LIMITED_2"]
    );
    // The parameter utoipa read from the handler is kept.
    assert_eq!(word["parameters"][0]["name"], "id");

    // admin: the `admin` scope, so a 403; no rate limit, so its only 429 is
    // the API-key lockout's, with `Retry-After` and no rate-limit headers.
    let admin = operation(&spec, "/admin", "get");
    assert_eq!(
        admin["security"],
        json!([{"api_key": ["admin"]}, {"api_key_bearer": ["admin"]}])
    );
    assert_eq!(keys(&admin["responses"]), ["200", "401", "403", "429"]);
    assert_eq!(keys(&admin["responses"]["429"]["headers"]), ["Retry-After"]);
    assert_eq!(
        keys(&admin["responses"]["429"]["content"]["application/json"]["examples"]),
        ["LOCKED_OUT"]
    );
    assert_eq!(
        admin["responses"]["403"]["content"]["application/json"]["examples"]["insufficient_scope"]
            ["value"],
        json!({"error": "Forbidden: this API key lacks the scope `admin`", "code": "FORBIDDEN"})
    );
    assert!(admin.get("x-rate-limit").is_none());
    assert!(admin["responses"]["200"].get("headers").is_none());
}

#[tokio::test]
async fn the_document_reads_back_as_openapi_3_1() {
    let engine = engine(Engine::builder());
    let (_, openapi) = quickstart(&engine);
    let text = openapi.to_json().unwrap();
    // utoipa's own types read it, and write it back the same. (They read an
    // absent `extensions` as an empty one, so the values, not the structs,
    // are compared.)
    let read: OpenApi = serde_json::from_str(&text).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), value);
    assert_eq!(value["openapi"], "3.1.0");
    assert_eq!(keys(&value["paths"]), ["/admin", "/score", "/words/{id}"]);
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(upload, admin, search, health))]
struct UploadDoc;

#[test]
fn the_problem_format_ietf_headers_and_request_limits_are_documented() {
    let engine = engine(
        Engine::builder()
            .error_format(ErrorFormat::problem())
            .rate_limit_headers(HeaderStyle::Ietf),
    );
    let mut openapi = UploadDoc::openapi();
    let report = engine.document(&mut openapi);
    assert_eq!(
        report.missing(),
        all_but(&[
            "openapi::admin",
            "openapi::health",
            "openapi::search",
            "openapi::upload"
        ])
    );
    let spec = serde_json::to_value(&openapi).unwrap();
    let upload = operation(&spec, "/upload", "post");
    assert!(upload.get("security").is_none());
    assert_eq!(
        keys(&upload["responses"]),
        ["200", "400", "413", "429", "504"]
    );
    assert_eq!(
        upload["x-rate-limit"],
        json!(["10 per 1 minute, per `x-tenant` header"])
    );
    assert_eq!(
        keys(&upload["responses"]["429"]["headers"]),
        ["RateLimit", "RateLimit-Policy", "Retry-After"]
    );
    let problem =
        |status: &str| &upload["responses"][status]["content"]["application/problem+json"];
    assert_eq!(
        problem("400")["examples"]["MISSING_RATE_LIMIT_KEY"]["value"],
        json!({"type": "about:blank", "title": "Bad Request", "status": 400,
               "detail": "This endpoint needs the `x-tenant` header", "instance": "/upload",
               "code": "MISSING_RATE_LIMIT_KEY"})
    );
    assert_eq!(
        problem("413")["examples"]["PAYLOAD_TOO_LARGE"]["value"]["detail"],
        "Payload Too Large: the request body is over the limit"
    );
    assert_eq!(
        problem("504")["examples"]["TIMEOUT"]["value"]["detail"],
        "Gateway Timeout: the request took longer than 5s"
    );
    // Bursts, costs and strict limits in words; an exempt handler says so
    // and sends no rate-limit header.
    let search = operation(&spec, "/search", "get");
    assert_eq!(
        search["x-rate-limit"],
        json!([
            "30 per 1 minute, burst 60, per API key, each request counting 2",
            "5 per 1 hour, strict, per client IP"
        ])
    );
    let health = operation(&spec, "/health", "get");
    assert_eq!(health["x-rate-limit"], json!(["no limit (exempt)"]));
    assert_eq!(keys(&health["responses"]), ["200"]);
    assert!(health["responses"]["200"].get("headers").is_none());
    assert_eq!(
        spec["components"]["schemas"]["PolicyError"]["required"],
        json!(["type", "title", "status", "detail", "code"])
    );
}

#[test]
fn an_unmatched_document_changes_nothing() {
    let engine = engine(Engine::builder());
    let mut openapi = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("empty")
                .version("1")
                .build(),
        )
        .build();
    let before = openapi.clone();
    let report = engine.document(&mut openapi);
    assert!(report.operations().is_empty());
    assert_eq!(report.missing(), all_but(&[]));
    assert_eq!(openapi, before);
}

#[cfg(feature = "jwt")]
#[test]
fn a_jwt_or_api_key_with_any_of_two_scopes_is_six_requirements() {
    let engine = engine(Engine::builder());
    let (_, mut openapi) = OpenApiRouter::<()>::new()
        .routes(routes!(jwt::invoices))
        .split_for_parts();
    let report = engine.document(&mut openapi);
    assert_eq!(report.operations()[0].handler, "openapi::jwt::invoices");
    let spec = serde_json::to_value(&openapi).unwrap();
    assert_eq!(
        spec["components"]["securitySchemes"]["jwt"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "A JWT as a bearer token: `Authorization: Bearer <token>`."})
    );
    let invoices = operation(&spec, "/invoices", "get");
    assert_eq!(
        invoices["security"],
        json!([
            {"api_key": ["billing:read"]}, {"api_key": ["billing:admin"]},
            {"api_key_bearer": ["billing:read"]}, {"api_key_bearer": ["billing:admin"]},
            {"jwt": ["billing:read"]}, {"jwt": ["billing:admin"]}
        ])
    );
    assert_eq!(
        keys(&invoices["responses"]),
        ["200", "400", "401", "403", "429"]
    );
    let examples =
        |status: &str| &invoices["responses"][status]["content"]["application/json"]["examples"];
    assert_eq!(
        keys(examples("401")),
        ["expired_token", "invalid_api_key", "missing_api_key"]
    );
    assert_eq!(
        examples("403")["insufficient_scope"]["value"]["error"],
        "Forbidden: this API key has none of the scopes `billing:read`, `billing:admin`"
    );
    // The lockout counts failed tokens as it counts failed keys.
    assert_eq!(keys(examples("429")), ["LOCKED_OUT", "RATE_LIMITED"]);
    assert_eq!(
        examples("400")["MISSING_RATE_LIMIT_KEY"]["value"]["error"],
        "This endpoint needs a JWT with the `tenant_id` claim"
    );
    assert_eq!(
        invoices["x-rate-limit"],
        json!(["100 per 1 minute, per JWT claim `tenant_id`"])
    );
}

#[cfg(feature = "jwt")]
#[test]
fn a_token_only_operation_words_its_403_as_the_jwt_policy_answers() {
    let engine = engine(Engine::builder());
    let (_, mut openapi) = OpenApiRouter::<()>::new()
        .routes(routes!(jwt::reports))
        .split_for_parts();
    engine.document(&mut openapi);
    let spec = serde_json::to_value(&openapi).unwrap();
    let reports = operation(&spec, "/reports", "get");
    assert_eq!(reports["security"], json!([{"jwt": ["reports:read"]}]));
    assert_eq!(
        reports["responses"]["403"]["content"]["application/json"]["examples"]["insufficient_scope"]
            ["value"],
        json!({"error": "Forbidden: this token lacks the scope `reports:read`", "code": "FORBIDDEN"})
    );
}
