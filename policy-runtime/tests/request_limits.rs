//! Body limits and timeouts, over a real socket: `#[body_limit]`,
//! `#[timeout]`, `EngineBuilder::max_body_size` and `request_timeout`, their
//! environment variables, and the 413 and 504 in the engine's error format.

mod common;

use axum::Router;
use axum::routing::{get, post};
use common::Logs;
use policy_runtime::{Engine, EngineBuilder, ErrorFormat, body_limit, rate_limit, timeout};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: usize = 1024 * 1024;

#[rate_limit("1000/hour", scope = "request_limits::upload")]
async fn upload(body: String) -> String {
    body.len().to_string()
}

#[body_limit("3MB")]
async fn large_upload(body: String) -> String {
    body.len().to_string()
}

#[body_limit("1KB")]
#[rate_limit("1000/hour", scope = "request_limits::small_upload")]
async fn small_upload(body: String) -> String {
    body.len().to_string()
}

/// Serves `app` on a loopback port of its own.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}

fn uploads_app(builder: EngineBuilder) -> Router {
    let engine = builder.max_body_size(MIB as u64).build().unwrap();
    Router::new()
        .route("/upload", post(upload))
        .route("/large", post(large_upload))
        .route("/small", post(small_upload))
        .route(
            "/plain",
            post(|body: String| async move { body.len().to_string() }),
        )
        .layer(engine)
}

/// A response read off the socket: status, headers (lower-case names) and body.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one response: the head, then a body of `Content-Length` bytes.
async fn read_response<R: AsyncRead + Unpin>(stream: &mut R) -> Raw {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        raw.extend_from_slice(&buffer[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8(raw[..end].to_vec()).unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while raw.len() < end + 4 + length {
            let n = stream.read(&mut buffer).await.unwrap();
            assert!(n > 0, "connection closed inside a body");
            raw.extend_from_slice(&buffer[..n]);
        }
        let status = head[9..12].parse().unwrap();
        let body = String::from_utf8(raw[end + 4..end + 4 + length].to_vec()).unwrap();
        return Raw { status, head, body };
    }
}

/// Sends only the head of a `POST` that declares `length` bytes of body,
/// then reads the answer: a server that answers has refused the body
/// without reading a byte of it, since none was sent.
async fn declare_only(address: SocketAddr, path: &str, length: usize) -> Raw {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
        .await
        .expect("an answer without the body")
}

/// Sends a `POST` with `length` bytes of body, with `Content-Length` or
/// chunked, while reading the answer; returns it and how many body bytes
/// were written before it came.
async fn upload_body(
    address: SocketAddr,
    path: &str,
    length: usize,
    chunked: bool,
) -> (Raw, usize) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {length}")
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\n{framing}\r\n\r\n"
    );
    let written = Arc::new(AtomicUsize::new(0));
    let sent = written.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        let mut left = length;
        while left > 0 {
            let n = left.min(chunk.len());
            if chunked {
                writer.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                writer.write_all(&chunk[..n]).await?;
                writer.write_all(b"\r\n").await?;
            } else {
                writer.write_all(&chunk[..n]).await?;
            }
            sent.fetch_add(n, Ordering::SeqCst);
            left -= n;
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let response = tokio::time::timeout(Duration::from_secs(20), read_response(&mut reader))
        .await
        .expect("an answer");
    let written_before = written.load(Ordering::SeqCst);
    writing.abort();
    (response, written_before)
}

const TOO_LARGE: &str = r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#;

#[tokio::test]
async fn a_content_length_over_the_engine_limit_is_refused_before_any_body_byte() {
    let address = serve(uploads_app(Engine::builder())).await;
    // A policy-wrapped handler's guard refuses anything over the engine's
    // limit; the engine layer alone refuses what is over every limit in
    // the program (here `large_upload`'s 3 MB), so a plain handler too.
    for (path, length) in [
        ("/upload", 2 * MIB),
        ("/upload", 4 * MIB),
        ("/plain", 4 * MIB),
    ] {
        let reply = declare_only(address, path, length).await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        assert_eq!(reply.body, TOO_LARGE, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn a_plain_handler_refuses_a_body_between_the_engine_limit_and_a_larger_handler_limit() {
    let address = serve(uploads_app(Engine::builder())).await;
    // Over the engine's 1 MiB, under `large_upload`'s 3 MB: the plain
    // handler has no guard to refuse it from the head, and refuses it at
    // its first bytes, in the engine's JSON.
    let (reply, _) = upload_body(address, "/plain", 2 * MIB, false).await;
    assert_eq!((reply.status, reply.body.as_str()), (413, TOO_LARGE));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_chunked_body_over_the_engine_limit_is_refused_at_the_limit() {
    let address = serve(uploads_app(Engine::builder())).await;
    for path in ["/upload", "/plain"] {
        let (reply, written) = upload_body(address, path, 64 * MIB, true).await;
        assert_eq!(reply.status, 413, "{path}: {}", reply.body);
        assert_eq!(reply.body, TOO_LARGE, "{path}");
        // The answer came long before the client had sent the body: the
        // server stopped reading at the limit (plus what the sockets buffer).
        assert!(written < 16 * MIB, "{path}: {written} bytes were taken");
    }
}

#[tokio::test]
async fn a_body_under_the_limit_reaches_the_handler_with_or_without_content_length() {
    let address = serve(uploads_app(Engine::builder())).await;
    for chunked in [false, true] {
        let (reply, _) = upload_body(address, "/upload", MIB, chunked).await;
        assert_eq!(reply.status, 200, "chunked {chunked}: {}", reply.body);
        assert_eq!(reply.body, MIB.to_string());
    }
}

#[tokio::test]
async fn a_handler_limit_raises_the_engine_limit_for_that_handler_only() {
    let address = serve(uploads_app(Engine::builder())).await;
    for chunked in [false, true] {
        let (reply, _) = upload_body(address, "/large", 2 * MIB, chunked).await;
        assert_eq!(reply.status, 200, "chunked {chunked}: {}", reply.body);
        assert_eq!(reply.body, (2 * MIB).to_string());
    }
    // Over the handler's own 3 MB, refused from the head alone.
    let reply = declare_only(address, "/large", 3_000_001).await;
    assert_eq!(reply.status, 413);
    // The other handlers keep the engine's limit, also between the two limits.
    let reply = declare_only(address, "/upload", 2 * MIB).await;
    assert_eq!((reply.status, reply.body.as_str()), (413, TOO_LARGE));
    for path in ["/upload", "/plain"] {
        let (reply, _) = upload_body(address, path, 2 * MIB, true).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (413, TOO_LARGE),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_handler_limit_lowers_the_engine_limit_before_any_other_check() {
    let address = serve(uploads_app(Engine::builder())).await;
    let reply = declare_only(address, "/small", 2_000).await;
    assert_eq!((reply.status, reply.body.as_str()), (413, TOO_LARGE));
    // Refused before the rate limit counted it.
    assert!(reply.header("x-ratelimit-remaining").is_none());
    let (reply, _) = upload_body(address, "/small", 1_000, false).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "1000"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("999"));
    // Without `Content-Length` the size shows only while the body is read,
    // after the checks: the request was counted.
    let (reply, _) = upload_body(address, "/small", 2_000, true).await;
    assert_eq!((reply.status, reply.body.as_str()), (413, TOO_LARGE));
    let (reply, _) = upload_body(address, "/small", 1_000, false).await;
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("997"));
}

#[tokio::test]
async fn the_refusals_take_the_engine_error_format_with_the_request_id() {
    let engine = Engine::builder()
        .max_body_size(1_000)
        .error_format(ErrorFormat::Problem {
            type_base: Some("https://errors.example.com/".into()),
        })
        .build()
        .unwrap();
    let app = Router::new().route("/upload", post(upload)).layer(engine);
    let address = serve(app).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nx-request-id: req-413\r\nContent-Length: 5000\r\n\r\n",
        )
        .await
        .unwrap();
    let reply = read_response(&mut stream).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "https://errors.example.com/PAYLOAD_TOO_LARGE",
            "title": "Payload Too Large",
            "status": 413,
            "detail": "Payload Too Large: the request body is over the limit",
            "instance": "/upload",
            "code": "PAYLOAD_TOO_LARGE",
            "request_id": "req-413",
        })
    );
}

/// Set when the slow handler's future is dropped.
static SLOW_DROPPED: AtomicBool = AtomicBool::new(false);
/// Set if the slow handler ever ran to its end.
static SLOW_FINISHED: AtomicBool = AtomicBool::new(false);

struct DropFlag(&'static AtomicBool);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[timeout("200ms")]
async fn slow() -> &'static str {
    let _flag = DropFlag(&SLOW_DROPPED);
    tokio::time::sleep(Duration::from_secs(30)).await;
    SLOW_FINISHED.store(true, Ordering::SeqCst);
    "done"
}

#[timeout("5s")]
#[rate_limit("1000/hour", scope = "request_limits::patient")]
async fn patient() -> &'static str {
    tokio::time::sleep(Duration::from_millis(400)).await;
    "done"
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_stopped_and_answered_504() {
    let (logs, _guard) = Logs::capture();
    let engine = Engine::builder().build().unwrap();
    let app = Router::new().route("/slow", get(slow)).layer(engine);
    let address = serve(app).await;
    let reply = common::http_get(address, "/slow").await;
    assert_eq!(reply.status, 504, "{}", reply.body);
    assert_eq!(
        reply.body,
        r#"{"error":"Gateway Timeout: the request took longer than 200ms","code":"TIMEOUT"}"#
    );
    assert!(
        SLOW_DROPPED.load(Ordering::SeqCst),
        "the handler's future was not dropped"
    );
    assert!(!SLOW_FINISHED.load(Ordering::SeqCst));
    let warnings = logs.containing("WARN", "request timed out");
    assert_eq!(warnings.len(), 1, "{}", logs.text());
    let fields = &warnings[0]["fields"];
    assert_eq!(fields["route"], "/slow");
    assert_eq!(fields["timeout_ms"], 200);
    assert!(fields["elapsed_ms"].as_u64().unwrap() >= 200, "{fields}");
    assert_eq!(fields["reason"], "timeout");
}

#[tokio::test]
async fn the_engine_timeout_applies_unless_the_handler_has_its_own() {
    let engine = Engine::builder()
        .request_timeout(Duration::from_millis(150))
        .error_format(ErrorFormat::Simple)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/patient", get(patient))
        .route(
            "/plain",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "done"
            }),
        )
        .route("/quick", get(|| async { "quick" }))
        .layer(engine);
    let address = serve(app).await;
    let reply = common::http_get(address, "/plain").await;
    assert_eq!(reply.status, 504);
    assert_eq!(
        reply.body,
        r#"{"error":"Gateway Timeout: the request took longer than 150ms"}"#
    );
    // A longer timeout of the handler's own wins over the engine's.
    let reply = common::http_get(address, "/patient").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "done"));
    let reply = common::http_get(address, "/quick").await;
    assert_eq!((reply.status.as_u16(), reply.body.as_str()), (200, "quick"));
}

#[test]
fn the_environment_sets_both_limits_and_bad_values_are_named() {
    let vars = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    Engine::builder()
        .from_vars(vars(&[
            ("REQUEST_MAX_BODY_SIZE", "16MiB"),
            ("REQUEST_TIMEOUT", "30s"),
        ]))
        .build()
        .unwrap();
    let error = Engine::builder()
        .from_vars(vars(&[
            ("REQUEST_MAX_BODY_SIZE", "10XB"),
            ("REQUEST_TIMEOUT", "1 fortnight"),
        ]))
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 2, "{error}");
    assert!(
        error.problems()[0].starts_with("REQUEST_MAX_BODY_SIZE: "),
        "{error}"
    );
    assert!(
        error.problems()[1].starts_with("REQUEST_TIMEOUT: "),
        "{error}"
    );
}

#[test]
fn zero_and_overlong_settings_fail_the_build() {
    let error = Engine::builder()
        .max_body_size(0)
        .request_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "the maximum body size is 0 bytes; use at least 1 byte, such as `max_body_size(1024 * 1024)`",
            "the request timeout is 0; use a positive duration, such as `Duration::from_secs(30)`",
        ]
    );
    let error = Engine::builder()
        .request_timeout(Duration::from_secs(2 * 24 * 60 * 60))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        ["the request timeout of 48h is over the longest allowed, 24 hours"]
    );
}

#[test]
fn the_start_up_report_names_the_limits_of_the_engine_and_of_each_handler() {
    let (logs, _guard) = Logs::capture();
    Engine::builder()
        .max_body_size(1_000_000)
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let summary = logs.containing("INFO", "policy engine built");
    assert_eq!(summary[0]["fields"]["max_body_size"], "1MB");
    assert_eq!(summary[0]["fields"]["request_timeout"], "30s");
    let handlers: Vec<(String, String)> = logs
        .containing("INFO", "handler policy")
        .iter()
        .map(|event| {
            let fields = &event["fields"];
            (
                fields["handler"].as_str().unwrap().to_owned(),
                fields["policies"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(handler, _)| handler.ends_with("small_upload") || handler.ends_with("::slow"))
        .collect();
    assert_eq!(
        handlers,
        [
            (
                "request_limits::slow".to_owned(),
                "timeout 200ms".to_owned()
            ),
            (
                "request_limits::small_upload".to_owned(),
                "body_limit 1KB -> rate_limit 1000 per 1 hour per client ip".to_owned()
            ),
        ]
    );
}
