//! The conversion API's policy surface over a real socket: start-up refusal,
//! keys from the environment, request limits, security headers, path-free
//! errors and the logs of authentication attempts.

mod common;

use chordpro_convert::{app, engine, subscriber};
use common::{Buffer, Reply, capture, get, start, vars};
use policy_runtime::Environment;
use serde_json::{Value, json};

const KEY_1: &str = "k1-0123456789abcdef-first";
const KEY_2: &str = "k2-0123456789abcdef-second";
const KEY_3: &str = "k3-0123456789abcdef-numbered";

fn keyed() -> Vec<(String, String)> {
    vars(&[
        ("API_KEYS", &format!("{KEY_1},{KEY_2}")),
        ("API_KEY_1", KEY_3),
    ])
}

async fn production() -> String {
    start(app(engine(keyed()).unwrap())).await
}

async fn convert(base: &str, key: Option<&str>, body: Vec<u8>) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/convert"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    Reply::of(request.send().await.unwrap()).await
}

fn song(format: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"chordpro": "{title: Amazing Grace}\n[G]Amazing [C]grace", "format": format}),
    )
    .unwrap()
}

#[test]
fn the_binary_refuses_to_start_in_production_without_keys() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chordpro-convert"))
        .env_clear()
        .env("PORT", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "`chordpro_convert::convert` requires an API key, but no API key is configured; \
             set API_KEYS, API_KEY_<N> or API_KEY_FILE"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("for local work without keys set ENVIRONMENT=development"),
        "{stderr}"
    );
}

#[test]
fn development_must_be_asked_for() {
    assert_eq!(
        engine(keyed()).unwrap().environment(),
        Environment::Production
    );
    let error = engine(vars(&[])).unwrap_err();
    assert_eq!(error.problems().len(), 1);
    let development = engine(vars(&[("ENVIRONMENT", "development")])).unwrap();
    assert_eq!(development.environment(), Environment::Development);
}

#[tokio::test]
async fn keys_come_from_api_keys_and_api_key_n() {
    let base = production().await;
    for (key, name) in [
        (KEY_1, "API_KEYS#1"),
        (KEY_2, "API_KEYS#2"),
        (KEY_3, "API_KEY_1"),
    ] {
        let reply = convert(&base, Some(key), song("html")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["client"], name);
        assert_eq!(
            body["output"],
            "<h1>Amazing Grace</h1>\n<p>[G]Amazing [C]grace</p>"
        );
    }
    let missing = convert(&base, None, song("html")).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), r#"Bearer realm="api""#);
    assert_eq!(
        missing.body,
        r#"{"error":"Missing API key","code":"UNAUTHORIZED"}"#
    );
    let wrong = convert(&base, Some("not-a-key-0123456789"), song("html")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        r#"{"error":"Invalid API key","code":"UNAUTHORIZED"}"#
    );
    // `Authorization: Bearer` works too.
    let bearer = reqwest::Client::new()
        .post(format!("{base}/convert"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {KEY_2}"))
        .body(song("text"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
}

#[tokio::test]
async fn a_short_key_stops_production_and_is_a_warning_in_development() {
    let error = engine(vars(&[("API_KEYS", "short-key1")])).unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "API key `API_KEYS#1` is 10 characters long; use at least 16 (`cargo run -p policy-keygen` prints a new key)"
        ]
    );

    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Development, None, logs.clone()));
    let engine = engine(vars(&[
        ("API_KEYS", "short-key1"),
        ("ENVIRONMENT", "development"),
    ]))
    .unwrap();
    let warnings: Vec<Value> = logs
        .events()
        .into_iter()
        .filter(|event| event["level"] == "WARN")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        warnings[0]["fields"]["message"],
        "API key `API_KEYS#1` is 10 characters long; use at least 16 (`cargo run -p policy-keygen` prints a new key)"
    );
    // Still a key: accepted.
    let base = start(app(engine)).await;
    assert_eq!(
        convert(&base, Some("short-key1"), song("text"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_body_over_1_mb_is_refused_before_the_key_is_checked() {
    let base = production().await;
    let over = vec![b' '; 1_000_001];
    for key in [Some(KEY_1), None] {
        let reply = convert(&base, key, over.clone()).await;
        assert_eq!(reply.status, 413);
        assert_eq!(
            reply.body,
            r#"{"error":"Payload Too Large: the request body is over the limit","code":"PAYLOAD_TOO_LARGE"}"#
        );
    }
    // 1,000,000 bytes exactly are read.
    let mut within = song("text");
    let padding = 1_000_000 - within.len();
    within.splice(0..0, std::iter::repeat_n(b' ', padding));
    assert_eq!(within.len(), 1_000_000);
    assert_eq!(convert(&base, Some(KEY_1), within).await.status, 200);
}

#[tokio::test]
async fn the_processing_timeout_is_30_seconds_unless_request_timeout_says_otherwise() {
    for (extra, timeout, body) in [
        (None, "30s", "1MB"),
        (Some(("REQUEST_TIMEOUT", "5s")), "5s", "1MB"),
    ] {
        let logs = Buffer::default();
        let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
        let mut settings = keyed();
        settings.extend(extra.map(|(k, v)| (k.to_owned(), v.to_owned())));
        engine(settings).unwrap();
        let built: Vec<Value> = logs
            .events()
            .into_iter()
            .filter(|event| event["fields"]["message"] == "policy engine built")
            .collect();
        assert_eq!(built.len(), 1);
        assert_eq!(built[0]["fields"]["request_timeout"], timeout);
        assert_eq!(built[0]["fields"]["max_body_size"], body);
        assert_eq!(built[0]["fields"]["environment"], "production");
    }
}

#[tokio::test]
async fn a_conversion_past_the_timeout_gets_a_504() {
    use std::io::{Read, Write};

    // 100 ms instead of 30 s, through the same variable an operator sets.
    let mut settings = keyed();
    settings.push(("REQUEST_TIMEOUT".to_owned(), "100ms".to_owned()));
    let base = start(app(engine(settings).unwrap())).await;
    // A client that announces 100 bytes of body and sends 10: the conversion
    // never gets its document, and the timeout ends the request.
    let address = base.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /convert HTTP/1.1\r\nhost: localhost\r\nx-api-key: {KEY_1}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{{\"chordpro\""
    );
    // A blocking client on its own thread, while the server runs on this one.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        // A guard against hanging if no timeout fired, not a measurement.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with(
            r#"{"error":"Gateway Timeout: the request took longer than 100ms","code":"TIMEOUT"}"#
        ),
        "{answer}"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let base = production().await;
    let answers = [
        convert(&base, Some(KEY_1), song("text")).await,
        convert(&base, None, song("text")).await,
        convert(&base, Some(KEY_1), vec![b' '; 1_000_001]).await,
        get(&format!("{base}/nowhere")).await,
        get(&format!("{base}/health")).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|reply| reply.status).collect();
    assert_eq!(statuses, [200, 401, 413, 404, 200]);
    for reply in &answers {
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert_eq!(reply.header("referrer-policy"), "no-referrer");
        assert_eq!(
            reply.header("content-security-policy"),
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(
            reply.header("strict-transport-security"),
            "max-age=31536000; includeSubDomains"
        );
    }
    // No HSTS in development (plain HTTP on a developer's machine).
    let development = engine(vars(&[("ENVIRONMENT", "development"), ("API_KEYS", KEY_1)])).unwrap();
    let base = start(app(development)).await;
    let reply = get(&format!("{base}/health")).await;
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert!(reply.headers.get("strict-transport-security").is_none());
}

#[tokio::test]
async fn error_messages_never_disclose_paths() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let base = production().await;
    let failed = convert(&base, Some(KEY_1), song("pdf")).await;
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.body,
        r#"{"error":"Internal Server Error","code":"RENDER_FAILED"}"#
    );
    // The operator sees the path in the log.
    let logged = logs
        .events()
        .into_iter()
        .find(|event| event["level"] == "ERROR" && event["fields"]["message"] == "request failed")
        .expect("the failure is logged");
    assert_eq!(
        logged["fields"]["sources"],
        "/opt/chordpro/templates/songbook.pdf.tt: No such file or directory"
    );

    let unknown = get(&format!("{base}/etc/passwd")).await;
    assert_eq!(unknown.body, r#"{"error":"Not Found","code":"NOT_FOUND"}"#);
    let format = convert(&base, Some(KEY_1), song("docx")).await;
    assert_eq!(format.status, 400);
    assert_eq!(
        format.body,
        r#"{"error":"unsupported format `docx`; use html, text or pdf","code":"UNSUPPORTED_FORMAT"}"#
    );
    let bad_json = convert(&base, Some(KEY_1), b"{\"chordpro\":".to_vec()).await;
    assert_eq!(bad_json.status, 400);
    assert_eq!(
        bad_json.body,
        r#"{"error":"Failed to parse the request body as JSON: chordpro: EOF while parsing a value at line 1 column 12","code":"INVALID_JSON"}"#
    );
    for reply in [&failed, &unknown, &format, &bad_json] {
        assert!(
            !reply.body.contains("/opt") && !reply.body.contains("/etc"),
            "{}",
            reply.body
        );
    }
}

#[tokio::test]
async fn requests_and_authentication_attempts_are_logged_as_json() {
    let logs = Buffer::default();
    let _guard = capture(subscriber(Environment::Production, None, logs.clone()));
    let base = production().await;
    assert_eq!(convert(&base, Some(KEY_1), song("text")).await.status, 200);
    assert_eq!(
        convert(&base, Some("wrong-key-0123456789"), song("text"))
            .await
            .status,
        401
    );
    assert_eq!(convert(&base, None, song("text")).await.status, 401);

    let events = logs.events();
    let attempts: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .filter(|event| event["fields"]["policy"] == "api_key")
        .map(|event| {
            let fields = &event["fields"];
            (
                event["level"].as_str().unwrap(),
                fields["outcome"].as_str().unwrap(),
                fields["reason"].as_str().unwrap_or("-"),
                fields["client_ip"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("DEBUG", "allow", "-", "127.0.0.1"),
            ("WARN", "deny", "invalid", "127.0.0.1"),
            ("WARN", "deny", "missing", "127.0.0.1"),
        ]
    );
    let accepted = events
        .iter()
        .find(|e| e["fields"]["outcome"] == "allow")
        .unwrap();
    assert_eq!(accepted["fields"]["key_id"], "API_KEYS#1");
    // One line per request, in the request's span.
    let finished: Vec<(u64, &str)> = events
        .iter()
        .filter(|event| event["fields"]["message"] == "request finished")
        .map(|event| {
            (
                event["fields"]["status"].as_u64().unwrap(),
                event["span"]["route"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        finished,
        [(200, "/convert"), (401, "/convert"), (401, "/convert")]
    );
    // The keys themselves never reach the log.
    let text = logs.text();
    assert!(!text.contains(KEY_1) && !text.contains("wrong-key-0123456789"));
}

#[tokio::test]
async fn five_bad_keys_lock_the_client_out() {
    let base = production().await;
    for _ in 0..5 {
        assert_eq!(
            convert(&base, Some("guess-0123456789abcdef"), song("text"))
                .await
                .status,
            401
        );
    }
    let locked = convert(&base, Some(KEY_1), song("text")).await;
    assert_eq!(locked.status, 429);
    assert_eq!(locked.header("retry-after"), "1800");
    assert_eq!(
        locked.body,
        r#"{"error":"Too Many Requests: too many failed API key attempts from this client","code":"LOCKED_OUT"}"#
    );
}
