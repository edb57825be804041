//! Per-request cost of the JWT policy against the API-key check, in one run.
//!
//! Each variant is one `GET /v` through a router with a policy layer
//! ([`RequireApiKey`] or [`RequireJwt`]) and an engine, driven as a tower
//! `Service` with prebuilt requests (as `benches/router.rs` does): HS256
//! with a secret, RS256 and ES256 with a PEM public key, and RS256 with its
//! key found by `kid` among the 64 keys of a JWKS (the cached-key lookup).
//! Beside them, `jsonwebtoken::decode` alone for each algorithm: the floor
//! the policy adds its work to. Run from the repository root:
//!
//! ```text
//! cargo bench -p benchmarks --features jwt --bench jwt
//! cargo run -p benchmarks --release --bin report
//! ```

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use policy_runtime::{Engine, RequireApiKey, RequireJwt};
use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use tower::{Service, ServiceExt};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../policy-runtime/tests/fixtures/jwt"
);
const SECRET: &str = "a-bench-secret-that-is-32-bytes!";
const API_KEY: &str = "bench-api-key-0123456789abcdef";
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "bench";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("the JWT test fixtures")
}

fn claims() -> serde_json::Value {
    serde_json::json!({
        "sub": "bench-user", "iss": ISSUER, "aud": AUDIENCE, "exp": 4_000_000_000u64,
        "scope": "reports:read reports:write",
    })
}

fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims(), key).expect("a token")
}

fn request(authorization: Option<&str>, api_key: Option<&str>) -> Request<Body> {
    let mut request =
        Request::get("/v").extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40_000))));
    if let Some(token) = authorization {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    request.body(Body::empty()).expect("a valid request")
}

fn serve(router: &mut Router, request: Request<Body>) -> Response {
    let service = benchmarks::ready_now(ServiceExt::<Request<Body>>::ready(router))
        .unwrap_or_else(|never: Infallible| match never {});
    benchmarks::ready_now(service.call(request)).unwrap_or_else(|never| match never {})
}

fn jwt_engine() -> policy_runtime::EngineBuilder {
    Engine::builder()
        .jwt_issuer(ISSUER)
        .jwt_audience(AUDIENCE)
        .no_lockout()
}

fn per_request(c: &mut Criterion) {
    let rsa_key = EncodingKey::from_rsa_pem(&fixture("rsa1.key.pem")).unwrap();
    let ec_key = EncodingKey::from_ec_pem(&fixture("ec.key.pem")).unwrap();
    let hs_key = EncodingKey::from_secret(SECRET.as_bytes());

    // A JWKS of 64 keys (one RSA key under 64 ids); the token names the last.
    let jwks_path =
        std::env::temp_dir().join(format!("policy-bench-jwks-{}.json", std::process::id()));
    let keys: Vec<serde_json::Value> = (0..64)
        .map(|n| {
            let mut jwk = Jwk::from_encoding_key(&rsa_key, Algorithm::RS256).unwrap();
            jwk.common.key_id = Some(format!("k{n}"));
            serde_json::to_value(jwk).unwrap()
        })
        .collect();
    std::fs::write(&jwks_path, serde_json::json!({ "keys": keys }).to_string()).unwrap();

    let api_key = Engine::builder()
        .api_key("bench", API_KEY)
        .no_lockout()
        .build()
        .unwrap();
    let hs256 = jwt_engine().jwt_secret(SECRET).build().unwrap();
    let rs256 = jwt_engine()
        .jwt_public_key_pem(fixture("rsa1.pub.pem"))
        .build()
        .unwrap();
    let es256 = jwt_engine()
        .jwt_public_key_pem(fixture("ec.pub.pem"))
        .build()
        .unwrap();
    let jwks = jwt_engine().jwt_jwks_file(&jwks_path).build().unwrap();

    let jwt_route = |engine: Engine| {
        Router::new()
            .route("/v", get(|| async { "ok" }))
            .route_layer(RequireJwt::new())
            .layer(engine)
    };
    let variants: Vec<(&str, Router, Option<String>, Option<&str>)> = vec![
        (
            "api_key",
            Router::new()
                .route("/v", get(|| async { "ok" }))
                .route_layer(RequireApiKey::new())
                .layer(api_key),
            None,
            Some(API_KEY),
        ),
        (
            "jwt_hs256",
            jwt_route(hs256),
            Some(mint(Algorithm::HS256, &hs_key, None)),
            None,
        ),
        (
            "jwt_rs256",
            jwt_route(rs256),
            Some(mint(Algorithm::RS256, &rsa_key, None)),
            None,
        ),
        (
            "jwt_es256",
            jwt_route(es256),
            Some(mint(Algorithm::ES256, &ec_key, None)),
            None,
        ),
        (
            "jwt_rs256_jwks_kid_of_64",
            jwt_route(jwks),
            Some(mint(Algorithm::RS256, &rsa_key, Some("k63"))),
            None,
        ),
    ];
    let mut group = c.benchmark_group("jwt_per_request");
    for (name, mut router, token, key) in variants {
        let make = || request(token.as_deref(), key);
        assert_eq!(
            serve(&mut router, make()).status(),
            StatusCode::OK,
            "variant {name}"
        );
        group.bench_function(name, |b| {
            b.iter_batched(
                make,
                |request| drop(serve(&mut router, request)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // `jsonwebtoken::decode` alone: the signature and claim checks.
    let mut group = c.benchmark_group("jwt_decode_only");
    let validation = |alg| {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation
    };
    let floors = [
        (
            "hs256",
            mint(Algorithm::HS256, &hs_key, None),
            DecodingKey::from_secret(SECRET.as_bytes()),
            validation(Algorithm::HS256),
        ),
        (
            "rs256",
            mint(Algorithm::RS256, &rsa_key, None),
            DecodingKey::from_rsa_pem(&fixture("rsa1.pub.pem")).unwrap(),
            validation(Algorithm::RS256),
        ),
        (
            "es256",
            mint(Algorithm::ES256, &ec_key, None),
            DecodingKey::from_ec_pem(&fixture("ec.pub.pem")).unwrap(),
            validation(Algorithm::ES256),
        ),
    ];
    for (name, token, key, validation) in &floors {
        decode::<serde_json::Value>(token, key, validation).expect("a valid token");
        group.bench_function(*name, |b| {
            b.iter(|| decode::<serde_json::Value>(black_box(token), key, validation).is_ok())
        });
    }
    group.finish();
    let _ = std::fs::remove_file(jwks_path);
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = per_request
}
criterion_main!(benches);
