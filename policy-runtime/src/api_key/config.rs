//! The engine's API-key settings and their builder methods: keys with
//! scopes and expiry, the key file, keys from the environment, the lockout,
//! and the start-up checks of the key configuration.
//!
//! This module owns what is decided about keys when the engine is built (or
//! its keys reloaded): which problems stop the start and which are only
//! warnings, by [`Environment`]. It decides nothing per request.

use super::env::{keys_from_vars, KEY_FILE_VARIABLE};
use super::key::{ApiKey, MIN_KEY_LEN};
use super::lockout::Lockout;
use super::scope::KeyRequirement;
use super::store::ApiKeyStore;
use crate::engine::EngineBuilder;
use crate::guard::{Check, Registration};
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

const KEYGEN: &str = "`cargo run -p policy-runtime --bin policy-keygen` prints a new key";

/// Checks a key configuration against the handlers in the program.
///
/// - Key-protected handlers but no usable key: an error in production, a
///   warning elsewhere.
/// - A plaintext key shorter than 16 characters, or one that begins like a
///   demo key (`demo`, `example`, `test`, ...): an error in production, a
///   warning elsewhere.
/// - A handler's scope that no usable key holds, and expired keys: warnings.
pub(crate) fn check_keys(keys: &ApiKeyStore, environment: Environment) -> KeyReport {
    let mut report = KeyReport::default();
    let now = SystemTime::now();
    let protected = protected_handlers();
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
        for (handler, requirement) in &protected {
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

/// Every key-protected handler in the program, with what it requires, by name.
pub(crate) fn protected_handlers() -> Vec<(&'static str, KeyRequirement)> {
    let mut handlers: Vec<(&'static str, KeyRequirement)> = inventory::iter::<Registration>
        .into_iter()
        .filter_map(|registration| {
            let policy = registration.0;
            policy.checks.iter().find_map(|check| match check {
                Check::ApiKey(requirement) => Some((policy.handler, *requirement)),
                _ => None,
            })
        })
        .collect();
    handlers.sort_by_key(|(handler, _)| *handler);
    handlers
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

impl EngineBuilder {
    /// Accepts a key with its scopes and expiry; see [`ApiKey`].
    ///
    /// ```
    /// use policy_runtime::{ApiKey, Engine};
    ///
    /// let engine = Engine::builder()
    ///     .api_key_with(ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"]))
    ///     .api_key_with(ApiKey::new("reader", "reader-key-0123456789").scopes(["read"]))
    ///     .build()?;
    /// # drop(engine);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_key_with(mut self, key: ApiKey) -> Self {
        if let Err(error) = self.keys.add(key) {
            self.problems.push(error.to_string());
        }
        self
    }

    /// Accepts the keys of a key file, which holds only their SHA-256
    /// digests; see [`ApiKeyStore::from_key_file`] for the format. The file
    /// is read now; a file that cannot be read, and every bad line, is a
    /// build problem naming the file and line. `API_KEY_FILE` does the same
    /// from the environment.
    ///
    /// ```
    /// use policy_runtime::{ApiKey, Engine};
    ///
    /// let path = std::env::temp_dir().join(format!("doc-api-keys-{}", std::process::id()));
    /// let line = ApiKey::new("ops", "ops-team-key-0123456789").scopes(["admin"]).key_file_line();
    /// std::fs::write(&path, format!("# operators\n{line}\n")).unwrap();
    ///
    /// let engine = Engine::builder().api_key_file(&path).build()?;
    /// # std::fs::remove_file(&path).unwrap();
    /// # drop(engine);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn api_key_file(mut self, path: impl AsRef<Path>) -> Self {
        let problems = self.keys.add_key_file(path.as_ref());
        self.problems.extend(problems);
        self
    }

    /// Sets the brute-force lockout; on by default as [`Lockout::default`].
    /// A setting out of range (see [`Lockout`]) is a problem `build` reports.
    ///
    /// ```
    /// use std::time::Duration;
    /// use policy_runtime::{Engine, Lockout};
    ///
    /// let engine = Engine::builder()
    ///     .lockout(Lockout::new(3, Duration::from_secs(60), Duration::from_secs(600)))
    ///     .build()?;
    /// # drop(engine);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn lockout(mut self, lockout: Lockout) -> Self {
        self.problems.extend(lockout.problems());
        self.lockout = Some(lockout);
        self
    }

    /// Turns the brute-force lockout off: failed key attempts get 401, however many.
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder().no_lockout().build()?;
    /// assert_eq!(engine.lockout_status("192.0.2.1".parse().unwrap()).failures, 0);
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn no_lockout(mut self) -> Self {
        self.lockout = None;
        self
    }

    /// Adds the keys of `API_KEYS`, `API_KEY_<N>` and `API_KEY_FILE`; a
    /// problem names the variable.
    pub(crate) fn read_key_vars(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        let found = keys_from_vars(vars);
        self.problems.extend(found.problems);
        for (variable, key) in found.keys {
            if let Err(error) = self.keys.add(key) {
                self.problems.push(format!("{variable}: {error}"));
            }
        }
        if let Some(path) = found.file {
            let problems = self.keys.add_key_file(Path::new(&path));
            self.problems.extend(
                problems
                    .into_iter()
                    .map(|problem| format!("{KEY_FILE_VARIABLE}: {problem}")),
            );
        }
    }

    /// The key checks of `build`: errors become build problems, warnings are logged.
    pub(crate) fn check_api_keys(&mut self) {
        let report = check_keys(&self.keys, self.environment);
        report.warn(self.environment);
        self.problems.extend(report.errors);
    }
}
