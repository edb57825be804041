//! The rules a policy-wrapped handler must follow, each error spanned on the
//! token that breaks it.

use super::ast::{Handler, KeyIdentity};
use super::attr::{KeyArg, LimitArg, PolicyAttr, PolicyKind, RateLimitArgs, ScopeArg};
use crate::errors::Errors;
use policy_grammar::scope_name::scope_name_problem;
use proc_macro2::TokenStream;

/// A strict quota keeps one timestamp per admitted request and client.
const MAX_STRICT_COUNT: u32 = 10_000;

/// What the policies above the one being checked have established.
#[derive(Default)]
struct Above {
    /// A `#[require_api_key]`: the API key is known.
    api_key: bool,
    /// A `#[require_jwt]`, with or without `or_api_key`: the caller's subject
    /// is known (the JWT's `sub`, or the key's name).
    jwt: bool,
}

pub(crate) fn check(handler: &Handler, errors: &mut Errors) {
    check_signature(handler, errors);
    let rate_limits = handler
        .policies
        .iter()
        .filter(|(_, policy)| matches!(policy, PolicyAttr::RateLimit(_)))
        .count();
    let mut above = Above::default();
    let mut seen: Vec<PolicyKind> = Vec::new();
    for (attribute, policy) in &handler.policies {
        let kind = policy.kind();
        if matches!(
            kind,
            PolicyKind::ApiKey | PolicyKind::Jwt | PolicyKind::BodyLimit | PolicyKind::Timeout
        ) && seen.contains(&kind)
        {
            errors.spanned(
                attribute,
                format!(
                    "`#[{}]` appears more than once on this handler; keep one",
                    kind.attribute_name()
                ),
            );
        }
        seen.push(kind);
        match policy {
            PolicyAttr::ApiKey(args) => {
                check_scopes(args.scope.as_ref(), errors);
                above.api_key = true;
            }
            PolicyAttr::Jwt(args) => {
                check_scopes(args.scope.as_ref(), errors);
                above.jwt = true;
            }
            PolicyAttr::RateLimit(args) => {
                check_rate_limit(attribute, args, &above, rate_limits, errors)
            }
            PolicyAttr::BodyLimit(arg) => check_limit_value(arg, errors),
            PolicyAttr::Timeout(arg) => check_limit_value(arg, errors),
        }
    }
    check_shared_scopes(handler, errors);
    check_named_state(handler, errors);
    if !above.api_key {
        check_key_identity(handler, errors);
    }
    if !above.jwt {
        check_claims(handler, errors);
    }
}

/// The string of a `#[body_limit]` or `#[timeout]` must parse; the grammar's
/// message says why it does not.
fn check_limit_value<T>(arg: &LimitArg<T>, errors: &mut Errors) {
    if let Err(message) = &arg.value {
        errors.spanned(&arg.text, message);
    }
}

/// A handler that takes `Claims<T>` needs `#[require_jwt]` to admit its
/// requests: without it no token is verified and the extractor could only fail.
fn check_claims(handler: &Handler, errors: &mut Errors) {
    for (ty, form) in handler.claims_arguments() {
        if form == KeyIdentity::Required {
            errors.spanned(
                ty,
                "this handler takes `Claims` but has no `#[require_jwt]`, so no token is verified; add \
                 `#[require_jwt]`, or take `Option<Claims<_>>` if the token is optional",
            );
        }
    }
}

/// A handler that takes `ApiKeyId` needs `#[require_api_key]` to admit its
/// requests: without it no key is known and the extractor could only fail.
fn check_key_identity(handler: &Handler, errors: &mut Errors) {
    for (ty, form) in handler.key_identity_arguments() {
        if form == KeyIdentity::Required {
            errors.spanned(
                ty,
                "this handler takes `ApiKeyId` but has no `#[require_api_key]`, so no key is known; add \
                 `#[require_api_key]`, or take `Option<ApiKeyId>` if the key is optional",
            );
        }
    }
}

/// One quota as emitted: its count, period in seconds, burst and how it is
/// counted (`""`, `"strict"` or `"sliding"`).
type WrittenQuota = (u32, u64, u32, &'static str);

/// The limits of a `#[rate_limit]` written in the attribute, as they are
/// emitted.
/// `None` for a named policy (resolved when the engine is built, which
/// compares it there), `exempt`, or limits that did not parse.
fn written_limits(args: &RateLimitArgs) -> Option<Vec<WrittenQuota>> {
    let Some((_, Ok(quotas))) = &args.limits else {
        return None;
    };
    if args.policy.is_some() || args.exempt.is_some() {
        return None;
    }
    let burst = args
        .burst
        .as_ref()
        .and_then(|burst| burst.base10_parse::<u32>().ok());
    Some(
        quotas
            .iter()
            .map(|quota| {
                (
                    quota.count,
                    quota.period_secs,
                    burst.unwrap_or(quota.count),
                    match (&args.strict, &args.sliding) {
                        (Some(_), _) => "strict",
                        (None, Some(_)) => "sliding",
                        (None, None) => "",
                    },
                )
            })
            .collect(),
    )
}

/// `2 per 1 hour`, as `Quota`'s `Display` writes it at run time, with the
/// burst when it is not the count and `strict` when it is set.
fn describe(limits: &[WrittenQuota]) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    limits
        .iter()
        .map(|&(count, secs, burst, mode)| {
            let (size, unit) = UNITS
                .into_iter()
                .find(|(size, _)| secs % size == 0)
                .unwrap_or((1, "second"));
            let mut text = format!("{count} per {} {unit}", secs / size);
            if burst != count {
                text.push_str(&format!(", burst {burst}"));
            }
            if !mode.is_empty() {
                text.push_str(", ");
                text.push_str(mode);
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Two `#[rate_limit]` on one handler that name the same scope share one
/// state, so they must give it the same limits: a state kept for one set of
/// limits is not valid for another, and each would reset the other's count.
/// The cost may differ (one budget, spent at different rates). Limits of a
/// named policy are compared when the engine is built, once they are known.
fn check_shared_scopes(handler: &Handler, errors: &mut Errors) {
    let mut seen: Vec<(String, Vec<WrittenQuota>)> = Vec::new();
    for (_, policy) in &handler.policies {
        let PolicyAttr::RateLimit(args) = policy else {
            continue;
        };
        let (Some(scope), Some(limits)) = (&args.scope, written_limits(args)) else {
            continue;
        };
        let name = scope.value();
        match seen.iter().find(|(earlier, _)| *earlier == name) {
            Some((_, earlier)) if *earlier != limits => errors.spanned(
                scope,
                format!(
                    "the scope \"{name}\" is limited to `{}` by a `#[rate_limit]` above, and to `{}` here; a scope keeps one state, so it takes one set of limits: give both the same limits or use different scopes",
                    describe(earlier),
                    describe(&limits)
                ),
            ),
            Some(_) => {}
            None => seen.push((name, limits)),
        }
    }
}

/// The scopes of `#[require_api_key]` or `#[require_jwt]`: names must be
/// valid, listed once, and `any()` / `all()` not empty.
fn check_scopes(scope: Option<&ScopeArg>, errors: &mut Errors) {
    let Some(scope) = scope else {
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

/// `state = ...` is written once per handler, on a handler without generic
/// parameters: the arguments are checked against that one concrete state.
fn check_named_state(handler: &Handler, errors: &mut Errors) {
    let mut states = handler
        .policies
        .iter()
        .filter_map(|(_, policy)| policy.named_state());
    let Some(first) = states.next() else {
        return;
    };
    for again in states {
        errors.spanned(
            &again.name,
            "`state` is given twice on this handler; give the router's state once, on any one of its policy attributes",
        );
    }
    if let Some(param) = handler.function.sig.generics.params.first() {
        let name = match param {
            syn::GenericParam::Type(param) => param.ident.to_string(),
            syn::GenericParam::Const(param) => param.ident.to_string(),
            syn::GenericParam::Lifetime(param) => param.lifetime.to_string(),
        };
        errors.spanned(
            &first.name,
            format!(
                "`state` names one concrete state, and this handler is generic over `{name}`; remove `state`, or the generic parameter"
            ),
        );
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
    above: &Above,
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
    if args.policy.is_some() {
        // A named policy's limits come whole from the engine.
        let shapes = [
            (
                "burst",
                args.burst.as_ref().map(quote::ToTokens::to_token_stream),
            ),
            (
                "strict",
                args.strict.as_ref().map(quote::ToTokens::to_token_stream),
            ),
            (
                "sliding",
                args.sliding.as_ref().map(quote::ToTokens::to_token_stream),
            ),
        ];
        for (name, token) in shapes {
            if let Some(token) = token {
                errors.spanned(
                    token,
                    format!("`{name}` shapes limits written in the attribute; a named policy's limits come whole from `EngineBuilder::policy` or `POLICY_LIMIT_<NAME>`, so it would be ignored"),
                );
            }
        }
    }
    if let Some(exempt) = &args.exempt {
        let others: [Option<TokenStream>; 9] = [
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
            args.count
                .as_ref()
                .map(|(name, _)| quote::ToTokens::to_token_stream(name)),
            args.add_to_defaults
                .as_ref()
                .map(quote::ToTokens::to_token_stream),
            args.sliding.as_ref().map(quote::ToTokens::to_token_stream),
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
            policy_grammar::quota::range_problem(quota.count, period_nanos, burst)
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
    if let Some(sliding) = &args.sliding {
        if args.strict.is_some() {
            errors.spanned(
                sliding,
                "`sliding` and `strict` are two ways of counting a limit; keep one: `strict` is exact and keeps a timestamp per request, `sliding` keeps two counters",
            );
        }
        if let Some(burst) = &args.burst {
            errors.spanned(
                burst,
                "a sliding window counter has no burst: it admits about its count in any window; drop `burst`, or `sliding` for GCRA with a burst",
            );
        }
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
        } else if scope.value().starts_with("default:") {
            errors.spanned(
                scope,
                "scope names beginning with `default:` belong to the engine's default limits; choose another name",
            );
        }
    }
    match &args.key {
        Some((_, KeyArg::ApiKey(token))) if !above.api_key => errors.spanned(
            token,
            "`key = api_key` needs `#[require_api_key]` above this `#[rate_limit]`, so the key is known when the limit runs",
        ),
        Some((_, KeyArg::Subject(token))) if !above.jwt => errors.spanned(
            token,
            "`key = subject` needs `#[require_jwt]` above this `#[rate_limit]`, so the token's subject is known when the limit runs",
        ),
        Some((_, KeyArg::Claim(token, _))) if !above.jwt => errors.spanned(
            token,
            "`key = claim(...)` needs `#[require_jwt]` above this `#[rate_limit]`, so the token's claims are known when the limit runs",
        ),
        Some((_, KeyArg::Header(name))) if !is_header_name(&name.value()) => errors.spanned(
            name,
            "not a valid header name: use letters, digits and `-`, as in \"x-user-id\"",
        ),
        _ => {}
    }
    if let Some((_, KeyArg::Claim(_, name))) = &args.key {
        if !is_claim_name(&name.value()) {
            errors.spanned(
                name,
                "not a claim name: write the claim's name in ASCII without spaces, as in \"tenant_id\"",
            );
        }
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

/// A JWT claim's name as the key reads it: non-empty ASCII, no spaces or
/// control characters.
fn is_claim_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
