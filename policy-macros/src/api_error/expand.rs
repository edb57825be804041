//! Writing `ApiError` and `IntoResponse` for an `#[api_error]` enum.

use super::ast::{ApiErrorEnum, VariantSpec};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

pub(crate) fn api_error(parsed: &ApiErrorEnum) -> TokenStream {
    let item = &parsed.item;
    let ident = &item.ident;
    let (impl_generics, type_generics, where_clause) = item.generics.split_for_impl();
    let statuses = parsed.variants.iter().map(|variant| {
        let name = &variant.ident;
        let status = variant
            .status
            .as_ref()
            .map(|s| s.base10_parse::<u16>().unwrap_or(500));
        quote!(Self::#name { .. } => #status)
    });
    let codes = parsed.variants.iter().map(|variant| {
        let name = &variant.ident;
        let code = code_of(variant);
        quote!(Self::#name { .. } => #code)
    });
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
        }

        impl #impl_generics ::policy_runtime::__private::IntoResponse for #ident #type_generics #where_clause {
            fn into_response(self) -> ::policy_runtime::__private::Response {
                ::policy_runtime::__private::api_error_response(&self)
            }
        }
    }
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
