//! The policies without macros: `RateLimit` and `RequireApiKey` as layers on
//! a group of routes, a closure handler and `ServeDir`, with the attributes'
//! answers.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{ApiKeyId, ClientKey, Engine, RateLimit, RequireApiKey};
use tower_http::services::ServeDir;

const KEY: &str = "layered-policy-key-0123456789";
const READER: &str = "layered-reader-key-0123456789";

fn engine() -> Engine {
    Engine::builder()
        .api_key_with(policy_runtime::ApiKey::new("ops", KEY).scopes(["admin"]))
        .api_key("reader", READER)
        .build()
        .unwrap()
}

fn request(ip: &str, uri: &str, key: Option<&str>) -> axum::http::Request<Body> {
    let mut builder = from(ip, "GET", uri);
    if let Some(key) = key {
        builder = builder.header("x-api-key", key);
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn a_rate_limit_layer_limits_a_group_of_routes_as_one_scope() {
    let engine = engine();
    let app = Router::new()
        .route("/a", get(|| async { "a" }))
        .route("/b/{id}", get(|| async { "b" }))
        .route_layer(RateLimit::new("layered-group", "3/hour").unwrap())
        .route("/free", get(|| async { "free" }))
        .layer(engine.clone());
    let first = send(&app, request("192.0.2.1", "/a", None)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, "a");
    assert_eq!(first.header("x-ratelimit-limit"), "3");
    assert_eq!(first.header("x-ratelimit-remaining"), "2");
    assert_eq!(first.header("ratelimit-policy"), "\"3/3600s\";q=3;w=3600");
    assert_eq!(
        send(&app, request("192.0.2.1", "/b/1", None)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, request("192.0.2.1", "/b/2", None)).await.status,
        StatusCode::OK
    );
    let refused = send(&app, request("192.0.2.1", "/a", None)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json(),
        serde_json::json!({"error": "Too Many Requests: 3 per 1 hour", "code": "RATE_LIMITED"})
    );
    assert_eq!(refused.header("retry-after"), "1200");
    // Routes outside the layer are not limited; other clients count apart.
    for _ in 0..5 {
        assert_eq!(
            send(&app, request("192.0.2.1", "/free", None)).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&app, request("192.0.2.2", "/a", None)).await.status,
        StatusCode::OK
    );
    // Operators see the layer's scope like a handler's.
    let state = engine
        .limit_state(
            "layered-group",
            &ClientKey::Ip("192.0.2.1".parse().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.remaining, 0);
}

#[tokio::test]
async fn layers_on_a_closure_handler_check_the_key_first_then_count_per_key() {
    let app = Router::new()
        .route(
            "/who",
            get(|key: ApiKeyId| async move { format!("hello {}", key.name()) })
                .route_layer(
                    RateLimit::builder("layered-per-key", "2/hour")
                        .per_api_key()
                        .build()
                        .unwrap(),
                )
                .route_layer(RequireApiKey::new()),
        )
        .layer(engine());
    let missing = send(&app, request("192.0.2.1", "/who", None)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        serde_json::json!({"error": "Missing API key", "code": "UNAUTHORIZED"})
    );
    assert_eq!(missing.header("www-authenticate"), "Bearer realm=\"api\"");
    let wrong = send(
        &app,
        request("192.0.2.1", "/who", Some("not-a-key-at-all-000")),
    )
    .await;
    assert_eq!(wrong.json()["error"], "Invalid API key");
    // Per key, whichever client sends it.
    let first = send(&app, request("192.0.2.1", "/who", Some(KEY))).await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::OK, "hello ops")
    );
    let second = send(&app, request("192.0.2.9", "/who", Some(KEY))).await;
    assert_eq!(second.status, StatusCode::OK);
    let third = send(&app, request("192.0.2.8", "/who", Some(KEY))).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    let reader = send(&app, request("192.0.2.8", "/who", Some(READER))).await;
    assert_eq!(
        (reader.status, reader.body.as_str()),
        (StatusCode::OK, "hello reader")
    );
}

#[tokio::test]
async fn a_scoped_key_layer_answers_403_for_a_key_without_the_scope() {
    let app = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(RequireApiKey::scope("admin").unwrap())
        .layer(engine());
    assert_eq!(
        send(&app, request("192.0.2.1", "/admin", Some(KEY)))
            .await
            .status,
        StatusCode::OK
    );
    let forbidden = send(&app, request("192.0.2.1", "/admin", Some(READER))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.json(),
        serde_json::json!({"error": "Forbidden: this API key lacks the scope `admin`", "code": "FORBIDDEN"})
    );
}

#[tokio::test]
async fn serve_dir_behind_both_layers() {
    let dir = std::env::temp_dir().join(format!("policy-layer-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("report.txt"), "quarterly").unwrap();
    let app = Router::new()
        .nest_service(
            "/files",
            tower::ServiceBuilder::new()
                .layer(RequireApiKey::new())
                .layer(RateLimit::new("layered-files", "2/minute").unwrap())
                .service(ServeDir::new(&dir)),
        )
        .layer(engine());
    assert_eq!(
        send(&app, request("192.0.2.1", "/files/report.txt", None))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let served = send(&app, request("192.0.2.1", "/files/report.txt", Some(KEY))).await;
    assert_eq!(
        (served.status, served.body.as_str()),
        (StatusCode::OK, "quarterly")
    );
    assert_eq!(served.header("x-ratelimit-remaining"), "1");
    assert_eq!(
        send(&app, request("192.0.2.1", "/files/report.txt", Some(KEY)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, request("192.0.2.1", "/files/report.txt", Some(KEY)))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_layer_without_an_engine_answers_500() {
    let app: Router = Router::new()
        .route("/a", get(|| async { "a" }))
        .route_layer(RateLimit::new("layered-no-engine", "3/hour").unwrap());
    let reply = send(&app, request("192.0.2.1", "/a", None)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["code"], "INTERNAL_ERROR");
}

#[test]
fn bad_layer_settings_are_build_errors_naming_each_problem() {
    let problems = |result: Result<RateLimit, policy_runtime::BuildError>| {
        result.unwrap_err().problems().to_vec()
    };
    assert_eq!(problems(RateLimit::new("x", "20/fortnight")).len(), 1);
    let many = problems(
        RateLimit::builder("default:/x", "2/hour")
            .per_header("bad header")
            .cost(5)
            .build(),
    );
    assert_eq!(many.len(), 3, "{many:?}");
    assert!(many[0].contains("default:"), "{many:?}");
    assert!(many.iter().any(|p| p.contains("a cost of 5")), "{many:?}");
    assert!(
        many.iter()
            .any(|p| p.contains("`bad header` is not a valid header name")),
        "{many:?}"
    );
    let burst = problems(RateLimit::builder("x", "1/day").burst(220_000).build());
    assert_eq!(burst.len(), 1, "{burst:?}");
    assert!(burst[0].contains("a burst of 220000"), "{burst:?}");
    assert!(
        RateLimit::builder("x", "1/day")
            .burst(3_650)
            .build()
            .is_ok()
    );
    assert!(RequireApiKey::scope("has space").is_err());
    assert!(RequireApiKey::any_of(Vec::<String>::new()).is_err());
    assert!(RequireApiKey::all_of(["a", "a"]).is_err());
}

#[policy_runtime::rate_limit("5/hour")]
async fn optional_key(key: Option<ApiKeyId>) -> String {
    key.map_or_else(|| "anonymous".to_owned(), |key| key.name().to_owned())
}

#[tokio::test]
async fn an_optional_key_identity_is_none_without_a_key_check_and_some_behind_one() {
    let app = Router::new()
        .route("/open", get(optional_key))
        .route(
            "/keyed",
            get(optional_key).route_layer(RequireApiKey::new()),
        )
        .layer(engine());
    let open = send(&app, request("192.0.2.1", "/open", Some(KEY))).await;
    assert_eq!(
        (open.status, open.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let keyed = send(&app, request("192.0.2.1", "/keyed", Some(KEY))).await;
    assert_eq!((keyed.status, keyed.body.as_str()), (StatusCode::OK, "ops"));
}

#[policy_runtime::rate_limit("2/hour", scope = "layered-shared")]
async fn shared_with_a_layer() -> &'static str {
    "shared"
}

#[test]
fn a_layer_sharing_a_handlers_scope_must_have_its_limits() {
    let error = RateLimit::new("layered-shared", "3/hour").unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "rate-limit layer `layered-shared`: the scope already has other limits (in `policy_layers::shared_with_a_layer`); give them the same limits or different scopes"
        ]
    );
    assert!(RateLimit::new("layered-shared", "2/hour").is_ok());
    let _ = Router::<()>::new().route("/shared", get(shared_with_a_layer));
}
