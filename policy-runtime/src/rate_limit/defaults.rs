//! Default limits for routes whose handler has no `#[rate_limit]` of its own.
//!
//! This module owns the route book: which routes (method and matched path)
//! have a policy of their own and which do not. axum does not tell a layer
//! which handler a route runs, so the book is learned: a policy-wrapped
//! handler's guard claims the [`RouteProbe`] that the engine layer puts on a
//! request to a route it does not know yet. A route whose first request is
//! not claimed has no policy of its own, and the defaults apply to it from
//! then on, before its handler runs.

use axum::extract::MatchedPath;
use axum::http::{Method, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// What the book knows of a route.
#[derive(Clone, Debug)]
pub(crate) enum Route {
    /// The handler has policy attributes: they replace the defaults.
    OwnPolicy,
    /// No policy of its own: the defaults apply, in this scope.
    Defaults(Arc<str>),
}

/// Put on a request to a route the book does not know; the guard claims it.
#[derive(Clone, Default)]
pub(crate) struct RouteProbe(Arc<AtomicBool>);

impl RouteProbe {
    pub(crate) fn claim(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn claimed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The routes seen so far, by matched path and method.
#[derive(Default)]
pub(crate) struct RouteBook {
    routes: RwLock<HashMap<Box<str>, HashMap<Method, Route>>>,
}

/// A route the book does not know yet: what to record it under.
pub(crate) struct UnknownRoute {
    method: Method,
    path: Box<str>,
}

impl RouteBook {
    /// The route of a request, or, when it is not known yet, the key to
    /// record it under (the only case that allocates).
    pub(crate) fn lookup<B>(&self, request: &Request<B>) -> Result<Route, UnknownRoute> {
        let path: &str = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("<fallback>");
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        match routes
            .get(path)
            .and_then(|methods| methods.get(request.method()))
        {
            Some(route) => Ok(route.clone()),
            None => Err(UnknownRoute {
                method: request.method().clone(),
                path: Box::from(path),
            }),
        }
    }

    /// Records what the first request to a route showed.
    pub(crate) fn learn(&self, route: UnknownRoute, own_policy: bool) -> Route {
        let learned = if own_policy {
            Route::OwnPolicy
        } else {
            Route::Defaults(Arc::from(format!(
                "default:{} {}",
                route.method, route.path
            )))
        };
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(route.path)
            .or_default()
            .entry(route.method)
            .or_insert(learned)
            .clone()
    }
}
