//! The rules a policy-wrapped handler must follow, each error spanned on the
//! token that breaks it.

use super::ast::Handler;
use super::attr::PolicyAttr;
use crate::errors::Errors;

pub(crate) fn check(handler: &Handler, errors: &mut Errors) {
    let name = handler.kind.attribute_name();
    let signature = &handler.function.sig;
    if signature.asyncness.is_none() {
        errors.spanned(
            signature.fn_token,
            format!("`#[{name}]` goes on an async fn (an axum handler); add `async` before `fn`"),
        );
    }
    if let Some(receiver) = signature.receiver() {
        errors.spanned(
            receiver,
            format!(
                "`#[{name}]` goes on a free async fn, not a method: axum handlers take no `self`"
            ),
        );
    }
    if let Some(variadic) = &signature.variadic {
        errors.spanned(variadic, format!("`#[{name}]` cannot wrap a variadic fn"));
    }
    let mut key_checks = handler
        .policies
        .iter()
        .filter(|(_, policy)| matches!(policy, PolicyAttr::ApiKey));
    key_checks.next();
    for (attribute, _) in key_checks {
        errors.spanned(
            attribute,
            "`#[require_api_key]` appears more than once on this handler; keep one",
        );
    }
}
