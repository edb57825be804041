//! The engine's rate-limit settings: named policies, default limits,
//! exemptions, the penalty box, header style and per-scope counters.
//!
//! This module owns rate-limit configuration read at start-up, from the
//! builder (whose methods hand each setting here and collect the problems
//! returned) or the environment, and the resolution of named policies. It
//! decides nothing per request beyond simple lookups.

use super::flask_settings::RateLimitSwitch;
use super::headers::{HeaderStyle, QuotaHeaders};
use super::key::KeyContext;
use super::penalty::{Penalty, PenaltyBox};
use super::spec::{CountWhen, Limits, RateLimitSpec};
use crate::Quota;
use crate::handler_policy::Check;
use dashmap::DashMap;
use ipnet::IpNet;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Rate-limit settings of one engine.
#[derive(Default)]
pub(crate) struct RateLimitConfig {
    /// Whether rate limits are on at all (`RATELIMIT_ENABLED`).
    pub(crate) switch: RateLimitSwitch,
    pub(crate) header_style: HeaderStyle,
    /// Whether the legacy headers carry `X-RateLimit-Window`.
    pub(crate) window_header: bool,
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
    /// The plans of the runs of every policy known at the first request (see
    /// [`RateLimitConfig::plan`]), by where the run starts.
    plans: OnceLock<HashMap<usize, RunPlan, foldhash::fast::RandomState>>,
    /// The plans of runs first seen later: a layer's policy made after the
    /// first request.
    late_plans: DashMap<usize, Arc<RunPlan>, foldhash::fast::RandomState>,
    /// The header values of the default limits, once a request needed them.
    defaults_headers: OnceLock<&'static QuotaHeaders>,
    /// `RATELIMIT_STRATEGY`: how limits that name no way of counting are counted.
    pub(crate) strategy: Strategy,
}

/// How the limits that name no way of counting (no `strict`, `sliding` or
/// `burst`) are counted: `RATELIMIT_STRATEGY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// GCRA (the default).
    #[default]
    Gcra,
    /// `moving-window`: strict.
    Strict,
    /// `sliding-window-counter`: sliding.
    Sliding,
}

impl Strategy {
    /// The strategy a `RATELIMIT_STRATEGY` value names, or the problem.
    fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "gcra" => Ok(Strategy::Gcra),
            "moving-window" => Ok(Strategy::Strict),
            "sliding-window-counter" => Ok(Strategy::Sliding),
            "fixed-window" | "fixed-window-elastic-expiry" => Err(format!(
                "`{}` is not offered: a fixed window admits twice its count around a window's edge. \
                 Use `sliding-window-counter` (two counters per client, the closest to it), \
                 `moving-window` (exact, a timestamp per request), or leave it unset for GCRA \
                 (the default: a burst of the count, then one request every period / count)",
                value.trim()
            )),
            other => Err(format!(
                "`{other}` is not a strategy; use `moving-window`, `sliding-window-counter` or `gcra` (the default)"
            )),
        }
    }

    /// `quotas` with this strategy given to each quota that names no way of
    /// counting: not strict, not sliding, and no burst of its own.
    pub(crate) fn shape(self, quotas: &[Quota]) -> Box<[Quota]> {
        quotas
            .iter()
            .map(|quota| {
                let plain =
                    !quota.is_strict() && !quota.is_sliding() && quota.burst() == quota.count();
                match (self, plain) {
                    (Strategy::Strict, true) => quota.strict(),
                    (Strategy::Sliding, true) => quota.sliding(),
                    _ => *quota,
                }
            })
            .collect()
    }
}

/// What one run of consecutive `#[rate_limit]` checks of a handler (checked
/// together, all or nothing) needs on each request, worked out once per
/// engine: each limit's quotas (a named policy's resolved), the counters of
/// its scope, and the header values of all its quotas.
pub(crate) struct RunPlan {
    pub(crate) limits: Box<[LimitPlan]>,
    /// The header values of every quota of the run, in order; `None` when a
    /// named policy is undefined (such a check answers 500).
    pub(crate) headers: Option<&'static QuotaHeaders>,
    /// Whether a limit of the run counts only some responses (`count = ...`).
    pub(crate) conditional: bool,
}

/// One limit of a [`RunPlan`].
pub(crate) struct LimitPlan {
    pub(crate) spec: &'static RateLimitSpec,
    /// `None` when its named policy is undefined.
    pub(crate) quotas: Option<Box<[Quota]>>,
    counts: Arc<ScopeCounts>,
}

impl LimitPlan {
    /// Counts a request of this limit's scope, admitted or refused.
    pub(crate) fn count(&self, allowed: bool) {
        self.counts.bump(allowed);
    }
}

/// A plan, from the plans made at the first request or from those made later.
pub(crate) enum PlanRef<'a> {
    Built(&'a RunPlan),
    Late(Arc<RunPlan>),
}

impl std::ops::Deref for PlanRef<'_> {
    type Target = RunPlan;

    fn deref(&self) -> &RunPlan {
        match self {
            PlanRef::Built(plan) => plan,
            PlanRef::Late(plan) => plan,
        }
    }
}

#[derive(Default)]
struct ScopeCounts {
    allowed: AtomicU64,
    rejected: AtomicU64,
}

impl ScopeCounts {
    fn bump(&self, allowed: bool) {
        let counter = if allowed {
            &self.allowed
        } else {
            &self.rejected
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many requests a scope admitted and refused since the engine started.
///
/// ```
/// let engine = policy_runtime::Engine::builder().build().unwrap();
/// assert!(engine.rate_limit_stats().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeStats {
    /// The scope: a handler's path, a `scope = "..."` name, a
    /// [`RateLimit`](crate::RateLimit) layer's scope, or `default:<route>`
    /// for the default limits of a route.
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
    fn resolve_named(&mut self, name: &str) -> bool {
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
        // No exemptions, the common case: nothing to look at.
        if !self.exempt_networks.is_empty()
            && context.client_ip.is_some_and(|ip| self.is_exempt_ip(ip))
        {
            return true;
        }
        !self.exempt_keys.is_empty()
            && context
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
        if let Some(counts) = self.registered.get(&address(scope)) {
            return counts.bump(allowed);
        }
        self.counts_of(scope).bump(allowed);
    }

    fn counts_of(&self, scope: &str) -> Arc<ScopeCounts> {
        if let Some(counts) = self.registered.get(&address(scope)) {
            return Arc::clone(counts);
        }
        match self.counts.get(scope) {
            Some(counts) => Arc::clone(&counts),
            None => Arc::clone(&self.counts.entry(scope.into()).or_default()),
        }
    }

    /// The plan of a run of consecutive rate-limit checks (`run`, each a
    /// [`Check::RateLimit`]; the longest run starting where it starts). The
    /// plans of every policy known at the first request are made then, in
    /// one map read without a lock; a run first seen later gets its plan
    /// then, in a second map.
    pub(crate) fn plan(&self, run: &'static [Check]) -> PlanRef<'_> {
        let at = run.as_ptr() as usize;
        let plans = self.plans.get_or_init(|| {
            crate::handler_policy::every_policy()
                .into_iter()
                .flat_map(|policy| runs(policy.checks))
                .map(|run| (run.as_ptr() as usize, self.make_plan(run)))
                .collect()
        });
        if let Some(plan) = plans.get(&at) {
            return PlanRef::Built(plan);
        }
        if let Some(plan) = self.late_plans.get(&at) {
            return PlanRef::Late(Arc::clone(&plan));
        }
        let plan = Arc::new(self.make_plan(run));
        PlanRef::Late(Arc::clone(
            self.late_plans.entry(at).or_insert(plan).value(),
        ))
    }

    fn make_plan(&self, run: &'static [Check]) -> RunPlan {
        let limits: Box<[LimitPlan]> = run
            .iter()
            .filter_map(|check| match check {
                Check::RateLimit(spec) => Some(spec),
                _ => None,
            })
            .map(|spec| LimitPlan {
                spec,
                quotas: self.quotas_of(spec),
                counts: self.counts_of(spec.scope),
            })
            .collect();
        let headers = limits
            .iter()
            .map(|limit| limit.quotas.as_deref())
            .collect::<Option<Vec<&[Quota]>>>()
            .map(|quotas| QuotaHeaders::of(&quotas.concat()));
        let conditional = limits
            .iter()
            .any(|limit| !matches!(limit.spec.count, CountWhen::Always));
        RunPlan {
            limits,
            headers,
            conditional,
        }
    }

    /// A limit's quotas as counted: its own or its named policy's (`None`
    /// when undefined), with the engine's strategy given to those that name
    /// none. Named policies and the defaults have it from the start.
    pub(crate) fn quotas_of(&self, spec: &RateLimitSpec) -> Option<Box<[Quota]>> {
        match spec.limits {
            Limits::Fixed(quotas) => Some(self.strategy.shape(quotas)),
            Limits::Named(name) => self.named(name).map(Into::into),
        }
    }

    /// Gives the strategy to the default limits and the named policies, once
    /// every one is known (when the engine is built).
    pub(crate) fn apply_strategy(&mut self) {
        let strategy = self.strategy;
        if strategy == Strategy::Gcra {
            return;
        }
        if let Some(defaults) = &mut self.defaults {
            *defaults = strategy.shape(defaults);
        }
        for quotas in self.named.values_mut() {
            *quotas = strategy.shape(quotas);
        }
    }

    /// The header values of the default limits.
    pub(crate) fn defaults_headers(&self) -> Option<&'static QuotaHeaders> {
        let defaults = self.defaults.as_deref()?;
        Some(
            *self
                .defaults_headers
                .get_or_init(|| QuotaHeaders::of(defaults)),
        )
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

/// The runs of consecutive rate-limit checks in `checks`, each as long as it goes.
pub(crate) fn runs(checks: &'static [Check]) -> impl Iterator<Item = &'static [Check]> {
    checks
        .chunk_by(|a, b| matches!(a, Check::RateLimit(_)) && matches!(b, Check::RateLimit(_)))
        .filter(|run| matches!(run[0], Check::RateLimit(_)))
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

impl RateLimitConfig {
    /// Defines the limits of a named policy; the problem, if `limits` does not parse.
    pub(crate) fn define(&mut self, name: &str, limits: &str) -> Result<(), String> {
        let quotas = Quota::parse_list(limits)
            .map_err(|error| format!("rate-limit policy `{name}`: {error}"))?;
        self.named.insert(name.to_owned(), quotas.into());
        Ok(())
    }

    /// Sets the default limits; the problem, if `limits` does not parse.
    pub(crate) fn set_defaults(&mut self, limits: &str) -> Result<(), String> {
        let quotas =
            Quota::parse_list(limits).map_err(|error| format!("default limits: {error}"))?;
        self.defaults = Some(quotas.into());
        Ok(())
    }

    /// Adds exempt networks or addresses; one problem per entry that is neither.
    pub(crate) fn exempt_ips<I, S>(&mut self, networks: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut problems = Vec::new();
        for network in networks {
            let network = network.as_ref().trim();
            match parse_network(network) {
                Some(parsed) => self.exempt_networks.push(parsed),
                None => problems.push(format!(
                    "exempt address `{network}` is neither an IP address nor a network such as 10.0.0.0/8"
                )),
            }
        }
        problems
    }

    /// Adds API-key names that are never limited.
    pub(crate) fn exempt_keys<I, S>(&mut self, names: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.exempt_keys
            .extend(names.into_iter().map(|name| name.as_ref().to_owned()));
    }

    /// Sets the penalty box; the problem, if `penalty` is out of range.
    pub(crate) fn set_penalty(&mut self, penalty: Penalty) -> Result<(), String> {
        self.penalty = Some(PenaltyBox::new(penalty)?);
        Ok(())
    }

    /// Reads the rate-limit settings of the environment: `POLICY_LIMIT_<NAME>`
    /// for named policies, `RATELIMIT_DEFAULT` for default limits and
    /// `RATELIMIT_EXEMPT_IPS` (a comma list) for exempt clients. Returns the
    /// problems, each naming its variable.
    pub(crate) fn read_vars(&mut self, vars: &[(String, String)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (variable, value) in vars {
            if let Some(name) = variable.strip_prefix("POLICY_LIMIT_") {
                match Quota::parse_list(value) {
                    Ok(quotas) => {
                        self.env_named.insert(name.to_owned(), quotas.into());
                    }
                    Err(error) => problems.push(format!("{variable}: {error}")),
                }
            } else if variable == "RATELIMIT_DEFAULT" {
                match Quota::parse_list(value) {
                    Ok(quotas) => self.defaults = Some(quotas.into()),
                    Err(error) => problems.push(format!("{variable}: {error}")),
                }
            } else if variable == "RATELIMIT_STRATEGY" {
                match Strategy::parse(value) {
                    Ok(strategy) => self.strategy = strategy,
                    Err(problem) => problems.push(format!("{variable}: {problem}")),
                }
            } else if variable == "RATELIMIT_EXEMPT_IPS" {
                let entries: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .collect();
                for entry in entries {
                    match parse_network(entry) {
                        Some(network) => self.exempt_networks.push(network),
                        None => problems.push(format!(
                            "{variable}: `{entry}` is neither an IP address nor a network such as 10.0.0.0/8"
                        )),
                    }
                }
            }
        }
        problems
    }

    /// Resolves the named policies `specs` use, from the builder or else the
    /// environment; one problem per limit whose policy is defined nowhere.
    pub(crate) fn resolve_policies<'s>(
        &mut self,
        specs: impl IntoIterator<Item = &'s RateLimitSpec>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for spec in specs {
            if let Limits::Named(name) = spec.limits {
                if !self.resolve_named(name) {
                    problems.push(format!(
                        "`{}` uses the rate-limit policy `{name}`, which is not defined; define it with \
                         `EngineBuilder::policy(\"{name}\", \"5/hour\")` or the environment variable {}",
                        spec.scope,
                        policy_variable(name)
                    ));
                }
            }
        }
        problems
    }
}

fn parse_network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
