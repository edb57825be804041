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
//! ```
//!
//! The guard is the first extractor, so every check runs before any other
//! extractor and a refused request never has its body read. The user's
//! function is kept whole as an inner fn, so `return`, `?` and `impl Trait`
//! keep their meaning and lints still fire on the user's code.

use super::ast::Handler;
use super::attr::PolicyAttr;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

pub(crate) fn handler(handler: &Handler) -> TokenStream {
    let function = &handler.function;
    let signature = &function.sig;
    let ident = &signature.ident;
    let marker = format_ident!("__PolicyOf_{}", ident);
    let attrs = &handler.wrapper_attrs;
    let vis = &function.vis;
    let params = &signature.generics.params;
    let where_clause = &signature.generics.where_clause;

    let mut outer_inputs = Vec::new();
    let mut call_args = Vec::new();
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
        outer_inputs.push(quote!(#name: #ty));
        call_args.push(name);
    }

    let inner = syn::ItemFn {
        attrs: Vec::new(),
        vis: syn::Visibility::Inherited,
        sig: signature.clone(),
        block: function.block.clone(),
    };
    let checks = handler.policies.iter().scan(0usize, |rate_limits, (_, policy)| {
        Some(match policy {
            PolicyAttr::RateLimit { quotas } => {
                *rate_limits += 1;
                let scope = if *rate_limits == 1 {
                    quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)))
                } else {
                    let suffix = format!("#{rate_limits}");
                    quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident), #suffix))
                };
                let quotas = quotas.iter().map(|quota| {
                    let count = quota.count;
                    let secs = quota.period_secs;
                    quote!(::policy_runtime::__private::Quota::new(
                        #count,
                        ::policy_runtime::__private::Duration::from_secs(#secs),
                    ))
                });
                quote!(::policy_runtime::__private::Check::RateLimit {
                    scope: #scope,
                    quotas: &[#(#quotas),*],
                })
            }
            PolicyAttr::ApiKey => quote!(::policy_runtime::__private::Check::ApiKey),
        })
    });

    quote! {
        #(#attrs)*
        #vis async fn #ident<#params>(
            __policy_guard: ::policy_runtime::__private::Guard<#marker>,
            #(#outer_inputs),*
        ) -> ::policy_runtime::__private::Response #where_clause {
            #inner
            __policy_guard.finish(#ident(#(#call_args),*).await)
        }

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #marker {}

        impl ::policy_runtime::__private::Policy for #marker {
            const POLICY: &'static ::policy_runtime::__private::HandlerPolicy =
                &::policy_runtime::__private::HandlerPolicy {
                    handler: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    checks: &[#(#checks),*],
                };
        }
    }
}
