//! JWKS from a URL (directly, or found through OpenID Connect discovery):
//! the fetch, the cache, the rate-limited refresh, and the outage log.
//!
//! This module owns [`RemoteKeys`]: the keys in use (the configured ones
//! plus the last JWKS fetched, swapped whole), when a refresh may run (at
//! most one per interval, whatever the tokens ask: nothing here is keyed by
//! client input, so a flood of random `kid`s costs at most one fetch per
//! interval and no memory), and logging an outage once when it starts and
//! once when it ends.

use super::keys::KeySet;
use crate::clock::EngineClock;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The largest JWKS or discovery document read.
const MAX_DOCUMENT_LEN: usize = 512 * 1024;

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// No fetch attempted yet.
const NEVER: u64 = u64::MAX;

/// Where the keys are fetched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    /// A JWKS URL.
    Jwks(String),
    /// An OpenID Connect issuer: its discovery document names the JWKS URL.
    Discovery(String),
}

impl Remote {
    pub(crate) fn describe(&self) -> String {
        match self {
            Remote::Jwks(url) => format!("JWKS {url}"),
            Remote::Discovery(issuer) => format!("OpenID Connect discovery from {issuer}"),
        }
    }
}

/// The keys a JWT check verifies with, and where more come from.
pub(crate) struct RemoteKeys {
    /// The configured keys, always part of [`RemoteKeys::current`].
    fixed: KeySet,
    /// The configured keys and the last JWKS fetched.
    current: ArcSwap<KeySet>,
    remote: Option<RemoteSource>,
}

struct RemoteSource {
    remote: Remote,
    client: reqwest::Client,
    /// The JWKS URL discovery found, kept once found.
    jwks_uri: std::sync::Mutex<Option<String>>,
    /// The engine clock's reading at the last attempt, or [`NEVER`].
    last_attempt: AtomicU64,
    interval: Duration,
    clock: EngineClock,
    /// One fetch at a time; the others wait for it and use its keys.
    fetching: tokio::sync::Mutex<()>,
    /// Whether the last attempt failed (an outage is under way).
    down: AtomicBool,
    /// Whether any fetch succeeded.
    loaded: AtomicBool,
}

impl RemoteKeys {
    /// `fetched` is what [`fetch`] got at start-up, if it ran.
    pub(crate) fn new(
        fixed: KeySet,
        remote: Option<Remote>,
        fetched: Option<KeySet>,
        interval: Duration,
        clock: EngineClock,
    ) -> Self {
        let loaded = fetched.is_some();
        let mut current = fixed.clone();
        current
            .keys
            .extend(fetched.into_iter().flat_map(|set| set.keys));
        let remote = remote.map(|remote| RemoteSource {
            remote,
            client: client(),
            jwks_uri: std::sync::Mutex::new(None),
            last_attempt: AtomicU64::new(if loaded { clock.now() } else { NEVER }),
            interval,
            clock,
            fetching: tokio::sync::Mutex::new(()),
            down: AtomicBool::new(false),
            loaded: AtomicBool::new(loaded),
        });
        Self {
            fixed,
            current: ArcSwap::from_pointee(current),
            remote,
        }
    }

    /// The keys in use now.
    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    /// Whether any key, configured or fetched, or a source to fetch from, exists.
    pub(crate) fn has_source(&self) -> bool {
        !self.fixed.is_empty() || self.remote.is_some()
    }

    /// The configured keys: how many HMAC secrets and public keys.
    pub(crate) fn fixed(&self) -> &KeySet {
        &self.fixed
    }

    pub(crate) fn remote(&self) -> Option<&Remote> {
        self.remote.as_ref().map(|source| &source.remote)
    }

    /// Whether a token with this `kid` (or any token, before the first
    /// fetch) should wait for a refresh: the keys were never fetched, or
    /// the `kid` is unknown and the last attempt is an interval old.
    pub(crate) fn refresh_due(&self, kid: Option<&str>) -> bool {
        let Some(source) = &self.remote else {
            return false;
        };
        let unknown = !source.loaded.load(Ordering::Relaxed)
            || kid.is_some_and(|kid| !self.current.load().has_kid(kid));
        unknown && source.due(source.clock.now())
    }

    /// Fetches the keys again, unless another request just did (or is
    /// doing it: then this waits for it). A failure keeps the keys in use.
    pub(crate) async fn refresh(&self) {
        let Some(source) = &self.remote else {
            return;
        };
        let _one_at_a_time = source.fetching.lock().await;
        let now = source.clock.now();
        if !source.due(now) {
            return;
        }
        source.last_attempt.store(now, Ordering::Relaxed);
        match source.fetch().await {
            Ok(fetched) => {
                let mut keys = self.fixed.clone();
                let count = fetched.keys.len();
                keys.keys.extend(fetched.keys);
                self.current.store(Arc::new(keys));
                source.loaded.store(true, Ordering::Relaxed);
                if source.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        policy = "jwt",
                        source = %source.remote.describe(),
                        keys = count,
                        "JWKS endpoint reachable again; keys refreshed"
                    );
                } else {
                    tracing::info!(policy = "jwt", source = %source.remote.describe(), keys = count, "JWKS refreshed");
                }
            }
            Err(error) => {
                if !source.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        policy = "jwt",
                        source = %source.remote.describe(),
                        error = %error,
                        "JWKS endpoint unreachable; the keys fetched before keep working, tokens signed with \
                         other keys are refused until it answers again"
                    );
                }
            }
        }
    }

    /// Starts the first fetch in the background, when a Tokio runtime runs
    /// (an engine built with `build()` inside `#[tokio::main]`).
    pub(crate) fn prefetch(self: &Arc<Self>) {
        if self.remote.is_none() || !self.refresh_due(None) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let keys = Arc::clone(self);
            runtime.spawn(async move { keys.refresh().await });
        }
    }
}

impl RemoteSource {
    fn due(&self, now: u64) -> bool {
        let last = self.last_attempt.load(Ordering::Relaxed);
        last == NEVER
            || now.saturating_sub(last)
                >= u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX)
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let cached = self
            .jwks_uri
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let url = match (&self.remote, cached) {
            (Remote::Jwks(url), _) => url.clone(),
            (Remote::Discovery(_), Some(url)) => url,
            (Remote::Discovery(issuer), None) => {
                let url = discover(&self.client, issuer).await?;
                *self
                    .jwks_uri
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(url.clone());
                url
            }
        };
        fetch_jwks(&self.client, &url).await
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Fetches the keys once, for `EngineBuilder::build_async`.
pub(crate) async fn fetch(remote: &Remote) -> Result<KeySet, String> {
    let client = client();
    let url = match remote {
        Remote::Jwks(url) => url.clone(),
        Remote::Discovery(issuer) => discover(&client, issuer).await?,
    };
    fetch_jwks(&client, &url).await
}

/// The `jwks_uri` of an issuer's `/.well-known/openid-configuration`.
async fn discover(client: &reqwest::Client, issuer: &str) -> Result<String, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = get(client, &url).await?;
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: Option<String>,
        jwks_uri: String,
    }
    let discovery: Discovery = serde_json::from_slice(&body).map_err(|error| {
        format!("{url} is not an OpenID Connect discovery document with a `jwks_uri`: {error}")
    })?;
    if let Some(named) = &discovery.issuer {
        if named.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(format!(
                "{url} names the issuer `{named}`, not `{issuer}` (OpenID Connect discovery requires them equal)"
            ));
        }
    }
    Ok(discovery.jwks_uri)
}

async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let body = get(client, url).await?;
    let (keys, skipped) = KeySet::from_jwks(&body).map_err(|error| format!("{url} {error}"))?;
    for why in skipped {
        tracing::warn!(policy = "jwt", url, "JWKS {why}");
    }
    if keys.is_empty() {
        return Err(format!("{url} has no usable signing key"));
    }
    Ok(keys)
}

/// A GET whose body is at most [`MAX_DOCUMENT_LEN`] bytes.
async fn get(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| format!("GET {url} failed: {error}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url} answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("GET {url} failed: {error}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_LEN {
            return Err(format!(
                "GET {url}: the document is over {} KiB",
                MAX_DOCUMENT_LEN / 1024
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
