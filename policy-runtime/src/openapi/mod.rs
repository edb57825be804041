//! The policies in an OpenAPI document (feature `utoipa`): what each
//! policy-wrapped handler requires and answers, added to the operation utoipa
//! made of it by one call, [`Engine::document`].
//!
//! This module owns matching operations to handlers ([`link`] records the
//! link when `#[utoipa::path]` sits below the policy attributes; else an
//! operation is the handler's when its `operation_id` is the handler's name
//! and no other handler or operation claims it), what is added to an
//! operation ([`security`]: schemes and requirements; [`responses`]: error
//! responses in the engine's format, rate-limit headers), the report of what
//! could not be matched ([`Documented`]), the policy layers and default
//! limits marked on the operations they wrap ([`layers`], and `router`
//! for `utoipa-axum`), and `#[api_error]` enums as utoipa responses
//! ([`api_error`]). It never changes what a handler does.

pub(crate) mod api_error;
mod layers;
pub(crate) mod link;
mod responses;
#[cfg(feature = "utoipa-axum")]
pub(crate) mod router;
mod security;

pub use layers::{LayerDocumented, PolicyLayer};

use crate::Engine;
use crate::ErrorBody;
use crate::handler_policy::{Check, HandlerPolicy, KeySource, Limits, OnMissingKey};
use axum::http::StatusCode;
use layers::Enforced;
use responses::{ERROR_SCHEMA, Renderer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::{Components, OpenApi, RefOr};

/// What [`Engine::document`] did: the operations it documented, and the
/// handlers it could not match to one operation.
///
/// A handler with policies that the document does not mention is
/// [`missing`](Documented::missing), and one whose name fits several
/// operations is [`ambiguous`](Documented::ambiguous): neither is guessed.
///
/// ```rust,standalone_crate
/// use policy_runtime::{rate_limit, Engine};
/// use utoipa::openapi::{InfoBuilder, OpenApiBuilder};
///
/// #[rate_limit("20/hour")]
/// async fn undocumented() -> &'static str {
///     "no #[utoipa::path]"
/// }
///
/// let engine = Engine::builder().build().unwrap();
/// let mut openapi = OpenApiBuilder::new().info(InfoBuilder::new().title("api").version("1").build()).build();
/// let report = engine.document(&mut openapi);
/// assert!(!report.is_complete());
/// assert!(report.missing().iter().any(|handler| handler.ends_with("::undocumented")));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Documented {
    operations: Vec<DocumentedOperation>,
    missing: Vec<&'static str>,
    ambiguous: Vec<(&'static str, Vec<String>)>,
}

/// One operation a handler's policies, or layers, were added to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedOperation {
    /// The handler's module path and name; empty when only layers were
    /// documented on the operation (a handler without policy attributes).
    pub handler: &'static str,
    /// The method, upper case, as `GET`.
    pub method: &'static str,
    /// The path, as the document has it.
    pub path: String,
    /// `true` when the operation was found by the handler's name (its
    /// `#[utoipa::path]` sat above the policy attributes), `false` when by
    /// the link the policy attributes recorded; `false` too when there is
    /// no handler.
    pub by_name: bool,
    /// The layers documented on the operation, outermost first, as
    /// `RateLimit("uploads")`, `RequireApiKey`, `RequireJwt` or
    /// `DefaultLimits`: those marked by [`Engine::document_layer`] or
    /// `OpenApiRouterExt` (feature `utoipa-axum`).
    pub layers: Vec<String>,
}

impl Documented {
    /// The operations documented, in the document's order.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{rate_limit, Engine};
    /// use utoipa::OpenApi;
    ///
    /// #[utoipa::path(get, path = "/words/{id}")] // above: found by its name
    /// #[rate_limit("50/hour")]
    /// async fn word() -> &'static str {
    ///     "hello"
    /// }
    ///
    /// #[derive(OpenApi)]
    /// #[openapi(paths(word))]
    /// struct ApiDoc;
    ///
    /// let mut openapi = ApiDoc::openapi();
    /// let report = Engine::builder().build().unwrap().document(&mut openapi);
    /// let operation = &report.operations()[0];
    /// assert_eq!((operation.method, operation.path.as_str()), ("GET", "/words/{id}"));
    /// assert!(operation.handler.ends_with("::word"));
    /// assert!(operation.by_name);
    /// ```
    pub fn operations(&self) -> &[DocumentedOperation] {
        &self.operations
    }

    /// The handlers with policies that no operation of the document is, by
    /// module path and name, sorted: add their `#[utoipa::path]` to the
    /// document. See [`Documented`].
    pub fn missing(&self) -> &[&'static str] {
        &self.missing
    }

    /// The handlers whose name several operations (or several handlers)
    /// share, sorted, each with the operations it could be (`GET /path`):
    /// put its `#[utoipa::path]` below the policy attributes, so the link is
    /// recorded, or give it a unique `operation_id`.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{rate_limit, Engine};
    /// use utoipa::openapi::{HttpMethod, OpenApiBuilder, PathItem, PathsBuilder};
    /// use utoipa::openapi::path::OperationBuilder;
    ///
    /// #[rate_limit("50/hour")]
    /// async fn list() -> &'static str {
    ///     "items"
    /// }
    ///
    /// // Two operations with the id `list`: which one is the handler's?
    /// let list = || OperationBuilder::new().operation_id(Some("list")).build();
    /// let paths = PathsBuilder::new()
    ///     .path("/a", PathItem::new(HttpMethod::Get, list()))
    ///     .path("/b", PathItem::new(HttpMethod::Get, list()));
    /// let mut openapi = OpenApiBuilder::new().paths(paths).build();
    /// let report = Engine::builder().build().unwrap().document(&mut openapi);
    /// let (handler, candidates) = &report.ambiguous()[0];
    /// assert!(handler.ends_with("::list"));
    /// assert_eq!(candidates, &["GET /a", "GET /b"]);
    /// assert!(report.operations().is_empty());
    /// ```
    pub fn ambiguous(&self) -> &[(&'static str, Vec<String>)] {
        &self.ambiguous
    }

    /// Whether every handler with policies was documented: none
    /// [`missing`](Documented::missing) nor
    /// [`ambiguous`](Documented::ambiguous). See [`Engine::document`].
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.ambiguous.is_empty()
    }
}

impl fmt::Display for Documented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} operations documented", self.operations.len())?;
        for handler in &self.missing {
            write!(f, "; `{handler}` is in no operation of the document")?;
        }
        for (handler, candidates) in &self.ambiguous {
            write!(f, "; `{handler}` could be any of {}", candidates.join(", "))?;
        }
        Ok(())
    }
}

/// The operation slots of a path item, with their methods.
fn operations(item: &mut PathItem) -> [(&'static str, HttpMethod, &mut Option<Operation>); 8] {
    [
        ("GET", HttpMethod::Get, &mut item.get),
        ("PUT", HttpMethod::Put, &mut item.put),
        ("POST", HttpMethod::Post, &mut item.post),
        ("DELETE", HttpMethod::Delete, &mut item.delete),
        ("OPTIONS", HttpMethod::Options, &mut item.options),
        ("HEAD", HttpMethod::Head, &mut item.head),
        ("PATCH", HttpMethod::Patch, &mut item.patch),
        ("TRACE", HttpMethod::Trace, &mut item.trace),
    ]
}

/// An operation of the document, by position.
#[derive(Clone)]
struct Slot {
    path: String,
    method: &'static str,
    http_method: HttpMethod,
    operation_id: Option<String>,
}

impl Slot {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl Engine {
    /// Adds what the policies of every handler, and the layers marked on
    /// operations, require and answer to the operations of `openapi`: the
    /// one call that documents them.
    ///
    /// For each policy-wrapped handler's operation, and each operation a
    /// policy layer or the default limits wrap (marked by
    /// [`Engine::document_layer`] or `OpenApiRouterExt`, feature
    /// `utoipa-axum`), with all that runs for it together:
    ///
    /// - **security**: the schemes `api_key` (`X-API-Key` header) and
    ///   `api_key_bearer` (HTTP bearer) for `#[require_api_key]` and
    ///   [`RequireApiKey`](crate::RequireApiKey), `jwt` (HTTP bearer, format
    ///   `JWT`) for `#[require_jwt]` and `RequireJwt`, and the operation's
    ///   requirements with their scopes (a layer's and the handler's must
    ///   both be met, so they combine in each requirement);
    /// - **responses**, each with the schema of the engine's
    ///   [`ErrorFormat`](crate::ErrorFormat) (component `PolicyError`; the
    ///   `problem` format as `application/problem+json`) and examples of the
    ///   exact bodies: 401 (with `WWW-Authenticate`), 403 where scopes
    ///   apply, 429 where a rate limit, the default limits or the lockout of
    ///   failed keys and tokens applies (with `Retry-After`; with an example
    ///   `PENALTY_BOX` when the engine has a [`Penalty`](crate::Penalty)),
    ///   400 `MISSING_RATE_LIMIT_KEY` where a limit's key (a header, a JWT's
    ///   subject or claim, an API key no check before it admitted) can be
    ///   missing, the answer of a key function (`key = my_fn`) to a request
    ///   with no header under its own status and code, 413 where
    ///   `#[body_limit]` or the engine's body limit applies, 504 where
    ///   `#[timeout]` or the engine's timeout applies. A status the operation
    ///   already documents is kept as written;
    /// - **headers**: the rate-limit headers of the engine's
    ///   [`HeaderStyle`](crate::HeaderStyle) on every response of a
    ///   rate-limited operation;
    /// - **`x-rate-limit`**: the operation's quotas in words, as
    ///   `["20 per 1 hour, per client IP"]` or `["30 per 1 minute, burst 60,
    ///   per API key"]` (`strict` too, and the cost when over 1); the default
    ///   limits as `"50 per 1 hour, per client IP (default limits)"`;
    ///   `["no limit (exempt)"]` for `#[rate_limit(exempt)]`.
    ///
    /// The default limits are documented where the runtime charges them: on
    /// the operations [`DefaultLimits`](crate::DefaultLimits) wraps (a
    /// handler with a limit of its own under it is charged both), and on a
    /// handler with `#[rate_limit(.., add_to_defaults)]` wherever it is.
    ///
    /// `#[api_error]` responses (`#[utoipa::path(responses(AppError))]`) of
    /// every operation are rendered again in the engine's format.
    ///
    /// **Matching**: with `#[utoipa::path]` below the policy attributes, the
    /// attributes record which operation is the handler's; above them, the
    /// operation whose `operation_id` is the handler's function name is, when
    /// it is the only one. A handler the document does not mention, or
    /// whose name fits several operations, is reported in the returned
    /// [`Documented`] and left alone. Call it once, when the document is
    /// complete (after `OpenApiRouter::split_for_parts` or `ApiDoc::openapi()`)
    /// and every layer is marked; it takes the marks off.
    ///
    /// ```rust,standalone_crate
    /// use policy_runtime::{rate_limit, require_api_key, Engine};
    /// use utoipa::OpenApi;
    ///
    /// #[rate_limit("20/hour")]
    /// #[require_api_key(scope = "reports:read")]
    /// #[utoipa::path(get, path = "/reports", responses((status = 200, body = String)))]
    /// async fn reports() -> &'static str {
    ///     "reports"
    /// }
    ///
    /// #[derive(OpenApi)]
    /// #[openapi(paths(reports))]
    /// struct ApiDoc;
    ///
    /// let engine = Engine::builder().api_key("ops", "ops-key-0123456789abcdef").build().unwrap();
    /// let mut openapi = ApiDoc::openapi();
    /// let report = engine.document(&mut openapi);
    /// assert_eq!(report.operations()[0].path, "/reports");
    ///
    /// let json = serde_json::to_value(&openapi).unwrap();
    /// let operation = &json["paths"]["/reports"]["get"];
    /// assert_eq!(operation["security"][0]["api_key"][0], "reports:read");
    /// assert_eq!(operation["x-rate-limit"][0], "20 per 1 hour, per client IP");
    /// let refused = &operation["responses"]["429"]["content"]["application/json"];
    /// assert_eq!(
    ///     refused["examples"]["RATE_LIMITED"]["value"],
    ///     serde_json::json!({"error": "Too Many Requests: 20 per 1 hour", "code": "RATE_LIMITED"})
    /// );
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "utoipa")))]
    pub fn document(&self, openapi: &mut OpenApi) -> Documented {
        let slots = slots(openapi);
        let mut report = Documented::default();
        let mut targets: Vec<(&'static HandlerPolicy, Vec<Slot>, bool)> = Vec::new();
        let handlers = crate::handler_policy::registered();
        let linked: Vec<(&'static HandlerPolicy, link::Linked)> = handlers
            .iter()
            .filter_map(|policy| link::link_of(policy).map(|linked| (*policy, linked)))
            .collect();
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        for (policy, linked) in &linked {
            let candidates: Vec<&Slot> = slots
                .iter()
                .filter(|slot| {
                    slot.operation_id == linked.operation_id
                        && linked.methods.contains(&slot.http_method)
                })
                .collect();
            // A router that nests the handler prefixes its path.
            let narrowed: Vec<&Slot> = if one_path(&candidates) {
                candidates.clone()
            } else {
                candidates
                    .iter()
                    .copied()
                    .filter(|slot| slot.path.ends_with(&linked.path))
                    .collect()
            };
            decide(
                policy,
                &candidates,
                &narrowed,
                false,
                &mut targets,
                &mut report,
            );
            claimed.extend(narrowed.iter().map(|slot| slot.name()));
        }
        for policy in &handlers {
            if linked
                .iter()
                .any(|(other, _)| std::ptr::eq(*other, *policy))
            {
                continue;
            }
            let name = short_name(policy.handler);
            let namesakes = handlers
                .iter()
                .filter(|other| {
                    short_name(other.handler) == name
                        && !linked
                            .iter()
                            .any(|(linked, _)| std::ptr::eq(*linked, **other))
                })
                .count();
            let candidates: Vec<&Slot> = slots
                .iter()
                .filter(|slot| {
                    slot.operation_id.as_deref() == Some(name) && !claimed.contains(&slot.name())
                })
                .collect();
            if namesakes > 1 && !candidates.is_empty() {
                report.ambiguous.push((
                    policy.handler,
                    candidates.iter().map(|slot| slot.name()).collect(),
                ));
                continue;
            }
            decide(
                policy,
                &candidates,
                &candidates,
                true,
                &mut targets,
                &mut report,
            );
        }

        let renderer = Renderer {
            format: self.error_format(),
            environment: self.environment(),
        };
        let mut schemes: BTreeSet<&'static str> = BTreeSet::new();
        let mut uses_errors = false;
        // Each operation with a handler's policies, or layers marked on it,
        // or both: documented once, with all of them.
        for slot in &slots {
            let handler = targets.iter().find_map(|(policy, slots, by_name)| {
                slots
                    .iter()
                    .any(|target| target.path == slot.path && target.method == slot.method)
                    .then_some((*policy, *by_name))
            });
            let Some(operation) = operation_mut(openapi, slot) else {
                continue;
            };
            let layers = layers::take_marks(operation);
            if handler.is_none() && layers.is_empty() {
                continue;
            }
            let added = self.document_operation(
                handler.map(|(policy, _)| policy),
                &layers,
                operation,
                slot,
                &renderer,
            );
            schemes.extend(added.schemes);
            uses_errors |= added.errors;
            report.operations.push(DocumentedOperation {
                handler: handler.map_or("", |(policy, _)| policy.handler),
                method: slot.method,
                path: slot.path.clone(),
                by_name: handler.is_some_and(|(_, by_name)| by_name),
                layers: layers.iter().map(|layer| layer.name()).collect(),
            });
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (_, _, operation) in operations(item) {
                let Some(operation) = operation else { continue };
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        uses_errors |= api_error::render_again(&renderer, response, path);
                    }
                }
            }
        }
        if uses_errors || !schemes.is_empty() {
            let components = openapi.components.get_or_insert_with(Components::default);
            if uses_errors {
                components.schemas.insert(
                    ERROR_SCHEMA.to_owned(),
                    RefOr::T(responses::error_schema(self.error_format())),
                );
            }
            for scheme in schemes {
                components
                    .security_schemes
                    .insert(scheme.to_owned(), security::scheme(scheme));
            }
        }
        report.missing.sort_unstable();
        report.ambiguous.sort_unstable();
        report
    }

    /// Adds one operation's policies to it: its handler's, and those of the
    /// layers that wrap it (outermost first), as the runtime runs them.
    fn document_operation(
        &self,
        handler: Option<&'static HandlerPolicy>,
        layers: &[Enforced],
        operation: &mut Operation,
        slot: &Slot,
        renderer: &Renderer<'_>,
    ) -> Added {
        let path = slot.path.as_str();
        let mut added = Added::default();
        let defaults = self.inner.rate_limits.config.defaults.as_deref();
        // What runs, in order: the layers' checks, then the handler's. A
        // handler with `add_to_defaults` that no default-limits layer wraps
        // charges the defaults itself.
        let mut steps: Vec<Step<'_>> = Vec::new();
        for layer in layers {
            match layer {
                Enforced::Policy(policy) => steps.extend(policy.checks.iter().map(Step::Check)),
                Enforced::Defaults => steps.extend(defaults.map(Step::Defaults)),
            }
        }
        if let Some(policy) = handler {
            if crate::engine::adds_to_defaults(policy)
                && !layers
                    .iter()
                    .any(|layer| matches!(layer, Enforced::Defaults))
            {
                steps.extend(defaults.map(Step::Defaults));
            }
            steps.extend(policy.checks.iter().map(Step::Check));
        }

        let checks: Vec<Check> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Check(check) => Some(credential_only(check)),
                Step::Defaults(_) => None,
            })
            .flatten()
            .collect();
        let requirements = security::requirements(&checks);
        for requirement in &requirements {
            added
                .schemes
                .extend(requirement.iter().map(|(scheme, _)| *scheme));
        }
        if !requirements.is_empty() {
            operation.security = Some(requirements.iter().map(security::to_utoipa).collect());
        }

        let mut unauthorized: Vec<(String, ErrorBody)> = Vec::new();
        let mut forbidden: Vec<(String, ErrorBody)> = Vec::new();
        let mut too_many: Vec<(String, ErrorBody)> = Vec::new();
        // The refusals before counting, by status: a missing key (400) and
        // what key functions answer.
        let mut refused_keys: BTreeMap<u16, Vec<(String, ErrorBody)>> = BTreeMap::new();
        let mut missing_key = false;
        let mut key_function = false;
        let mut quotas_in_words: Vec<String> = Vec::new();
        let mut rate_limited = false;
        let mut exempt = false;
        let mut key_known = false;
        let body = |status: StatusCode, code: &'static str, message: String| {
            ErrorBody::new(status, code, message)
        };
        let refuse_quota = |too_many: &mut Vec<(String, ErrorBody)>, quota: &crate::Quota| {
            let message = format!("Too Many Requests: {quota}");
            if !too_many.iter().any(|(_, body)| body.message() == message) {
                too_many.push((
                    String::new(),
                    body(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message),
                ));
            }
        };
        for step in &steps {
            let check = match step {
                Step::Defaults(quotas) => {
                    rate_limited = true;
                    for quota in *quotas {
                        quotas_in_words.push(format!(
                            "{}, per client IP (default limits)",
                            quota_in_words(quota)
                        ));
                        refuse_quota(&mut too_many, quota);
                    }
                    continue;
                }
                Step::Check(check) => *check,
            };
            let (api_key, jwt, requirement) = match check {
                Check::ApiKey(requirement) => (true, false, Some(requirement)),
                Check::Jwt(requirement) => (false, true, Some(requirement)),
                Check::ApiKeyOrJwt(requirement) => (true, true, Some(requirement)),
                Check::Exempt => {
                    exempt = true;
                    (false, false, None)
                }
                Check::RateLimit(spec) => {
                    rate_limited = true;
                    let quotas: &[crate::Quota] = match spec.limits {
                        Limits::Fixed(quotas) => quotas,
                        Limits::Named(name) => self
                            .inner
                            .rate_limits
                            .config
                            .named(name)
                            .unwrap_or_default(),
                    };
                    let key = key_in_words(&spec.key);
                    for quota in quotas {
                        let mut words = quota_in_words(quota);
                        words.push_str(&format!(", per {key}"));
                        if spec.cost > 1 {
                            words.push_str(&format!(", each request counting {}", spec.cost));
                        }
                        quotas_in_words.push(words);
                        refuse_quota(&mut too_many, quota);
                    }
                    if let Some(message) =
                        missing_key_message(&spec.key, spec.on_missing, key_known)
                    {
                        missing_key = true;
                        add_example(
                            refused_keys.entry(400).or_default(),
                            "MISSING_RATE_LIMIT_KEY".to_owned(),
                            body(StatusCode::BAD_REQUEST, "MISSING_RATE_LIMIT_KEY", message),
                        );
                    }
                    if let KeySource::Custom(key_of) = spec.key {
                        // What the function answers a request to this
                        // operation with no header: the runtime's refusal.
                        if let Err(refusal) = key_of(&bare_request(slot)) {
                            key_function = true;
                            add_example(
                                refused_keys.entry(refusal.status().as_u16()).or_default(),
                                refusal.code().to_owned(),
                                refusal,
                            );
                        }
                    }
                    (false, false, None)
                }
            };
            if api_key {
                unauthorized.push((
                    "missing_api_key".to_owned(),
                    body(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "Missing API key".to_owned(),
                    ),
                ));
                unauthorized.push((
                    "invalid_api_key".to_owned(),
                    body(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "Invalid API key".to_owned(),
                    ),
                ));
            }
            if matches!(check, Check::ApiKey(_)) {
                key_known = true;
            }
            // The lockout counts failed keys and tokens alike.
            if (api_key || jwt)
                && self.inner.api_keys.lockout.is_some()
                && !too_many.iter().any(|(name, _)| name == "LOCKED_OUT")
            {
                // Each route's refusal names the credential it asks for.
                let message = if api_key {
                    crate::api_key::LOCKED_OUT_KEYS
                } else {
                    crate::api_key::LOCKED_OUT_TOKENS
                };
                too_many.push((
                    "LOCKED_OUT".to_owned(),
                    body(
                        StatusCode::TOO_MANY_REQUESTS,
                        "LOCKED_OUT",
                        message.to_owned(),
                    ),
                ));
            }
            if jwt && !api_key {
                unauthorized.push((
                    "missing_bearer_token".to_owned(),
                    body(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "Missing bearer token".to_owned(),
                    ),
                ));
            }
            if jwt {
                unauthorized.push((
                    "expired_token".to_owned(),
                    body(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "The token has expired".to_owned(),
                    ),
                ));
            }
            if let Some(missing) =
                requirement.and_then(|requirement| requirement.unmet(&[] as &[&str]))
            {
                // A token's refusal names the token, as the JWT policy words it.
                let missing = if jwt && !api_key {
                    missing.replacen("this API key", "this token", 1)
                } else {
                    missing
                };
                add_example(
                    &mut forbidden,
                    "insufficient_scope".to_owned(),
                    body(
                        StatusCode::FORBIDDEN,
                        "FORBIDDEN",
                        format!("Forbidden: {missing}"),
                    ),
                );
            }
        }
        // Several credential checks: each example once.
        dedupe(&mut unauthorized);
        name_examples(&mut too_many, "RATE_LIMITED");
        // A client in the penalty box is refused by every limit.
        if rate_limited && self.inner.rate_limits.config.penalty.is_some() {
            too_many.push((
                PENALTY_EXAMPLE.to_owned(),
                body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    PENALTY_MESSAGE.to_owned(),
                ),
            ));
        }

        let style = self.inner.rate_limits.config.header_style;
        let limit_headers = if rate_limited {
            responses::rate_limit_headers(style, self.inner.rate_limits.config.window_header)
        } else {
            Vec::new()
        };
        // The handler's own responses carry the headers of the limits it passed.
        for response in operation.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                responses::add_headers(response, &limit_headers);
            }
        }
        let responses = &mut operation.responses;
        // The statuses made here: a second refusal with one of them (a key
        // function's 401 beside a key check's) adds its examples to it.
        let mut made: BTreeSet<u16> = BTreeSet::new();
        let mut add =
            |status: u16,
             description: &str,
             examples: &[(String, ErrorBody)],
             headers: &[(&'static str, utoipa::openapi::header::Header)]| {
                if examples.is_empty() {
                    return;
                }
                added.errors = true;
                let again = made.contains(&status);
                if !responses.responses.contains_key(&status.to_string()) {
                    made.insert(status);
                }
                if let Some(response) = responses::entry(responses, status, || {
                    renderer.response(description, examples, path).build()
                }) {
                    if again {
                        renderer.add_examples(response, examples, path);
                    }
                    responses::add_headers(response, headers);
                }
            };
        let www_authenticate = [("WWW-Authenticate", responses::www_authenticate())];
        add(
            401,
            "Unauthorized: no credential, or one that is not valid.",
            &unauthorized,
            &www_authenticate,
        );
        add(
            403,
            "Forbidden: the credential lacks a required scope.",
            &forbidden,
            &[],
        );
        let mut refused_headers = limit_headers.clone();
        refused_headers.push(("Retry-After", responses::retry_after()));
        add(
            429,
            "Too Many Requests: retry after `Retry-After` seconds.",
            &too_many,
            &refused_headers,
        );
        for (status, examples) in &refused_keys {
            let reason = StatusCode::from_u16(*status)
                .ok()
                .and_then(|status| status.canonical_reason())
                .unwrap_or("Refused");
            let why = match (*status == 400 && missing_key, key_function) {
                (true, true) => {
                    "the rate limit's key is missing from the request, or its key function refused it"
                }
                (true, false) => "the rate limit's key is missing from the request",
                _ => "the rate limit's key function refused the request",
            };
            add(*status, &format!("{reason}: {why}."), examples, &[]);
        }
        let request_limits = self.inner.request_limits.active.as_deref();
        let body_limit = handler
            .and_then(|policy| policy.body_limit)
            .or_else(|| request_limits.and_then(|limits| limits.body.map(|body| body.limit)));
        if let Some(limit) = body_limit {
            add(
                413,
                &format!("Payload Too Large: the request body is over {limit} bytes."),
                &[(
                    "PAYLOAD_TOO_LARGE".to_owned(),
                    body(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PAYLOAD_TOO_LARGE",
                        crate::request_limits::PAYLOAD_TOO_LARGE.to_owned(),
                    ),
                )],
                &[],
            );
        }
        let timeout = handler
            .and_then(|policy| policy.timeout)
            .or_else(|| request_limits.and_then(|limits| limits.timeout));
        if let Some(timeout) = timeout {
            let limit = policy_grammar::duration::display_duration(timeout);
            add(
                504,
                &format!("Gateway Timeout: the request took longer than {limit}."),
                &[(
                    "TIMEOUT".to_owned(),
                    body(
                        StatusCode::GATEWAY_TIMEOUT,
                        "TIMEOUT",
                        format!("Gateway Timeout: the request took longer than {limit}"),
                    ),
                )],
                &[],
            );
        }

        if rate_limited || exempt {
            let words = if rate_limited {
                quotas_in_words
            } else {
                vec!["no limit (exempt)".to_owned()]
            };
            operation
                .extensions
                .get_or_insert_with(Default::default)
                .insert("x-rate-limit".to_owned(), serde_json::json!(words));
        }
        added
    }
}

/// The name of the penalty box's example in a 429.
const PENALTY_EXAMPLE: &str = "PENALTY_BOX";

/// What a limit answers a client in the penalty box, whichever quota it
/// broke.
const PENALTY_MESSAGE: &str = "Too Many Requests: blocked after repeated violations";

/// One thing that runs for a request: a check, or the default limits.
enum Step<'a> {
    Check(&'a Check),
    Defaults(&'a [crate::Quota]),
}

/// A check's credential part, for the security requirements.
fn credential_only(check: &Check) -> Option<Check> {
    match check {
        Check::ApiKey(requirement) => Some(Check::ApiKey(*requirement)),
        Check::Jwt(requirement) => Some(Check::Jwt(*requirement)),
        Check::ApiKeyOrJwt(requirement) => Some(Check::ApiKeyOrJwt(*requirement)),
        Check::RateLimit(_) | Check::Exempt => None,
    }
}

/// A quota in words, with its burst and strictness.
fn quota_in_words(quota: &crate::Quota) -> String {
    let mut words = quota.to_string();
    if quota.burst() != quota.count() {
        words.push_str(&format!(", burst {}", quota.burst()));
    }
    if quota.is_strict() {
        words.push_str(", strict");
    }
    words
}

/// Adds an example unless one with its body is there.
fn add_example(examples: &mut Vec<(String, ErrorBody)>, name: String, body: ErrorBody) {
    if examples.iter().any(|(_, known)| known == &body) {
        return;
    }
    let name = if examples.iter().any(|(known, _)| *known == name) {
        format!("{name}_{}", examples.len() + 1)
    } else {
        name
    };
    examples.push((name, body));
}

/// Keeps the first example of each name.
fn dedupe(examples: &mut Vec<(String, ErrorBody)>) {
    let mut seen = BTreeSet::new();
    examples.retain(|(name, _)| seen.insert(name.clone()));
}

/// A request to `slot`'s method and path with no header, no body and no
/// peer: what a key function is asked about to document its refusal.
fn bare_request(slot: &Slot) -> axum::http::request::Parts {
    let request = axum::http::Request::builder()
        .method(slot.method)
        .uri(slot.path.as_str())
        .body(())
        .or_else(|_| axum::http::Request::builder().method(slot.method).body(()))
        .unwrap_or_default();
    request.into_parts().0
}

/// What documenting one operation used, for the document's components.
#[derive(Default)]
struct Added {
    schemes: BTreeSet<&'static str>,
    errors: bool,
}

/// Names unnamed examples: `code` alone, or `code_1`, `code_2`, ... when
/// there are several.
fn name_examples(examples: &mut [(String, ErrorBody)], code: &str) {
    let unnamed = examples.iter().filter(|(name, _)| name.is_empty()).count();
    let mut nth = 0;
    for (name, _) in examples.iter_mut().filter(|(name, _)| name.is_empty()) {
        nth += 1;
        *name = if unnamed == 1 {
            code.to_owned()
        } else {
            format!("{code}_{nth}")
        };
    }
}

/// Who a limit counts, in words.
fn key_in_words(key: &KeySource) -> String {
    match key {
        KeySource::Ip => "client IP".to_owned(),
        KeySource::ApiKey => "API key".to_owned(),
        KeySource::Global => "all clients together".to_owned(),
        KeySource::Header(name) => format!("`{name}` header"),
        KeySource::Subject => "JWT subject".to_owned(),
        KeySource::Claim(name) => format!("JWT claim `{name}`"),
        KeySource::Custom(_) => "key of the service's own function".to_owned(),
    }
}

/// The 400 message of a limit whose key can be missing from a request, as
/// the limit answers it; `None` when the key is always there or a missing
/// one counts by IP. A key function's own refusal is its own, unknown here.
fn missing_key_message(
    key: &KeySource,
    on_missing: OnMissingKey,
    key_known: bool,
) -> Option<String> {
    if matches!(on_missing, OnMissingKey::Ip) {
        return None;
    }
    match key {
        KeySource::Header(name) => Some(format!("This endpoint needs the `{name}` header")),
        KeySource::Claim(name) => {
            Some(format!("This endpoint needs a JWT with the `{name}` claim"))
        }
        KeySource::Subject => Some("This endpoint needs a JWT with a `sub` claim".to_owned()),
        // `key = api_key` is known after an API-key check; the attribute
        // needs `#[require_api_key]` above it, a layer may not have one.
        KeySource::ApiKey if !key_known => Some("This endpoint needs an API key".to_owned()),
        KeySource::Ip | KeySource::Global | KeySource::ApiKey | KeySource::Custom(_) => None,
    }
}

/// The handler's function name.
fn short_name(handler: &str) -> &str {
    handler.rsplit("::").next().unwrap_or(handler)
}

/// Whether the slots are all on one path (the methods of one handler).
fn one_path(slots: &[&Slot]) -> bool {
    slots.windows(2).all(|pair| pair[0].path == pair[1].path)
}

/// Records the handler's operations, or why it has none.
fn decide(
    policy: &'static HandlerPolicy,
    candidates: &[&Slot],
    narrowed: &[&Slot],
    by_name: bool,
    targets: &mut Vec<(&'static HandlerPolicy, Vec<Slot>, bool)>,
    report: &mut Documented,
) {
    if narrowed.is_empty() || !one_path(narrowed) {
        if candidates.is_empty() {
            report.missing.push(policy.handler);
        } else {
            report.ambiguous.push((
                policy.handler,
                candidates.iter().map(|slot| slot.name()).collect(),
            ));
        }
        return;
    }
    targets.push((
        policy,
        narrowed.iter().map(|slot| (*slot).clone()).collect(),
        by_name,
    ));
}

/// Every operation of the document, in its order.
fn slots(openapi: &mut OpenApi) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (path, item) in openapi.paths.paths.iter_mut() {
        for (method, http_method, operation) in operations(item) {
            if let Some(operation) = operation {
                slots.push(Slot {
                    path: path.clone(),
                    method,
                    http_method,
                    operation_id: operation.operation_id.clone(),
                });
            }
        }
    }
    slots
}

/// The operation at `slot`.
fn operation_mut<'a>(openapi: &'a mut OpenApi, slot: &Slot) -> Option<&'a mut Operation> {
    let item = openapi.paths.paths.get_mut(&slot.path)?;
    operations(item)
        .into_iter()
        .find(|(method, _, _)| *method == slot.method)
        .and_then(|(_, _, operation)| operation.as_mut())
}
