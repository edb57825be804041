//! Redis Cluster: where a store's state lives when it is spread over a
//! cluster's masters.
//!
//! This module owns the seed nodes (a `redis+cluster://host:port,host:port`
//! URL, `rediss+cluster://` with TLS, or a list given to the builder), the
//! redis crate's cluster client built from them, the connection that is
//! either one server's or a cluster's ([`Connection`]), and splitting the
//! checks of one call by hash slot ([`groups`]).
//!
//! Every key of one client carries the client's hash as its hash tag (see
//! `key.rs`), so the checks of a request that all count one client (the
//! usual case: several limits by IP) are one script in one slot, one round
//! trip, atomic. Checks of different clients are in different slots; they
//! are run one slot after the other, and a refusal gives back what the
//! earlier ones counted. Redirections (`MOVED`, `ASK`) and a changed
//! topology are the cluster client's business.

use super::RedisConfigError;
use super::script::Check;
use ::redis::aio::{ConnectionLike, ConnectionManager};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, Pipeline, RedisFuture, Value};

/// The schemes of a cluster URL, without and with TLS.
const SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// The seed nodes of a cluster URL, as one URL per node; `None` when `url`
/// is not a cluster URL. The user and password, if any, go to every node.
/// Nothing of the URL is repeated in an error: it may hold a password.
pub(super) fn seeds(url: &str) -> Option<Result<Vec<String>, RedisConfigError>> {
    let (scheme, rest) = SCHEMES.iter().find_map(|(cluster, node)| {
        url.get(..cluster.len())
            .filter(|start| start.eq_ignore_ascii_case(cluster))
            .map(|_| (*node, &url[cluster.len()..]))
    })?;
    let invalid = |reason: &str| RedisConfigError::InvalidUrl {
        reason: reason.to_owned(),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(end) => rest.split_at(end),
        None => (rest, ""),
    };
    let (credentials, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let seeds: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| format!("{scheme}{credentials}{host}{path}"))
        .collect();
    if seeds.is_empty() {
        return Some(Err(invalid(
            "a cluster URL names its seed nodes: redis+cluster://host:port[,host:port...]",
        )));
    }
    Some(Ok(seeds))
}

/// The connection of a store: one server's (auto-reconnecting) or a
/// cluster's (following its topology).
#[derive(Clone)]
pub(super) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The hash tag of a key: the text between its first `{` and the next `}`,
/// as Redis Cluster reads it; the whole key when there is none.
fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

/// The checks of one call grouped by hash tag, in the order of their first
/// appearance: one group when they all share a slot.
pub(super) fn groups<'a>(checks: &[Check<'a>]) -> Vec<Vec<Check<'a>>> {
    let mut groups: Vec<Vec<Check<'a>>> = Vec::new();
    for check in checks {
        let tag = hash_tag(check.key);
        match groups
            .iter_mut()
            .find(|group| hash_tag(group[0].key) == tag)
        {
            Some(group) => group.push(*check),
            None => groups.push(vec![*check]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_one_url_per_seed() {
        assert!(seeds("redis://127.0.0.1:6379").is_none());
        assert_eq!(
            seeds("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
                .unwrap()
                .unwrap(),
            ["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]
        );
        assert_eq!(
            seeds("REDISS+CLUSTER://:pw@a:7000, b:7001/?protocol=resp3")
                .unwrap()
                .unwrap(),
            [
                "rediss://:pw@a:7000/?protocol=resp3",
                "rediss://:pw@b:7001/?protocol=resp3"
            ]
        );
        let error = seeds("redis+cluster://:secret@").unwrap().unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn checks_are_grouped_by_hash_tag() {
        let quotas = [crate::Quota::new(1, std::time::Duration::from_secs(1))];
        let check = |key| Check {
            key,
            quotas: &quotas,
            cost: 1,
        };
        let checks = [
            check("p:a:{1}"),
            check("p:b:{2}"),
            check("p:c:{1}"),
            check("p:d:{2}"),
        ];
        let groups = groups(&checks);
        let keys: Vec<Vec<&str>> = groups
            .iter()
            .map(|group| group.iter().map(|check| check.key).collect())
            .collect();
        assert_eq!(keys, [["p:a:{1}", "p:c:{1}"], ["p:b:{2}", "p:d:{2}"]]);
        assert_eq!(hash_tag("no-tag"), "no-tag");
        assert_eq!(hash_tag("a{}b"), "a{}b");
    }
}
