//! [`ApiKeyStore`]: the configured API keys, held as SHA-256 digests.
//!
//! This module owns key storage and verification. A plaintext key is hashed the
//! moment it is added and never kept. Verification is a hash-map lookup on the
//! first eight digest bytes followed by a constant-time comparison of the full
//! 32-byte digest, so its cost does not grow with the number of keys and does
//! not depend on how much of a wrong key matches a right one.
//!
//! Several keys may share a name (a client rotating from an old key to a new
//! one); one secret may not appear twice. A revoked key stays in the store,
//! marked, so that its next use is logged as `revoked` rather than `invalid`.

use super::id::ApiKeyId;
use super::key::{ApiKey, KeyDigest, Plaintext, digest};
use super::scope::scope_name_problem;
use std::collections::HashMap;
use std::time::SystemTime;
use subtle::ConstantTimeEq;

/// The set of API keys an engine accepts, each with a name, scopes and an
/// optional expiry.
///
/// An engine holds one, built from [`EngineBuilder`](crate::EngineBuilder)
/// settings; [`Engine::reload_keys`](crate::Engine::reload_keys) swaps in
/// another while the server runs.
///
/// ```
/// use policy_runtime::ApiKeyStore;
///
/// let mut keys = ApiKeyStore::new();
/// keys.insert("mobile-app", "k3y-for-the-mobile-app-0001").unwrap();
/// assert_eq!(keys.verify(b"k3y-for-the-mobile-app-0001").unwrap().name(), "mobile-app");
/// assert!(keys.verify(b"guess").is_none());
/// ```
#[derive(Clone, Default)]
pub struct ApiKeyStore {
    /// Keys by the first 8 bytes of their digest. A SHA-256 prefix is
    /// already uniform, so a fast hasher is enough.
    by_prefix: HashMap<u64, Vec<StoredKey>, foldhash::fast::RandomState>,
    len: usize,
    /// What is known of the plaintext of keys given in plaintext, by name.
    plaintexts: Vec<(ApiKeyId, Plaintext)>,
}

/// One key in the store.
#[derive(Clone)]
pub(crate) struct StoredKey {
    digest: KeyDigest,
    pub(crate) id: ApiKeyId,
    pub(crate) scopes: Box<[Box<str>]>,
    pub(crate) expires_at: Option<SystemTime>,
    pub(crate) revoked: bool,
}

/// What a presented key turned out to be.
pub(crate) enum Lookup<'s> {
    Valid(&'s StoredKey),
    Expired(&'s ApiKeyId),
    Revoked(&'s ApiKeyId),
    Unknown,
}

/// Why a key could not be added to an [`ApiKeyStore`].
///
/// ```
/// use policy_runtime::{ApiKeyStore, KeyError};
///
/// let mut keys = ApiKeyStore::new();
/// assert!(matches!(keys.insert("ci", ""), Err(KeyError::Empty { .. })));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is the empty string.
    #[error("API key `{name}` is empty")]
    Empty {
        /// The key's name.
        name: String,
    },
    /// The key has no name.
    #[error("an API key has an empty name; every key needs a name for the logs")]
    EmptyName,
    /// The same secret was configured twice.
    #[error(
        "API key `{name}` has the same value as API key `{existing}`; give each client its own key"
    )]
    Duplicate {
        /// The key's name.
        name: String,
        /// The name the same secret was first added under.
        existing: String,
    },
    /// A scope of the key is not a valid scope name.
    #[error("API key `{name}`: {problem}")]
    InvalidScope {
        /// The key's name.
        name: String,
        /// What is wrong with the scope.
        problem: String,
    },
}

impl ApiKeyStore {
    /// An empty store: every key is refused.
    ///
    /// ```
    /// assert!(policy_runtime::ApiKeyStore::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key under a name, with no scope and no expiry. Only the key's
    /// SHA-256 digest is kept. Another key may have the same name.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("partner-a", "s3cret-partner-a-key").unwrap();
    /// keys.insert("partner-a", "rotated-partner-a-key").unwrap(); // both are accepted
    /// assert_eq!(keys.len(), 2);
    /// ```
    pub fn insert(&mut self, name: &str, secret: impl AsRef<[u8]>) -> Result<(), KeyError> {
        self.add(ApiKey::new(name, secret))
    }

    /// Adds a key with its scopes and expiry.
    ///
    /// ```
    /// use policy_runtime::{ApiKey, ApiKeyStore};
    ///
    /// let mut keys = ApiKeyStore::new();
    /// keys.add(ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"])).unwrap();
    /// assert!(keys.add(ApiKey::new("bad", "bad-scope-key-0123456789").scopes(["a b"])).is_err());
    /// ```
    pub fn add(&mut self, key: ApiKey) -> Result<(), KeyError> {
        if key.name.is_empty() {
            return Err(KeyError::EmptyName);
        }
        if key.plaintext.is_some_and(|plaintext| plaintext.len == 0) {
            return Err(KeyError::Empty { name: key.name });
        }
        if let Some(problem) = key.scopes.iter().find_map(|s| scope_name_problem(s)) {
            return Err(KeyError::InvalidScope {
                name: key.name,
                problem,
            });
        }
        if let Some(existing) = self.find(&key.digest) {
            return Err(KeyError::Duplicate {
                name: key.name,
                existing: existing.id.name().into(),
            });
        }
        let id = ApiKeyId::new(&key.name);
        if let Some(plaintext) = key.plaintext {
            self.plaintexts.push((id.clone(), plaintext));
        }
        let mut scopes: Vec<Box<str>> = key.scopes.into_iter().map(Into::into).collect();
        scopes.sort_unstable();
        scopes.dedup();
        self.by_prefix
            .entry(prefix(&key.digest))
            .or_default()
            .push(StoredKey {
                digest: key.digest,
                id,
                scopes: scopes.into(),
                expires_at: key.expires_at,
                revoked: key.revoked,
            });
        self.len += 1;
        Ok(())
    }

    /// The identity of a presented key, if it is one of ours and is neither
    /// expired nor revoked.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("ops", "0ps-team-key-000000").unwrap();
    /// assert!(keys.verify(b"0ps-team-key-000000").is_some());
    /// assert!(keys.verify(b"0ps-team-key-000001").is_none());
    /// ```
    pub fn verify(&self, presented: &[u8]) -> Option<&ApiKeyId> {
        match self.lookup(presented, SystemTime::now) {
            Lookup::Valid(key) => Some(&key.id),
            _ => None,
        }
    }

    /// Marks every key named `name` as revoked and returns how many there
    /// were. A revoked key is refused with 401, and logged as `revoked`.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("partner", "old-partner-key-0123456789").unwrap();
    /// assert_eq!(keys.revoke("partner"), 1);
    /// assert!(keys.verify(b"old-partner-key-0123456789").is_none());
    /// ```
    pub fn revoke(&mut self, name: &str) -> usize {
        let mut revoked = 0;
        for key in self.by_prefix.values_mut().flatten() {
            if key.id.name() == name && !key.revoked {
                key.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    /// How many keys are configured, revoked and expired ones included.
    ///
    /// ```
    /// assert_eq!(policy_runtime::ApiKeyStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is configured.
    ///
    /// ```
    /// assert!(policy_runtime::ApiKeyStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What a presented key is. The time is read only for a key with an expiry.
    pub(crate) fn lookup(&self, presented: &[u8], now: impl FnOnce() -> SystemTime) -> Lookup<'_> {
        let Some(key) = self.find(&digest(presented)) else {
            return Lookup::Unknown;
        };
        if key.revoked {
            Lookup::Revoked(&key.id)
        } else if key.expires_at.is_some_and(|expiry| expiry <= now()) {
            Lookup::Expired(&key.id)
        } else {
            Lookup::Valid(key)
        }
    }

    /// Every key, in no particular order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &StoredKey> {
        self.by_prefix.values().flatten()
    }

    /// The keys that can be accepted at `now`.
    pub(crate) fn usable(&self, now: SystemTime) -> impl Iterator<Item = &StoredKey> {
        self.keys()
            .filter(move |key| !key.revoked && key.expires_at.is_none_or(|expiry| expiry > now))
    }

    /// What is known of the plaintext keys, for the start-up checks.
    pub(crate) fn plaintexts(&self) -> &[(ApiKeyId, Plaintext)] {
        &self.plaintexts
    }

    fn find(&self, digest: &KeyDigest) -> Option<&StoredKey> {
        let candidates = self.by_prefix.get(&prefix(digest))?;
        // Almost always one candidate; every one is compared in constant time.
        let mut found = None;
        let presented = words(digest);
        for key in candidates {
            if bool::from(words(&key.digest).ct_eq(&presented)) {
                found = Some(key);
            }
        }
        found
    }
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: digests are not secrets, but they have no business in logs either.
        let mut names: Vec<&str> = self.keys().map(|key| key.id.name()).collect();
        names.sort_unstable();
        f.debug_struct("ApiKeyStore").field("keys", &names).finish()
    }
}

/// A digest as four words: compared in constant time a word at a time,
/// instead of a byte at a time.
fn words(digest: &KeyDigest) -> [u64; 4] {
    std::array::from_fn(|index| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[index * 8..index * 8 + 8]);
        u64::from_le_bytes(word)
    })
}

fn prefix(digest: &KeyDigest) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn duplicate_and_empty_keys_are_refused_but_names_may_repeat() {
        let mut store = ApiKeyStore::new();
        store.insert("a", "same-secret-value").unwrap();
        assert_eq!(
            store.insert("b", "same-secret-value"),
            Err(KeyError::Duplicate {
                name: "b".into(),
                existing: "a".into()
            })
        );
        assert_eq!(store.insert("", "x"), Err(KeyError::EmptyName));
        store.insert("a", "another-secret-value").unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.verify(b"another-secret-value").unwrap().name(), "a");
    }

    #[test]
    fn expired_and_revoked_keys_are_told_apart_from_unknown_ones() {
        let now = SystemTime::now();
        let mut store = ApiKeyStore::new();
        store
            .add(ApiKey::new("old", "old-key-0123456789").expires_at(now - Duration::from_secs(1)))
            .unwrap();
        store
            .add(ApiKey::new("new", "new-key-0123456789").expires_at(now + Duration::from_secs(60)))
            .unwrap();
        store.insert("gone", "gone-key-0123456789").unwrap();
        assert_eq!(store.revoke("gone"), 1);
        assert_eq!(store.revoke("gone"), 0);
        assert!(
            matches!(store.lookup(b"old-key-0123456789", || now), Lookup::Expired(id) if id.name() == "old")
        );
        assert!(
            matches!(store.lookup(b"new-key-0123456789", || now), Lookup::Valid(key) if key.id.name() == "new")
        );
        assert!(
            matches!(store.lookup(b"gone-key-0123456789", || now), Lookup::Revoked(id) if id.name() == "gone")
        );
        assert!(matches!(
            store.lookup(b"never-seen", || now),
            Lookup::Unknown
        ));
        assert_eq!(store.usable(now).count(), 1);
    }

    #[test]
    fn scopes_are_checked_sorted_and_deduplicated() {
        let mut store = ApiKeyStore::new();
        store
            .add(ApiKey::new("k", "scoped-key-0123456789").scopes(["write", "read", "write"]))
            .unwrap();
        let Lookup::Valid(key) = store.lookup(b"scoped-key-0123456789", SystemTime::now) else {
            panic!("the key is valid");
        };
        assert_eq!(&*key.scopes, [Box::from("read"), Box::from("write")]);
        assert!(matches!(
            store.add(ApiKey::new("k", "other-key-0123456789").scopes([""])),
            Err(KeyError::InvalidScope { .. })
        ));
    }

    #[test]
    fn debug_output_names_keys_but_shows_no_secret() {
        let mut store = ApiKeyStore::new();
        store.insert("client-a", "very-secret-value-123").unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("client-a"));
        assert!(!shown.contains("very-secret"));
    }
}
