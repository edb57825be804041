//! Writing the wrapper of a policy-wrapped handler.
//!
//! ```text
//! #[rate_limit("20/hour")]                 pub async fn score(
//! pub async fn score(                          __policy_guard: Guard<__PolicyOf_score>,
//!     Json(body): Json<Req>,        =>         __policy_arg0: Json<Req>,
//! ) -> Result<String, AppError> {...}      ) -> Response {
//!                                              async fn score(Json(body): Json<Req>) -> Result<..> {...}
//!                                              __policy_guard.finish(score(__policy_arg0).await)
//!                                          }
//! ```rust
//!
//! The guard is the first extractor, so every check runs before any other
//! extractor and a refused request never has its body read. The user's
//! function is kept whole as an inner fn, so `return`, `?` and `impl Trait`
//! keep their meaning and lints still fire on the user's code. The call and
//! the arguments go through [`assertions`], so that a mistake in the user's
//! function is reported on it, not on the wrapper. When an attribute names
//! the router's state (`state = AppState`), each argument's wrapper is the
//! handler's own `__PolicyArgOf_<fn>` instead of `Extracted`, checked and
//! extracted for that state (see [`named_state`]).

use super::assertions;
use super::ast::Handler;
use super::attr::{CountArg, KeyArg, PolicyAttr, RateLimitArgs, ScopeArg};
use super::named_state;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) fn handler(handler: &Handler) -> TokenStream {
    let function = &handler.function;
    let signature = &function.sig;
    let ident = &signature.ident;
    let marker = format_ident!("__PolicyOf_{}", ident);
    let attrs = assertions::wrapper_attributes(handler);
    let vis = &function.vis;
    let params = &signature.generics.params;
    let where_clause = &signature.generics.where_clause;

    let named_state = handler.named_state();
    let arg_type = format_ident!("__PolicyArgOf_{}", ident);
    let mut outer_inputs = Vec::new();
    let mut call_args = Vec::new();
    let mut state_checked = Vec::new();
    for (index, input) in signature.inputs.iter().enumerate() {
        let syn::FnArg::Typed(typed) = input else {
            continue; // receivers were refused by validation
        };
        let name = match &*typed.pat {
            // Plain names are kept, so `#[instrument]` and `#[debug_handler]`
            // stacked below report the user's argument names.
            syn::Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                pat.ident.clone()
            }
            _ => format_ident!("__policy_arg{}", index),
        };
        let ty = &typed.ty;
        // Each extractor's rejection becomes an `ErrorBody`; the last may read the body.
        let last = index + 1 == signature.inputs.len();
        let wrapper = if last {
            quote!(ExtractedLast)
        } else {
            quote!(Extracted)
        };
        let (written, value) = assertions::argument(handler, index, ty, &name);
        match named_state {
            None => outer_inputs.push(
                quote_spanned!(ty.span()=> #name: ::policy_runtime::__private::#wrapper<#written>),
            ),
            Some(state) => {
                let position = proc_macro2::Literal::usize_unsuffixed(index);
                outer_inputs
                    .push(quote_spanned!(ty.span()=> #name: #arg_type<#written, #position>));
                state_checked.push(named_state::argument(
                    &arg_type, state, ty, &written, index, last,
                ));
            }
        }
        call_args.push(value);
    }
    let state_checked =
        named_state.map(|_| named_state::wrapper_type(&arg_type, vis, state_checked));

    let inner = syn::ItemFn {
        attrs: Vec::new(),
        vis: syn::Visibility::Inherited,
        sig: signature.clone(),
        block: function.block.clone(),
    };
    let mut rate_limits = 0usize;
    let checks: Vec<TokenStream> = handler
        .policies
        .iter()
        .filter_map(|(_, policy)| match policy {
            PolicyAttr::RateLimit(args) if args.exempt.is_some() => {
                Some(quote!(::policy_runtime::__private::Check::Exempt))
            }
            PolicyAttr::RateLimit(args) => {
                rate_limits += 1;
                Some(rate_limit_check(ident, args, rate_limits))
            }
            PolicyAttr::ApiKey(args) => {
                let requirement = key_requirement(args.scope.as_ref());
                Some(quote!(::policy_runtime::__private::Check::ApiKey(#requirement)))
            }
            PolicyAttr::Jwt(args) => {
                let requirement = key_requirement(args.scope.as_ref());
                Some(match args.or_api_key {
                    Some(_) => {
                        quote!(::policy_runtime::__private::Check::ApiKeyOrJwt(#requirement))
                    }
                    None => quote!(::policy_runtime::__private::Check::Jwt(#requirement)),
                })
            }
            // Not checks: fields of the policy, for the whole request.
            PolicyAttr::BodyLimit(_) | PolicyAttr::Timeout(_) => None,
        })
        .collect();
    let body_limit = handler
        .policies
        .iter()
        .find_map(|(_, policy)| match policy {
            PolicyAttr::BodyLimit(arg) => arg.value.as_ref().ok().copied(),
            _ => None,
        })
        .map_or_else(
            || quote!(::core::option::Option::None),
            |bytes| {
                let bytes = proc_macro2::Literal::u64_suffixed(bytes);
                quote!(::core::option::Option::Some(#bytes))
            },
        );
    let timeout = handler
        .policies
        .iter()
        .find_map(|(_, policy)| match policy {
            PolicyAttr::Timeout(arg) => arg.value.as_ref().ok().copied(),
            _ => None,
        })
        .map_or_else(
            || quote!(::core::option::Option::None),
            |duration| {
                // Parsed durations are whole milliseconds of at most 24 hours.
                let millis = proc_macro2::Literal::u64_suffixed(duration.as_millis() as u64);
                quote!(::core::option::Option::Some(
                    ::policy_runtime::__private::Duration::from_millis(#millis)
                ))
            },
        );

    let takes_key_id = handler.key_identity_arguments().next().is_some();
    let output = assertions::output(handler, &call_args);
    // A conditional limit settles its reservation once the response is known.
    let counted = handler
        .policies
        .iter()
        .any(|(_, policy)| matches!(policy, PolicyAttr::RateLimit(args) if args.count.is_some()));
    let finish = if counted {
        quote!(.finish_counted(#output).await)
    } else {
        quote!(.finish(#output))
    };
    let marker_doc = assertions::marker_doc(handler);
    let openapi = super::openapi::shadow(handler, &marker);

    quote! {
        #(#attrs)*
        #vis async fn #ident<#params>(
            __policy_guard: ::policy_runtime::__private::Guard<#marker>,
            #(#outer_inputs),*
        ) -> ::policy_runtime::__private::Response #where_clause {
            #inner
            __policy_guard #finish
        }

        #marker_doc
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker {}

        impl ::policy_runtime::__private::Policy for #marker {
            // A static, not a promoted constant: one address for the policy
            // and its scopes wherever the handler is used.
            const POLICY: &'static ::policy_runtime::__private::HandlerPolicy = {
                static POLICY: ::policy_runtime::__private::HandlerPolicy =
                    ::policy_runtime::__private::HandlerPolicy {
                        handler: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                        checks: &[#(#checks),*],
                        takes_key_id: #takes_key_id,
                        body_limit: #body_limit,
                        timeout: #timeout,
                    };
                &POLICY
            };
        }

        ::policy_runtime::__private::inventory::submit! {
            ::policy_runtime::__private::Registration(
                <#marker as ::policy_runtime::__private::Policy>::POLICY
            )
        }

        #openapi

        #state_checked
    }
}

/// The scopes a `#[require_api_key]` or `#[require_jwt]` requires, as a
/// `KeyRequirement`.
fn key_requirement(scope: Option<&ScopeArg>) -> TokenStream {
    let requirement = match scope {
        None => quote!(Any),
        Some(ScopeArg::One(scope)) => quote!(Scope(#scope)),
        Some(ScopeArg::AnyOf(_, scopes)) => quote!(AnyOf(&[#(#scopes),*])),
        Some(ScopeArg::AllOf(_, scopes)) => quote!(AllOf(&[#(#scopes),*])),
    };
    quote!(::policy_runtime::__private::KeyRequirement::#requirement)
}

/// One `#[rate_limit]` as a `Check::RateLimit`; `nth` counts the handler's
/// limits, so that a second one gets its own default scope.
fn rate_limit_check(ident: &syn::Ident, args: &RateLimitArgs, nth: usize) -> TokenStream {
    let scope = match &args.scope {
        Some(scope) => quote!(#scope),
        None if nth == 1 => {
            quote!(::core::concat!(
                ::core::module_path!(),
                "::",
                ::core::stringify!(#ident)
            ))
        }
        None => {
            let suffix = format!("#{nth}");
            quote!(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident), #suffix)
            )
        }
    };
    let limits = match (&args.limits, &args.policy) {
        (_, Some(name)) => quote!(::policy_runtime::__private::Limits::Named(#name)),
        (Some((_, Ok(quotas))), None) => {
            let burst = args.burst.as_ref().map(|burst| quote!(.with_burst(#burst)));
            let strict = args.strict.as_ref().map(|_| quote!(.strict()));
            let sliding = args.sliding.as_ref().map(|_| quote!(.sliding()));
            let quotas = quotas.iter().map(|quota| {
                let count = quota.count;
                let secs = quota.period_secs;
                quote!(::policy_runtime::__private::Quota::new(
                    #count,
                    ::policy_runtime::__private::Duration::from_secs(#secs),
                ) #burst #strict #sliding)
            });
            quote!(::policy_runtime::__private::Limits::Fixed(&[#(#quotas),*]))
        }
        // Validation refused every other case.
        _ => quote!(::policy_runtime::__private::Limits::Fixed(&[])),
    };
    let key = match &args.key {
        None | Some((_, KeyArg::Ip)) => quote!(::policy_runtime::__private::KeySource::Ip),
        Some((_, KeyArg::ApiKey(_))) => quote!(::policy_runtime::__private::KeySource::ApiKey),
        Some((_, KeyArg::Global)) => quote!(::policy_runtime::__private::KeySource::Global),
        Some((_, KeyArg::Header(name))) => {
            let name = name.value().to_ascii_lowercase();
            quote!(::policy_runtime::__private::KeySource::Header(#name))
        }
        Some((_, KeyArg::Subject(_))) => quote!(::policy_runtime::__private::KeySource::Subject),
        Some((_, KeyArg::Claim(_, name))) => {
            quote!(::policy_runtime::__private::KeySource::Claim(#name))
        }
        Some((_, KeyArg::Custom(path))) => {
            // Spanned on the path, so a wrong signature is reported there.
            let function = quote_spanned!(path.span()=> #path);
            quote!(::policy_runtime::__private::KeySource::Custom(#function))
        }
    };
    let on_missing = match &args.on_missing {
        Some(value) if value == "ip" => quote!(::policy_runtime::__private::OnMissingKey::Ip),
        _ => quote!(::policy_runtime::__private::OnMissingKey::Reject),
    };
    let count = match &args.count {
        None => quote!(::policy_runtime::__private::CountWhen::Always),
        Some((_, CountArg::Failures)) => quote!(::policy_runtime::__private::CountWhen::Failures),
        Some((_, CountArg::Responses(path))) => {
            // Spanned on the path, so a wrong signature is reported there.
            let function = quote_spanned!(path.span()=> #path);
            quote!(::policy_runtime::__private::CountWhen::Responses(#function))
        }
    };
    let add_to_defaults = args.add_to_defaults.is_some();
    let cost = args
        .cost
        .as_ref()
        .and_then(|cost| cost.base10_parse::<u32>().ok())
        .unwrap_or(1);
    quote!(::policy_runtime::__private::Check::RateLimit(
        ::policy_runtime::__private::RateLimitSpec {
            scope: #scope,
            limits: #limits,
            key: #key,
            on_missing: #on_missing,
            cost: #cost,
            count: #count,
            add_to_defaults: #add_to_defaults,
        }
    ))
}
