//! The policy layers, the default limits, the penalty box and key functions
//! in the OpenAPI document: routes wrapped by `RateLimit`, `RequireApiKey`
//! and `engine.default_limits()` (on a `utoipa_axum` `OpenApiRouter` through
//! `OpenApiRouterExt`, and on a plain `Router` through
//! `Engine::document_layer`), documented with their exact security
//! requirements, response codes, header names and example bodies, each
//! example checked against the answer of a real request through the Router;
//! and the names that are no operation, or several, reported, not guessed.
#![cfg(feature = "utoipa-axum")]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use common::{Reply, from, send};
use policy_runtime::{
    ApiKey, Engine, ErrorBody, ErrorFormat, OpenApiRouterExt, Penalty, RateLimit, RequireApiKey,
    rate_limit, require_api_key,
};
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const OPS: &str = "ops-key-0123456789abcdefghij";
const READER: &str = "reader-key-0123456789abcdefgh";

/// Items: no policy attribute of its own; the layers say what it needs.
#[utoipa::path(get, path = "/items", responses((status = 200, description = "The items")))]
async fn items() -> &'static str {
    "items"
}

/// The admin area: no policy attribute of its own either.
#[utoipa::path(get, path = "/admin/users", responses((status = 200, description = "The users")))]
async fn admin_users() -> &'static str {
    "users"
}

/// Added after the layers: wrapped by none.
#[utoipa::path(get, path = "/public", responses((status = 200, description = "Public")))]
async fn public() -> &'static str {
    "public"
}

/// Under the default limits.
#[utoipa::path(get, path = "/about", responses((status = 200, description = "About")))]
async fn about() -> &'static str {
    "about"
}

/// A limit of its own, routed after the default-limits layer: no defaults.
#[rate_limit("5/minute")]
#[utoipa::path(get, path = "/own", responses((status = 200, description = "Own limit")))]
async fn own() -> &'static str {
    "own"
}

/// Its own limit on top of the defaults, routed after the layer.
#[rate_limit("5/minute", add_to_defaults)]
#[utoipa::path(get, path = "/added", responses((status = 200, description = "Both")))]
async fn added() -> &'static str {
    "added"
}

/// A limit of its own, but routed under the default-limits layer: the
/// runtime charges it the defaults too.
#[rate_limit("5/minute")]
#[utoipa::path(get, path = "/under", responses((status = 200, description = "Both, by mistake")))]
async fn under() -> &'static str {
    "under"
}

/// One request a minute, for the penalty box.
#[rate_limit("1/minute")]
#[utoipa::path(get, path = "/penalized", responses((status = 200, description = "Penalized")))]
async fn penalized() -> &'static str {
    "penalized"
}

/// The tenant of a request, from its `x-tenant` header; refused without it.
fn tenant(parts: &Parts) -> Result<String, ErrorBody> {
    match parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()) {
        Some(tenant) => Ok(format!("tenant:{tenant}")),
        None => Err(ErrorBody::new(
            StatusCode::BAD_REQUEST,
            "NO_TENANT",
            "Send your tenant in the `x-tenant` header",
        )),
    }
}

/// A session cookie's value; a request without one is refused with 401.
fn session(parts: &Parts) -> Result<String, ErrorBody> {
    match parts.headers.get("cookie").and_then(|v| v.to_str().ok()) {
        Some(cookie) => Ok(cookie.to_owned()),
        None => Err(ErrorBody::new(
            StatusCode::UNAUTHORIZED,
            "NO_SESSION",
            "Sign in first",
        )),
    }
}

#[rate_limit("10/minute", key = tenant)]
#[utoipa::path(get, path = "/tenant", responses((status = 200, description = "Per tenant")))]
async fn per_tenant() -> &'static str {
    "tenant"
}

#[rate_limit("10/minute", key = session)]
#[utoipa::path(get, path = "/session", responses((status = 200, description = "Per session")))]
async fn per_session() -> &'static str {
    "session"
}

/// A key check first, then a limit per session: two kinds of 401.
#[require_api_key]
#[rate_limit("10/minute", key = session)]
#[utoipa::path(get, path = "/keyed-session", responses((status = 200, description = "Keyed")))]
async fn keyed_session() -> &'static str {
    "keyed"
}

/// The plain-Router handlers, documented by `#[derive(OpenApi)]`.
mod plain {
    use policy_runtime::require_api_key;

    #[utoipa::path(get, path = "/plain/items", responses((status = 200, description = "Items")))]
    pub async fn plain_items() -> &'static str {
        "items"
    }

    #[utoipa::path(get, path = "/plain/items/{id}", params(("id" = u32, Path)), responses((status = 200, description = "An item")))]
    pub async fn plain_item() -> &'static str {
        "item"
    }

    #[utoipa::path(get, path = "/plain/a", operation_id = "list", responses((status = 200, description = "A")))]
    pub async fn list_a() -> &'static str {
        "a"
    }

    #[utoipa::path(get, path = "/plain/b", operation_id = "list", responses((status = 200, description = "B")))]
    pub async fn list_b() -> &'static str {
        "b"
    }

    /// Its own key check, under a rate-limit layer.
    #[require_api_key(scope = "reports:read")]
    #[utoipa::path(get, path = "/plain/reports", responses((status = 200, description = "Reports")))]
    pub async fn plain_reports() -> &'static str {
        "reports"
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    plain::plain_items,
    plain::plain_item,
    plain::list_a,
    plain::list_b,
    plain::plain_reports
))]
struct PlainDoc;

fn keys(builder: policy_runtime::EngineBuilder) -> policy_runtime::EngineBuilder {
    builder
        .api_key_with(ApiKey::new("ops", OPS).scopes(["admin", "reports:read"]))
        .api_key("reader", READER)
}

/// The document as JSON, after reading it back with utoipa's own types.
fn json_of(openapi: &OpenApi) -> Value {
    let text = openapi.to_json().unwrap();
    let parsed: OpenApi = serde_json::from_str(&text).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), json);
    json
}

/// An object's keys, sorted.
fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The one content type of a response and its content.
fn content(operation: &Value, status: &str) -> (String, Value) {
    let content = &operation["responses"][status]["content"];
    let types = keys_of(content);
    assert_eq!(types.len(), 1, "{status}: {content}");
    (types[0].clone(), content[&types[0]].clone())
}

/// The example `name` of the response `status`.
fn example(operation: &Value, status: &str, name: &str) -> Value {
    let (_, content) = content(operation, status);
    let value = content["examples"][name]["value"].clone();
    assert!(
        !value.is_null(),
        "no example `{name}` in {status}: {content}"
    );
    value
}

fn example_names(operation: &Value, status: &str) -> Vec<String> {
    keys_of(&content(operation, status).1["examples"])
}

fn header_names(operation: &Value, status: &str) -> Vec<String> {
    keys_of(&operation["responses"][status]["headers"])
}

/// The rate-limit headers of a real response, lower case, sorted.
fn limit_headers(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| {
            name.starts_with("x-ratelimit")
                || name.starts_with("ratelimit")
                || name == "retry-after"
        })
        .collect();
    names.sort();
    names
}

fn lower_sorted(names: Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|name| name.to_ascii_lowercase()).collect();
    names.sort();
    names
}

/// The real answer is the documented response: the status, the content
/// type, the body of example `name`, and every documented header.
fn assert_documented(reply: &Reply, operation: &Value, name: &str) {
    let status = reply.status.as_str();
    let (content_type, _) = content(operation, status);
    assert_eq!(reply.header("content-type"), content_type);
    assert_eq!(
        reply.json(),
        example(operation, status, name),
        "{status} `{name}`"
    );
    for header in header_names(operation, status) {
        assert!(
            reply
                .headers
                .contains_key(header.to_ascii_lowercase().as_str()),
            "{status}: no `{header}` in {:?}",
            reply.headers
        );
    }
}

fn request(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = from("192.0.2.1", "GET", uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

const LEGACY_AND_IETF: [&str; 5] = [
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
];

#[tokio::test]
async fn layers_on_an_openapi_router_document_the_operations_they_wrap() {
    let engine = keys(Engine::builder()).build().unwrap();
    let limit = RateLimit::builder("items", "2/minute")
        .per_header("x-user-id")
        .build()
        .unwrap();
    let (router, mut openapi) = OpenApiRouter::new()
        .routes(routes!(items))
        .policy_layer(limit) // `/items`
        .routes(routes!(admin_users))
        .policy_layer(RequireApiKey::scope("admin").unwrap()) // both routes above
        .routes(routes!(public)) // none
        .split_for_parts();
    let report = engine.document(&mut openapi);
    let layered: Vec<_> = report
        .operations()
        .iter()
        .filter(|op| op.handler.is_empty())
        .map(|op| (op.method, op.path.as_str(), op.layers.clone()))
        .collect();
    assert_eq!(
        layered,
        [
            ("GET", "/admin/users", vec!["RequireApiKey".to_owned()]),
            (
                "GET",
                "/items",
                vec![
                    "RequireApiKey".to_owned(),
                    "RateLimit(\"items\")".to_owned()
                ]
            ),
        ]
    );
    let spec = json_of(&openapi);
    let admin_scope = json!([{"api_key": ["admin"]}, {"api_key_bearer": ["admin"]}]);

    let items = &spec["paths"]["/items"]["get"];
    assert_eq!(items["security"], admin_scope);
    assert_eq!(
        keys_of(&items["responses"]),
        ["200", "400", "401", "403", "429"]
    );
    assert_eq!(
        items["x-rate-limit"],
        json!(["2 per 1 minute, per `x-user-id` header"])
    );
    assert_eq!(
        lower_sorted(header_names(items, "200")),
        lower_sorted(LEGACY_AND_IETF.map(String::from).to_vec())
    );
    let mut refused = LEGACY_AND_IETF.map(String::from).to_vec();
    refused.push("Retry-After".to_owned());
    assert_eq!(
        lower_sorted(header_names(items, "429")),
        lower_sorted(refused)
    );
    assert_eq!(header_names(items, "401"), ["WWW-Authenticate"]);
    assert_eq!(
        example_names(items, "401"),
        ["invalid_api_key", "missing_api_key"]
    );
    // The lockout of failed keys (on by default with keys) answers 429 too.
    assert_eq!(example_names(items, "429"), ["LOCKED_OUT", "RATE_LIMITED"]);
    assert_eq!(
        example(items, "400", "MISSING_RATE_LIMIT_KEY"),
        json!({"error": "This endpoint needs the `x-user-id` header", "code": "MISSING_RATE_LIMIT_KEY"})
    );

    let admin = &spec["paths"]["/admin/users"]["get"];
    assert_eq!(admin["security"], admin_scope);
    assert_eq!(keys_of(&admin["responses"]), ["200", "401", "403", "429"]);
    assert_eq!(example_names(admin, "429"), ["LOCKED_OUT"]);
    assert!(admin["x-rate-limit"].is_null());
    assert!(header_names(admin, "200").is_empty());

    let public_op = &spec["paths"]["/public"]["get"];
    assert!(public_op["security"].is_null());
    assert_eq!(keys_of(&public_op["responses"]), ["200"]);
    // The marks are gone once documented.
    assert!(!spec.to_string().contains("x-policy-runtime"));
    assert_eq!(
        spec["components"]["securitySchemes"]["api_key"],
        json!({"type": "apiKey", "name": "X-API-Key", "in": "header", "description": "An API key in the `X-API-Key` header."})
    );

    // Each example is what the Router answers.
    let app = router.layer(engine);
    let missing = send(&app, request("/items", &[])).await;
    assert_eq!(missing.status, 401);
    assert_documented(&missing, items, "missing_api_key");
    let invalid = send(
        &app,
        request("/items", &[("x-api-key", "not-a-key-0123456789abcdef")]),
    )
    .await;
    assert_documented(&invalid, items, "invalid_api_key");
    let reader = send(&app, request("/items", &[("x-api-key", READER)])).await;
    assert_eq!(reader.status, 403);
    assert_documented(&reader, items, "insufficient_scope");
    let no_user = send(&app, request("/items", &[("x-api-key", OPS)])).await;
    assert_eq!(no_user.status, 400);
    assert_documented(&no_user, items, "MISSING_RATE_LIMIT_KEY");
    let user = [("x-api-key", OPS), ("x-user-id", "ada")];
    for _ in 0..2 {
        let admitted = send(&app, request("/items", &user)).await;
        assert_eq!(admitted.status, 200);
        assert_eq!(
            limit_headers(&admitted.headers),
            lower_sorted(header_names(items, "200"))
        );
    }
    let over = send(&app, request("/items", &user)).await;
    assert_eq!(over.status, 429);
    assert_documented(&over, items, "RATE_LIMITED");
    assert_eq!(
        limit_headers(&over.headers),
        lower_sorted(header_names(items, "429"))
    );

    let admin_reader = send(&app, request("/admin/users", &[("x-api-key", READER)])).await;
    assert_documented(&admin_reader, admin, "insufficient_scope");
    let admitted = send(&app, request("/admin/users", &[("x-api-key", OPS)])).await;
    assert_eq!(
        (admitted.status, admitted.body.as_str()),
        (StatusCode::OK, "users")
    );
    assert!(limit_headers(&admitted.headers).is_empty());
    assert_eq!(send(&app, request("/public", &[])).await.status, 200);
}

#[tokio::test]
async fn default_limits_are_documented_where_the_runtime_charges_them() {
    let engine = keys(Engine::builder())
        .default_limits("2/minute")
        .build()
        .unwrap();
    let (router, mut openapi) = OpenApiRouter::new()
        .routes(routes!(about))
        .routes(routes!(under))
        .default_limits(&engine)
        .routes(routes!(own))
        .routes(routes!(added))
        .split_for_parts();
    engine.document(&mut openapi);
    let spec = json_of(&openapi);
    let defaults = "2 per 1 minute, per client IP (default limits)";
    let about_op = &spec["paths"]["/about"]["get"];
    assert_eq!(about_op["x-rate-limit"], json!([defaults]));
    assert_eq!(keys_of(&about_op["responses"]), ["200", "429"]);
    assert_eq!(
        example(about_op, "429", "RATE_LIMITED"),
        json!({"error": "Too Many Requests: 2 per 1 minute", "code": "RATE_LIMITED"})
    );
    assert!(about_op["security"].is_null());
    // Its own limit, after the layer: the defaults do not apply.
    let own_op = &spec["paths"]["/own"]["get"];
    assert_eq!(
        own_op["x-rate-limit"],
        json!(["5 per 1 minute, per client IP"])
    );
    assert_eq!(example_names(own_op, "429"), ["RATE_LIMITED"]);
    // `add_to_defaults`, and a limit of its own under the layer: both.
    for path in ["/added", "/under"] {
        let op = &spec["paths"][path]["get"];
        assert_eq!(
            op["x-rate-limit"],
            json!([defaults, "5 per 1 minute, per client IP"]),
            "{path}"
        );
        assert_eq!(
            example_names(op, "429"),
            ["RATE_LIMITED_1", "RATE_LIMITED_2"],
            "{path}"
        );
        assert_eq!(
            example(op, "429", "RATE_LIMITED_1")["error"],
            "Too Many Requests: 2 per 1 minute"
        );
    }

    let app = router.layer(engine);
    for path in ["/about", "/under", "/added"] {
        for _ in 0..2 {
            let admitted = send(&app, request(path, &[])).await;
            assert_eq!(admitted.status, 200, "{path}");
            assert_eq!(admitted.header("x-ratelimit-limit"), "2", "{path}");
        }
        let over = send(&app, request(path, &[])).await;
        let op = &spec["paths"][path]["get"];
        let name = if path == "/about" {
            "RATE_LIMITED"
        } else {
            "RATE_LIMITED_1"
        };
        assert_documented(&over, op, name);
    }
    for _ in 0..5 {
        let own_reply = send(&app, request("/own", &[])).await;
        assert_eq!(own_reply.status, 200);
        assert_eq!(own_reply.header("x-ratelimit-limit"), "5");
    }
    assert_documented(
        &send(&app, request("/own", &[])).await,
        own_op,
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn the_penalty_box_refusal_is_an_example_of_every_limited_operation() {
    let minute = Duration::from_secs(60);
    let engine = keys(Engine::builder())
        .default_limits("50/hour")
        .penalty(Penalty::new(1, minute, 10 * minute))
        .build()
        .unwrap();
    let (router, mut openapi) = OpenApiRouter::new()
        .routes(routes!(about))
        .default_limits(&engine)
        .routes(routes!(penalized))
        .routes(routes!(public))
        .split_for_parts();
    engine.document(&mut openapi);
    let spec = json_of(&openapi);
    let blocked = json!({"error": "Too Many Requests: blocked after repeated violations", "code": "RATE_LIMITED"});
    let op = &spec["paths"]["/penalized"]["get"];
    assert_eq!(example_names(op, "429"), ["PENALTY_BOX", "RATE_LIMITED"]);
    assert_eq!(example(op, "429", "PENALTY_BOX"), blocked);
    assert_eq!(
        example(&spec["paths"]["/about"]["get"], "429", "PENALTY_BOX"),
        blocked
    );
    assert_eq!(
        keys_of(&spec["paths"]["/public"]["get"]["responses"]),
        ["200"]
    );

    let app = router.layer(engine);
    assert_eq!(send(&app, request("/penalized", &[])).await.status, 200);
    let over = send(&app, request("/penalized", &[])).await;
    assert_documented(&over, op, "RATE_LIMITED");
    // One strike: blocked, with the penalty box's own answer.
    let in_the_box = send(&app, request("/penalized", &[])).await;
    assert_documented(&in_the_box, op, "PENALTY_BOX");
    assert_eq!(in_the_box.header_u64("retry-after"), 600);
}

#[tokio::test]
async fn a_key_function_refusal_is_documented_as_the_runtime_answers_it() {
    for format in [ErrorFormat::Compact, ErrorFormat::problem()] {
        let engine = keys(Engine::builder())
            .error_format(format.clone())
            .build()
            .unwrap();
        let (router, mut openapi) = OpenApiRouter::new()
            .routes(routes!(per_tenant))
            .routes(routes!(per_session))
            .routes(routes!(keyed_session))
            .split_for_parts();
        engine.document(&mut openapi);
        let spec = json_of(&openapi);
        let tenant_op = &spec["paths"]["/tenant"]["get"];
        assert_eq!(keys_of(&tenant_op["responses"]), ["200", "400", "429"]);
        assert_eq!(example_names(tenant_op, "400"), ["NO_TENANT"]);
        assert_eq!(
            tenant_op["x-rate-limit"],
            json!(["10 per 1 minute, per key of the service's own function"])
        );
        let session_op = &spec["paths"]["/session"]["get"];
        assert_eq!(keys_of(&session_op["responses"]), ["200", "401", "429"]);
        assert_eq!(example_names(session_op, "401"), ["NO_SESSION"]);
        assert_eq!(
            session_op["responses"]["401"]["description"],
            "Unauthorized: the rate limit's key function refused the request."
        );
        if matches!(format, ErrorFormat::Compact) {
            assert_eq!(
                example(tenant_op, "400", "NO_TENANT"),
                json!({"error": "Send your tenant in the `x-tenant` header", "code": "NO_TENANT"})
            );
        } else {
            assert_eq!(content(tenant_op, "400").0, "application/problem+json");
        }

        let app = router.layer(engine);
        let refused = send(&app, request("/tenant", &[])).await;
        assert_eq!(refused.status, 400);
        assert_documented(&refused, tenant_op, "NO_TENANT");
        let signed_out = send(&app, request("/session", &[])).await;
        assert_eq!(signed_out.status, 401);
        assert_documented(&signed_out, session_op, "NO_SESSION");
        let admitted = send(&app, request("/tenant", &[("x-tenant", "acme")])).await;
        assert_eq!(admitted.status, 200);

        // The key check's 401s and the key function's, in one response.
        let keyed_op = &spec["paths"]["/keyed-session"]["get"];
        assert_eq!(
            example_names(keyed_op, "401"),
            ["NO_SESSION", "invalid_api_key", "missing_api_key"]
        );
        let no_key = send(&app, request("/keyed-session", &[])).await;
        assert_documented(&no_key, keyed_op, "missing_api_key");
        let no_session = send(&app, request("/keyed-session", &[("x-api-key", OPS)])).await;
        assert_eq!(no_session.status, 401);
        assert_eq!(no_session.json(), example(keyed_op, "401", "NO_SESSION"));
    }
}

#[tokio::test]
async fn layers_on_a_plain_router_document_the_operations_named() {
    let engine = keys(Engine::builder()).build().unwrap();
    let limit = RateLimit::new("plain", "1/minute").unwrap();
    let reports_limit = RateLimit::new("reports", "1/minute").unwrap();
    let app: Router = Router::new()
        .route("/plain/items", get(plain::plain_items))
        .route("/plain/items/{id}", get(plain::plain_item))
        .route_layer(limit)
        .route(
            "/plain/reports",
            get(plain::plain_reports).route_layer(reports_limit),
        )
        .route("/plain/a", get(plain::list_a))
        .route("/plain/b", get(plain::list_b))
        .layer(engine.clone());

    let mut openapi = PlainDoc::openapi();
    let marked = engine.document_layer(
        &mut openapi,
        &limit,
        [
            "get /plain/items",
            "plain_item",
            "DELETE /plain/items",
            "list",
            "nothing",
        ],
    );
    assert_eq!(
        marked.operations(),
        ["GET /plain/items", "GET /plain/items/{id}"]
    );
    assert_eq!(marked.unmatched(), ["DELETE /plain/items", "nothing"]);
    assert_eq!(
        marked.ambiguous(),
        [(
            "list".to_owned(),
            vec!["GET /plain/a".to_owned(), "GET /plain/b".to_owned()]
        )]
    );
    assert!(!marked.is_complete());
    assert_eq!(
        marked.to_string(),
        "2 operations marked; `DELETE /plain/items` is no operation of the document; \
         `nothing` is no operation of the document; `list` could be any of GET /plain/a, GET /plain/b"
    );
    let reports_marked =
        engine.document_layer(&mut openapi, &reports_limit, ["GET /plain/reports"]);
    assert!(reports_marked.is_complete(), "{reports_marked}");
    let report = engine.document(&mut openapi);
    let reports_documented = report
        .operations()
        .iter()
        .find(|op| op.path == "/plain/reports")
        .unwrap();
    assert_eq!(
        reports_documented.handler,
        "openapi_layers::plain::plain_reports"
    );
    assert_eq!(reports_documented.layers, ["RateLimit(\"reports\")"]);

    let spec = json_of(&openapi);
    let one = json!(["1 per 1 minute, per client IP"]);
    for path in ["/plain/items", "/plain/items/{id}"] {
        assert_eq!(spec["paths"][path]["get"]["x-rate-limit"], one, "{path}");
    }
    // The names not matched are left alone.
    for path in ["/plain/a", "/plain/b"] {
        let op = &spec["paths"][path]["get"];
        assert!(op["x-rate-limit"].is_null(), "{path}");
        assert_eq!(keys_of(&op["responses"]), ["200"], "{path}");
    }
    // The handler's own policy keeps its security; the layer adds its limit.
    let reports = &spec["paths"]["/plain/reports"]["get"];
    assert_eq!(
        reports["security"],
        json!([{"api_key": ["reports:read"]}, {"api_key_bearer": ["reports:read"]}])
    );
    assert_eq!(reports["x-rate-limit"], one);
    assert_eq!(keys_of(&reports["responses"]), ["200", "401", "403", "429"]);

    let items_op = &spec["paths"]["/plain/items/{id}"]["get"];
    assert_eq!(send(&app, request("/plain/items/7", &[])).await.status, 200);
    assert_documented(
        &send(&app, request("/plain/items/7", &[])).await,
        items_op,
        "RATE_LIMITED",
    );
    // The reports' limit is outside the handler's key check: it counts first.
    let reader = send(&app, request("/plain/reports", &[("x-api-key", READER)])).await;
    assert_documented(&reader, reports, "insufficient_scope");
    let over = send(&app, request("/plain/reports", &[("x-api-key", OPS)])).await;
    assert_documented(&over, reports, "RATE_LIMITED");
}

#[tokio::test]
async fn an_engine_without_default_limits_documents_none() {
    let engine = keys(Engine::builder()).build().unwrap();
    let (_router, mut openapi) = OpenApiRouter::<()>::new()
        .routes(routes!(about))
        .default_limits(&engine)
        .split_for_parts();
    let report = engine.document(&mut openapi);
    let about_documented = report
        .operations()
        .iter()
        .find(|op| op.path == "/about")
        .unwrap();
    assert_eq!(about_documented.layers, ["DefaultLimits"]);
    let spec = json_of(&openapi);
    let op = &spec["paths"]["/about"]["get"];
    assert!(op["x-rate-limit"].is_null());
    assert_eq!(keys_of(&op["responses"]), ["200"]);
}

/// Uploads, for the README's example of layers in order.
#[utoipa::path(post, path = "/upload", responses((status = 200, body = String)))]
async fn upload() -> &'static str {
    "stored"
}

#[test]
fn layers_are_listed_outermost_first_with_their_quotas_in_that_order() {
    let engine = Engine::builder()
        .api_key("ops", "ops-key-0123456789abcdef")
        .default_limits("50/hour")
        .build()
        .unwrap();
    let (_router, mut openapi) = OpenApiRouter::<()>::new()
        .routes(routes!(upload))
        .policy_layer(RateLimit::new("uploads", "20/hour").unwrap()) // `/upload`
        .routes(routes!(admin_users))
        .policy_layer(RequireApiKey::scope("admin").unwrap()) // `/upload` and `/admin/users`
        .routes(routes!(about))
        .default_limits(&engine) // all three
        .split_for_parts();
    let report = engine.document(&mut openapi);

    let layers_of = |path: &str| {
        report
            .operations()
            .iter()
            .find(|op| op.path == path)
            .unwrap()
            .layers
            .clone()
    };
    assert_eq!(
        layers_of("/upload"),
        ["DefaultLimits", "RequireApiKey", "RateLimit(\"uploads\")"]
    );
    assert_eq!(
        layers_of("/admin/users"),
        ["DefaultLimits", "RequireApiKey"]
    );
    assert_eq!(layers_of("/about"), ["DefaultLimits"]);
    let json = serde_json::to_value(&openapi).unwrap();
    let upload = &json["paths"]["/upload"]["post"];
    assert_eq!(upload["security"][0]["api_key"][0], "admin");
    assert_eq!(
        upload["x-rate-limit"],
        json!([
            "50 per 1 hour, per client IP (default limits)",
            "20 per 1 hour, per client IP"
        ])
    );
    assert!(json["paths"]["/about"]["get"]["security"].is_null());
}

/// Behind a `RequireJwt` layer, on a plain Router.
#[cfg(feature = "jwt")]
#[utoipa::path(get, path = "/jwt/reports", responses((status = 200, description = "Reports")))]
async fn jwt_reports() -> &'static str {
    "reports"
}

#[cfg(feature = "jwt")]
#[tokio::test]
async fn a_jwt_layer_is_documented_with_the_answers_of_the_jwt_policy() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use policy_runtime::RequireJwt;

    #[derive(utoipa::OpenApi)]
    #[openapi(paths(jwt_reports))]
    struct JwtDoc;

    const SECRET: &str = "a-test-secret-of-32-bytes-or-more!";
    let engine = keys(Engine::builder())
        .jwt_secret(SECRET)
        .jwt_issuer("https://issuer.example")
        .jwt_audience("reports")
        .build()
        .unwrap();
    let layer = RequireJwt::scope("reports:read").unwrap();
    let app: Router = Router::new()
        .route("/jwt/reports", get(jwt_reports))
        .route_layer(layer)
        .layer(engine.clone());
    let mut openapi = JwtDoc::openapi();
    let marked = engine.document_layer(&mut openapi, &layer, ["jwt_reports"]);
    assert_eq!(marked.operations(), ["GET /jwt/reports"]);
    let report = engine.document(&mut openapi);
    let documented = report
        .operations()
        .iter()
        .find(|op| op.path == "/jwt/reports")
        .unwrap();
    assert_eq!(
        (documented.handler, documented.layers.clone()),
        ("", vec!["RequireJwt".to_owned()])
    );

    let spec = json_of(&openapi);
    let op = &spec["paths"]["/jwt/reports"]["get"];
    assert_eq!(op["security"], json!([{"jwt": ["reports:read"]}]));
    assert_eq!(keys_of(&op["responses"]), ["200", "401", "403", "429"]);
    assert_eq!(
        example_names(op, "401"),
        ["expired_token", "missing_bearer_token"]
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["jwt"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A JWT as a bearer token: `Authorization: Bearer <token>`."})
    );

    let token = |scope: &str| {
        let claims = json!({
            "sub": "ada", "iss": "https://issuer.example", "aud": "reports",
            "exp": 4_000_000_000u64, "scope": scope,
        });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let missing = send(&app, request("/jwt/reports", &[])).await;
    assert_eq!(missing.status, 401);
    assert_documented(&missing, op, "missing_bearer_token");
    let bearer = format!("Bearer {}", token("billing:read"));
    let forbidden = send(&app, request("/jwt/reports", &[("authorization", &bearer)])).await;
    assert_eq!(forbidden.status, 403);
    assert_documented(&forbidden, op, "insufficient_scope");
    let bearer = format!("Bearer {}", token("reports:read"));
    let admitted = send(&app, request("/jwt/reports", &[("authorization", &bearer)])).await;
    assert_eq!(
        (admitted.status, admitted.body.as_str()),
        (StatusCode::OK, "reports")
    );
    // Five bad tokens (the default lockout) lock the client out; the refusal
    // names tokens, as the document says.
    let forged = [("authorization", "Bearer not.a.token")];
    for _ in 0..5 {
        let bad = send(&app, request("/jwt/reports", &forged)).await;
        assert_eq!(bad.status, 401);
    }
    let locked = send(&app, request("/jwt/reports", &[("authorization", &bearer)])).await;
    assert_eq!(locked.status, 429);
    assert_documented(&locked, op, "LOCKED_OUT");
    assert_eq!(
        locked.json()["error"],
        "Too Many Requests: too many failed token attempts from this client"
    );
}

#[tokio::test]
async fn the_default_limits_headers_follow_the_engines_header_style() {
    use policy_runtime::HeaderStyle;

    for (style, admitted_names) in [
        (HeaderStyle::Ietf, vec!["ratelimit", "ratelimit-policy"]),
        (HeaderStyle::None, vec![]),
    ] {
        let engine = keys(Engine::builder())
            .default_limits("1/minute")
            .rate_limit_headers(style)
            .build()
            .unwrap();
        let (router, mut openapi) = OpenApiRouter::new()
            .routes(routes!(about))
            .default_limits(&engine)
            .split_for_parts();
        engine.document(&mut openapi);
        let spec = json_of(&openapi);
        let op = &spec["paths"]["/about"]["get"];
        assert_eq!(
            lower_sorted(header_names(op, "200")),
            admitted_names,
            "{style:?}"
        );
        let mut refused_names = admitted_names.clone();
        refused_names.push("retry-after");
        refused_names.sort();
        assert_eq!(
            lower_sorted(header_names(op, "429")),
            refused_names,
            "{style:?}"
        );

        let app = router.layer(engine);
        let admitted = send(&app, request("/about", &[])).await;
        assert_eq!(
            limit_headers(&admitted.headers),
            admitted_names,
            "{style:?}"
        );
        let over = send(&app, request("/about", &[])).await;
        assert_documented(&over, op, "RATE_LIMITED");
        assert_eq!(limit_headers(&over.headers), refused_names, "{style:?}");
    }
}
