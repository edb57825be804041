//! The app on a real socket, a real HTTP client, and log capture.
#![allow(dead_code)]

use axum::Router;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Serves `app` on 127.0.0.1 at a free port, as `main` does; the base URL.
pub async fn start(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(chordpro_convert::serve(listener, app));
    format!("http://{address}")
}

/// A finished response.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn of(response: reqwest::Response) -> Reply {
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

pub async fn get(url: &str) -> Reply {
    Reply::of(reqwest::get(url).await.unwrap()).await
}

pub async fn post_json(url: &str, body: serde_json::Value) -> Reply {
    let client = reqwest::Client::new();
    Reply::of(client.post(url).json(&body).send().await.unwrap()).await
}

/// What a subscriber wrote, shared with the test.
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The JSON lines written, parsed.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'w self) -> Buffer {
        self.clone()
    }
}

/// Makes `subscriber` this thread's for as long as the guard lives: the
/// server runs on the test's (current-thread) runtime, so its events reach it.
pub fn capture(
    subscriber: impl tracing::Subscriber + Send + Sync + 'static,
) -> tracing::subscriber::DefaultGuard {
    // `tracing` caches per callsite whether any subscriber listens; a global
    // subscriber that takes every event keeps a callsite first hit on another
    // test's thread from being cached as unheard.
    static LISTEN_EVERYWHERE: std::sync::Once = std::sync::Once::new();
    LISTEN_EVERYWHERE.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    tracing::subscriber::set_default(subscriber)
}

pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
