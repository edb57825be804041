//! Writing `ApiError` and `IntoResponse` for an `#[api_error]` enum.

use super::ast::{ApiErrorEnum, FieldRole, VariantSpec};
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) fn api_error(parsed: &ApiErrorEnum) -> TokenStream {
    let item = &parsed.item;
    let ident = &item.ident;
    let (impl_generics, type_generics, where_clause) = item.generics.split_for_impl();
    let arms = |value: &dyn Fn(&VariantSpec) -> TokenStream| -> Vec<TokenStream> {
        parsed
            .variants
            .iter()
            .map(|variant| {
                let name = &variant.ident;
                let value = value(variant);
                quote!(Self::#name { .. } => #value)
            })
            .collect()
    };
    let statuses = arms(&|variant| {
        let status = variant
            .status
            .as_ref()
            .map(|s| s.base10_parse::<u16>().unwrap_or(500));
        quote!(#status)
    });
    let codes = arms(&|variant| {
        let code = code_of(variant);
        quote!(#code)
    });
    let optional = |value: &Option<syn::LitStr>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let titles = arms(&|variant| optional(&variant.title));
    let categories = arms(&|variant| optional(&variant.category));
    let severities = arms(&|variant| match &variant.severity {
        Some(severity) => {
            let level = match severity.value().as_str() {
                "low" => quote!(Low),
                "medium" => quote!(Medium),
                "critical" => quote!(Critical),
                _ => quote!(High),
            };
            quote!(::core::option::Option::Some(::policy_runtime::__private::Severity::#level))
        }
        None => quote!(::core::option::Option::None),
    });
    let exposed = arms(&|variant| match (&variant.expose, &variant.mask) {
        (Some(_), _) => quote!(true),
        (None, Some(_)) => quote!(false),
        (None, None) => {
            let status = variant
                .status
                .as_ref()
                .and_then(|s| s.base10_parse::<u16>().ok());
            let client_error = status.is_some_and(|status| status < 500);
            quote!(#client_error)
        }
    });
    let annotations: Vec<TokenStream> = parsed
        .variants
        .iter()
        .filter(|variant| !variant.fields.is_empty())
        .map(annotate_arm)
        .collect();
    let responses = utoipa_responses(parsed);
    // Spanned on the enum's name, so "`E` is not `std::error::Error`" points at it.
    let api_error_trait = quote_spanned!(ident.span()=> ::policy_runtime::ApiError);
    quote! {
        #item

        impl #impl_generics #api_error_trait for #ident #type_generics #where_clause {
            fn status(&self) -> ::policy_runtime::__private::StatusCode {
                let status: u16 = match self {
                    #(#statuses,)*
                };
                ::policy_runtime::__private::StatusCode::from_u16(status)
                    .unwrap_or(::policy_runtime::__private::StatusCode::INTERNAL_SERVER_ERROR)
            }

            fn code(&self) -> &'static str {
                match self {
                    #(#codes,)*
                }
            }

            fn title(&self) -> ::core::option::Option<&'static str> {
                match self {
                    #(#titles,)*
                }
            }

            fn severity(&self) -> ::core::option::Option<::policy_runtime::__private::Severity> {
                match self {
                    #(#severities,)*
                }
            }

            fn category(&self) -> ::core::option::Option<&'static str> {
                match self {
                    #(#categories,)*
                }
            }

            fn exposed(&self) -> bool {
                match self {
                    #(#exposed,)*
                }
            }

            #[allow(unreachable_patterns)]
            fn annotate(
                &self,
                body: ::policy_runtime::__private::ErrorBody,
            ) -> ::policy_runtime::__private::ErrorBody {
                match self {
                    #(#annotations)*
                    _ => body,
                }
            }
        }

        impl #impl_generics ::policy_runtime::__private::IntoResponse for #ident #type_generics #where_clause {
            fn into_response(self) -> ::policy_runtime::__private::Response {
                ::policy_runtime::__private::api_error_response(&self)
            }
        }

        #responses
    }
}

/// `utoipa::IntoResponses` for the enum, inside `__private::utoipa_impl!`:
/// kept when `policy_runtime`'s feature `utoipa` is on, dropped when it is
/// off, so the enum compiles either way. Each variant is described by its
/// status, code, title and the message a client sees: its `#[error("...")]`
/// text as written when it is shown, the status's reason when it is masked.
fn utoipa_responses(parsed: &ApiErrorEnum) -> TokenStream {
    let item = &parsed.item;
    let ident = &item.ident;
    let (impl_generics, type_generics, where_clause) = item.generics.split_for_impl();
    let docs = parsed.variants.iter().map(|variant| {
        let status = variant
            .status
            .as_ref()
            .and_then(|s| s.base10_parse::<u16>().ok())
            .unwrap_or(500);
        let code = code_of(variant);
        let shown = match (&variant.expose, &variant.mask) {
            (Some(_), _) => true,
            (None, Some(_)) => false,
            (None, None) => status < 500,
        };
        let message = item
            .variants
            .iter()
            .find(|written| written.ident == variant.ident)
            .and_then(error_text)
            .filter(|_| shown)
            .map_or_else(
                || quote!(::core::option::Option::None),
                |text| quote!(::core::option::Option::Some(#text)),
            );
        let title = match &variant.title {
            Some(title) => quote!(::core::option::Option::Some(#title)),
            None => quote!(::core::option::Option::None),
        };
        quote!(::policy_runtime::__private::ApiErrorDoc {
            status: #status,
            code: #code,
            message: #message,
            title: #title,
        })
    });
    quote! {
        ::policy_runtime::__private::utoipa_impl! {
            impl #impl_generics ::policy_runtime::__private::utoipa::IntoResponses
                for #ident #type_generics #where_clause
            {
                fn responses() -> ::std::collections::BTreeMap<
                    ::std::string::String,
                    ::policy_runtime::__private::utoipa::openapi::RefOr<
                        ::policy_runtime::__private::utoipa::openapi::response::Response,
                    >,
                > {
                    ::policy_runtime::__private::api_error_responses(&[#(#docs),*])
                }
            }
        }
    }
}

/// The text of a variant's `#[error("...")]` (thiserror's), as written.
fn error_text(variant: &syn::Variant) -> Option<syn::LitStr> {
    variant
        .attrs
        .iter()
        .filter(|attribute| attribute.path().is_ident("error"))
        .find_map(|attribute| match &attribute.meta {
            syn::Meta::List(list) => list
                .parse_args_with(|input: syn::parse::ParseStream| {
                    let text: syn::LitStr = input.parse()?;
                    let _: TokenStream = input.parse()?;
                    Ok(text)
                })
                .ok(),
            _ => None,
        })
}

/// `Self::V { field: __api_field0, .. } => body.with_extension(...)...,`
fn annotate_arm(variant: &VariantSpec) -> TokenStream {
    let name = &variant.ident;
    let mut bindings = Vec::new();
    let mut calls = Vec::new();
    for (index, field) in variant.fields.iter().enumerate() {
        let member = &field.member;
        // Spanned on the field's type, so a type that is not `Serialize`
        // (or not a list of `FieldError`s) is reported there.
        let span = field.ty.span();
        let binding = format_ident!("__api_field{}", index, span = span);
        bindings.push(quote!(#member: #binding));
        calls.push(match &field.role {
            FieldRole::Extension { .. } => {
                let member_name = field
                    .extension_name()
                    .map(|(name, _)| name)
                    .unwrap_or_default();
                quote_spanned!(span=> .with_extension(#member_name, #binding))
            }
            FieldRole::Errors { .. } => quote_spanned!(span=>
                .with_field_errors(::policy_runtime::__private::field_errors(#binding))
            ),
        });
    }
    quote!(Self::#name { #(#bindings,)* .. } => body #(#calls)*,)
}

/// The variant's code: as written, or its name in SCREAMING_SNAKE_CASE.
fn code_of(variant: &VariantSpec) -> String {
    if let Some(code) = &variant.code {
        return code.value();
    }
    let name = variant.ident.to_string();
    let name = name.strip_prefix("r#").unwrap_or(&name);
    let mut code = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && previous_lower {
            code.push('_');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        code.extend(c.to_uppercase());
    }
    code
}
