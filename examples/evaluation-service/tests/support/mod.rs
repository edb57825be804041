//! What the evaluation service's tests share: the service on a free
//! loopback port, a real HTTP client, and a private `redis-server`.
#![allow(dead_code)]

use evaluation_service::{Config, app, configure_from, engine_builder, log_limit_store};
use policy_runtime::{ManualClock, Metrics};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An admin key (scope `admin`) and two users' keys, as `API_KEYS` gives them.
pub const ADMIN_KEY: &str = "ops-admin-key-0123456789";
pub const ALICE_KEY: &str = "alice-key-0123456789abc";
pub const BOB_KEY: &str = "bob-key-0123456789abcdef";

/// The variables of a test instance: the keys, loopback as a trusted proxy
/// (so that `X-Forwarded-For` names the client), and `extra`.
pub fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let keys = format!("ops:{ADMIN_KEY}:admin,alice:{ALICE_KEY},bob:{BOB_KEY}");
    let mut vars = vec![
        ("API_KEYS".to_owned(), keys),
        ("TRUSTED_PROXIES".to_owned(), "127.0.0.1/32".to_owned()),
    ];
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    vars
}

/// One running instance of the service.
#[derive(Clone)]
pub struct Instance {
    pub address: SocketAddr,
    /// Whether `REDIS_URL` gave it a Redis store.
    pub uses_redis: bool,
    client: reqwest::Client,
}

/// Starts the service with these variables on a free loopback port, as
/// `main` does (its start-up log of the store included).
pub async fn start(vars: Vec<(String, String)>) -> Instance {
    Metrics::install().unwrap();
    // Time stands still for limits, penalties and lockouts: every count and
    // `Retry-After` is exact, however slowly the test runs (limits in Redis
    // follow the Redis server's clock).
    let builder = engine_builder().clock(ManualClock::new());
    let Config { engine, redis } =
        configure_from(builder, vars).expect("the test configuration is valid");
    log_limit_store(redis.as_ref()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = app(engine).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    Instance {
        address,
        uses_redis: redis.is_some(),
        client: reqwest::Client::new(),
    }
}

/// A finished response.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// A body in the detailed format, its `timestamp` checked (RFC 3339
    /// UTC to the second) and removed, so the rest compares exactly.
    pub fn detailed(&self) -> Value {
        let mut body = self.json();
        let timestamp = body["timestamp"].as_str().expect("a timestamp").to_owned();
        let bytes = timestamp.as_bytes();
        assert_eq!(bytes.len(), 20, "{timestamp}");
        assert!(
            bytes.iter().enumerate().all(|(i, b)| match i {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                19 => *b == b'Z',
                _ => b.is_ascii_digit(),
            }),
            "{timestamp}"
        );
        body.as_object_mut().unwrap().remove("timestamp");
        body
    }
}

/// A request to one instance: from `client` (through the trusted loopback
/// proxy), with a key and a request id when given.
pub struct Call {
    builder: reqwest::RequestBuilder,
}

impl Instance {
    pub fn call(&self, method: &str, path: &str) -> Call {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("http://{}{path}", self.address);
        Call {
            builder: self.client.request(method, url),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path).send().await
    }
}

/// Sends the requests `make` builds, `rounds` in all, one after the other
/// to each instance in turn, and returns how many were admitted; anything
/// but 200 or 429 fails the test. (One after the other: requests that are
/// in flight together when Redis stops can be counted in a fallback store
/// that the outage's start then replaces; see NOTES-apps-b.md.)
pub async fn admitted_in_turn(
    instances: &[&Instance],
    rounds: usize,
    make: impl Fn(&Instance) -> Call,
) -> usize {
    let mut admitted = 0;
    for round in 0..rounds {
        let reply = make(instances[round % instances.len()]).send().await;
        match reply.status {
            200 => admitted += 1,
            429 => assert_eq!(reply.json()["error_code"], "RATE_LIMITED"),
            other => panic!("{other}: {}", reply.body),
        }
    }
    admitted
}

impl Call {
    pub fn from(mut self, ip: &str) -> Self {
        self.builder = self.builder.header("x-forwarded-for", ip);
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.builder = self.builder.header("x-api-key", key);
        self
    }

    pub fn request_id(mut self, id: &str) -> Self {
        self.builder = self.builder.header("x-request-id", id);
        self
    }

    pub fn json(mut self, body: &str) -> Self {
        self.builder = self
            .builder
            .header("content-type", "application/json")
            .body(body.to_owned());
        self
    }

    pub async fn send(self) -> Reply {
        let response = self.builder.send().await.expect("the service answers");
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }
}

/// A `redis-server` of this test alone: loopback, a free port, no
/// persistence; stopped by its PID when dropped.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs; install it with `apt-get install redis-server`");
        let server = RedisServer {
            port,
            child: Some(child),
        };
        server.wait_for_pong();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (by its PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_for_pong(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut stream| {
                stream.set_read_timeout(Some(Duration::from_millis(500)))?;
                stream.write_all(b"PING\r\n")?;
                let mut answer = [0; 7];
                stream.read_exact(&mut answer)?;
                Ok(answer == *b"+PONG\r\n")
            });
            if matches!(pong, Ok(true)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port where nothing listens.
pub fn closed_port_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("redis://127.0.0.1:{port}")
}

/// Every event logged in this test binary, as JSON lines: a global
/// subscriber, since the service logs from the server's tasks. Give each
/// binary that reads logs one test, so that what it reads is its own.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> Logs {
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_max_level(tracing::Level::INFO)
                .with_writer(logs.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            logs
        })
        .clone()
    }

    /// The events at `level` whose message starts with `start`.
    pub fn count(&self, level: &str, start: &str) -> usize {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| {
                event["level"] == level
                    && event["fields"]["message"]
                        .as_str()
                        .is_some_and(|message| message.starts_with(start))
            })
            .count()
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
