//! The JWT policy's settings, from the builder and the environment, and
//! their start-up checks.
//!
//! This module owns [`JwtConfig`]: the configured keys (a secret, PEM
//! public keys, JWKS files), the remote source (a JWKS URL or an OpenID
//! Connect issuer), the expected issuer and audience, the leeway, the scope
//! claim and the refresh interval; reading `JWT_*` variables; and the
//! problems [`JwtConfig::check`] finds with every JWT-protected handler in
//! view.

use super::jwks::Remote;
use super::keys::{KeySet, MIN_SECRET_LEN, VerifyKey};
use crate::Environment;
use crate::api_key::scope::KeyRequirement;
use std::path::Path;
use std::time::Duration;

/// The default leeway on `exp` and `nbf`.
pub(crate) const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

/// The default shortest time between two JWKS fetches asked for by tokens.
pub(crate) const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// The JWT settings of an engine being built.
pub(crate) struct JwtConfig {
    pub(crate) keys: KeySet,
    pub(crate) remote: Option<Remote>,
    /// The keys `build_async` fetched from `remote`.
    pub(crate) fetched: Option<KeySet>,
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Duration,
    /// `None`: `scope` (space-separated), else `scp` (an array or a string).
    pub(crate) scope_claim: Option<String>,
    pub(crate) refresh_interval: Duration,
    /// Where a secret that looks like a demo value came from, with the
    /// beginning that gave it away: refused in production.
    pub(crate) demo_secrets: Vec<(String, &'static str)>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            keys: KeySet::default(),
            remote: None,
            fetched: None,
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            scope_claim: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            demo_secrets: Vec::new(),
        }
    }
}

/// A handler protected by a JWT check: its path, what it requires, and
/// whether an API key may admit it instead.
pub(crate) type Protected = (&'static str, KeyRequirement, bool);

impl JwtConfig {
    pub(crate) fn secret(&mut self, secret: &[u8], origin: &str) -> Result<(), String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "{origin}: the JWT secret is {} bytes long; an HMAC secret needs at least {MIN_SECRET_LEN} \
                 (make one with `openssl rand -base64 48`)",
                secret.len()
            ));
        }
        if let Some(prefix) = crate::api_key::key::demo_prefix(secret) {
            self.demo_secrets.push((origin.to_owned(), prefix));
        }
        self.keys.keys.push(VerifyKey::secret(secret));
        Ok(())
    }

    pub(crate) fn public_key_pem(&mut self, pem: &[u8], origin: &str) -> Result<(), String> {
        let key =
            VerifyKey::pem(pem).map_err(|why| format!("{origin}: the JWT public key {why}"))?;
        self.keys.keys.push(key);
        Ok(())
    }

    pub(crate) fn public_key_file(&mut self, path: &Path, origin: &str) -> Result<(), String> {
        let pem = std::fs::read(path).map_err(|error| {
            format!(
                "{origin}: cannot read the JWT public key file `{}`: {error}",
                path.display()
            )
        })?;
        self.public_key_pem(&pem, &format!("{origin} (`{}`)", path.display()))
    }

    pub(crate) fn jwks_file(&mut self, path: &Path, origin: &str) -> Result<(), String> {
        let json = std::fs::read(path).map_err(|error| {
            format!(
                "{origin}: cannot read the JWKS file `{}`: {error}",
                path.display()
            )
        })?;
        let (keys, skipped) = KeySet::from_jwks(&json)
            .map_err(|error| format!("{origin}: `{}` {error}", path.display()))?;
        for why in skipped {
            tracing::warn!(policy = "jwt", file = %path.display(), "JWKS {why}");
        }
        if keys.is_empty() {
            return Err(format!(
                "{origin}: `{}` has no usable signing key",
                path.display()
            ));
        }
        self.keys.keys.extend(keys.keys);
        Ok(())
    }

    pub(crate) fn remote(&mut self, remote: Remote, origin: &str) -> Result<(), String> {
        let url = match &remote {
            Remote::Jwks(url) | Remote::Discovery(url) => url,
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("{origin}: `{url}` is not an http(s) URL"));
        }
        if let Some(taken) = &self.remote {
            if *taken != remote {
                return Err(format!(
                    "{origin}: a JWKS source is already set ({}); use one JWKS URL or one OpenID Connect issuer",
                    taken.describe()
                ));
            }
        }
        if let Remote::Discovery(issuer) = &remote {
            if !self.issuers.contains(issuer) {
                self.issuers.push(issuer.clone());
            }
        }
        self.remote = Some(remote);
        Ok(())
    }

    pub(crate) fn issuer(&mut self, issuer: &str) {
        if !self.issuers.iter().any(|known| known == issuer) {
            self.issuers.push(issuer.to_owned());
        }
    }

    pub(crate) fn audience(&mut self, audience: &str) {
        if !self.audiences.iter().any(|known| known == audience) {
            self.audiences.push(audience.to_owned());
        }
    }

    pub(crate) fn scope_claim(&mut self, claim: &str) -> Result<(), String> {
        if claim.is_empty() {
            return Err(
                "the JWT scope claim's name is empty; `scope` and `scp` are the usual ones"
                    .to_owned(),
            );
        }
        self.scope_claim = Some(claim.to_owned());
        Ok(())
    }

    /// Reads the `JWT_*` variables; returns the problems, each naming its variable.
    pub(crate) fn read_vars(&mut self, vars: &[(String, String)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (variable, value) in vars {
            let origin = variable.as_str();
            let result = match origin {
                "JWT_SECRET" => self.secret(value.as_bytes(), origin),
                "JWT_PUBLIC_KEY_FILE" => self.public_key_file(Path::new(value.trim()), origin),
                "JWT_JWKS_FILE" => self.jwks_file(Path::new(value.trim()), origin),
                "JWT_JWKS_URL" => self.remote(Remote::Jwks(value.trim().to_owned()), origin),
                "JWT_OIDC_ISSUER" => {
                    self.remote(Remote::Discovery(value.trim().to_owned()), origin)
                }
                "JWT_ISSUER" => {
                    self.issuer(value.trim());
                    Ok(())
                }
                "JWT_AUDIENCE" => {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|audience| !audience.is_empty())
                        .for_each(|audience| self.audience(audience));
                    Ok(())
                }
                "JWT_LEEWAY" => seconds(origin, value).map(|leeway| self.leeway = leeway),
                "JWT_JWKS_REFRESH" => {
                    seconds(origin, value).and_then(|interval| match interval.is_zero() {
                        true => Err(format!(
                            "{origin}: the refresh interval must be at least 1 second"
                        )),
                        false => {
                            self.refresh_interval = interval;
                            Ok(())
                        }
                    })
                }
                "JWT_SCOPE_CLAIM" => self
                    .scope_claim(value.trim())
                    .map_err(|error| format!("{origin}: {error}")),
                _ => Ok(()),
            };
            if let Err(problem) = result {
                problems.push(problem);
            }
        }
        problems
    }

    /// Whether any key or key source is configured.
    pub(crate) fn has_source(&self) -> bool {
        !self.keys.is_empty() || self.remote.is_some()
    }

    /// The start-up problems (errors) and warnings, given every JWT-protected
    /// handler and whether an API key is configured (for `or_api_key`).
    pub(crate) fn check(
        &self,
        environment: Environment,
        protected: &[Protected],
        api_keys: bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let unserved: Vec<&str> = protected
            .iter()
            .filter(|(_, _, or_api_key)| !(*or_api_key && api_keys))
            .map(|(handler, _, _)| *handler)
            .collect();
        if !self.has_source() && !unserved.is_empty() {
            errors.push(format!(
                "{} {} a JWT, but no JWT key is configured; set JWT_SECRET, JWT_PUBLIC_KEY_FILE, JWT_JWKS_URL or \
                 JWT_OIDC_ISSUER, or use `EngineBuilder::jwt_secret` (or `jwt_public_key_pem`, `jwt_jwks_url`, \
                 `jwt_oidc_issuer`)",
                listed(&unserved),
                if unserved.len() == 1 { "requires" } else { "require" }
            ));
        }
        for (origin, prefix) in &self.demo_secrets {
            let problem = format!(
                "{origin}: the JWT secret begins with `{prefix}`, as demo and placeholder values do; anyone who \
                 has read the example can sign tokens with it (make one with `openssl rand -base64 48`)"
            );
            match environment {
                Environment::Production => errors.push(problem),
                _ => warnings.push(problem),
            }
        }
        if self.has_source() || !protected.is_empty() {
            for (missing, variable, method) in [
                (
                    self.issuers.is_empty(),
                    "issuer (`iss`)",
                    "JWT_ISSUER or `EngineBuilder::jwt_issuer`",
                ),
                (
                    self.audiences.is_empty(),
                    "audience (`aud`)",
                    "JWT_AUDIENCE or `EngineBuilder::jwt_audience`",
                ),
            ] {
                if missing {
                    let problem = format!(
                        "no JWT {variable} is configured, so tokens issued by anyone holding a key, for any \
                         service, are accepted; set {method}"
                    );
                    match environment {
                        Environment::Production => errors.push(problem),
                        _ => warnings.push(problem),
                    }
                }
            }
        }
        for warning in warnings {
            tracing::warn!(
                policy = "jwt",
                environment = environment.name(),
                "{warning}"
            );
        }
        errors
    }
}

fn listed(handlers: &[&str]) -> String {
    let named: Vec<String> = handlers
        .iter()
        .map(|handler| format!("`{handler}`"))
        .collect();
    named.join(", ")
}

/// `60`, `60s`: whole seconds.
fn seconds(variable: &str, value: &str) -> Result<Duration, String> {
    let value = value.trim();
    value
        .strip_suffix('s')
        .unwrap_or(value)
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("{variable}: `{value}` is not a number of seconds, such as 60"))
}
