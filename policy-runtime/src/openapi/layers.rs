//! The policy layers ([`RateLimit`], [`RequireApiKey`], `RequireJwt`) and the
//! default limits ([`DefaultLimits`]) in the document: which operations a
//! layer wraps, said by the code that puts the layer there, never guessed.
//!
//! This module owns the mark a layer leaves on the operations it wraps (an
//! extension, [`MARK`], that [`Engine::document`] reads and removes), naming
//! operations for [`Engine::document_layer`], and its report
//! ([`LayerDocumented`]). What a mark means in the document (security,
//! responses, headers, `x-rate-limit`) is [`super`]'s business, with the
//! handler's own policies, so both are documented together.

use super::{Slot, operation_mut, slots};
use crate::handler_policy::{Check, HandlerPolicy};
use crate::{DefaultLimits, Engine, RateLimit, RequireApiKey};
use std::fmt;
use std::sync::RwLock;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;

/// The extension a layer's mark is kept in until [`Engine::document`]
/// replaces it with what the layer requires and answers.
pub(crate) const MARK: &str = "x-policy-runtime-layers";

/// The mark of the default limits.
const DEFAULTS: &str = "default_limits";

/// The layers' policies marked so far; a mark is `layer:<index>`. Layers are
/// configuration, built a bounded number of times, as their policies are.
static MARKED: RwLock<Vec<&'static HandlerPolicy>> = RwLock::new(Vec::new());

/// What a layer enforces, as a mark or as its policy.
// Public in a private module: named by the sealed trait, by no user.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Enforced {
    /// A policy layer's policy.
    Policy(&'static HandlerPolicy),
    /// The engine's default limits.
    Defaults,
}

impl Enforced {
    /// The mark naming it in an operation's [`MARK`] extension.
    fn mark(self) -> String {
        let Enforced::Policy(policy) = self else {
            return DEFAULTS.to_owned();
        };
        let mut marked = MARKED
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = match marked.iter().position(|known| std::ptr::eq(*known, policy)) {
            Some(index) => index,
            None => {
                marked.push(policy);
                marked.len() - 1
            }
        };
        format!("layer:{index}")
    }

    /// The layer's name in [`super::DocumentedOperation::layers`].
    pub(crate) fn name(self) -> String {
        let Enforced::Policy(policy) = self else {
            return "DefaultLimits".to_owned();
        };
        match policy.checks {
            [Check::RateLimit(spec)] => format!("RateLimit({:?})", spec.scope),
            [Check::ApiKey(_)] => "RequireApiKey".to_owned(),
            _ => "RequireJwt".to_owned(),
        }
    }

    /// What a mark names; `None` for a mark this program did not make.
    fn of_mark(mark: &str) -> Option<Enforced> {
        if mark == DEFAULTS {
            return Some(Enforced::Defaults);
        }
        let index: usize = mark.strip_prefix("layer:")?.parse().ok()?;
        MARKED
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(index)
            .map(|policy| Enforced::Policy(policy))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A layer whose policy can be put in an OpenAPI document: [`RateLimit`],
/// [`RequireApiKey`], `RequireJwt` (feature `jwt`) and [`DefaultLimits`]
/// (from [`Engine::default_limits`]). Used by [`Engine::document_layer`] and
/// `OpenApiRouterExt::policy_layer` (feature `utoipa-axum`); sealed.
///
/// ```rust,standalone_crate
/// use policy_runtime::{PolicyLayer, RateLimit, RequireApiKey};
///
/// fn documentable(_: &impl PolicyLayer) {}
/// documentable(&RateLimit::new("uploads", "20/hour").unwrap());
/// documentable(&RequireApiKey::new());
/// ```
pub trait PolicyLayer: sealed::Sealed {
    /// What the layer enforces.
    #[doc(hidden)]
    fn enforced(&self) -> Enforced;
}

impl sealed::Sealed for RateLimit {}
impl PolicyLayer for RateLimit {
    fn enforced(&self) -> Enforced {
        Enforced::Policy(self.policy())
    }
}

impl sealed::Sealed for RequireApiKey {}
impl PolicyLayer for RequireApiKey {
    fn enforced(&self) -> Enforced {
        Enforced::Policy(self.policy())
    }
}

#[cfg(feature = "jwt")]
impl sealed::Sealed for crate::RequireJwt {}
#[cfg(feature = "jwt")]
impl PolicyLayer for crate::RequireJwt {
    fn enforced(&self) -> Enforced {
        Enforced::Policy(self.policy())
    }
}

impl sealed::Sealed for DefaultLimits {}
impl PolicyLayer for DefaultLimits {
    fn enforced(&self) -> Enforced {
        Enforced::Defaults
    }
}

/// Marks `operation` as wrapped by `enforced`: the layer put on last is the
/// outermost, and its mark is the last.
pub(crate) fn mark(operation: &mut Operation, enforced: Enforced) {
    let mark = enforced.mark();
    let extensions = operation.extensions.get_or_insert_with(Default::default);
    let marks = extensions
        .entry(MARK.to_owned())
        .or_insert_with(|| serde_json::json!([]));
    if let Some(marks) = marks.as_array_mut() {
        marks.push(serde_json::Value::String(mark));
    }
}

/// Marks every operation of `openapi` as wrapped by `enforced`.
#[cfg_attr(not(feature = "utoipa-axum"), allow(dead_code))]
pub(crate) fn mark_all(openapi: &mut OpenApi, enforced: Enforced) {
    for slot in slots(openapi) {
        if let Some(operation) = operation_mut(openapi, &slot) {
            mark(operation, enforced);
        }
    }
}

/// Takes the marks off `operation`: what wraps it, outermost first.
pub(crate) fn take_marks(operation: &mut Operation) -> Vec<Enforced> {
    let Some(extensions) = operation.extensions.as_mut() else {
        return Vec::new();
    };
    let Some(marks) = extensions.remove(MARK) else {
        return Vec::new();
    };
    let mut enforced: Vec<Enforced> = marks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|mark| mark.as_str().and_then(Enforced::of_mark))
        .collect();
    enforced.reverse();
    enforced
}

/// What [`Engine::document_layer`] did: the operations it marked, and the
/// names that matched no operation, or several. Neither is guessed.
///
/// ```rust,standalone_crate
/// use policy_runtime::{Engine, RequireApiKey};
/// use utoipa::openapi::{HttpMethod, OpenApiBuilder, PathItem, PathsBuilder};
/// use utoipa::openapi::path::OperationBuilder;
///
/// let mut openapi = OpenApiBuilder::new()
///     .paths(PathsBuilder::new().path("/admin", PathItem::new(HttpMethod::Get, OperationBuilder::new().build())))
///     .build();
/// let engine = Engine::builder().build().unwrap();
/// let report = engine.document_layer(&mut openapi, &RequireApiKey::new(), ["GET /admin", "POST /admin"]);
/// assert_eq!(report.operations(), ["GET /admin"]);
/// assert_eq!(report.unmatched(), ["POST /admin"]);
/// assert!(!report.is_complete());
/// assert_eq!(report.to_string(), "1 operations marked; `POST /admin` is no operation of the document");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerDocumented {
    operations: Vec<String>,
    unmatched: Vec<String>,
    ambiguous: Vec<(String, Vec<String>)>,
}

impl LayerDocumented {
    /// The operations marked, as `GET /path`, in the order they were named.
    pub fn operations(&self) -> &[String] {
        &self.operations
    }

    /// The names given that are no operation of the document: neither a
    /// method and path it has nor an `operation_id`.
    pub fn unmatched(&self) -> &[String] {
        &self.unmatched
    }

    /// The `operation_id`s given that several operations share, each with
    /// those operations (`GET /path`): name them by method and path instead.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{Engine, RateLimit};
    /// use utoipa::openapi::{HttpMethod, OpenApiBuilder, PathItem, PathsBuilder};
    /// use utoipa::openapi::path::OperationBuilder;
    ///
    /// let list = || OperationBuilder::new().operation_id(Some("list")).build();
    /// let paths = PathsBuilder::new()
    ///     .path("/a", PathItem::new(HttpMethod::Get, list()))
    ///     .path("/b", PathItem::new(HttpMethod::Get, list()));
    /// let mut openapi = OpenApiBuilder::new().paths(paths).build();
    /// let limit = RateLimit::new("lists", "10/minute").unwrap();
    /// let report = Engine::builder().build().unwrap().document_layer(&mut openapi, &limit, ["list"]);
    /// assert_eq!(report.ambiguous(), [("list".to_owned(), vec!["GET /a".to_owned(), "GET /b".to_owned()])]);
    /// assert!(report.operations().is_empty());
    /// ```
    pub fn ambiguous(&self) -> &[(String, Vec<String>)] {
        &self.ambiguous
    }

    /// Whether every name given was exactly one operation.
    pub fn is_complete(&self) -> bool {
        self.unmatched.is_empty() && self.ambiguous.is_empty()
    }
}

impl fmt::Display for LayerDocumented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} operations marked", self.operations.len())?;
        for name in &self.unmatched {
            write!(f, "; `{name}` is no operation of the document")?;
        }
        for (name, candidates) in &self.ambiguous {
            write!(f, "; `{name}` could be any of {}", candidates.join(", "))?;
        }
        Ok(())
    }
}

/// The operations `name` is: `GET /path` (any case of the method) names the
/// one operation of that method and path; anything else is an `operation_id`.
fn named<'s>(slots: &'s [Slot], name: &str) -> Vec<&'s Slot> {
    if let Some((method, path)) = name.trim().split_once(' ') {
        let by_route: Vec<&Slot> = slots
            .iter()
            .filter(|slot| slot.method.eq_ignore_ascii_case(method) && slot.path == path.trim())
            .collect();
        if !by_route.is_empty() {
            return by_route;
        }
    }
    slots
        .iter()
        .filter(|slot| slot.operation_id.as_deref() == Some(name))
        .collect()
}

impl Engine {
    /// Says which operations of `openapi` a policy layer wraps, for a plain
    /// axum `Router` (with `utoipa-axum`'s `OpenApiRouter`, its
    /// `OpenApiRouterExt` does it as it puts the layer on). Each name is
    /// `"GET /path"` (the method and the path as the document has them) or
    /// an `operation_id`; a name that is no operation, or an `operation_id`
    /// several share, is reported in the returned [`LayerDocumented`] and
    /// marks nothing.
    ///
    /// The marked operations are documented by [`Engine::document`], with
    /// their handlers' own policies: call `document_layer` for every layer
    /// first, in the order the router puts the layers on, then `document`
    /// once. A layer adds what its attribute would: security requirements,
    /// 401/403/429/400 responses with the exact bodies it answers, the
    /// rate-limit headers and `x-rate-limit`; [`DefaultLimits`] adds the
    /// engine's default limits (`x-rate-limit` entries ending in
    /// `(default limits)`).
    ///
    /// ```rust,standalone_crate
    /// use axum::{routing::get, Router};
    /// use policy_runtime::{Engine, RateLimit};
    /// use utoipa::OpenApi;
    ///
    /// #[utoipa::path(get, path = "/items", responses((status = 200, body = String)))]
    /// async fn items() -> &'static str {
    ///     "items"
    /// }
    ///
    /// #[derive(OpenApi)]
    /// #[openapi(paths(items))]
    /// struct ApiDoc;
    ///
    /// let engine = Engine::builder().build().unwrap();
    /// let limit = RateLimit::new("items", "20/hour").unwrap();
    /// let app: Router = Router::new().route("/items", get(items)).route_layer(limit).layer(engine.clone());
    ///
    /// let mut openapi = ApiDoc::openapi();
    /// let marked = engine.document_layer(&mut openapi, &limit, ["GET /items"]);
    /// assert!(marked.is_complete(), "{marked}");
    /// engine.document(&mut openapi);
    ///
    /// let json = serde_json::to_value(&openapi).unwrap();
    /// let operation = &json["paths"]["/items"]["get"];
    /// assert_eq!(operation["x-rate-limit"], serde_json::json!(["20 per 1 hour, per client IP"]));
    /// assert_eq!(
    ///     operation["responses"]["429"]["content"]["application/json"]["examples"]["RATE_LIMITED"]["value"],
    ///     serde_json::json!({"error": "Too Many Requests: 20 per 1 hour", "code": "RATE_LIMITED"})
    /// );
    /// # drop(app);
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
    pub fn document_layer<I, N>(
        &self,
        openapi: &mut OpenApi,
        layer: &impl PolicyLayer,
        operations: I,
    ) -> LayerDocumented
    where
        I: IntoIterator<Item = N>,
        N: AsRef<str>,
    {
        let enforced = layer.enforced();
        let slots = slots(openapi);
        let mut report = LayerDocumented::default();
        for name in operations {
            let name = name.as_ref();
            match named(&slots, name).as_slice() {
                [] => report.unmatched.push(name.to_owned()),
                [slot] => {
                    if let Some(operation) = operation_mut(openapi, slot) {
                        mark(operation, enforced);
                        report.operations.push(slot.name());
                    }
                }
                several => report.ambiguous.push((
                    name.to_owned(),
                    several.iter().map(|slot| slot.name()).collect(),
                )),
            }
        }
        report
    }
}
