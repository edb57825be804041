//! Helpers shared by the integration tests: requests through a real Router,
//! and log capture.
#![allow(dead_code)]

pub mod app_error;
pub mod raw_http;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// A finished response, with the body read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name).parse().unwrap()
    }
}

/// Sends one request through the router, as the server would.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A request builder whose connection comes from `ip`.
pub fn from(ip: &str, method: &str, uri: &str) -> axum::http::request::Builder {
    let ip: IpAddr = ip.parse().unwrap();
    Request::builder()
        .method(method)
        .uri(uri)
        .extension(ConnectInfo(SocketAddr::new(ip, 40_000)))
}

/// `GET uri` from 192.0.2.1.
pub fn get(uri: &str) -> Request<Body> {
    from("192.0.2.1", "GET", uri).body(Body::empty()).unwrap()
}

/// Everything logged while the guard lives, as JSON lines.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures every event of this thread, at every level, until the guard drops.
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        // `tracing` caches, per callsite, whether any subscriber listens. A
        // callsite first hit on a thread without a capture, while another
        // thread starts one, can be cached as unheard and then miss that
        // capture. A global subscriber that takes every event (and keeps
        // none) means some subscriber always listens.
        static LISTEN_EVERYWHERE: std::sync::Once = std::sync::Once::new();
        LISTEN_EVERYWHERE.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(logs.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// How many events at `level` have a message starting with `start`.
    pub fn count(&self, level: &str, start: &str) -> usize {
        self.events()
            .iter()
            .filter(|event| {
                event["level"] == level
                    && event["fields"]["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with(start))
            })
            .count()
    }

    /// The events at `level` whose message contains `text`.
    pub fn containing(&self, level: &str, text: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|event| {
                event["level"] == level
                    && event["fields"]["message"]
                        .as_str()
                        .is_some_and(|message| message.contains(text))
            })
            .collect()
    }

    /// The events whose `fields.policy` is `policy`.
    pub fn policy_events(&self, policy: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|event| event["fields"]["policy"] == policy)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A 401 from the API-key policy: `WWW-Authenticate`, JSON, and `message`.
pub fn assert_unauthorized(reply: &Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"api\"");
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": message, "code": "UNAUTHORIZED"})
    );
}

/// `GET path` over a real TCP connection to `address`, HTTP/1.1 with
/// `Connection: close`, read to the end. Enough for the loopback server
/// tests (bodies with a `Content-Length`), without an HTTP client crate.
pub async fn http_get(address: SocketAddr, path: &str) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .expect("a complete response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let code = status_line.split(' ').nth(1).expect("a status code");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("a header line");
        headers.append(
            axum::http::HeaderName::try_from(name.trim()).unwrap(),
            axum::http::HeaderValue::try_from(value.trim()).unwrap(),
        );
    }
    Reply {
        status: StatusCode::from_bytes(code.as_bytes()).unwrap(),
        headers,
        body: body.to_owned(),
    }
}
