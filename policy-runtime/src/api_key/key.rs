//! [`ApiKey`]: one key to configure, with its name, scopes and expiry.
//!
//! This module owns the value a key is described by before it joins an
//! [`ApiKeyStore`](super::store::ApiKeyStore): the secret is hashed the moment
//! the key is made, and only what the start-up checks need to know about the
//! plaintext (its length, whether it looks like a demo key) is kept beside the
//! digest.

use crate::timestamp;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::SystemTime;

pub(crate) type KeyDigest = [u8; 32];

/// Keys shorter than this are refused in production and warned about elsewhere.
pub(crate) const MIN_KEY_LEN: usize = 16;

/// Lower-case beginnings that mark a key as a demo or placeholder value.
const DEMO_PREFIXES: [&str; 7] = [
    "demo",
    "example",
    "sample",
    "changeme",
    "change-me",
    "placeholder",
    "test",
];

/// The demo or placeholder beginning of a secret, in any case, if it has one.
pub(crate) fn demo_prefix(secret: &[u8]) -> Option<&'static str> {
    let lower = secret.to_ascii_lowercase();
    DEMO_PREFIXES
        .into_iter()
        .find(|prefix| lower.starts_with(prefix.as_bytes()))
}

/// An API key to accept: a name, the secret (kept only as its SHA-256
/// digest), and optionally scopes and an expiry.
///
/// Give it to [`EngineBuilder::api_key_with`](crate::EngineBuilder::api_key_with)
/// or [`ApiKeyStore::add`](crate::ApiKeyStore::add). Several keys may share a
/// name, so a client can hold an old and a new key while it rotates.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use policy_runtime::{ApiKey, Engine};
///
/// let next_year = SystemTime::now() + Duration::from_secs(365 * 86_400);
/// let key = ApiKey::new("reporting", "reporting-key-0123456789abcdef")
///     .scopes(["reports:read", "reports:write"])
///     .expires_at(next_year);
/// assert_eq!(key.scope_names().collect::<Vec<_>>(), ["reports:read", "reports:write"]);
/// assert_eq!(key.expiry(), Some(next_year));
///
/// let engine = Engine::builder().api_key_with(key).build()?;
/// assert_eq!(engine.api_keys().verify(b"reporting-key-0123456789abcdef").unwrap().name(), "reporting");
/// # Ok::<(), policy_runtime::BuildError>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    pub(crate) name: String,
    pub(crate) digest: KeyDigest,
    pub(crate) plaintext: Option<Plaintext>,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) revoked: bool,
}

/// What the start-up checks know of a key given in plaintext.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plaintext {
    pub(crate) len: usize,
    pub(crate) demo_prefix: Option<&'static str>,
}

impl ApiKey {
    /// A key named `name` whose secret is `secret`, with no scope and no
    /// expiry. Only the secret's SHA-256 digest is kept.
    ///
    /// ```
    /// let key = policy_runtime::ApiKey::new("mobile-app", "mobile-app-key-0123456789");
    /// assert_eq!(key.name(), "mobile-app");
    /// ```
    pub fn new(name: &str, secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        let demo_prefix = demo_prefix(secret);
        Self {
            name: name.to_owned(),
            digest: digest(secret),
            plaintext: Some(Plaintext {
                len: secret.len(),
                demo_prefix,
            }),
            scopes: Vec::new(),
            expires_at: None,
            revoked: false,
        }
    }

    /// A key known only by its digest, as the key file holds it.
    pub(crate) fn from_digest(name: &str, digest: KeyDigest) -> Self {
        Self {
            name: name.to_owned(),
            digest,
            plaintext: None,
            scopes: Vec::new(),
            expires_at: None,
            revoked: false,
        }
    }

    /// Gives the key these scopes (replacing any it had). A scope is 1 to 64
    /// ASCII letters, digits, `_`, `-`, `.` or `:`; another name is a build
    /// problem.
    ///
    /// ```
    /// let key = policy_runtime::ApiKey::new("ops", "ops-key-0123456789abcdef").scopes(["admin", "read"]);
    /// assert_eq!(key.scope_names().collect::<Vec<_>>(), ["admin", "read"]);
    /// ```
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.scopes = scopes
            .into_iter()
            .map(|scope| scope.as_ref().to_owned())
            .collect();
        self
    }

    /// Refuses the key from `time` on, with 401 and the log reason `expired`.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// let in_90_days = SystemTime::now() + Duration::from_secs(90 * 86_400);
    /// let key = policy_runtime::ApiKey::new("ci", "ci-key-0123456789abcdef").expires_at(in_90_days);
    /// assert_eq!(key.expiry(), Some(in_90_days));
    /// ```
    pub fn expires_at(mut self, time: SystemTime) -> Self {
        self.expires_at = Some(time);
        self
    }

    /// The key's name, as logs and [`ApiKeyId`](crate::ApiKeyId) show it.
    ///
    /// ```
    /// assert_eq!(policy_runtime::ApiKey::new("ci", "ci-key-0123456789abcdef").name(), "ci");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's scopes, in the order given.
    ///
    /// ```
    /// let key = policy_runtime::ApiKey::new("ci", "ci-key-0123456789abcdef");
    /// assert_eq!(key.scope_names().count(), 0);
    /// ```
    pub fn scope_names(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(String::as_str)
    }

    /// When the key stops being accepted, if ever.
    ///
    /// ```
    /// assert_eq!(policy_runtime::ApiKey::new("ci", "ci-key-0123456789abcdef").expiry(), None);
    /// ```
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The key's line for the key file (see
    /// [`ApiKeyStore::from_key_file`](crate::ApiKeyStore::from_key_file)):
    /// its name, the SHA-256 digest of the secret, and its scopes and expiry
    /// when it has them. The secret itself is not in it.
    ///
    /// ```
    /// let line = policy_runtime::ApiKey::new("ci", "ci-key-0123456789abcdef")
    ///     .scopes(["deploy"])
    ///     .key_file_line();
    /// assert!(line.starts_with("ci sha256:"));
    /// assert!(line.ends_with(" scopes=deploy"));
    /// assert!(!line.contains("ci-key-0123456789abcdef"));
    /// ```
    pub fn key_file_line(&self) -> String {
        let mut line = format!("{} sha256:{}", self.name, hex(&self.digest));
        if !self.scopes.is_empty() {
            line.push_str(" scopes=");
            line.push_str(&self.scopes.join(","));
        }
        if let Some(expires_at) = self.expires_at {
            line.push_str(" expires=");
            line.push_str(&timestamp::format(expires_at));
        }
        if self.revoked {
            line.push_str(" revoked");
        }
        line
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No digest: it is not a secret, but it has no business in logs.
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("expires_at", &self.expires_at.map(timestamp::format))
            .finish_non_exhaustive()
    }
}

pub(crate) fn digest(secret: &[u8]) -> KeyDigest {
    Sha256::digest(secret).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| {
            [
                DIGITS[usize::from(byte >> 4)],
                DIGITS[usize::from(byte & 15)],
            ]
        })
        .map(char::from)
        .collect()
}

/// The 32 bytes of 64 hex digits (either case).
pub(crate) fn parse_hex_digest(text: &str) -> Option<KeyDigest> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let nibble = |digit: u8| (digit as char).to_digit(16).map(|value| value as u8);
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let digest = digest(b"abc");
        let text = hex(&digest);
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(parse_hex_digest(&text), Some(digest));
        assert_eq!(parse_hex_digest(&text.to_uppercase()), Some(digest));
        assert_eq!(parse_hex_digest(&text[1..]), None);
        assert_eq!(parse_hex_digest(&text.replace('a', "g")), None);
    }

    #[test]
    fn demo_keys_are_recognised_by_their_beginning() {
        let demo = |secret: &str| ApiKey::new("k", secret).plaintext.unwrap().demo_prefix;
        assert_eq!(demo("demo-key-for-local-testing-only"), Some("demo"));
        assert_eq!(demo("CHANGEME-0123456789"), Some("changeme"));
        assert_eq!(demo("Wq3rT1xY0-production-key"), None);
    }
}
