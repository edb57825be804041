//! [`ApiKeyId`]: who a request authenticated as, for handlers and logs.
//!
//! This module owns the identity type and its extractor. It holds a key's
//! name, never its secret.

use crate::ErrorBody;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::Response;
use std::fmt;
use std::sync::Arc;

/// The name of the API key a request presented.
///
/// `#[require_api_key]` puts it on the request, so the handler can take it as
/// an argument. It carries the key's configured name, never the key.
///
/// A handler with policy attributes that takes `ApiKeyId` but has no
/// `#[require_api_key]` is a compile error. A handler the macros cannot see
/// (a plain handler behind [`crate::RequireApiKey`], or one without any
/// policy) gets the identity when a key check admitted its request; taking
/// plain `ApiKeyId` where none did answers a 500 JSON error and logs why,
/// while `Option<ApiKeyId>` is `None` there.
///
/// ```rust,standalone_crate
/// use axum::{body::Body, extract::connect_info::MockConnectInfo, http::Request, routing::get, Router};
/// use policy_runtime::{require_api_key, ApiKeyId, Engine};
/// use std::net::SocketAddr;
/// use tower::ServiceExt;
///
/// #[require_api_key]
/// async fn whoami(key: ApiKeyId) -> String {
///     format!("hello, {}", key.name())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let app = Router::new()
///         .route("/me", get(whoami))
///         .layer(Engine::builder().api_key("mobile-app", "mobile-app-key-0123456789").build()?)
///         .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
///     let request = Request::get("/me").header("x-api-key", "mobile-app-key-0123456789");
///     let response = app.oneshot(request.body(Body::empty())?).await?;
///     assert_eq!(axum::body::to_bytes(response.into_body(), 1024).await?, "hello, mobile-app");
///     Ok(())
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyId(Arc<str>);

impl ApiKeyId {
    pub(crate) fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub(crate) fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The key's configured name, e.g. `mobile-app` or `API_KEY_1`.
    ///
    /// ```
    /// let mut keys = policy_runtime::ApiKeyStore::new();
    /// keys.insert("mobile-app", "a-long-mobile-app-key").unwrap();
    /// assert_eq!(keys.verify(b"a-long-mobile-app-key").unwrap().name(), "mobile-app");
    /// ```
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKeyId").field(&&*self.0).finish()
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiKeyId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<ApiKeyId>() {
            Some(id) => Ok(id.clone()),
            None => {
                tracing::error!(
                    "a handler takes `ApiKeyId` but no `#[require_api_key]` admitted its request; add the attribute \
                     to the handler, or take `Option<ApiKeyId>` where a key is optional"
                );
                Err(ErrorBody::internal_error())
            }
        }
    }
}

/// `Option<ApiKeyId>`: the key's identity when a `#[require_api_key]` (or
/// [`crate::RequireApiKey`]) admitted the request, else `None`; never a
/// refusal.
impl<S: Send + Sync> OptionalFromRequestParts<S> for ApiKeyId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<ApiKeyId>().cloned())
    }
}
