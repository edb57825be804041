//! Test keys, token minting, and a JWKS / OpenID Connect discovery server on
//! loopback for the JWT tests.
#![allow(dead_code)]

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "a-test-secret-that-is-32-bytes-!";
pub const ISSUER: &str = "https://auth.example.com";
pub const AUDIENCE: &str = "reports";

pub const RSA1_KEY: &[u8] = include_bytes!("../fixtures/jwt/rsa1.key.pem");
pub const RSA1_PUB: &[u8] = include_bytes!("../fixtures/jwt/rsa1.pub.pem");
pub const RSA2_KEY: &[u8] = include_bytes!("../fixtures/jwt/rsa2.key.pem");
pub const EC_KEY: &[u8] = include_bytes!("../fixtures/jwt/ec.key.pem");
pub const EC_PUB: &[u8] = include_bytes!("../fixtures/jwt/ec.pub.pem");
pub const ED_KEY: &[u8] = include_bytes!("../fixtures/jwt/ed.key.pem");
pub const ED_PUB: &[u8] = include_bytes!("../fixtures/jwt/ed.pub.pem");

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for [`ISSUER`] and [`AUDIENCE`], with `extra` merged in
/// (a `null` removes a claim).
pub fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "sub": "ada",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 3600,
        "iat": now(),
    });
    for (name, value) in extra.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

pub fn mint(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

pub fn hs256(claims: &Value) -> String {
    mint(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        None,
        claims,
    )
}

pub fn rsa1() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA1_KEY).unwrap()
}

pub fn rsa2() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA2_KEY).unwrap()
}

pub fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_KEY).unwrap()
}

pub fn ed() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_KEY).unwrap()
}

/// The public JWK of a private RSA or EC key, with its `kid`.
pub fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

/// The public JWK of the Ed25519 test key: its raw 32 bytes end the SPKI DER.
pub fn ed_jwk(kid: &str) -> Value {
    let body: String = std::str::from_utf8(ED_PUB)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(body).unwrap();
    let raw = &der[der.len() - 32..];
    json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(raw), "kid": kid, "alg": "EdDSA"})
}

/// A token with `{"alg": "none"}` and no signature.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{payload}.")
}

/// What the test server serves and counts.
#[derive(Clone)]
pub struct KeyServer {
    pub url: String,
    pub jwks: Arc<Mutex<Value>>,
    pub jwks_fetches: Arc<AtomicUsize>,
    pub discovery_fetches: Arc<AtomicUsize>,
    pub down: Arc<AtomicBool>,
}

impl KeyServer {
    /// Serves `/jwks.json` and `/.well-known/openid-configuration` on
    /// 127.0.0.1, on a port of the system's choosing, in this runtime.
    pub async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = KeyServer {
            url,
            jwks: Arc::new(Mutex::new(json!({ "keys": keys }))),
            jwks_fetches: Arc::default(),
            discovery_fetches: Arc::default(),
            down: Arc::default(),
        };
        let app = Router::new()
            .route("/jwks.json", get(serve_jwks))
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.url)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

async fn serve_jwks(State(server): State<KeyServer>) -> Response {
    server.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if server.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    axum::Json(server.jwks.lock().unwrap().clone()).into_response()
}

async fn serve_discovery(State(server): State<KeyServer>) -> Response {
    server.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "issuer": server.url,
        "jwks_uri": server.jwks_url(),
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}
