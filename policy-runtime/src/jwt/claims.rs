//! [`Claims`]: a handler's view of the JWT that admitted its request.
//!
//! This module owns the extractor, the registered-claims default
//! ([`RegisteredClaims`]) and the request extension the JWT check leaves for
//! it ([`VerifiedClaims`]). It verifies nothing: only a token that passed the
//! check reaches the extension.

use crate::ErrorBody;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::sync::Arc;

/// The claims of the validated token of a request, put in its extensions by
/// the JWT check; cloning it is one reference count.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedClaims(pub(crate) Arc<serde_json::Value>);

impl VerifiedClaims {
    /// One claim, if the token has it.
    pub(crate) fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.get(name)
    }
}

/// The claims of the bearer JWT that admitted the request, deserialised into
/// `T` (by default [`RegisteredClaims`]).
///
/// `#[require_jwt]` (or a [`crate::RequireJwt`] layer) validates the token
/// first; the handler then reads its claims, into any `T:
/// DeserializeOwned`. A token whose claims do not fit `T` (a claim `T`
/// requires is missing or has another type) is refused with a 401, as a token
/// the endpoint cannot use. Taking `Claims` where no JWT admitted the request
/// (no JWT check, or an API key admitted it under `or_api_key`) answers a 500
/// and logs the fix; `Option<Claims<T>>` is `None` there.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use jsonwebtoken::{encode, EncodingKey, Header};
/// use policy_runtime::{Claims, Engine, RequireJwt};
/// use serde::Deserialize;
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[derive(Deserialize)]
/// struct Tenant {
///     sub: String,
///     tenant_id: u64,
/// }
///
/// async fn whoami(Claims(tenant): Claims<Tenant>) -> String {
///     format!("{} of tenant {}", tenant.sub, tenant.tenant_id)
/// }
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
///         .route("/me", get(whoami).layer(RequireJwt::new()))
///         .layer(engine)
///         // The lockout counts bad tokens per client address.
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let claims = serde_json::json!({
///         "sub": "ada", "tenant_id": 7, "iss": "https://auth.example.com",
///         "aud": "reports", "exp": 4_000_000_000u64,
///     });
///     let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()))?;
///     let request = Request::get("/me").header("authorization", format!("Bearer {token}"));
///     let response = app.oneshot(request.body(Body::empty())?).await?;
///     assert_eq!(axum::body::to_bytes(response.into_body(), 1024).await?, "ada of tenant 7");
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims<T = RegisteredClaims>(pub T);

impl<T> std::ops::Deref for Claims<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The registered claims of RFC 7519 (section 4.1), and `scope`: each
/// `None` (or empty) when the token does not carry it.
///
/// ```
/// use policy_runtime::RegisteredClaims;
///
/// let claims: RegisteredClaims = serde_json::from_value(serde_json::json!({
///     "sub": "ada", "aud": ["reports", "billing"], "exp": 4000000000u64, "scope": "read write",
/// }))
/// .unwrap();
/// assert_eq!(claims.sub.as_deref(), Some("ada"));
/// assert_eq!(claims.aud, ["reports", "billing"]);
/// assert_eq!(claims.scopes().collect::<Vec<_>>(), ["read", "write"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `sub`: whom the token is about.
    pub sub: Option<String>,
    /// `iss`: who issued the token.
    pub iss: Option<String>,
    /// `aud`: whom the token is for (one string or an array in the token).
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// `exp`: when the token expires, in seconds since the Unix epoch.
    pub exp: Option<u64>,
    /// `nbf`: when the token becomes valid, in seconds since the Unix epoch.
    pub nbf: Option<u64>,
    /// `iat`: when the token was issued, in seconds since the Unix epoch.
    pub iat: Option<u64>,
    /// `jti`: the token's unique id.
    pub jti: Option<String>,
    /// `scope`: the space-separated scopes (RFC 8693), as sent.
    pub scope: Option<String>,
}

impl RegisteredClaims {
    /// The scopes of the `scope` claim, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .iter()
            .flat_map(|scope| scope.split_ascii_whitespace())
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Claims<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<VerifiedClaims>() {
            Some(claims) => deserialise(claims),
            None => {
                tracing::error!(
                    "a handler takes `Claims` but no JWT check admitted its request; add `#[require_jwt]` to the \
                     handler (or a `RequireJwt` layer to its route), or take `Option<Claims<..>>` where a token is \
                     optional (as under `or_api_key`, where an API key may admit the request)"
                );
                Err(ErrorBody::internal_error())
            }
        }
    }
}

/// `Option<Claims<T>>`: the claims when a JWT admitted the request, else
/// `None`; a token whose claims do not fit `T` is still refused.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequestParts<S> for Claims<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedClaims>()
            .map(deserialise)
            .transpose()
    }
}

fn deserialise<T: DeserializeOwned>(claims: &VerifiedClaims) -> Result<Claims<T>, Response> {
    match T::deserialize(&*claims.0) {
        Ok(value) => Ok(Claims(value)),
        Err(error) => {
            tracing::warn!(
                policy = "jwt",
                outcome = "deny",
                reason = "claims_mismatch",
                sub = claims.get("sub").and_then(|sub| sub.as_str()),
                detail = %error,
                "JWT claims do not fit the handler's claims type"
            );
            let mut response = ErrorBody::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Invalid token: its claims do not fit this endpoint",
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                super::refusal::www_authenticate_invalid(
                    "The token's claims do not fit this endpoint",
                ),
            );
            Err(response)
        }
    }
}
