//! [`Environment`]: development, staging or production, and what each allows.
//!
//! This module owns the environment setting and its documented defaults. It
//! is secure by default: production unless development is asked for.

use std::fmt;
use std::str::FromStr;

/// Where the service runs. Read from `ENVIRONMENT` by
/// [`EngineBuilder::from_env`](crate::EngineBuilder::from_env); production when
/// nothing is set, so that development must be chosen explicitly.
///
/// | | development | staging | production |
/// | --- | --- | --- | --- |
/// | default log level | debug | info | info |
/// | 5xx details in responses | shown | hidden | hidden |
/// | demo or short API keys | allowed, with a warning | allowed, with a warning | refused |
/// | key-protected handlers but no API key | allowed, with a warning | allowed, with a warning | refused |
///
/// ```
/// use policy_runtime::Environment;
///
/// assert_eq!(Environment::default(), Environment::Production);
/// assert_eq!("staging".parse::<Environment>().unwrap(), Environment::Staging);
/// assert!("prod".parse::<Environment>().is_ok());
/// assert!(!Environment::Production.exposes_server_errors());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Environment {
    /// A developer's machine: verbose, and 5xx details are shown.
    Development,
    /// A production-like deployment for testing.
    Staging,
    /// The default.
    #[default]
    Production,
}

impl Environment {
    /// The environment variable it is read from.
    pub const VARIABLE: &'static str = "ENVIRONMENT";

    /// The environment `ENVIRONMENT` names among `vars` (the last one, if
    /// repeated), or production when it is absent: for what must follow the
    /// environment before an engine is built, such as the log level that the
    /// engine's start-up report is logged at. A value that names no
    /// environment is an error, as it is a problem for
    /// [`EngineBuilder::from_vars`](crate::EngineBuilder::from_vars).
    ///
    /// ```
    /// use policy_runtime::Environment;
    ///
    /// let vars = [("ENVIRONMENT".to_string(), "staging".to_string())];
    /// assert_eq!(Environment::from_vars(vars), Ok(Environment::Staging));
    /// assert_eq!(Environment::from_vars([]), Ok(Environment::Production));
    /// let vars = [("ENVIRONMENT".to_string(), "qa".to_string())];
    /// assert!(Environment::from_vars(vars).is_err());
    /// ```
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, UnknownEnvironment> {
        vars.into_iter()
            .filter(|(variable, _)| variable == Self::VARIABLE)
            .last()
            .map_or(Ok(Environment::default()), |(_, value)| value.parse())
    }

    /// [`Environment::from_vars`] on the process's `ENVIRONMENT`.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::Environment;
    ///
    /// // As if the process were started with ENVIRONMENT=dev (`set_var` is
    /// // `unsafe` since Rust 2024: sound here, before any other thread runs).
    /// unsafe { std::env::set_var("ENVIRONMENT", "dev") };
    /// assert_eq!(Environment::from_env(), Ok(Environment::Development));
    /// ```
    pub fn from_env() -> Result<Self, UnknownEnvironment> {
        match std::env::var_os(Self::VARIABLE) {
            None => Ok(Environment::default()),
            Some(value) => value.to_string_lossy().parse(),
        }
    }

    /// The name, as written in `ENVIRONMENT`.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Environment::Staging.name(), "staging");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    /// Whether 5xx responses carry the error's details (development only).
    ///
    /// ```
    /// assert!(policy_runtime::Environment::Development.exposes_server_errors());
    /// ```
    pub fn exposes_server_errors(self) -> bool {
        self == Environment::Development
    }

    /// Whether weak configuration (short or demo API keys, key-protected
    /// handlers without keys) is only a warning rather than a start-up error
    /// (everywhere but production).
    ///
    /// ```
    /// assert!(!policy_runtime::Environment::Production.tolerates_weak_keys());
    /// ```
    pub fn tolerates_weak_keys(self) -> bool {
        self != Environment::Production
    }

    /// The default log level, for a `tracing-subscriber` filter.
    ///
    /// ```
    /// assert_eq!(policy_runtime::Environment::Development.default_log_level(), "debug");
    /// ```
    pub fn default_log_level(self) -> &'static str {
        match self {
            Environment::Development => "debug",
            Environment::Staging | Environment::Production => "info",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `ENVIRONMENT` value that names no environment.
///
/// ```
/// let error = "qa".parse::<policy_runtime::Environment>().unwrap_err();
/// assert!(error.to_string().contains("development, staging or production"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an environment; use development, staging or production")]
pub struct UnknownEnvironment(String);

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "staging" | "stage" => Ok(Environment::Staging),
            "production" | "prod" => Ok(Environment::Production),
            _ => Err(UnknownEnvironment(text.to_owned())),
        }
    }
}
