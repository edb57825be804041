//! The Redis key layout: `<prefix>:<scope>:<client>`.
//!
//! This module owns naming the hash that holds one client's state for one
//! scope. The client part is the hex SHA-256 of the [`ClientKey`]'s display
//! form (`ip:192.0.2.7`), so it is always 64 hex digits: no client-supplied
//! text reaches Redis, two clients can never share a key, and the last `:`
//! of a key always separates the scope from the client.

use crate::rate_limit::store::ClientKey;
use sha2::{Digest, Sha256};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Builds the Redis keys of one store.
#[derive(Clone, Debug)]
pub(super) struct KeyLayout {
    prefix: String,
}

impl KeyLayout {
    pub(super) fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `client`'s state in `scope`.
    pub(super) fn key(&self, scope: &str, client: &ClientKey) -> String {
        let digest = Sha256::digest(client.to_string().as_bytes());
        let mut key = String::with_capacity(self.prefix.len() + scope.len() + 2 + 64);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(scope);
        key.push(':');
        for byte in digest {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefix_scope_and_a_hash_of_the_client() {
        let layout = KeyLayout::new("policy".into());
        let key = layout.key("app::score", &ClientKey::Ip("192.0.2.7".parse().unwrap()));
        let expected = Sha256::digest(b"ip:192.0.2.7");
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key, format!("policy:app::score:{hex}"));
    }

    #[test]
    fn different_clients_get_different_fixed_length_keys() {
        let layout = KeyLayout::new("p".into());
        let v4 = layout.key("s", &ClientKey::Ip("10.0.0.1".parse().unwrap()));
        let v6 = layout.key("s", &ClientKey::Ip("::ffff:10.0.0.1".parse().unwrap()));
        assert_ne!(v4, v6);
        for key in [&v4, &v6] {
            let client = key.rsplit(':').next().unwrap();
            assert_eq!(client.len(), 64);
            assert!(client.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
