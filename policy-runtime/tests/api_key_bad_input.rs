//! Hostile and malformed API-key headers against a real Router: each gets a
//! 401 with the JSON body, never a panic or a 500, and nothing from the
//! header reaches the logs. Keys in the query string are never read.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::routing::get;
use common::{Logs, assert_unauthorized, from, send};
use policy_runtime::{Engine, require_api_key};

const KEY: &str = "Bn6mQ9wE2rT5yU8iO1pA";

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

/// No lockout here: these tests send many bad keys from one address on purpose.
fn app() -> Router {
    let engine = Engine::builder()
        .api_key("client", KEY)
        .no_lockout()
        .build()
        .unwrap();
    Router::new()
        .route("/protected", get(protected))
        .layer(engine)
}

fn request(uri: &str, headers: &[(&str, HeaderValue)]) -> Request<Body> {
    let mut request = from("192.0.2.60", "GET", uri).body(Body::empty()).unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.clone(),
        );
    }
    request
}

fn value(bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap()
}

#[tokio::test]
async fn a_valid_key_still_works() {
    let reply = send(
        &app(),
        request("/protected", &[("x-api-key", value(KEY.as_bytes()))]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_non_utf8_value_is_an_invalid_key() {
    let app = app();
    for name in ["x-api-key", "authorization"] {
        let mut bytes = b"Bearer ".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, 0x80, b'k']);
        let reply = send(&app, request("/protected", &[(name, value(&bytes))])).await;
        assert_unauthorized(&reply, "Invalid API key");
    }
}

#[tokio::test]
async fn a_64_kib_value_is_refused_without_a_panic() {
    let app = app();
    let huge = vec![b'k'; 64 * 1024];
    let reply = send(&app, request("/protected", &[("x-api-key", value(&huge))])).await;
    assert_unauthorized(&reply, "Invalid API key");
    let mut bearer = b"Bearer ".to_vec();
    bearer.extend_from_slice(&huge);
    let reply = send(
        &app,
        request("/protected", &[("authorization", value(&bearer))]),
    )
    .await;
    assert_unauthorized(&reply, "Invalid API key");
}

#[tokio::test]
async fn an_empty_key_a_bare_bearer_and_other_schemes_are_a_missing_key() {
    let app = app();
    let cases: [(&str, &[u8]); 6] = [
        ("x-api-key", b""),
        ("authorization", b""),
        ("authorization", b"Bearer"),
        ("authorization", b"Bearer "),
        ("authorization", b"Basic Y2xpZW50OnNlY3JldA=="),
        ("authorization", b"Token Bn6mQ9wE2rT5yU8iO1pA"),
    ];
    for (name, bytes) in cases {
        let reply = send(&app, request("/protected", &[(name, value(bytes))])).await;
        assert_unauthorized(&reply, "Missing API key");
    }
}

#[tokio::test]
async fn two_key_headers_are_refused_as_ambiguous_even_if_one_is_right() {
    let app = app();
    for second in [KEY, "another-value-0000000"] {
        let headers = [
            ("x-api-key", value(KEY.as_bytes())),
            ("x-api-key", value(second.as_bytes())),
        ];
        let reply = send(&app, request("/protected", &headers)).await;
        assert_unauthorized(&reply, "Invalid API key");
    }
    let bearer = format!("Bearer {KEY}");
    let headers = [
        ("authorization", value(bearer.as_bytes())),
        ("authorization", value(bearer.as_bytes())),
    ];
    let reply = send(&app, request("/protected", &headers)).await;
    assert_unauthorized(&reply, "Invalid API key");
}

#[tokio::test]
async fn a_key_with_surrounding_whitespace_is_not_trimmed() {
    let app = app();
    for padded in [format!(" {KEY}"), format!("{KEY} "), format!("{KEY}\t")] {
        let reply = send(
            &app,
            request("/protected", &[("x-api-key", value(padded.as_bytes()))]),
        )
        .await;
        assert_unauthorized(&reply, "Invalid API key");
    }
}

#[tokio::test]
async fn a_key_in_the_query_string_is_never_read() {
    let app = app();
    for uri in [
        format!("/protected?api_key={KEY}"),
        format!("/protected?key={KEY}"),
        format!("/protected?x-api-key={KEY}&access_token={KEY}"),
    ] {
        assert_unauthorized(&send(&app, request(&uri, &[])).await, "Missing API key");
    }
}

/// xorshift64*: enough randomness to shake the header parser, reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> usize {
        (self.next() % bound) as usize
    }
}

#[tokio::test]
async fn random_header_bytes_always_get_401_and_never_reach_the_logs() {
    let (logs, _guard) = Logs::capture();
    let app = app();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut sent = Vec::new();
    while sent.len() < 1500 {
        let len = match rng.below(10) {
            0 => rng.below(70_000),
            _ => rng.below(200),
        };
        // Mostly bytes a header may carry (visible ASCII, spaces, bytes over
        // 0x7f); sometimes any byte at all.
        let raw = rng.below(4) == 0;
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| match rng.next() as u8 {
                byte if raw => byte,
                byte @ 0..=0x1f => byte + 0x20,
                0x7f => b'~',
                byte => byte,
            })
            .collect();
        let name = match rng.below(3) {
            0 => "x-api-key",
            _ => {
                if rng.below(2) == 0 {
                    bytes.splice(0..0, b"Bearer ".iter().copied());
                }
                "authorization"
            }
        };
        // Bytes a header cannot carry (control characters) never reach a server.
        let Ok(header) = HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        let reply = send(&app, request("/protected", &[(name, header)])).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}: {bytes:?}");
        assert_eq!(reply.json()["code"], "UNAUTHORIZED");
        sent.push(bytes);
    }

    let text = logs.text();
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is one JSON event");
    }
    for bytes in &sent {
        // A value of 12 bytes or more is too random to appear by chance.
        let value = String::from_utf8_lossy(bytes);
        let value = value.trim_start_matches("Bearer ");
        if value.len() >= 12 && value.is_ascii() {
            assert!(!text.contains(value), "a header value was logged: {value}");
        }
    }
}
