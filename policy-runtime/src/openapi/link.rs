//! The link between a policy-wrapped handler and the operation
//! `#[utoipa::path]` makes of it, recorded by the policy attributes.
//!
//! When `#[utoipa::path]` sits below the policy attributes, the top policy
//! attribute sees it: it puts it on a copy of the handler's signature (so
//! utoipa reads the handler's own extractors, not the wrapper's) and submits
//! an [`OperationLink`] naming the handler's policy and utoipa's generated
//! `__path_<fn>` type. [`crate::Engine::document`] then finds the operation by
//! the id, method and path utoipa itself records, whatever `operation_id`
//! says. Reachable only through `policy_runtime::__private`.

use crate::handler_policy::HandlerPolicy;
use utoipa::openapi::path::{HttpMethod, Operation};

/// One handler's policy and its utoipa operation.
#[derive(Debug)]
pub struct OperationLink {
    /// The handler's policy.
    pub policy: &'static HandlerPolicy,
    /// `<__path_fn as utoipa::Path>::operation`: the operation, with its id.
    pub operation: fn() -> Operation,
    /// `<__path_fn as utoipa::Path>::methods`.
    pub methods: fn() -> Vec<HttpMethod>,
    /// `<__path_fn as utoipa::Path>::path`: the path as written (a router
    /// that nests it may add a prefix).
    pub path: fn() -> String,
}

inventory::collect!(OperationLink);

/// What a link says about its operation, read once.
pub(crate) struct Linked {
    pub(crate) operation_id: Option<String>,
    pub(crate) methods: Vec<HttpMethod>,
    pub(crate) path: String,
}

/// The link of `policy`'s handler, if its `#[utoipa::path]` sat below the
/// policy attributes.
pub(crate) fn link_of(policy: &'static HandlerPolicy) -> Option<Linked> {
    inventory::iter::<OperationLink>
        .into_iter()
        .find(|link| std::ptr::eq(link.policy, policy) || link.policy.handler == policy.handler)
        .map(|link| Linked {
            operation_id: (link.operation)().operation_id,
            methods: (link.methods)(),
            path: (link.path)(),
        })
}
