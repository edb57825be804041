//! [`ApiKeyStore`]: the configured API keys, held as SHA-256 digests.
//!
//! This module owns key storage and verification. A plaintext key is hashed the
//! moment it is added and never kept. Verification is a hash-map lookup on the
//! first eight digest bytes followed by a constant-time comparison of the full
//! 32-byte digest, so its cost does not grow with the number of keys and does
//! not depend on how much of a wrong key matches a right one.

use super::id::ApiKeyId;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;

type KeyDigest = [u8; 32];

/// The set of API keys an engine accepts, each with a name.
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
    by_prefix: HashMap<u64, Vec<(KeyDigest, ApiKeyId)>>,
    len: usize,
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

    /// Adds a key under a name. Only the key's SHA-256 digest is kept.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("partner-a", "s3cret-partner-a-key").unwrap();
    /// assert_eq!(keys.len(), 1);
    /// ```
    pub fn insert(&mut self, name: &str, secret: impl AsRef<[u8]>) -> Result<(), KeyError> {
        let secret = secret.as_ref();
        if name.is_empty() {
            return Err(KeyError::EmptyName);
        }
        if secret.is_empty() {
            return Err(KeyError::Empty { name: name.into() });
        }
        let digest = digest(secret);
        if let Some(existing) = self.find(&digest) {
            return Err(KeyError::Duplicate {
                name: name.into(),
                existing: existing.name().into(),
            });
        }
        self.by_prefix
            .entry(prefix(&digest))
            .or_default()
            .push((digest, ApiKeyId::new(name)));
        self.len += 1;
        Ok(())
    }

    /// The identity of a presented key, if it is one of ours.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("ops", "0ps-team-key-000000").unwrap();
    /// assert!(keys.verify(b"0ps-team-key-000000").is_some());
    /// assert!(keys.verify(b"0ps-team-key-000001").is_none());
    /// ```
    pub fn verify(&self, presented: &[u8]) -> Option<&ApiKeyId> {
        self.find(&digest(presented))
    }

    /// How many keys are configured.
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

    fn find(&self, digest: &KeyDigest) -> Option<&ApiKeyId> {
        let candidates = self.by_prefix.get(&prefix(digest))?;
        // Almost always one candidate; every one is compared in constant time.
        let mut found = None;
        for (stored, id) in candidates {
            if bool::from(stored.ct_eq(digest)) {
                found = Some(id);
            }
        }
        found
    }
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: digests are not secrets, but they have no business in logs either.
        let mut names: Vec<&str> = self
            .by_prefix
            .values()
            .flatten()
            .map(|(_, id)| id.name())
            .collect();
        names.sort_unstable();
        f.debug_struct("ApiKeyStore").field("keys", &names).finish()
    }
}

fn digest(secret: &[u8]) -> KeyDigest {
    Sha256::digest(secret).into()
}

fn prefix(digest: &KeyDigest) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// Reads keys from environment-style variables: `API_KEYS` as a comma list
/// (named `API_KEYS#1`, `API_KEYS#2`, ...) and `API_KEY_1`, `API_KEY_2`, ...
/// (named after their variable). Blank list entries are skipped.
pub(crate) fn keys_from_vars(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut listed = Vec::new();
    let mut numbered: Vec<(u64, String, String)> = Vec::new();
    for (name, value) in vars {
        if name == "API_KEYS" {
            for (index, key) in value
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .enumerate()
            {
                listed.push((format!("API_KEYS#{}", index + 1), key.to_owned()));
            }
        } else if let Some(number) = name
            .strip_prefix("API_KEY_")
            .and_then(|n| n.parse::<u64>().ok())
        {
            numbered.push((number, name, value.trim().to_owned()));
        }
    }
    numbered.sort_by_key(|(number, _, _)| *number);
    listed.extend(numbered.into_iter().map(|(_, name, value)| (name, value)));
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_keys_come_from_the_list_and_the_numbered_variables() {
        let keys = keys_from_vars(vars(&[
            ("API_KEY_10", "ten"),
            ("PATH", "/bin"),
            ("API_KEYS", "one, two,,"),
            ("API_KEY_2", "two-numbered"),
            ("API_KEY_X", "ignored"),
        ]));
        let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["API_KEYS#1", "API_KEYS#2", "API_KEY_2", "API_KEY_10"]
        );
        assert_eq!(keys[1].1, "two");
    }

    #[test]
    fn duplicate_and_empty_keys_are_refused() {
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
        assert_eq!(store.len(), 1);
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
