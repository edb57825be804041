//! The engine's API-key settings ([`ApiKeyConfig`]): keys with scopes and
//! expiry, the key file, keys from the environment, the lockout, and the
//! start-up checks of the key configuration. The builder's methods hand each
//! setting here and collect the problems returned.
//!
//! This module owns what is decided about keys when the engine is built (or
//! its keys reloaded): which problems stop the start and which are only
//! warnings, by [`Environment`]. It decides nothing per request.

use super::env::{KEY_FILE_VARIABLE, keys_from_vars};
use super::key::{ApiKey, MIN_KEY_LEN};
use super::lockout::Lockout;
use super::scope::KeyRequirement;
use super::store::ApiKeyStore;
use crate::Environment;
use std::path::Path;
use std::time::SystemTime;

/// What `build` (or a reload) found wrong with a key configuration.
#[derive(Default)]
pub(crate) struct KeyReport {
    /// Problems that stop the engine from starting in this environment.
    pub(crate) errors: Vec<String>,
    /// Problems worth a warning at start-up.
    pub(crate) warnings: Vec<String>,
}

impl KeyReport {
    fn weak(&mut self, environment: Environment, problem: String) {
        if environment.tolerates_weak_keys() {
            self.warnings.push(problem);
        } else {
            self.errors.push(problem);
        }
    }

    /// Logs the warnings, once each.
    pub(crate) fn warn(&self, environment: Environment) {
        for warning in &self.warnings {
            tracing::warn!(environment = environment.name(), "{warning}");
        }
    }
}

const KEYGEN: &str = "`cargo run -p policy-keygen` prints a new key";

/// Checks a key configuration against the key-protected handlers of the
/// program (`protected`: each handler's path and what it requires, sorted
/// by path).
///
/// - Key-protected handlers but no usable key: an error in production, a
///   warning elsewhere.
/// - A plaintext key shorter than 16 characters, or one that begins like a
///   demo key (`demo`, `example`, `test`, ...): an error in production, a
///   warning elsewhere.
/// - A handler's scope that no usable key holds, and expired keys: warnings.
pub(crate) fn check_keys(
    keys: &ApiKeyStore,
    environment: Environment,
    protected: &[(&'static str, KeyRequirement)],
) -> KeyReport {
    let mut report = KeyReport::default();
    let now = SystemTime::now();
    let usable = keys.usable(now).count();
    if !protected.is_empty() && usable == 0 {
        let handlers: Vec<&str> = protected.iter().map(|(handler, _)| *handler).collect();
        let why = if keys.is_empty() {
            "no API key is configured"
        } else {
            "every configured API key is revoked or expired"
        };
        let verb = if handlers.len() == 1 {
            "requires"
        } else {
            "require"
        };
        let problem = format!(
            "{} {verb} an API key, but {why}; set API_KEYS, API_KEY_<N> or API_KEY_FILE, or add keys \
             with `EngineBuilder::api_key` ({KEYGEN})",
            listed(&handlers)
        );
        if !environment.tolerates_weak_keys() {
            report.errors.push(format!(
                "{problem}; for local work without keys set ENVIRONMENT=development"
            ));
        } else {
            report.warnings.push(format!(
                "{problem}; until then every request to them gets 401"
            ));
        }
    }
    for (id, plaintext) in keys.plaintexts() {
        if plaintext.len > 0 && plaintext.len < MIN_KEY_LEN {
            report.weak(
                environment,
                format!(
                    "API key `{id}` is {} characters long; use at least {MIN_KEY_LEN} ({KEYGEN})",
                    plaintext.len
                ),
            );
        }
        if let Some(prefix) = plaintext.demo_prefix {
            report.weak(
                environment,
                format!(
                    "API key `{id}` looks like a demo or placeholder key (it begins with `{prefix}`); \
                     demo keys are refused in production ({KEYGEN})"
                ),
            );
        }
    }
    if usable > 0 {
        for (handler, requirement) in protected {
            let met = keys
                .usable(now)
                .any(|key| requirement.is_met_by(&key.scopes[..]));
            if !met {
                report.warnings.push(format!(
                    "`{handler}` requires {requirement}, which no configured API key has; every request to it gets 403"
                ));
            }
        }
    }
    let mut expired: Vec<&str> = keys
        .keys()
        .filter(|key| !key.revoked && key.expires_at.is_some_and(|at| at <= now))
        .map(|key| key.id.name())
        .collect();
    expired.sort_unstable();
    expired.dedup();
    for name in expired {
        report.warnings.push(format!(
            "an API key named `{name}` has expired and is refused; remove it or give the client a new one"
        ));
    }
    report
}

fn listed(handlers: &[&str]) -> String {
    let shown: Vec<String> = handlers
        .iter()
        .take(3)
        .map(|handler| format!("`{handler}`"))
        .collect();
    match handlers.len() {
        1 => format!("the handler {}", shown[0]),
        2 | 3 => format!("the handlers {}", shown.join(", ")),
        more => format!("the handlers {} and {} more", shown.join(", "), more - 3),
    }
}

/// The API-key settings an engine is built with: the keys and the lockout.
pub(crate) struct ApiKeyConfig {
    pub(crate) keys: ApiKeyStore,
    pub(crate) lockout: Option<Lockout>,
}

impl Default for ApiKeyConfig {
    /// No key, and the lockout on as [`Lockout::default`].
    fn default() -> Self {
        Self {
            keys: ApiKeyStore::new(),
            lockout: Some(Lockout::default()),
        }
    }
}

impl ApiKeyConfig {
    /// Accepts `secret` as a key named `name`; the problem, if it is refused.
    pub(crate) fn insert(&mut self, name: &str, secret: &[u8]) -> Result<(), String> {
        self.keys
            .insert(name, secret)
            .map_err(|error| error.to_string())
    }

    /// Accepts a key with its scopes and expiry; the problem, if it is refused.
    pub(crate) fn add(&mut self, key: ApiKey) -> Result<(), String> {
        self.keys.add(key).map_err(|error| error.to_string())
    }

    /// Accepts the keys of a key file; one problem per bad line, or for a
    /// file that cannot be read.
    pub(crate) fn add_key_file(&mut self, path: &Path) -> Vec<String> {
        self.keys.add_key_file(path)
    }

    /// Sets the lockout; its settings out of range, as problems.
    pub(crate) fn set_lockout(&mut self, lockout: Lockout) -> Vec<String> {
        let problems = lockout.problems();
        self.lockout = Some(lockout);
        problems
    }

    /// Turns the lockout off.
    pub(crate) fn no_lockout(&mut self) {
        self.lockout = None;
    }

    /// Adds the keys of `API_KEYS`, `API_KEY_<N>` and `API_KEY_FILE`; a
    /// problem names the variable.
    pub(crate) fn read_vars(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<String> {
        let found = keys_from_vars(vars);
        let mut problems = found.problems;
        for (variable, key) in found.keys {
            if let Err(error) = self.keys.add(key) {
                problems.push(format!("{variable}: {error}"));
            }
        }
        if let Some(path) = found.file {
            let file_problems = self.keys.add_key_file(Path::new(&path));
            problems.extend(
                file_problems
                    .into_iter()
                    .map(|problem| format!("{KEY_FILE_VARIABLE}: {problem}")),
            );
        }
        problems
    }

    /// The key checks of `build` against the key-protected handlers
    /// (`protected`, by path): warnings are logged, errors returned.
    pub(crate) fn check(
        &self,
        environment: Environment,
        protected: &[(&'static str, KeyRequirement)],
    ) -> Vec<String> {
        let report = check_keys(&self.keys, environment, protected);
        report.warn(environment);
        report.errors
    }
}
