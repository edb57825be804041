//! The Redis key layout: `<prefix>:<scope>:<client>`.
//!
//! This module owns naming the hash that holds one client's state for one
//! scope. The client part is the hex SHA-256 of the [`ClientKey`]'s display
//! form (`ip:192.0.2.7`), so it is always 64 hex digits: no client-supplied
//! text reaches Redis, two clients can never share a key, and the last `:`
//! of a key always separates the scope from the client.
//!
//! On a Redis Cluster the client part is a hash tag, `{<client>}`: every key
//! of one client is in one hash slot, whatever its scope, so the several
//! limits of a request on one client stay one atomic script (see
//! `cluster.rs`), while different clients spread over the cluster.

use crate::rate_limiting::store::ClientKey;
use sha2::{Digest, Sha256};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Builds the Redis keys of one store.
#[derive(Clone, Debug)]
pub(super) struct KeyLayout {
    prefix: String,
    /// The client part is a hash tag (Redis Cluster).
    clustered: bool,
}

impl KeyLayout {
    pub(super) fn new(prefix: String) -> Self {
        Self {
            prefix,
            clustered: false,
        }
    }

    /// The layout on a Redis Cluster: `<prefix>:<scope>:{<client>}`.
    pub(super) fn clustered(prefix: String) -> Self {
        Self {
            prefix,
            clustered: true,
        }
    }

    /// Whether the client part is a hash tag.
    pub(super) fn is_clustered(&self) -> bool {
        self.clustered
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The key of `client`'s state in `scope`.
    pub(super) fn key(&self, scope: &str, client: &ClientKey) -> String {
        let mut hasher = Sha256::new();
        match client {
            // The most common client, hashed without the formatting machinery.
            ClientKey::Ip(IpAddr::V4(ip)) => hash_ipv4(&mut hasher, *ip),
            // The display form goes straight into the hash, with no string.
            other => {
                // Writing to a hash cannot fail.
                let _ = write!(Hashing(&mut hasher), "{other}");
            }
        }
        let digest = hasher.finalize();
        let mut key = String::with_capacity(self.prefix.len() + scope.len() + 4 + 64);
        key.push_str(&self.prefix);
        key.push(':');
        key.push_str(scope);
        key.push(':');
        if self.clustered {
            key.push('{');
        }
        for byte in digest {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        if self.clustered {
            key.push('}');
        }
        key
    }

    /// The key of `client`'s state in `scope` followed by `:<suffix>`, for
    /// state kept beside it (the strikes of the lockout and the penalty box).
    /// A suffix is a plain word, never a quota's field (`g:`, `s:`, `w:`),
    /// so it names no key the rate-limit script writes.
    pub(super) fn suffixed_key(&self, scope: &str, client: &ClientKey, suffix: &str) -> String {
        let mut key = self.key(scope, client);
        key.push(':');
        key.push_str(suffix);
        key
    }
}

/// Feeds `ip:<a.b.c.d>`, the display form of [`ClientKey::Ip`] for an
/// IPv4 address, to `hasher`.
fn hash_ipv4(hasher: &mut Sha256, ip: Ipv4Addr) {
    let mut text = [0u8; 18];
    text[..3].copy_from_slice(b"ip:");
    let mut len = 3;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        if octet >= 100 {
            text[len] = b'0' + octet / 100;
            len += 1;
        }
        if octet >= 10 {
            text[len] = b'0' + octet / 10 % 10;
            len += 1;
        }
        text[len] = b'0' + octet % 10;
        len += 1;
    }
    hasher.update(&text[..len]);
}

/// Formats straight into a hash.
struct Hashing<'a>(&'a mut Sha256);

impl fmt::Write for Hashing<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
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
    fn every_client_is_hashed_in_its_display_form() {
        let layout = KeyLayout::new("p".into());
        let clients = [
            ClientKey::Ip("0.0.0.0".parse().unwrap()),
            ClientKey::Ip("10.0.0.1".parse().unwrap()),
            ClientKey::Ip("192.168.100.255".parse().unwrap()),
            ClientKey::Ip("255.255.255.255".parse().unwrap()),
            ClientKey::Ip("2001:db8::1".parse().unwrap()),
            ClientKey::ApiKey("team-a".into()),
            ClientKey::Header("x".into()),
            ClientKey::Custom("tenant:7".into()),
            ClientKey::Global,
        ];
        for client in clients {
            let expected = Sha256::digest(client.to_string().as_bytes());
            let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(layout.key("s", &client), format!("p:s:{hex}"), "{client}");
        }
        for octet in 0..=255u8 {
            let client = ClientKey::Ip(IpAddr::V4(Ipv4Addr::new(octet, octet, 0, octet)));
            let expected = Sha256::digest(client.to_string().as_bytes());
            let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(layout.key("s", &client), format!("p:s:{hex}"), "{client}");
        }
    }

    #[test]
    fn on_a_cluster_the_client_is_the_hash_tag() {
        let plain = KeyLayout::new("p".into());
        let clustered = KeyLayout::clustered("p".into());
        let client = ClientKey::Ip("192.0.2.7".parse().unwrap());
        let key = clustered.key("app::score", &client);
        let hex = plain.key("x", &client)["p:x:".len()..].to_string();
        assert_eq!(key, format!("p:app::score:{{{hex}}}"));
        // Every scope of one client: the same tag, so the same slot.
        assert!(
            clustered
                .key("other", &client)
                .ends_with(&format!("{{{hex}}}"))
        );
        assert!(clustered.is_clustered() && !plain.is_clustered());
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
