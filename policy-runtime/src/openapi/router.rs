//! The policy layers and the default limits on a `utoipa-axum`
//! [`OpenApiRouter`] (feature `utoipa-axum`): one call puts the layer on the
//! routes the router holds and marks the operations its document holds for
//! them, so that the two cannot disagree.
//!
//! This module owns [`OpenApiRouterExt`] only; what a mark documents is
//! [`super::layers`]' and [`super`]'s business.

use super::layers::{PolicyLayer, mark_all};
use crate::{DefaultLimits, Engine};
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::Route;
use std::convert::Infallible;
use tower::{Layer, Service};
use utoipa_axum::router::OpenApiRouter;

mod sealed {
    pub trait Sealed {}
}

impl<S> sealed::Sealed for OpenApiRouter<S> {}

/// Puts a policy layer or the default limits on the routes an
/// [`OpenApiRouter`] holds and documents them on the operations its
/// document holds at that point, as `route_layer` does for the routes: the
/// routes and operations added after the call are not wrapped, nor marked.
///
/// A route added with `.routes(routes!(handler))` is both a route and an
/// operation, so the document says what the router does. A route added with
/// `.route(..)` has no operation, and an operation from the document the
/// router started with ([`OpenApiRouter::with_openapi`]) no route: keep
/// those out of routers that take layers. [`Engine::document`], called once
/// on the finished document, writes what the marks mean, with the handlers'
/// own policies. Sealed.
///
/// ```rust,standalone_crate
/// use policy_runtime::{Engine, OpenApiRouterExt, RequireApiKey};
/// use utoipa_axum::{router::OpenApiRouter, routes};
///
/// #[utoipa::path(get, path = "/admin/users", responses((status = 200, body = String)))]
/// async fn users() -> &'static str {
///     "users"
/// }
///
/// #[utoipa::path(get, path = "/about", responses((status = 200, body = String)))]
/// async fn about() -> &'static str {
///     "about"
/// }
///
/// let engine = Engine::builder().default_limits("50/hour").build().unwrap();
/// let (router, mut openapi) = OpenApiRouter::<()>::new()
///     .routes(routes!(users))
///     .policy_layer(RequireApiKey::scope("admin").unwrap()) // `/admin/users` only
///     .routes(routes!(about))
///     .default_limits(&engine) // both routes above
///     .split_for_parts();
/// engine.document(&mut openapi);
///
/// let json = serde_json::to_value(&openapi).unwrap();
/// let users = &json["paths"]["/admin/users"]["get"];
/// assert_eq!(users["security"][0]["api_key"][0], "admin");
/// assert_eq!(users["x-rate-limit"], serde_json::json!(["50 per 1 hour, per client IP (default limits)"]));
/// let about = &json["paths"]["/about"]["get"];
/// assert!(about["security"].is_null());
/// assert!(about["responses"]["429"]["headers"]["Retry-After"].is_object());
/// # drop(router);
/// ```
pub trait OpenApiRouterExt<S>: sealed::Sealed + Sized {
    /// `route_layer(layer)` for a [`RateLimit`](crate::RateLimit),
    /// [`RequireApiKey`](crate::RequireApiKey) or `RequireJwt`, marking every
    /// operation the router's document holds as wrapped by it. Panics, as
    /// `route_layer` does, when the router has no route yet.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{Engine, OpenApiRouterExt, RateLimit};
    /// use utoipa_axum::{router::OpenApiRouter, routes};
    ///
    /// #[utoipa::path(post, path = "/upload", responses((status = 200, body = String)))]
    /// async fn upload() -> &'static str {
    ///     "stored"
    /// }
    ///
    /// let (_router, mut openapi) = OpenApiRouter::<()>::new()
    ///     .routes(routes!(upload))
    ///     .policy_layer(RateLimit::builder("uploads", "20/hour").per_header("x-user-id").build().unwrap())
    ///     .split_for_parts();
    /// Engine::builder().build().unwrap().document(&mut openapi);
    /// let json = serde_json::to_value(&openapi).unwrap();
    /// let upload = &json["paths"]["/upload"]["post"];
    /// assert_eq!(upload["x-rate-limit"], serde_json::json!(["20 per 1 hour, per `x-user-id` header"]));
    /// assert_eq!(
    ///     upload["responses"]["400"]["content"]["application/json"]["examples"]["MISSING_RATE_LIMIT_KEY"]["value"],
    ///     serde_json::json!({"error": "This endpoint needs the `x-user-id` header", "code": "MISSING_RATE_LIMIT_KEY"})
    /// );
    /// ```
    fn policy_layer<L>(self, layer: L) -> Self
    where
        L: PolicyLayer + Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static;

    /// `route_layer(engine.default_limits())`, marking every operation the
    /// router's document holds as under the default limits. A handler with
    /// a limit of its own is charged the defaults too under this layer (the
    /// engine logs that as a composition error), and the document says so:
    /// add such routes after this call. Panics, as `route_layer` does, when
    /// the router has no route yet.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{Engine, OpenApiRouterExt};
    /// use utoipa_axum::{router::OpenApiRouter, routes};
    ///
    /// #[utoipa::path(get, path = "/items", responses((status = 200, body = String)))]
    /// async fn items() -> &'static str {
    ///     "items"
    /// }
    ///
    /// let engine = Engine::builder().default_limits("200/day; 50/hour").build().unwrap();
    /// let (_router, mut openapi) = OpenApiRouter::<()>::new()
    ///     .routes(routes!(items))
    ///     .default_limits(&engine)
    ///     .split_for_parts();
    /// engine.document(&mut openapi);
    /// let json = serde_json::to_value(&openapi).unwrap();
    /// let examples = &json["paths"]["/items"]["get"]["responses"]["429"]["content"]["application/json"]["examples"];
    /// assert_eq!(examples["RATE_LIMITED_2"]["value"]["error"], "Too Many Requests: 50 per 1 hour");
    /// ```
    fn default_limits(self, engine: &Engine) -> Self;
}

impl<S> OpenApiRouterExt<S> for OpenApiRouter<S>
where
    S: Send + Sync + Clone + 'static,
{
    fn policy_layer<L>(self, layer: L) -> Self
    where
        L: PolicyLayer + Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        let enforced = layer.enforced();
        let mut router = self.route_layer(layer);
        mark_all(router.get_openapi_mut(), enforced);
        router
    }

    fn default_limits(self, engine: &Engine) -> Self {
        let layer: DefaultLimits = engine.default_limits();
        self.policy_layer(layer)
    }
}
