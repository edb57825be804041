//! CORS over a real socket: preflights allowed and refused (in two error
//! formats), credentials, simple requests from allowed and other origins,
//! preflights that never reach a rate limit or an API-key check; and the
//! start-up checks of the settings in each environment.
#![cfg(feature = "cors")]

mod common;

use axum::Router;
use axum::routing::get;
use common::raw_http::{Server, serve};
use common::{Logs, Reply};
use policy_runtime::{
    Engine, EngineBuilder, Environment, ErrorFormat, rate_limit, require_api_key,
};

const KEY: &str = "client-key-0123456789";
const APP: &str = "https://app.example.com";
const VARY: &str = "origin, access-control-request-method, access-control-request-headers";

#[require_api_key]
#[rate_limit("1/hour")]
async fn orders() -> &'static str {
    "orders"
}

async fn items() -> &'static str {
    "items"
}

fn builder(environment: Environment) -> EngineBuilder {
    Engine::builder()
        .environment(environment)
        .api_key("client", KEY)
}

async fn start(engine: Engine) -> Server {
    let app = Router::new()
        .route("/items", get(items).post(items))
        .route("/orders", get(orders))
        .layer(engine.clone())
        .layer(engine.cors());
    serve(app).await
}

async fn preflight(server: &Server, origin: &str, method: &str, headers: &str) -> Reply {
    let mut sent = vec![
        ("origin", origin),
        ("access-control-request-method", method),
    ];
    if !headers.is_empty() {
        sent.push(("access-control-request-headers", headers));
    }
    server.send("OPTIONS", "/items", &sent).await
}

fn cors_headers(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn an_allowed_preflight_is_answered_with_the_cors_headers() {
    let engine = builder(Environment::Production)
        .cors_origins([APP, "HTTPS://Admin.Example.com"])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, APP, "POST", "content-type, x-api-key").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "");
    assert_eq!(reply.header("access-control-allow-origin"), APP);
    assert_eq!(
        reply.header("access-control-allow-methods"),
        "GET,HEAD,POST,PUT,PATCH,DELETE"
    );
    assert_eq!(
        reply.header("access-control-allow-headers"),
        "content-type,authorization,x-api-key,x-request-id"
    );
    assert_eq!(reply.header("access-control-max-age"), "600");
    assert_eq!(reply.header("vary"), VARY);
    assert!(
        reply
            .headers
            .get("access-control-allow-credentials")
            .is_none()
    );
    // Header names are matched whatever their case, and so are the
    // configured origins (browsers send them in lower case).
    let reply = preflight(
        &server,
        "https://admin.example.com",
        "DELETE",
        "Authorization",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://admin.example.com"
    );
}

#[tokio::test]
async fn an_origin_written_with_its_default_port_matches_what_browsers_send() {
    let engine = builder(Environment::Production)
        .cors_origins([
            "https://app.example.com:443",
            "HTTP://Local.Example.com:80",
            "https://admin.example.com:8443",
        ])
        .build()
        .unwrap();
    let server = start(engine).await;
    for origin in [
        "https://app.example.com",
        "http://local.example.com",
        "https://admin.example.com:8443",
    ] {
        let reply = preflight(&server, origin, "HEAD", "x-api-key").await;
        assert_eq!(reply.status, 200, "{origin}");
        assert_eq!(reply.header("access-control-allow-origin"), origin);
    }
    // A port that is not the scheme's default stays part of the origin.
    let refused = preflight(&server, "https://admin.example.com", "GET", "x-api-key").await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json(),
        serde_json::json!({"error": "CORS: origin not allowed", "code": "CORS_FORBIDDEN"})
    );
}

#[tokio::test]
async fn methods_and_headers_can_be_listed() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .cors_methods(["GET", "POST"])
        .cors_headers(["content-type", "x-tenant"])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, APP, "POST", "x-tenant").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-methods"), "GET,POST");
    assert_eq!(
        reply.header("access-control-allow-headers"),
        "content-type,x-tenant"
    );
    let refused = preflight(&server, APP, "DELETE", "").await;
    assert_eq!(refused.status, 403);
    let refused = preflight(&server, APP, "POST", "x-api-key").await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn refused_preflights_are_json_403s_in_the_compact_format() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .build()
        .unwrap();
    let server = start(engine).await;
    let cases = [
        (
            "https://evil.example",
            "GET",
            "",
            "CORS: origin not allowed",
        ),
        // An origin is matched exactly: scheme, host and port.
        (
            "http://app.example.com",
            "GET",
            "",
            "CORS: origin not allowed",
        ),
        (
            "https://app.example.com:8443",
            "GET",
            "",
            "CORS: origin not allowed",
        ),
        ("null", "GET", "", "CORS: origin not allowed"),
        (APP, "PURGE", "", "CORS: method not allowed"),
        (
            APP,
            "POST",
            "content-type, x-tenant",
            "CORS: header not allowed",
        ),
    ];
    for (origin, method, headers, message) in cases {
        let reply = preflight(&server, origin, method, headers).await;
        assert_eq!(reply.status, 403, "{origin} {method} {headers}");
        assert_eq!(reply.header("content-type"), "application/json");
        assert_eq!(
            reply.body,
            format!(r#"{{"error":"{message}","code":"CORS_FORBIDDEN"}}"#)
        );
        assert_eq!(reply.header("vary"), VARY);
        assert_eq!(cors_headers(&reply), Vec::<String>::new());
    }
}

#[tokio::test]
async fn refused_preflights_are_in_the_engines_error_format() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .error_format(ErrorFormat::Simple)
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, "https://evil.example", "GET", "").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, r#"{"error":"CORS: origin not allowed"}"#);
    let reply = preflight(&server, APP, "PURGE", "").await;
    assert_eq!(reply.body, r#"{"error":"CORS: method not allowed"}"#);
    let reply = preflight(&server, APP, "GET", "x-tenant").await;
    assert_eq!(reply.body, r#"{"error":"CORS: header not allowed"}"#);

    // With the request id, in a format that shows it.
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .error_format(ErrorFormat::problem())
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = server
        .send(
            "OPTIONS",
            "/items",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
                ("x-request-id", "req-42"),
            ],
        )
        .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.header("content-type"), "application/problem+json");
    let body = reply.json();
    assert_eq!(body["status"], 403);
    assert_eq!(body["detail"], "CORS: origin not allowed");
    assert_eq!(body["code"], "CORS_FORBIDDEN");
    assert_eq!(body["instance"], "/items");
    assert_eq!(body["request_id"], "req-42");
}

#[tokio::test]
async fn credentials_are_allowed_when_turned_on() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .cors_allow_credentials(true)
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, APP, "GET", "authorization").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-credentials"), "true");
    assert_eq!(reply.header("access-control-allow-origin"), APP);
    let reply = server.send("GET", "/items", &[("origin", APP)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-credentials"), "true");
    // Never for an origin that is not allowed.
    let reply = server
        .send("GET", "/items", &[("origin", "https://evil.example")])
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
}

#[tokio::test]
async fn a_simple_request_from_an_allowed_origin_gets_the_cors_headers() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = server.send("GET", "/items", &[("origin", APP)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "items");
    assert_eq!(reply.header("access-control-allow-origin"), APP);
    assert_eq!(
        reply.header("access-control-expose-headers"),
        "retry-after,x-ratelimit-limit,x-ratelimit-remaining,x-ratelimit-reset,ratelimit,ratelimit-policy,x-request-id"
    );
    assert_eq!(reply.header("vary"), VARY);
    let mut names = cors_headers(&reply);
    names.sort();
    assert_eq!(
        names,
        [
            "access-control-allow-origin",
            "access-control-expose-headers"
        ]
    );
}

#[tokio::test]
async fn a_simple_request_from_another_origin_goes_through_without_cors_headers() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = server
        .send(
            "POST",
            "/items",
            &[("origin", "https://evil.example"), ("content-length", "0")],
        )
        .await;
    // The handler ran; the browser keeps the answer from the page.
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "items");
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
    assert_eq!(reply.header("vary"), VARY);
    // Nor without an origin (same-origin and non-browser clients).
    let reply = server.get("/items").await;
    assert_eq!(reply.status, 200);
    assert_eq!(cors_headers(&reply), Vec::<String>::new());
}

#[tokio::test]
async fn a_wildcard_outside_production_allows_every_origin() {
    let engine = builder(Environment::Staging)
        .cors_origins(["*"])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, "https://anyone.example", "PUT", "content-type").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    let reply = server
        .send("GET", "/items", &[("origin", "https://anyone.example")])
        .await;
    assert_eq!(reply.header("access-control-allow-origin"), "*");
    // Still not a method or header outside the lists.
    let reply = preflight(&server, "https://anyone.example", "PURGE", "").await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        r#"{"error":"CORS: method not allowed","code":"CORS_FORBIDDEN"}"#
    );
}

/// Preflights are answered before the engine: they are never counted by
/// the rate limit and never need the API key.
#[tokio::test]
async fn preflights_never_reach_the_policies() {
    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .build()
        .unwrap();
    let server = start(engine).await;
    let preflight = || {
        server.send(
            "OPTIONS",
            "/orders",
            &[
                ("origin", APP),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-api-key"),
            ],
        )
    };
    for _ in 0..5 {
        let reply = preflight().await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("access-control-allow-origin"), APP);
        assert!(reply.headers.get("x-ratelimit-remaining").is_none());
    }
    let real = server
        .send("GET", "/orders", &[("origin", APP), ("x-api-key", KEY)])
        .await;
    assert_eq!(real.status, 200);
    assert_eq!(real.body, "orders");
    assert_eq!(real.header("x-ratelimit-remaining"), "0");
    assert_eq!(real.header("access-control-allow-origin"), APP);
    // The limit is spent: the next request is refused, and its 429 is
    // readable by the page; a preflight is still answered.
    let limited = server
        .send("GET", "/orders", &[("origin", APP), ("x-api-key", KEY)])
        .await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("access-control-allow-origin"), APP);
    assert_eq!(preflight().await.status, 200);
    // Without a key, the real request is refused by the key check.
    let unkeyed = server.send("GET", "/orders", &[("origin", APP)]).await;
    assert_eq!(unkeyed.status, 401);
}

// Start-up checks.

const BAD_ORIGIN: &str = "CORS origin `https://app.example.com/` is not an origin; use scheme://host[:port], such as https://app.example.com";
const WILDCARD_IN_PRODUCTION: &str = "CORS origin `*` lets every site call the API, which production refuses; list the allowed origins in CORS_ORIGINS or with `cors_origins`";
const WILDCARD_WITH_CREDENTIALS: &str = "CORS origin `*` cannot be combined with credentials (browsers refuse it); list the allowed origins or turn credentials off";
const ENVIRONMENTS: [Environment; 3] = [
    Environment::Production,
    Environment::Staging,
    Environment::Development,
];

fn problems(builder: EngineBuilder) -> Vec<String> {
    match builder.build() {
        Ok(_) => Vec::new(),
        Err(error) => error.problems().to_vec(),
    }
}

#[test]
fn an_entry_that_is_not_an_origin_is_a_problem_naming_it_everywhere() {
    for environment in ENVIRONMENTS {
        let found = problems(builder(environment).cors_origins([APP, "https://app.example.com/"]));
        assert_eq!(found, [BAD_ORIGIN], "{environment}");
    }
    for bad in [
        "app.example.com",
        "https://",
        "https://app.example.com/path",
        "https://app.example.com?q=1",
        "https://user@app.example.com",
        "https://app.example.com:port",
    ] {
        let found = problems(builder(Environment::Development).cors_origins([bad]));
        assert_eq!(
            found,
            [format!(
                "CORS origin `{bad}` is not an origin; use scheme://host[:port], such as https://app.example.com"
            )]
        );
    }
    for good in [
        "http://localhost:5173",
        "https://[2001:db8::1]:8443",
        "capacitor://localhost",
    ] {
        assert_eq!(
            problems(builder(Environment::Production).cors_origins([good])),
            Vec::<String>::new(),
            "{good}"
        );
    }
}

#[test]
fn a_wildcard_is_a_problem_in_production_only() {
    assert_eq!(
        problems(builder(Environment::Production).cors_origins(["*"])),
        [WILDCARD_IN_PRODUCTION]
    );
    assert_eq!(
        problems(builder(Environment::Staging).cors_origins(["*"])),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(builder(Environment::Development).cors_origins(["*"])),
        Vec::<String>::new()
    );
}

#[test]
fn a_wildcard_with_credentials_is_a_problem_everywhere() {
    let found = problems(
        builder(Environment::Production)
            .cors_origins(["*"])
            .cors_allow_credentials(true),
    );
    assert_eq!(found, [WILDCARD_IN_PRODUCTION, WILDCARD_WITH_CREDENTIALS]);
    for environment in [Environment::Staging, Environment::Development] {
        let found = problems(
            builder(environment)
                .cors_origins(["*"])
                .cors_allow_credentials(true),
        );
        assert_eq!(found, [WILDCARD_WITH_CREDENTIALS], "{environment}");
    }
    // Credentials with listed origins are fine.
    for environment in ENVIRONMENTS {
        let found = problems(
            builder(environment)
                .cors_origins([APP])
                .cors_allow_credentials(true),
        );
        assert_eq!(found, Vec::<String>::new(), "{environment}");
    }
}

#[test]
fn every_problem_is_listed_at_once() {
    let found = problems(
        builder(Environment::Production)
            .cors_origins(["*", "ftp:/files"])
            .cors_allow_credentials(true)
            .cors_methods(["GET", "*"])
            .cors_headers(["x tenant"])
            .api_key("", "unnamed-key-0123456789"),
    );
    assert_eq!(found.len(), 6, "{found:#?}");
    // The builder's own problems first, then the CORS ones.
    assert_eq!(
        found[0],
        "an API key has an empty name; every key needs a name for the logs"
    );
    assert_eq!(
        found[1..],
        [
            "CORS origin `ftp:/files` is not an origin; use scheme://host[:port], such as https://app.example.com".to_owned(),
            WILDCARD_IN_PRODUCTION.to_owned(),
            WILDCARD_WITH_CREDENTIALS.to_owned(),
            "CORS method `*` is not an HTTP method; list methods such as GET or POST".to_owned(),
            "CORS header `x tenant` is not a header name; list names such as content-type".to_owned(),
        ]
    );
}

#[test]
fn cors_origins_is_read_from_the_environment() {
    let vars = |environment: &str, origins: &str| {
        [
            ("ENVIRONMENT".to_owned(), environment.to_owned()),
            ("CORS_ORIGINS".to_owned(), origins.to_owned()),
        ]
    };
    let engine = Engine::builder()
        .api_key("client", KEY)
        .from_vars(vars(
            "production",
            " https://app.example.com , http://localhost:5173,",
        ))
        .build();
    assert!(engine.is_ok());
    let found = problems(
        Engine::builder()
            .api_key("client", KEY)
            .from_vars(vars("production", "https://app.example.com,*")),
    );
    assert_eq!(found, [WILDCARD_IN_PRODUCTION]);
    let found = problems(
        Engine::builder()
            .api_key("client", KEY)
            .from_vars(vars("staging", "https://app.example.com/")),
    );
    assert_eq!(found, [BAD_ORIGIN]);
    assert_eq!(
        problems(
            Engine::builder()
                .api_key("client", KEY)
                .from_vars(vars("development", "*"))
        ),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn the_variables_origins_are_the_ones_allowed() {
    let engine = builder(Environment::Production)
        .from_vars([(
            "CORS_ORIGINS".to_owned(),
            "https://one.example, https://two.example".to_owned(),
        )])
        .build()
        .unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, "https://two.example", "GET", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        "https://two.example"
    );
    assert_eq!(preflight(&server, APP, "GET", "").await.status, 403);
}

/// The warning `engine.cors()` logs without an allowed origin, in `environment`.
fn no_origin_warning(environment: Environment) -> String {
    format!(
        "CORS is used in {environment} with no allowed origin, so every cross-origin request is refused; \
         list the allowed origins in CORS_ORIGINS or with `cors_origins`"
    )
}

#[test]
fn no_origin_is_a_warning_in_every_environment_when_cors_is_used() {
    assert_eq!(
        no_origin_warning(Environment::Production),
        "CORS is used in production with no allowed origin, so every cross-origin request is refused; list the allowed origins in CORS_ORIGINS or with `cors_origins`"
    );
    for environment in ENVIRONMENTS {
        let (logs, _guard) = Logs::capture();
        let engine = builder(environment).build().unwrap();
        assert_eq!(logs.containing("WARN", "CORS").len(), 0, "built");
        let _layer = engine.cors();
        let warnings = logs.containing("WARN", "CORS");
        assert_eq!(warnings.len(), 1, "{environment}: {}", logs.text());
        assert_eq!(
            warnings[0]["fields"]["message"],
            no_origin_warning(environment)
        );
        // An empty `CORS_ORIGINS` is no origin either.
        let (logs, _guard) = Logs::capture();
        let engine = builder(environment)
            .from_vars([("CORS_ORIGINS".to_owned(), " , ".to_owned())])
            .build()
            .unwrap();
        let _layer = engine.cors();
        assert_eq!(logs.containing("WARN", "CORS").len(), 1, "{environment}");
    }
    // With an origin, none, in any environment.
    for environment in ENVIRONMENTS {
        let (logs, _guard) = Logs::capture();
        let engine = builder(environment).cors_origins([APP]).build().unwrap();
        let _layer = engine.cors();
        assert_eq!(logs.containing("WARN", "CORS").len(), 0, "{environment}");
    }
}

#[tokio::test]
async fn with_no_origin_every_preflight_is_refused() {
    let engine = builder(Environment::Production).build().unwrap();
    let server = start(engine).await;
    let reply = preflight(&server, APP, "GET", "").await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        r#"{"error":"CORS: origin not allowed","code":"CORS_FORBIDDEN"}"#
    );
}

/// The whole stack, in the documented order: routes, JSON fallbacks, the
/// engine, CORS, security headers. Every answer, the preflights' included,
/// carries the security headers; the fallbacks' errors are readable by an
/// allowed page.
#[tokio::test]
async fn cors_with_fallbacks_and_security_headers() {
    use policy_runtime::JsonFallbacks;

    let engine = builder(Environment::Production)
        .cors_origins([APP])
        .error_format(ErrorFormat::Simple)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/items", get(items))
        .json_fallbacks()
        .layer(engine.clone())
        .layer(engine.cors())
        .layer(engine.security_headers());
    let server = serve(app).await;
    let secured = |reply: &Reply| {
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert_eq!(
            reply.header("strict-transport-security"),
            "max-age=31536000; includeSubDomains"
        );
    };

    let allowed = preflight(&server, APP, "GET", "").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), APP);
    secured(&allowed);

    let refused = preflight(&server, "https://evil.example", "GET", "").await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body, r#"{"error":"CORS: origin not allowed"}"#);
    secured(&refused);

    let missing = server.send("GET", "/nowhere", &[("origin", APP)]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, r#"{"error":"Not Found"}"#);
    assert_eq!(missing.header("access-control-allow-origin"), APP);
    secured(&missing);

    let wrong = server.send("DELETE", "/items", &[("origin", APP)]).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), "GET,HEAD");
    assert_eq!(wrong.body, r#"{"error":"Method Not Allowed"}"#);
    assert_eq!(wrong.header("access-control-allow-origin"), APP);
    secured(&wrong);
}
