//! The rules a policy-wrapped handler must follow, each error spanned on the
//! token that breaks it.

use super::ast::Handler;
use super::attr::{ApiKeyArgs, KeyArg, PolicyAttr, RateLimitArgs, ScopeArg};
use crate::errors::Errors;
use crate::scope_name::scope_name_problem;
use proc_macro2::TokenStream;

/// A strict quota keeps one timestamp per admitted request and client.
const MAX_STRICT_COUNT: u32 = 10_000;

pub(crate) fn check(handler: &Handler, errors: &mut Errors) {
    check_signature(handler, errors);
    let rate_limits = handler
        .policies
        .iter()
        .filter(|(_, policy)| matches!(policy, PolicyAttr::RateLimit(_)))
        .count();
    let mut key_checked = false;
    let mut seen_key_check = false;
    for (attribute, policy) in &handler.policies {
        match policy {
            PolicyAttr::ApiKey(args) => {
                check_api_key(args, errors);
                if seen_key_check {
                    errors.spanned(
                        attribute,
                        "`#[require_api_key]` appears more than once on this handler; keep one",
                    );
                }
                seen_key_check = true;
                key_checked = true;
            }
            PolicyAttr::RateLimit(args) => {
                check_rate_limit(attribute, args, key_checked, rate_limits, errors)
            }
        }
    }
}

/// Scope names must be valid, listed once, and `any()` / `all()` not empty.
fn check_api_key(args: &ApiKeyArgs, errors: &mut Errors) {
    let Some(scope) = &args.scope else {
        return;
    };
    if let ScopeArg::AnyOf(form, scopes) | ScopeArg::AllOf(form, scopes) = scope {
        if scopes.is_empty() {
            errors.spanned(
                form,
                format!("`{form}()` needs at least one scope, as in `{form}(\"read\", \"write\")`"),
            );
        }
    }
    let names = scope.names();
    for (index, name) in names.iter().enumerate() {
        let value = name.value();
        if let Some(problem) = scope_name_problem(&value) {
            errors.spanned(name, problem);
        } else if names[..index]
            .iter()
            .any(|earlier| earlier.value() == value)
        {
            errors.spanned(name, format!("the scope \"{value}\" is listed twice"));
        }
    }
}

fn check_signature(handler: &Handler, errors: &mut Errors) {
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
}

fn check_rate_limit(
    attribute: &TokenStream,
    args: &RateLimitArgs,
    key_checked: bool,
    rate_limits: usize,
    errors: &mut Errors,
) {
    // Exactly one source of limits.
    let mut sources = Vec::new();
    if let Some((text, _)) = &args.limits {
        sources.push(quote::ToTokens::to_token_stream(text));
    }
    if let Some(policy) = &args.policy {
        sources.push(quote::ToTokens::to_token_stream(policy));
    }
    if let Some(exempt) = &args.exempt {
        sources.push(quote::ToTokens::to_token_stream(exempt));
    }
    match sources.len() {
        0 => errors.spanned(
            attribute,
            "`#[rate_limit]` needs a limit: a string such as \"20/hour\", `policy = \"name\"`, or `exempt`",
        ),
        1 => {}
        _ => errors.spanned(
            &sources[1],
            "give `#[rate_limit]` one of a limit string, `policy = \"...\"` or `exempt`, not several",
        ),
    }
    if let Some((text, Err(message))) = &args.limits {
        errors.spanned(text, message);
    }
    if let Some(policy) = &args.policy {
        if policy.value().trim().is_empty() {
            errors.spanned(
                policy,
                "the policy name is empty; name it, as in `policy = \"login\"`",
            );
        }
    }
    if let Some(exempt) = &args.exempt {
        let others: [Option<TokenStream>; 6] = [
            args.key
                .as_ref()
                .map(|(name, _)| quote::ToTokens::to_token_stream(name)),
            args.burst.as_ref().map(quote::ToTokens::to_token_stream),
            args.cost.as_ref().map(quote::ToTokens::to_token_stream),
            args.scope.as_ref().map(quote::ToTokens::to_token_stream),
            args.strict.as_ref().map(quote::ToTokens::to_token_stream),
            args.on_missing
                .as_ref()
                .map(quote::ToTokens::to_token_stream),
        ];
        for other in others.into_iter().flatten() {
            errors.spanned(
                other,
                "`exempt` takes no other argument: an exempt handler has no limit",
            );
        }
        if rate_limits > 1 {
            errors.spanned(
                exempt,
                "`#[rate_limit(exempt)]` cannot be stacked with other `#[rate_limit]` attributes",
            );
        }
    }

    let quotas = match &args.limits {
        Some((_, Ok(quotas))) => quotas.as_slice(),
        _ => &[],
    };
    let burst = args
        .burst
        .as_ref()
        .and_then(|burst| positive(burst, "burst", errors));
    if let (Some(burst_token), Some(burst)) = (&args.burst, burst) {
        let problem = quotas.iter().find_map(|quota| {
            let period_nanos = u128::from(quota.period_secs) * 1_000_000_000;
            crate::quota::range_problem(quota.count, period_nanos, burst)
        });
        if let Some(problem) = problem {
            errors.spanned(burst_token, problem);
        }
    }
    if let (Some(burst_token), Some(strict)) = (&args.burst, &args.strict) {
        let _ = strict;
        errors.spanned(
            burst_token,
            "a strict limit has no burst: it admits at most its count in any window",
        );
    }
    if let Some(strict) = &args.strict {
        if let Some(big) = quotas.iter().find(|quota| quota.count > MAX_STRICT_COUNT) {
            errors.spanned(
                strict,
                format!(
                    "strict mode keeps one timestamp per request and client; a count of {} is over the maximum of {MAX_STRICT_COUNT}; drop `strict` or lower the count",
                    big.count
                ),
            );
        }
    }
    if let Some(cost_token) = &args.cost {
        if let Some(cost) = positive(cost_token, "cost", errors) {
            let room = quotas
                .iter()
                .map(|quota| burst.unwrap_or(quota.count))
                .min();
            if let Some(room) = room.filter(|room| cost > *room) {
                errors.spanned(
                    cost_token,
                    format!("a cost of {cost} is more than the {room} requests the limit admits at once, so no request could pass"),
                );
            }
        }
    }
    if let Some(scope) = &args.scope {
        if scope.value().trim().is_empty() {
            errors.spanned(
                scope,
                "the scope name is empty; name it, as in `scope = \"search\"`",
            );
        }
    }
    match &args.key {
        Some((_, KeyArg::ApiKey(token))) if !key_checked => errors.spanned(
            token,
            "`key = api_key` needs `#[require_api_key]` above this `#[rate_limit]`, so the key is known when the limit runs",
        ),
        Some((_, KeyArg::Header(name))) if !is_header_name(&name.value()) => errors.spanned(
            name,
            "not a valid header name: use letters, digits and `-`, as in \"x-user-id\"",
        ),
        _ => {}
    }
    if let Some(on_missing) = &args.on_missing {
        let can_be_missing = matches!(
            args.key,
            Some((_, KeyArg::ApiKey(_))) | Some((_, KeyArg::Header(_)))
        );
        if !can_be_missing {
            errors.spanned(
                on_missing,
                "`on_missing` applies to `key = header(\"...\")` and `key = api_key`, whose key can be absent",
            );
        }
    }
}

fn positive(literal: &syn::LitInt, name: &str, errors: &mut Errors) -> Option<u32> {
    match literal.base10_parse::<u32>() {
        Ok(value) if value > 0 => Some(value),
        _ => {
            errors.spanned(
                literal,
                format!("`{name}` must be a whole number from 1 to {}", u32::MAX),
            );
            None
        }
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
