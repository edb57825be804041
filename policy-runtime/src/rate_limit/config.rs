//! The engine's rate-limit settings and their builder methods: named
//! policies, default limits, exemptions, the penalty box, header style and
//! per-scope counters.
//!
//! This module owns rate-limit configuration read at start-up, from the
//! builder or the environment. It decides nothing per request beyond simple
//! lookups.

use super::headers::HeaderStyle;
use super::key::KeyContext;
use super::penalty::{Penalty, PenaltyBox};
use crate::engine::EngineBuilder;
use crate::Quota;
use dashmap::DashMap;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Rate-limit settings of one engine.
#[derive(Default)]
pub(crate) struct RateLimitConfig {
    pub(crate) header_style: HeaderStyle,
    pub(crate) penalty: Option<PenaltyBox>,
    pub(crate) defaults: Option<Box<[Quota]>>,
    named: HashMap<String, Box<[Quota]>>,
    /// `POLICY_LIMIT_<NAME>` definitions, by `<NAME>`, until `build` matches
    /// them to the names handlers use.
    env_named: HashMap<String, Box<[Quota]>>,
    exempt_networks: Vec<IpNet>,
    exempt_keys: HashSet<String>,
    counts: DashMap<Box<str>, Arc<ScopeCounts>, foldhash::fast::RandomState>,
    /// The counters of the handlers' scopes, found by where the scope's
    /// `&'static str` lives: no string hashing and no lock per request.
    /// Filled once when the engine is assembled; shares its counters with
    /// `counts`.
    registered: HashMap<(usize, usize), Arc<ScopeCounts>, foldhash::fast::RandomState>,
}

#[derive(Default)]
struct ScopeCounts {
    allowed: AtomicU64,
    rejected: AtomicU64,
}

/// How many requests a scope admitted and refused since the engine started.
///
/// ```
/// let engine = policy_runtime::Engine::builder().build().unwrap();
/// assert!(engine.rate_limit_stats().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeStats {
    /// The scope: a handler's path, a `scope = "..."` name, or `default:<METHOD> <route>`.
    pub scope: String,
    /// Requests admitted.
    pub allowed: u64,
    /// Requests refused with 429.
    pub rejected: u64,
}

impl RateLimitConfig {
    pub(crate) fn named(&self, name: &str) -> Option<&[Quota]> {
        self.named.get(name).map(|quotas| &**quotas)
    }

    /// The names of the policies defined in the builder.
    pub(crate) fn defined_names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// Makes sure `name` is defined, from the builder or else the environment.
    pub(crate) fn resolve_named(&mut self, name: &str) -> bool {
        if self.named.contains_key(name) {
            return true;
        }
        let variable = policy_variable(name);
        match self.env_named.get(&variable["POLICY_LIMIT_".len()..]) {
            Some(quotas) => {
                self.named.insert(name.to_owned(), quotas.clone());
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_exempt_ip(&self, ip: std::net::IpAddr) -> bool {
        crate::client_ip::in_networks(&self.exempt_networks, ip)
    }

    pub(crate) fn is_exempt(&self, context: &KeyContext<'_>) -> bool {
        if context.client_ip.is_some_and(|ip| self.is_exempt_ip(ip)) {
            return true;
        }
        context
            .api_key
            .is_some_and(|id| self.exempt_keys.contains(id.name()))
    }

    /// Gives the handlers' scopes their counters up front, so that counting
    /// a handler's request is a lookup by address (see `registered`).
    pub(crate) fn register_scopes(&mut self, scopes: impl Iterator<Item = &'static str>) {
        for scope in scopes {
            let counts = Arc::clone(&self.counts.entry(scope.into()).or_default());
            self.registered.insert(address(scope), counts);
        }
    }

    pub(crate) fn count(&self, scope: &str, allowed: bool) {
        let bump = |counts: &ScopeCounts| {
            let counter = if allowed {
                &counts.allowed
            } else {
                &counts.rejected
            };
            counter.fetch_add(1, Ordering::Relaxed);
        };
        if let Some(counts) = self.registered.get(&address(scope)) {
            return bump(counts);
        }
        match self.counts.get(scope) {
            Some(counts) => bump(&counts),
            None => bump(&self.counts.entry(scope.into()).or_default()),
        }
    }

    pub(crate) fn stats(&self) -> Vec<ScopeStats> {
        let mut stats: Vec<ScopeStats> = self
            .counts
            .iter()
            // Registered scopes that have not counted a request yet are not news.
            .filter(|entry| {
                entry.allowed.load(Ordering::Relaxed) + entry.rejected.load(Ordering::Relaxed) > 0
            })
            .map(|entry| ScopeStats {
                scope: entry.key().to_string(),
                allowed: entry.allowed.load(Ordering::Relaxed),
                rejected: entry.rejected.load(Ordering::Relaxed),
            })
            .collect();
        stats.sort_by(|a, b| a.scope.cmp(&b.scope));
        stats
    }
}

/// Where a string's bytes are, and how many: two strings with the same
/// address hold the same text. A handler's scope is a `&'static str`, so its
/// address never changes and is never reused.
fn address(scope: &str) -> (usize, usize) {
    (scope.as_ptr() as usize, scope.len())
}

/// The environment variable that defines a named policy: `POLICY_LIMIT_<NAME>`,
/// the name upper-cased with every other character than a letter or digit as `_`.
pub(crate) fn policy_variable(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("POLICY_LIMIT_{name}")
}

impl EngineBuilder {
    /// Defines the limits of a named policy, used as `#[rate_limit(policy = "name")]`.
    ///
    /// Operators can change such limits without recompiling: see
    /// [`EngineBuilder::from_env`] and `POLICY_LIMIT_<NAME>`. A policy used by
    /// a handler but defined nowhere makes [`EngineBuilder::build`] fail.
    ///
    /// ```
    /// use policy_runtime::{rate_limit, Engine};
    ///
    /// #[rate_limit(policy = "login")]
    /// async fn login() -> &'static str {
    ///     "welcome"
    /// }
    ///
    /// let engine = Engine::builder().policy("login", "5/hour").build().unwrap();
    /// # let _ = axum::Router::<()>::new().route("/login", axum::routing::post(login)).layer(engine);
    /// ```
    pub fn policy(mut self, name: &str, limits: &str) -> Self {
        match Quota::parse_list(limits) {
            Ok(quotas) => {
                self.rate_limit.named.insert(name.to_owned(), quotas.into());
            }
            Err(error) => self
                .problems
                .push(format!("rate-limit policy `{name}`: {error}")),
        }
        self
    }

    /// Limits for every route whose handler has no `#[rate_limit]` of its own,
    /// per client IP and per route, as `"200/day; 50/hour"`. A handler's own
    /// limits replace them; `#[rate_limit(exempt)]` opts a handler out.
    ///
    /// The engine learns which routes have their own policy as requests
    /// arrive: the first request to a route without one is served, then
    /// counted against the defaults (it cannot be refused, since its handler
    /// is only known to be unprotected once it has run). From then on every
    /// request to that route is checked before its handler runs.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .default_limits("200/day; 50/hour")
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn default_limits(mut self, limits: &str) -> Self {
        match Quota::parse_list(limits) {
            Ok(quotas) => self.rate_limit.defaults = Some(quotas.into()),
            Err(error) => self.problems.push(format!("default limits: {error}")),
        }
        self
    }

    /// Clients that are never limited: networks such as `"10.0.0.0/8"` or
    /// single addresses such as `"192.0.2.10"`, matched against the client IP
    /// after trusted-proxy resolution.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .exempt_ips(["10.0.0.0/8", "192.0.2.10"])
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn exempt_ips<I, S>(mut self, networks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for network in networks {
            let network = network.as_ref().trim();
            match parse_network(network) {
                Some(parsed) => self.rate_limit.exempt_networks.push(parsed),
                None => self.problems.push(format!(
                    "exempt address `{network}` is neither an IP address nor a network such as 10.0.0.0/8"
                )),
            }
        }
        self
    }

    /// API keys, by name, that are never limited (for internal callers).
    /// Applies to limits that run after `#[require_api_key]` on a handler.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .api_key("internal-batch", "internal-batch-key-0123456789")
    ///     .exempt_keys(["internal-batch"])
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn exempt_keys<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.rate_limit
            .exempt_keys
            .extend(names.into_iter().map(|name| name.as_ref().to_owned()));
        self
    }

    /// Blocks clients that keep hitting 429; see [`Penalty`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let engine = policy_runtime::Engine::builder()
    ///     .penalty(policy_runtime::Penalty::new(5, Duration::from_secs(60), Duration::from_secs(600)))
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn penalty(mut self, penalty: Penalty) -> Self {
        match PenaltyBox::new(penalty) {
            Ok(penalty) => self.rate_limit.penalty = Some(penalty),
            Err(problem) => self.problems.push(problem),
        }
        self
    }

    /// Which rate-limit header families responses carry (both by default).
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .rate_limit_headers(policy_runtime::HeaderStyle::Legacy)
    ///     .build()
    ///     .unwrap();
    /// # drop(engine);
    /// ```
    pub fn rate_limit_headers(mut self, style: HeaderStyle) -> Self {
        self.rate_limit.header_style = style;
        self
    }

    /// Reads the rate-limit settings of the environment: `POLICY_LIMIT_<NAME>`
    /// for named policies, `RATELIMIT_DEFAULT` for default limits and
    /// `RATELIMIT_EXEMPT_IPS` (a comma list) for exempt clients.
    pub(crate) fn rate_limits_from_vars(mut self, vars: &[(String, String)]) -> Self {
        for (variable, value) in vars {
            if let Some(name) = variable.strip_prefix("POLICY_LIMIT_") {
                match Quota::parse_list(value) {
                    Ok(quotas) => {
                        self.rate_limit
                            .env_named
                            .insert(name.to_owned(), quotas.into());
                    }
                    Err(error) => self.problems.push(format!("{variable}: {error}")),
                }
            } else if variable == "RATELIMIT_DEFAULT" {
                match Quota::parse_list(value) {
                    Ok(quotas) => self.rate_limit.defaults = Some(quotas.into()),
                    Err(error) => self.problems.push(format!("{variable}: {error}")),
                }
            } else if variable == "RATELIMIT_EXEMPT_IPS" {
                let entries: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect();
                for entry in entries {
                    match parse_network(entry) {
                        Some(network) => self.rate_limit.exempt_networks.push(network),
                        None => self.problems.push(format!(
                            "{variable}: `{entry}` is neither an IP address nor a network such as 10.0.0.0/8"
                        )),
                    }
                }
            }
        }
        self
    }
}

fn parse_network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
