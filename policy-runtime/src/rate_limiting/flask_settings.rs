//! Flask-Limiter's settings under their own names, so that a service ported
//! from Flask keeps its environment: `RATELIMIT_ENABLED`,
//! `RATELIMIT_STORAGE_URI`, `RATELIMIT_KEY_PREFIX`,
//! `RATELIMIT_HEADERS_ENABLED`, `RATELIMIT_SWALLOW_ERRORS` and
//! `RATELIMIT_IN_MEMORY_FALLBACK_ENABLED`, plus this library's own opt-in
//! `RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION`.
//!
//! A `rediss://` storage URI takes its TLS files from the Redis store's own
//! variables among the same ones: `REDIS_TLS_CA_FILE`, and
//! `REDIS_TLS_CERT_FILE` with `REDIS_TLS_KEY_FILE` for a client certificate.
//!
//! This module owns reading them (for [`EngineBuilder::from_vars`](crate::EngineBuilder::from_vars)),
//! the store they choose, and the switch that turns every rate limit off
//! ([`RateLimitSwitch`]) with its production rule. What a setting maps
//! onto (the header style, the Redis store and its failure mode) belongs to
//! the modules that own those; this one only translates.

use super::config::RateLimitConfig;
use super::headers::HeaderStyle;
use crate::{Environment, LimiterStore};

const ENABLED: &str = "RATELIMIT_ENABLED";
const ALLOW_DISABLED: &str = "RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION";
const STORAGE_URI: &str = "RATELIMIT_STORAGE_URI";
const KEY_PREFIX: &str = "RATELIMIT_KEY_PREFIX";
const HEADERS_ENABLED: &str = "RATELIMIT_HEADERS_ENABLED";
const SWALLOW_ERRORS: &str = "RATELIMIT_SWALLOW_ERRORS";
const IN_MEMORY_FALLBACK: &str = "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED";

/// Whether an engine's rate limits are on: every one of them (handlers',
/// layers', the default limits and the penalty box) or none.
///
/// Off, a run of rate-limit checks returns at its first step, before any
/// key, store call, counter or header; on, that step is one test of a
/// `bool` the run reads anyway (the engine's rate-limit settings).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RateLimitSwitch {
    /// Every rate limit is off (`RATELIMIT_ENABLED=false`, `rate_limits_enabled(false)`).
    pub(crate) off: bool,
    /// Production accepts `off` (`RATELIMIT_ALLOW_DISABLED_IN_PRODUCTION=true`,
    /// `allow_disabled_rate_limits_in_production(true)`).
    pub(crate) off_allowed_in_production: bool,
}

impl RateLimitSwitch {
    /// The build problem of this switch in `environment`, if any: limits
    /// turned off in production without the explicit opt-in.
    pub(crate) fn problem(&self, environment: Environment) -> Option<String> {
        (self.off && environment == Environment::Production && !self.off_allowed_in_production)
            .then(|| {
                format!(
                    "every rate limit is off ({ENABLED}=false or `rate_limits_enabled(false)`), which production refuses; \
                     to mean it, also set {ALLOW_DISABLED}=true or call `allow_disabled_rate_limits_in_production(true)`"
                )
            })
    }

    /// Says, once per built engine, that its rate limits are off.
    pub(crate) fn report(&self) {
        if self.off {
            tracing::warn!(
                policy = "rate_limit",
                "every rate limit is off ({ENABLED}=false or `rate_limits_enabled(false)`): requests are admitted \
                 without counting and without rate-limit headers"
            );
        }
    }
}

/// The store `RATELIMIT_STORAGE_URI` chose.
pub(crate) enum Storage {
    /// `memory://`: the engine's default in-memory store, on the engine's clock.
    Memory,
    /// `redis://`, `rediss://`, `redis+unix://`, `redis+cluster://`,
    /// `rediss+cluster://` (feature `redis`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Store(Box<dyn LimiterStore>),
}

impl Storage {
    /// The store to give the engine; `None` for its default store.
    pub(crate) fn into_store(self) -> Option<Box<dyn LimiterStore>> {
        match self {
            Storage::Memory => None,
            Storage::Store(store) => Some(store),
        }
    }
}

/// What the Flask-Limiter settings of an environment say beyond the
/// rate-limit configuration they set directly.
pub(crate) struct FlaskSettings {
    /// The store, when `RATELIMIT_STORAGE_URI` is set and valid.
    pub(crate) storage: Option<Storage>,
    /// One problem per bad value, each naming its variable.
    pub(crate) problems: Vec<String>,
}

/// The values of the settings, as read (the last of a repeated variable wins).
#[derive(Default)]
struct Values<'v> {
    storage_uri: Option<&'v str>,
    key_prefix: Option<&'v str>,
    swallow_errors: Option<bool>,
    in_memory_fallback: Option<bool>,
}

/// Reads Flask-Limiter's settings from `vars` into `config` (the switch and
/// the header style) and returns the store they choose, with the problems.
pub(crate) fn read_vars(config: &mut RateLimitConfig, vars: &[(String, String)]) -> FlaskSettings {
    let mut problems = Vec::new();
    let mut values = Values::default();
    let mut boolean = |variable: &str, value: &str| match parse_bool(value) {
        Some(on) => Some(on),
        None if value.trim().is_empty() => {
            problems.push(format!("{variable} is empty; use true or false"));
            None
        }
        None => {
            problems.push(format!(
                "{variable}: `{}` is not a boolean; use true or false",
                value.trim()
            ));
            None
        }
    };
    for (variable, value) in vars {
        match variable.as_str() {
            ENABLED => {
                if let Some(on) = boolean(variable, value) {
                    config.switch.off = !on;
                }
            }
            ALLOW_DISABLED => {
                if let Some(allowed) = boolean(variable, value) {
                    config.switch.off_allowed_in_production = allowed;
                }
            }
            HEADERS_ENABLED => {
                let off = boolean(variable, value) == Some(false);
                // On: whatever style the engine has (both families by default).
                if off {
                    config.header_style = HeaderStyle::None;
                }
            }
            SWALLOW_ERRORS => {
                values.swallow_errors = boolean(variable, value).or(values.swallow_errors)
            }
            IN_MEMORY_FALLBACK => {
                values.in_memory_fallback = boolean(variable, value).or(values.in_memory_fallback)
            }
            STORAGE_URI => values.storage_uri = Some(value.trim()),
            KEY_PREFIX => values.key_prefix = Some(value.trim()),
            _ => {}
        }
    }
    if values.key_prefix == Some("") {
        problems.push(format!(
            "{KEY_PREFIX} is empty; unset it for the default prefix `policy`, or give one such as `myapp`"
        ));
        values.key_prefix = None;
    }
    let storage = values
        .storage_uri
        .and_then(|uri| match storage(uri, &values, vars) {
            Ok(storage) => Some(storage),
            Err(problem) => {
                problems.push(format!("{STORAGE_URI}: {problem}"));
                None
            }
        });
    if values.storage_uri.is_none() || matches!(storage, Some(Storage::Memory)) {
        let redis_only: Vec<&str> = [
            (KEY_PREFIX, values.key_prefix.is_some()),
            (SWALLOW_ERRORS, values.swallow_errors.is_some()),
            (IN_MEMORY_FALLBACK, values.in_memory_fallback.is_some()),
        ]
        .into_iter()
        .filter_map(|(variable, set)| set.then_some(variable))
        .collect();
        if !redis_only.is_empty() {
            tracing::warn!(
                policy = "rate_limit",
                variables = %redis_only.join(", "),
                "Redis settings without a Redis {STORAGE_URI} have no effect; set {STORAGE_URI}=redis://host:6379, \
                 or configure the store you pass to `limiter_store` with `RedisStore::builder()`"
            );
        }
    }
    FlaskSettings { storage, problems }
}

/// `true`/`false` as Flask configurations write them, in any case.
fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    let is = |word: &str| value.eq_ignore_ascii_case(word);
    if is("true") || is("1") || is("yes") || is("on") {
        Some(true)
    } else if is("false") || is("0") || is("no") || is("off") {
        Some(false)
    } else {
        None
    }
}

/// The store a storage URI names, or why it cannot be had. The URI itself
/// is never repeated in a problem: it may hold a password.
fn storage(uri: &str, values: &Values<'_>, vars: &[(String, String)]) -> Result<Storage, String> {
    let Some((scheme, _)) = uri.split_once("://") else {
        return Err(
            "not a storage URI; use memory:// or redis://host:6379[/db] (feature `redis`)"
                .to_owned(),
        );
    };
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => Ok(Storage::Memory),
        "redis" | "rediss" | "redis+unix" | "redis+cluster" | "rediss+cluster" => {
            redis_storage(uri, values, vars)
        }
        _ if scheme.len() <= 32
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Err(format!(
                "the `{scheme}` storage is not offered; use memory:// (the default) or redis://host:6379[/db] (feature `redis`)"
            ))
        }
        _ => Err(
            "not a storage URI; use memory:// or redis://host:6379[/db] (feature `redis`)"
                .to_owned(),
        ),
    }
}

/// A [`crate::RedisStore`] on `uri`, configured by the other settings (and,
/// for `rediss://`, the `REDIS_TLS_*` files among `vars`). Building one
/// makes no connection (it connects on the first check), so it is made
/// here, synchronously, like the rest of the engine; it reads and checks
/// the TLS files.
#[cfg(feature = "redis")]
fn redis_storage(
    uri: &str,
    values: &Values<'_>,
    vars: &[(String, String)],
) -> Result<Storage, String> {
    use crate::FailureMode;
    let mut builder = crate::RedisStore::builder().url(uri).tls_from_vars(vars);
    if let Some(prefix) = values.key_prefix {
        builder = builder.prefix(prefix);
    }
    // Either setting given: the pair decides as in Flask-Limiter, an unset
    // one being false (the fallback wins over swallowing errors, as it
    // keeps limits). Neither: the store's own default, the fallback.
    let mode = match (values.swallow_errors, values.in_memory_fallback) {
        (None, None) => None,
        (_, Some(true)) => Some(FailureMode::FallbackToMemory),
        (Some(true), _) => Some(FailureMode::Open),
        _ => Some(FailureMode::Closed),
    };
    if let Some(mode) = mode {
        builder = builder.failure_mode(mode);
    }
    match builder.build() {
        Ok(store) => Ok(Storage::Store(Box::new(store))),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(not(feature = "redis"))]
fn redis_storage(
    _uri: &str,
    _values: &Values<'_>,
    _vars: &[(String, String)],
) -> Result<Storage, String> {
    Err(
        "a Redis storage needs policy-runtime's `redis` feature; enable it: \
         `policy-runtime = { features = [\"redis\"] }`"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> (RateLimitConfig, FlaskSettings) {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut config = RateLimitConfig::default();
        let settings = read_vars(&mut config, &vars);
        (config, settings)
    }

    #[test]
    fn booleans_take_the_spellings_of_flask_configurations() {
        for (text, value) in [
            ("true", true),
            ("TRUE", true),
            (" 1 ", true),
            ("yes", true),
            ("On", true),
        ] {
            assert_eq!(parse_bool(text), Some(value), "{text}");
        }
        for (text, value) in [
            ("false", false),
            ("False", false),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ] {
            assert_eq!(parse_bool(text), Some(value), "{text}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn a_bad_value_is_a_problem_naming_its_variable() {
        let (config, settings) = read(&[
            (ENABLED, "nope"),
            (HEADERS_ENABLED, "sometimes"),
            (SWALLOW_ERRORS, "2"),
            (KEY_PREFIX, " "),
            (STORAGE_URI, "memcached://localhost:11211"),
        ]);
        assert!(!config.switch.off);
        assert_eq!(config.header_style, HeaderStyle::Both);
        assert_eq!(
            settings.problems,
            [
                "RATELIMIT_ENABLED: `nope` is not a boolean; use true or false",
                "RATELIMIT_HEADERS_ENABLED: `sometimes` is not a boolean; use true or false",
                "RATELIMIT_SWALLOW_ERRORS: `2` is not a boolean; use true or false",
                "RATELIMIT_KEY_PREFIX is empty; unset it for the default prefix `policy`, or give one such as `myapp`",
                "RATELIMIT_STORAGE_URI: the `memcached` storage is not offered; use memory:// (the default) or \
                 redis://host:6379[/db] (feature `redis`)",
            ]
        );
    }

    #[test]
    fn a_storage_uri_is_never_repeated_in_a_problem() {
        let (_, settings) = read(&[(STORAGE_URI, "user:secret-password@redis.internal:6379")]);
        assert_eq!(
            settings.problems,
            [
                "RATELIMIT_STORAGE_URI: not a storage URI; use memory:// or redis://host:6379[/db] (feature `redis`)"
            ]
        );
        let (_, settings) = read(&[(STORAGE_URI, "we:ird@secret-password://x")]);
        assert!(
            !settings.problems[0].contains("secret"),
            "{:?}",
            settings.problems
        );
    }

    #[test]
    fn memory_is_the_default_store() {
        let (_, settings) = read(&[(STORAGE_URI, "memory://")]);
        assert!(settings.problems.is_empty());
        assert!(matches!(settings.storage, Some(Storage::Memory)));
    }

    #[test]
    fn production_refuses_limits_turned_off_unless_allowed() {
        let off = RateLimitSwitch {
            off: true,
            off_allowed_in_production: false,
        };
        assert!(off.problem(Environment::Production).is_some());
        assert!(off.problem(Environment::Staging).is_none());
        assert!(off.problem(Environment::Development).is_none());
        let allowed = RateLimitSwitch {
            off_allowed_in_production: true,
            ..off
        };
        assert!(allowed.problem(Environment::Production).is_none());
        assert!(
            RateLimitSwitch::default()
                .problem(Environment::Production)
                .is_none()
        );
    }
}
