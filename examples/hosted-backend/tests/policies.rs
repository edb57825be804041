//! The hosted backend's policy surface over a real socket: security headers
//! (HSTS in production only), CORS from configuration, start-up checks,
//! 60/minute and 1000/hour, JWT-protected user routes, 5xx details
//! sanitised in production, and `/health` following the database.

use hosted_backend::{Database, app, configure, configure_from, engine_builder};
use jsonwebtoken::{EncodingKey, Header};
use policy_runtime::ManualClock;
use serde_json::{Value, json};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "hosted-backend-jwt-secret-of-48-bytes-0123456789";
const ISSUER: &str = "https://auth.hosted.example";
const AUDIENCE: &str = "hosted-api";
const ORIGIN: &str = "https://app.hosted.example";

fn vars(environment: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = [
        ("ENVIRONMENT", environment),
        ("JWT_SECRET", SECRET),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
        ("CORS_ORIGINS", ORIGIN),
        // Loopback is the platform's proxy: `X-Forwarded-For` names the client.
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    for (name, value) in extra {
        vars.retain(|(existing, _)| existing != name);
        vars.push((name.to_string(), value.to_string()));
    }
    vars
}

struct Service {
    address: SocketAddr,
    database: Database,
    client: reqwest::Client,
}

async fn start(vars: Vec<(String, String)>) -> Service {
    // Time stands still for the limits: counts and `Retry-After` are exact
    // however slowly the test runs.
    let builder = engine_builder().clock(ManualClock::new());
    let engine = configure_from(builder, vars).expect("the test configuration is valid");
    let database = Database::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = app(engine, database.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Service {
        address,
        database,
        client: reqwest::Client::new(),
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

impl Service {
    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client
            .request(method, format!("http://{}{path}", self.address))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the service answers");
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.request("GET", path)).await
    }
}

fn token(claims: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut full =
        json!({"sub": "user-7", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600});
    for (name, value) in claims.as_object().unwrap() {
        full[name] = value.clone();
    }
    jsonwebtoken::encode(
        &Header::default(),
        &full,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Everything logged on this thread while `f` runs, as JSON lines.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // `tracing` caches per callsite whether anyone listens; a global
    // subscriber that keeps nothing means someone always does, so a
    // callsite first hit on another thread is not cached as unheard.
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (value, text)
}

const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
];
const HSTS: &str = "max-age=31536000; includeSubDomains";

#[tokio::test]
async fn security_headers_on_every_answer_and_hsts_in_production_only() {
    let production = start(vars("production", &[])).await;
    let development = start(vars("development", &[])).await;
    for path in ["/health", "/api/items", "/api/users/me", "/nowhere"] {
        for (service, hsts) in [(&production, true), (&development, false)] {
            let reply = service.get(path).await;
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(reply.header(name), value, "{path}");
            }
            assert_eq!(
                reply
                    .headers
                    .get("strict-transport-security")
                    .map(|v| v.to_str().unwrap()),
                hsts.then_some(HSTS),
                "{path}"
            );
            assert!(reply.headers.contains_key("x-request-id"), "{path}");
        }
    }
}

#[tokio::test]
async fn cors_from_configuration() {
    let service = start(vars("production", &[])).await;
    let preflight = |origin: &str| {
        service
            .request("OPTIONS", "/api/users/me")
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    };
    let allowed = service.send(preflight(ORIGIN)).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), ORIGIN);
    assert_eq!(
        allowed.header("access-control-allow-methods"),
        "GET,HEAD,POST,PUT,PATCH,DELETE"
    );
    assert_eq!(allowed.header("access-control-max-age"), "600");
    assert_eq!(allowed.header("strict-transport-security"), HSTS);

    let refused = service.send(preflight("https://elsewhere.example")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body,
        r#"{"error":"CORS: origin not allowed","code":"CORS_FORBIDDEN"}"#
    );

    let simple = service
        .send(
            service
                .request("GET", "/api/items")
                .header("origin", ORIGIN),
        )
        .await;
    assert_eq!(simple.header("access-control-allow-origin"), ORIGIN);
    assert!(
        simple
            .header("access-control-expose-headers")
            .contains("retry-after")
    );
}

#[test]
fn no_wildcard_in_production_and_a_warning_without_origins() {
    let error = configure(vars("production", &[("CORS_ORIGINS", "*")])).unwrap_err();
    assert_eq!(error.problems().len(), 1, "{error}");
    assert!(error.problems()[0].contains("CORS_ORIGINS"), "{error}");
    assert!(configure(vars("development", &[("CORS_ORIGINS", "*")])).is_ok());

    // No origin: a warning in every environment, naming it and what to set.
    for environment in ["production", "staging", "development"] {
        let engine = configure(vars(environment, &[("CORS_ORIGINS", "")])).unwrap();
        let (_app, logs) = logs_of(|| app(engine, Database::default()));
        let warnings: Vec<Value> = logs
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| event["level"] == "WARN")
            .collect();
        assert_eq!(warnings.len(), 1, "{environment}: {logs}");
        assert_eq!(
            warnings[0]["fields"]["message"],
            format!(
                "CORS is used in {environment} with no allowed origin, so every cross-origin request is refused; \
                 list the allowed origins in CORS_ORIGINS or with `cors_origins`"
            )
        );
    }
    // With an origin, none.
    let engine = configure(vars("development", &[])).unwrap();
    let (_app, logs) = logs_of(|| app(engine, Database::default()));
    assert!(!logs.contains("\"WARN\""), "{logs}");
}

#[test]
fn every_setting_is_checked_at_start_up() {
    // Production with nothing set: every missing JWT setting, at once.
    let error = configure([("ENVIRONMENT".to_owned(), "production".to_owned())]).unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "`hosted_backend::me`, `hosted_backend::reports`, `hosted_backend::update_me` require a JWT, but \
             no JWT key is configured; set JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL or JWT_OIDC_ISSUER, \
             or use `EngineBuilder::jwt_secret` (or `jwt_public_key_pem`, `jwt_jwks_url`, `jwt_oidc_issuer`)",
            "no JWT issuer (`iss`) is configured, so tokens issued by anyone holding a key, for any service, \
             are accepted; set JWT_ISSUER or `EngineBuilder::jwt_issuer`",
            "no JWT audience (`aud`) is configured, so tokens issued by anyone holding a key, for any service, \
             are accepted; set JWT_AUDIENCE or `EngineBuilder::jwt_audience`",
        ]
    );

    // Wrong values: each named, with what to write instead.
    let error = configure(vars(
        "production",
        &[
            ("JWT_SECRET", "too-short"),
            ("RATELIMIT_DEFAULT", "60/fortnight"),
            ("CORS_ORIGINS", "https://app.hosted.example/"),
            ("REQUEST_MAX_BODY_SIZE", "1 parsec"),
            ("ENVIRONMENT", "live"),
        ],
    ))
    .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "ENVIRONMENT: `live` is not an environment; use development, staging or production",
            "RATELIMIT_DEFAULT: unknown time unit `fortnight` in `60/fortnight`; expected second, minute, \
             hour, day, month (30 days) or year (360 days), in any case (plural forms and s, m, h, d are accepted)",
            "REQUEST_MAX_BODY_SIZE: unknown size unit `parsec` in `1 parsec`; expected B, KB, MB, GB \
             (1000-based) or KiB, MiB, GiB (1024-based)",
            "JWT_SECRET: the JWT secret is 9 bytes long; an HMAC secret needs at least 32 (make one with \
             `openssl rand -base64 48`)",
            "CORS origin `https://app.hosted.example/` is not an origin; use scheme://host[:port], such as \
             https://app.example.com",
            "`hosted_backend::me`, `hosted_backend::reports`, `hosted_backend::update_me` require a JWT, but \
             no JWT key is configured; set JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL or JWT_OIDC_ISSUER, \
             or use `EngineBuilder::jwt_secret` (or `jwt_public_key_pem`, `jwt_jwks_url`, `jwt_oidc_issuer`)",
        ]
    );
}

#[tokio::test]
async fn sixty_a_minute_and_a_thousand_an_hour_per_client() {
    let service = start(vars("production", &[])).await;
    let items = |ip: &'static str| {
        service.send(
            service
                .request("GET", "/api/items")
                .header("x-forwarded-for", ip),
        )
    };
    let first = items("198.51.100.1").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        r#""60/60s";q=60;w=60, "1000/3600s";q=1000;w=3600"#
    );
    assert_eq!(first.header("x-ratelimit-limit"), "60");
    assert_eq!(first.header("x-ratelimit-remaining"), "59");
    for _ in 1..60 {
        assert_eq!(items("198.51.100.1").await.status, 200);
    }
    let refused = items("198.51.100.1").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), "1");
    assert_eq!(refused.header("content-type"), "application/json");
    assert_eq!(
        refused.body,
        r#"{"error":"Too Many Requests: 60 per 1 minute","code":"RATE_LIMITED"}"#
    );
    assert_eq!(refused.header("x-frame-options"), "DENY");
    // Another client has its own count.
    assert_eq!(items("198.51.100.2").await.status, 200);
    // The user routes take the same limits, token or not.
    let me = service
        .send(
            service
                .request("GET", "/api/users/me")
                .header("x-forwarded-for", "198.51.100.1"),
        )
        .await;
    assert_eq!(me.status, 401);
    assert_eq!(me.header("x-ratelimit-remaining"), "59");
}

#[tokio::test]
async fn user_routes_need_a_token() {
    let service = start(vars("production", &[])).await;
    let missing = service.get("/api/users/me").await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), "Bearer");
    assert_eq!(
        missing.body,
        r#"{"error":"Missing bearer token","code":"UNAUTHORIZED"}"#
    );

    let bearer = |token: String| format!("Bearer {token}");
    let me = service
        .send(service.request("GET", "/api/users/me").header(
            "authorization",
            bearer(token(json!({"email": "ada@example.com"}))),
        ))
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.json(),
        json!({"id": "user-7", "email": "ada@example.com"})
    );

    let expired = service
        .send(service.request("GET", "/api/users/me").header(
            "authorization",
            bearer(token(json!({"exp": 1_000_000_000}))),
        ))
        .await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.body,
        r#"{"error":"The token has expired","code":"UNAUTHORIZED"}"#
    );

    let forged = service
        .send(service.request("GET", "/api/users/me").header(
            "authorization",
            bearer(
                jsonwebtoken::encode(
                    &Header::default(),
                    &json!({"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000u64}),
                    &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
                )
                .unwrap(),
            ),
        ))
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(
        forged.body,
        r#"{"error":"The token's signature is invalid","code":"UNAUTHORIZED"}"#
    );

    let profile = r#"{"display_name":"Ada"}"#;
    let put = |token: String, body: &'static str| {
        service
            .request("PUT", "/api/users/me")
            .header("authorization", bearer(token))
            .header("content-type", "application/json")
            .body(body)
    };
    let without_scope = service.send(put(token(json!({})), profile)).await;
    assert_eq!(without_scope.status, 403);
    assert_eq!(
        without_scope.header("www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="profile:write""#
    );
    assert_eq!(
        without_scope.body,
        r#"{"error":"Forbidden: this token lacks the scope `profile:write`","code":"FORBIDDEN"}"#
    );
    let writer = || token(json!({"scope": "profile:write"}));
    let updated = service.send(put(writer(), profile)).await;
    assert_eq!(updated.status, 200);
    assert_eq!(
        updated.json(),
        json!({"id": "user-7", "display_name": "Ada"})
    );
    let invalid = service
        .send(put(writer(), r#"{"display_name":"  "}"#))
        .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(
        invalid.body,
        r#"{"error":"the profile is invalid","code":"VALIDATION_ERROR","details":[{"field":"display_name","message":"the display name must have 1 to 50 characters","code":"value_error.length"}]}"#
    );

    // 1 MB per body: refused from the Content-Length, before the token is checked.
    let large = service
        .send(
            service
                .request("PUT", "/api/users/me")
                .header("content-type", "application/json")
                .body(vec![b' '; 1_100_000]),
        )
        .await;
    assert_eq!(large.status, 413);
    assert_eq!(
        large.body,
        r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#
    );
}

#[tokio::test]
async fn server_errors_are_sanitised_in_production() {
    for (environment, body) in [
        (
            "production",
            r#"{"error":"Service Unavailable","code":"DATABASE_UNAVAILABLE"}"#,
        ),
        (
            "development",
            r#"{"error":"database error: db.internal:5432 refused the connection","code":"DATABASE_UNAVAILABLE"}"#,
        ),
    ] {
        let service = start(vars(environment, &[])).await;
        let reports = || {
            service.send(
                service
                    .request("POST", "/api/reports")
                    .header("authorization", format!("Bearer {}", token(json!({})))),
            )
        };
        let ok = reports().await;
        assert_eq!(ok.status, 200);
        assert_eq!(
            ok.json(),
            json!({"user": "user-7", "reports": ["2026-10", "2026-11"]})
        );
        service.database.set_available(false);
        let failed = reports().await;
        assert_eq!(failed.status, 503, "{environment}");
        assert_eq!(failed.body, body, "{environment}");
    }
}

#[tokio::test]
async fn health_is_503_while_the_database_is_down() {
    let service = start(vars("production", &[])).await;
    let version = env!("CARGO_PKG_VERSION");
    let healthy = service.get("/health").await;
    assert_eq!(healthy.status, 200);
    assert_eq!(
        healthy.json(),
        json!({"checks": {"database": "ok", "rate_limit_store": "ok"}, "status": "ok", "version": version})
    );
    service.database.set_available(false);
    let degraded = service.get("/health").await;
    assert_eq!(degraded.status, 503);
    assert_eq!(
        degraded.json(),
        json!({"checks": {"database": "failing", "rate_limit_store": "ok"}, "status": "degraded", "version": version})
    );
    assert!(
        !degraded.body.contains("5432"),
        "the check's error is never sent"
    );
    service.database.set_available(true);
    assert_eq!(service.get("/health").await.status, 200);
    // Health is outside the limits: the platform's probes are never refused.
    for _ in 0..70 {
        assert_eq!(service.get("/health/live").await.status, 200);
    }
}
