//! `#[api_error]` on an error enum: each variant maps to a status and a code.
//!
//! Steps: [`ast`] parses the enum, each variant's `#[api(...)]` and the
//! fields marked `#[api(extension)]` or `#[api(errors)]`, [`valid`] checks
//! them, [`expand`] writes `ApiError` and `IntoResponse`.

mod ast;
mod expand;
mod valid;

use crate::errors::Errors;
use proc_macro2::TokenStream;
use quote::quote;

/// Runs `#[api_error]`: parse, validate, expand.
pub(crate) fn expand_attribute(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.spanned(
            &args,
            "`#[api_error]` takes no arguments; put `#[api(status = ..., code = \"...\")]` on each variant",
        );
    }
    let parsed = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Enum(item)) => ast::ApiErrorEnum::parse(item, &mut errors),
        Ok(other) => {
            let message = "`#[api_error]` goes on an enum whose variants are the errors; \
                           give each variant `#[api(status = ...)]`";
            match &other {
                syn::Item::Struct(item) => errors.spanned(item.struct_token, message),
                syn::Item::Union(item) => errors.spanned(item.union_token, message),
                _ => errors.push(syn::Error::new(proc_macro2::Span::call_site(), message)),
            }
            let compile_errors = errors.to_compile_errors();
            return quote!(#compile_errors #other);
        }
        Err(error) => {
            errors.push(error);
            let compile_errors = errors.to_compile_errors();
            return quote!(#compile_errors #item);
        }
    };
    valid::check(&parsed, &mut errors);
    if !errors.is_empty() {
        let compile_errors = errors.to_compile_errors();
        let item = &parsed.item;
        return quote!(#compile_errors #item);
    }
    expand::api_error(&parsed)
}
