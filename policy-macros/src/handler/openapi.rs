//! `#[utoipa::path]` below the policy attributes.
//!
//! The wrapper's arguments are `Guard<_>` and `Extracted<T>`, not the
//! handler's own extractors, so utoipa must not read the wrapper. The top
//! policy attribute takes `#[utoipa::path]` off it and puts it, with the
//! function's doc comments, on a copy of the user's signature in a hidden
//! module; utoipa's `__path_<fn>` type is brought back beside the handler,
//! where `#[openapi(paths(...))]` and `utoipa_axum::routes!` look for it:
//!
//! ```text
//! #[rate_limit("20/hour")]                      #[doc(hidden)] mod __policy_openapi_score {
//! #[utoipa::path(get, path = "/score")]             use super::*;
//! async fn score(Path(id): Path<u32>) {...}  =>     #[utoipa::path(get, path = "/score")]
//!                                                   pub fn score(Path(id): Path<u32>) { unreachable!() }
//!                                               }
//!                                               use __policy_openapi_score::__path_score;
//! ```
//!
//! The copy is never called. With `policy_runtime`'s feature `utoipa`, an
//! `OperationLink` ties the handler's policy to `__path_<fn>`, so that
//! `Engine::document` finds its operation by what utoipa records.

use super::ast::Handler;
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// The copy of the signature under `#[utoipa::path]`, the re-export of
/// utoipa's type, and the link; nothing when no `#[utoipa::path]` is below
/// the policy attributes.
pub(crate) fn shadow(handler: &Handler, marker: &syn::Ident) -> TokenStream {
    let Some(attribute) = handler.utoipa_paths().next() else {
        return TokenStream::new();
    };
    let function = &handler.function;
    let signature = &function.sig;
    let ident = &signature.ident;
    let vis = &function.vis;
    let module = format_ident!("__policy_openapi_{}", ident);
    let path_type = format_ident!("__path_{}", ident);
    // utoipa reads summaries and `deprecated` from these.
    let docs = function.attrs.iter().filter(|attribute| {
        attribute.path().is_ident("doc") || attribute.path().is_ident("deprecated")
    });
    let inputs = &signature.inputs;
    let generics = &signature.generics;
    let where_clause = &signature.generics.where_clause;
    // An `impl Trait` return type needs a body of that type; utoipa reads
    // the return type only with its `auto_into_responses`, for named types.
    let output = match &signature.output {
        syn::ReturnType::Type(_, ty) if !mentions_impl(ty) => quote!(-> #ty),
        _ => TokenStream::new(),
    };
    // `#[utoipa::path(impl_for = T)]`: utoipa implements its trait for `T`
    // and makes no `__path_<fn>`.
    let (implementor, reexport) = match impl_for(attribute) {
        Some(implementor) => (implementor, TokenStream::new()),
        None => (
            quote!(#path_type),
            quote! {
                #[doc(hidden)]
                #[allow(unused_imports)]
                #vis use #module::#path_type;
            },
        ),
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        mod #module {
            #[allow(unused_imports)]
            use super::*;

            #(#docs)*
            #attribute
            #[allow(unused_variables, unreachable_code, dead_code, clippy::all)]
            pub fn #ident #generics(#inputs) #output #where_clause {
                ::core::unreachable!()
            }
        }

        #reexport

        ::policy_runtime::__private::utoipa_impl! {
            ::policy_runtime::__private::inventory::submit! {
                ::policy_runtime::__private::OperationLink {
                    policy: <#marker as ::policy_runtime::__private::Policy>::POLICY,
                    operation: <#implementor as ::policy_runtime::__private::utoipa::Path>::operation,
                    methods: <#implementor as ::policy_runtime::__private::utoipa::Path>::methods,
                    path: <#implementor as ::policy_runtime::__private::utoipa::Path>::path,
                }
            }
        }
    }
}

/// Whether a type has `impl Trait` in it.
fn mentions_impl(ty: &syn::Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(quote!(#ty))
}

/// The `T` of `impl_for = T` in `#[utoipa::path(...)]`, if given.
fn impl_for(attribute: &syn::Attribute) -> Option<TokenStream> {
    let syn::Meta::List(list) = &attribute.meta else {
        return None;
    };
    let mut tokens = list.tokens.clone().into_iter().peekable();
    while let Some(token) = tokens.next() {
        let proc_macro2::TokenTree::Ident(ident) = &token else {
            continue;
        };
        if ident != "impl_for" {
            continue;
        }
        if !matches!(tokens.next(), Some(proc_macro2::TokenTree::Punct(punct)) if punct.as_char() == '=')
        {
            return None;
        }
        let mut value = TokenStream::new();
        while let Some(token) = tokens.peek() {
            if matches!(token, proc_macro2::TokenTree::Punct(punct) if punct.as_char() == ',') {
                break;
            }
            value.extend(tokens.next());
        }
        return Some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{impl_for, mentions_impl};

    #[test]
    fn impl_trait_return_types_are_found() {
        assert!(mentions_impl(&syn::parse_quote!(impl IntoResponse)));
        assert!(mentions_impl(&syn::parse_quote!(
            Result<impl IntoResponse, E>
        )));
        assert!(!mentions_impl(&syn::parse_quote!(
            Result<Json<Note>, AppError>
        )));
    }

    #[test]
    fn impl_for_is_read_up_to_the_next_argument() {
        let attribute: syn::Attribute =
            syn::parse_quote!(#[utoipa::path(get, impl_for = my::Doc<u8>, path = "/x")]);
        assert_eq!(
            impl_for(&attribute).unwrap().to_string(),
            "my :: Doc < u8 >"
        );
        let plain: syn::Attribute = syn::parse_quote!(#[utoipa::path(get, path = "/x")]);
        assert!(impl_for(&plain).is_none());
    }
}
