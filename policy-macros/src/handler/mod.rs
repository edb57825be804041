//! The policy attributes of an async axum handler: `#[rate_limit]`,
//! `#[require_api_key]`, `#[require_jwt]`, `#[body_limit]` and `#[timeout]`.
//!
//! Policy attributes stacked on one handler compose into one wrapper: the
//! attribute that expands first (the top one) collects the others from the
//! function's attributes, so every check runs from one guard, top to bottom.
//! `#[body_limit]` and `#[timeout]` are not checks but fields of the
//! handler's policy, for the whole request wherever they sit.
//!
//! Steps: [`attr`] parses each attribute's arguments, [`ast`] builds the
//! handler model, [`valid`] checks it, [`expand`] writes the wrapper, with
//! [`assertions`] on the user's code for what the wrapper needs of it,
//! [`named_state`] checks and extracts the arguments against the state a
//! `state = ...` names, and [`openapi`] puts a `#[utoipa::path]` below them
//! on the user's signature.

mod assertions;
mod ast;
mod attr;
mod expand;
mod named_state;
mod openapi;
mod valid;

use crate::errors::Errors;
use proc_macro2::TokenStream;
use quote::quote;

pub(crate) use attr::PolicyKind;

/// Runs one policy attribute: parse, validate, expand.
pub(crate) fn expand_attribute(
    kind: PolicyKind,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    if is_composed(&args) {
        // A policy stacked below another: the top attribute already built the
        // wrapper with this check in it.
        return item;
    }
    let mut errors = Errors::default();
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            errors.push(syn::Error::new(
                proc_macro2::Span::call_site(),
                format!(
                    "`#[{}]` goes on an async fn (an axum handler)",
                    kind.attribute_name()
                ),
            ));
            let compile_errors = errors.to_compile_errors();
            return quote!(#compile_errors #item);
        }
    };
    let handler = ast::Handler::parse(kind, args, function, &mut errors);
    valid::check(&handler, &mut errors);
    if !errors.is_empty() {
        let compile_errors = errors.to_compile_errors();
        let original = handler.original();
        return quote!(#compile_errors #original);
    }
    expand::handler(&handler)
}

fn is_composed(args: &TokenStream) -> bool {
    let mut tokens = args.clone().into_iter();
    matches!(
        (tokens.next(), tokens.next()),
        (Some(proc_macro2::TokenTree::Ident(ident)), None) if ident == ast::COMPOSED
    )
}
