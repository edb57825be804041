//! [`RequireJwt`]: the JWT policy as a tower layer, without the attribute.
//!
//! This module owns turning the layer's scopes into the same
//! [`HandlerPolicy`] `#[require_jwt]` expands into; the layer's service is
//! the other policies' ([`WithPolicy`]), so the checks, answers and logs
//! are the attribute's.

use super::{WithPolicy, check_scopes, leak_policy, leak_scopes, leak_str};
use crate::BuildError;
use crate::api_key::scope::KeyRequirement;
use crate::handler_policy::{Check, HandlerPolicy};
use tower::Layer;

/// `#[require_jwt]` as a layer: requires a valid bearer JWT (and scopes)
/// for every request to the routes or the service it wraps, with the engine
/// of the request, exactly as the attribute does. The handler behind it can
/// take [`Claims`](crate::Claims); a [`RateLimit`](crate::RateLimit) layer
/// inside it can count per subject or per claim.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request};
/// use axum::{routing::get, Router};
/// use jsonwebtoken::{encode, EncodingKey, Header};
/// use policy_runtime::{Claims, Engine, RequireJwt};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let secret = "a-development-secret-of-32-bytes!";
///     let engine = Engine::builder()
///         .jwt_secret(secret)
///         .jwt_issuer("https://auth.example.com")
///         .jwt_audience("reports")
///         .build()?;
///     let app = Router::new()
///         .route("/reports", get(|claims: Claims| async move { claims.sub.clone().unwrap_or_default() }))
///         .route_layer(RequireJwt::scope("reports:read")?)
///         .layer(engine)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///
///     let token = |scope: &str| {
///         let claims = serde_json::json!({
///             "sub": "ada", "iss": "https://auth.example.com", "aud": "reports",
///             "exp": 4_000_000_000u64, "scope": scope,
///         });
///         encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
///     };
///     let send = |token: String| {
///         let request = Request::get("/reports").header("authorization", format!("Bearer {token}"));
///         app.clone().oneshot(request.body(Body::empty()).unwrap())
///     };
///     let allowed = send(token("reports:read reports:write")).await?;
///     assert_eq!(axum::body::to_bytes(allowed.into_body(), 1024).await?, "ada");
///     let forbidden = send(token("billing:read")).await?;
///     assert_eq!(forbidden.status(), 403);
///     assert_eq!(
///         forbidden.headers()["www-authenticate"],
///         r#"Bearer error="insufficient_scope", scope="reports:read""#
///     );
///     Ok(())
/// }
/// ```
///
/// The engine's start-up check that a JWT key is configured sees only the
/// attributes; a layer on an engine with no key answers 401 to every token.
#[derive(Clone, Copy, Debug)]
pub struct RequireJwt {
    policy: &'static HandlerPolicy,
}

impl Default for RequireJwt {
    fn default() -> Self {
        Self::new()
    }
}

impl RequireJwt {
    /// What the layer enforces: the policy its service runs, which the
    /// OpenAPI document reads (feature `utoipa`).
    #[cfg_attr(not(feature = "utoipa"), allow(dead_code))]
    pub(crate) fn policy(&self) -> &'static HandlerPolicy {
        self.policy
    }

    /// Any valid token.
    ///
    /// ```
    /// let layer = policy_runtime::RequireJwt::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> Self {
        use std::sync::OnceLock;
        static ANY: OnceLock<&'static HandlerPolicy> = OnceLock::new();
        RequireJwt {
            policy: ANY.get_or_init(|| leak_policy("require_jwt", Check::Jwt(KeyRequirement::Any))),
        }
    }

    /// A valid API key or a valid bearer JWT (`#[require_jwt(or_api_key)]`),
    /// with `requirement`'s scopes: `X-API-Key` is checked as a key; a bearer
    /// value with a JWT's shape (three base64url segments) as a token, any
    /// other bearer value as a key.
    ///
    /// ```
    /// use policy_runtime::RequireJwt;
    ///
    /// let layer = RequireJwt::new().or_api_key();
    /// let scoped = RequireJwt::scope("reports:read")?.or_api_key();
    /// # drop((layer, scoped));
    /// # Ok::<(), policy_runtime::BuildError>(())
    /// ```
    pub fn or_api_key(self) -> Self {
        let requirement = match self.policy.checks {
            [Check::Jwt(requirement) | Check::ApiKeyOrJwt(requirement)] => *requirement,
            _ => KeyRequirement::Any,
        };
        RequireJwt {
            policy: leak_policy("require_jwt", Check::ApiKeyOrJwt(requirement)),
        }
    }

    /// A valid token holding `scope` (else 403 `insufficient_scope`).
    ///
    /// ```
    /// assert!(policy_runtime::RequireJwt::scope("reports:read").is_ok());
    /// assert!(policy_runtime::RequireJwt::scope("has space").is_err());
    /// ```
    pub fn scope(scope: &str) -> Result<Self, BuildError> {
        check_scopes(&[scope])?;
        Ok(Self::requiring(KeyRequirement::Scope(leak_str(scope))))
    }

    /// A valid token holding at least one of `scopes`.
    ///
    /// ```
    /// use policy_runtime::RequireJwt;
    ///
    /// assert!(RequireJwt::any_of(["read", "write"]).is_ok());
    /// assert!(RequireJwt::any_of(Vec::<&str>::new()).is_err()); // at least one scope
    /// ```
    pub fn any_of<I, S>(scopes: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self::requiring(KeyRequirement::AnyOf(leak_scopes(scopes)?)))
    }

    /// A valid token holding every one of `scopes`.
    ///
    /// ```
    /// use policy_runtime::RequireJwt;
    ///
    /// assert!(RequireJwt::all_of(["read", "write"]).is_ok());
    /// assert!(RequireJwt::all_of(["read", "read"]).is_err()); // a scope listed twice
    /// ```
    pub fn all_of<I, S>(scopes: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self::requiring(KeyRequirement::AllOf(leak_scopes(scopes)?)))
    }

    fn requiring(requirement: KeyRequirement) -> Self {
        RequireJwt {
            policy: leak_policy("require_jwt", Check::Jwt(requirement)),
        }
    }
}

impl<S> Layer<S> for RequireJwt {
    type Service = WithPolicy<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithPolicy {
            inner,
            policy: self.policy,
        }
    }
}
