//! The [`EngineBuilder`] methods of the JWT policy, and
//! [`EngineBuilder::build_async`], which fetches remote keys before the
//! engine starts.
//!
//! Each method hands its setting to the JWT policy's configuration
//! (`crate::jwt::config::JwtConfig`) and collects the problem it returns, as
//! the other builder methods do; the policy never sees the builder.

use crate::jwt::jwks::{self, Remote};
use crate::{BuildError, Engine, EngineBuilder};
use std::path::Path;
use std::time::Duration;

/// A secret for the examples: 32 bytes.
#[cfg(doc)]
const _SECRET: &str = "a-development-secret-of-32-bytes!";

impl EngineBuilder {
    fn jwt_result(mut self, result: Result<(), String>) -> Self {
        if let Err(problem) = result {
            self.problems.push(problem);
        }
        self
    }

    /// Verifies tokens signed with this HMAC secret (HS256, HS384, HS512).
    /// A secret under 32 bytes is a build error. `JWT_SECRET` sets it from
    /// the environment (see [`EngineBuilder::from_env`]).
    ///
    /// ```
    /// use policy_runtime::Engine;
    ///
    /// let engine = Engine::builder()
    ///     .jwt_secret("a-development-secret-of-32-bytes!")
    ///     .jwt_issuer("https://auth.example.com")
    ///     .jwt_audience("reports")
    ///     .build();
    /// assert!(engine.is_ok());
    /// let short = Engine::builder().jwt_secret("short").build().unwrap_err();
    /// assert!(short.problems()[0].contains("the JWT secret is 5 bytes long; an HMAC secret needs at least 32"));
    /// ```
    pub fn jwt_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        let result = self
            .jwt
            .secret(secret.as_ref(), "EngineBuilder::jwt_secret");
        self.jwt_result(result)
    }

    /// Verifies tokens with this PEM public key: RSA (RS256-512, PS256-512),
    /// EC (ES256, ES384) or Ed25519 (EdDSA), as `-----BEGIN PUBLIC KEY-----`
    /// (or `RSA PUBLIC KEY`). May be called for several keys.
    /// `JWT_PUBLIC_KEY_FILE` reads one from a file.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder().jwt_public_key_pem("not a key").build().unwrap_err();
    /// assert!(error.problems()[0].contains("is not a PEM public key"));
    /// ```
    pub fn jwt_public_key_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        let result = self
            .jwt
            .public_key_pem(pem.as_ref(), "EngineBuilder::jwt_public_key_pem");
        self.jwt_result(result)
    }

    /// [`EngineBuilder::jwt_public_key_pem`], from a file.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder().jwt_public_key_file("/no/such/key.pem").build().unwrap_err();
    /// assert!(error.problems()[0].contains("cannot read the JWT public key file `/no/such/key.pem`"));
    /// ```
    pub fn jwt_public_key_file(mut self, path: impl AsRef<Path>) -> Self {
        let result = self
            .jwt
            .public_key_file(path.as_ref(), "EngineBuilder::jwt_public_key_file");
        self.jwt_result(result)
    }

    /// Verifies tokens with the keys of a JWKS document in a file (`{"keys":
    /// [...]}`), read now. Each key is pinned to its `alg` (or its curve, or
    /// its type); encryption keys and keys that do not parse are skipped with
    /// a warning. `JWT_JWKS_FILE` sets it from the environment.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder().jwt_jwks_file("/no/such/jwks.json").build().unwrap_err();
    /// assert!(error.problems()[0].contains("cannot read the JWKS file"));
    /// ```
    pub fn jwt_jwks_file(mut self, path: impl AsRef<Path>) -> Self {
        let result = self
            .jwt
            .jwks_file(path.as_ref(), "EngineBuilder::jwt_jwks_file");
        self.jwt_result(result)
    }

    /// Verifies tokens with the keys of the JWKS document at `url`, fetched
    /// at start-up by [`EngineBuilder::build_async`] (or on first use after
    /// [`EngineBuilder::build`]) and cached; a token with an unknown `kid`
    /// fetches it again, at most once per [`EngineBuilder::jwt_jwks_refresh_interval`].
    /// `JWT_JWKS_URL` sets it from the environment.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder().jwt_jwks_url("ftp://keys").build().unwrap_err();
    /// assert!(error.problems()[0].contains("`ftp://keys` is not an http(s) URL"));
    /// ```
    pub fn jwt_jwks_url(mut self, url: &str) -> Self {
        let result = self.jwt.remote(
            Remote::Jwks(url.trim().to_owned()),
            "EngineBuilder::jwt_jwks_url",
        );
        self.jwt_result(result)
    }

    /// OpenID Connect discovery: the JWKS URL is the `jwks_uri` of
    /// `<issuer>/.well-known/openid-configuration`, and `issuer` becomes an
    /// expected `iss`. Otherwise as [`EngineBuilder::jwt_jwks_url`].
    /// `JWT_OIDC_ISSUER` sets it from the environment.
    ///
    /// ```
    /// let builder = policy_runtime::Engine::builder().jwt_oidc_issuer("https://auth.example.com");
    /// # drop(builder);
    /// ```
    pub fn jwt_oidc_issuer(mut self, issuer: &str) -> Self {
        let issuer = issuer.trim().trim_end_matches('/');
        let result = self.jwt.remote(
            Remote::Discovery(issuer.to_owned()),
            "EngineBuilder::jwt_oidc_issuer",
        );
        self.jwt_result(result)
    }

    /// Accepts only tokens whose `iss` is `issuer` (call again to accept
    /// several). Without one, production refuses to build. `JWT_ISSUER`.
    ///
    /// ```
    /// let error = policy_runtime::Engine::builder()
    ///     .jwt_secret("a-development-secret-of-32-bytes!")
    ///     .jwt_audience("reports")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(error.problems()[0].starts_with("no JWT issuer (`iss`) is configured"));
    /// ```
    pub fn jwt_issuer(mut self, issuer: &str) -> Self {
        self.jwt.issuer(issuer);
        self
    }

    /// Accepts only tokens whose `aud` holds `audience` (call again to accept
    /// several). Without one, production refuses to build. `JWT_AUDIENCE`
    /// (comma-separated).
    ///
    /// ```
    /// let engine = policy_runtime::Engine::builder()
    ///     .jwt_secret("a-development-secret-of-32-bytes!")
    ///     .jwt_issuer("https://auth.example.com")
    ///     .jwt_audience("reports")
    ///     .build();
    /// assert!(engine.is_ok());
    /// ```
    pub fn jwt_audience(mut self, audience: &str) -> Self {
        self.jwt.audience(audience);
        self
    }

    /// The clock skew allowed on `exp` and `nbf`, in whole seconds; 60 by
    /// default. `JWT_LEEWAY` (seconds).
    ///
    /// ```
    /// let builder = policy_runtime::Engine::builder().jwt_leeway(std::time::Duration::from_secs(30));
    /// # drop(builder);
    /// ```
    pub fn jwt_leeway(mut self, leeway: Duration) -> Self {
        self.jwt.leeway = leeway;
        self
    }

    /// The claim the scopes are read from: a space-separated string or an
    /// array of strings. By default `scope`, else `scp`. `JWT_SCOPE_CLAIM`.
    ///
    /// ```
    /// let builder = policy_runtime::Engine::builder().jwt_scope_claim("permissions");
    /// # drop(builder);
    /// ```
    pub fn jwt_scope_claim(mut self, claim: &str) -> Self {
        let result = self.jwt.scope_claim(claim);
        self.jwt_result(result)
    }

    /// The shortest time between two JWKS fetches asked for by tokens with
    /// an unknown `kid`; 10 seconds by default. `JWT_JWKS_REFRESH` (seconds).
    ///
    /// ```
    /// let builder = policy_runtime::Engine::builder().jwt_jwks_refresh_interval(std::time::Duration::from_secs(60));
    /// # drop(builder);
    /// ```
    pub fn jwt_jwks_refresh_interval(mut self, interval: Duration) -> Self {
        if interval.is_zero() {
            self.problems
                .push("the JWKS refresh interval must be more than zero".to_owned());
        } else {
            self.jwt.refresh_interval = interval;
        }
        self
    }

    /// [`EngineBuilder::build`], after fetching the JWKS of
    /// [`EngineBuilder::jwt_jwks_url`] or [`EngineBuilder::jwt_oidc_issuer`]:
    /// the engine starts with its keys, and a source that cannot be fetched
    /// is a build problem (listed with the others). Without a remote source
    /// it is `build`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let error = policy_runtime::Engine::builder()
    ///     .jwt_jwks_url("http://127.0.0.1:9/jwks.json") // nothing listens there
    ///     .jwt_issuer("https://auth.example.com")
    ///     .jwt_audience("reports")
    ///     .build_async()
    ///     .await
    ///     .unwrap_err();
    /// assert!(error.problems()[0].starts_with("cannot fetch the JWT keys (JWKS http://127.0.0.1:9/jwks.json)"));
    /// # }
    /// ```
    pub async fn build_async(mut self) -> Result<Engine, BuildError> {
        if let Some(remote) = self.jwt.remote.clone() {
            match jwks::fetch(&remote).await {
                Ok(keys) => self.jwt.fetched = Some(keys),
                Err(error) => self.problems.push(format!(
                    "cannot fetch the JWT keys ({}): {error}",
                    remote.describe()
                )),
            }
        }
        self.build()
    }
}
