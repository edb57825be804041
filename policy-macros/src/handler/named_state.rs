//! The arguments of a handler whose attribute names the router's state
//! (`state = AppState`): each is checked against that state on its own type,
//! and extracted through a type of the handler's own that is an extractor
//! for that state whatever the argument is.
//!
//! ```text
//! #[rate_limit("5/minute", state = AppState)]   async fn report(
//! async fn report(                                   __policy_guard: Guard<__PolicyOf_report>,
//!     State(s): State<AppState>,          =>         __policy_arg0: __PolicyArgOf_report<State<AppState>, 0>,
//!     db: Db,                                        db: __PolicyArgOf_report<Db, 1>,
//! ) -> String {...}                              ) -> Response {...}
//!
//! impl FromRequestParts<AppState> for __PolicyArgOf_report<State<AppState>, 0> {...}
//! impl FromRequest<AppState> for __PolicyArgOf_report<Db, 1> {...}
//! fn check() { parts_extractor::<State<AppState>, AppState>(); body_extractor::<Db, AppState, _>(); }
//! ```
//!
//! The impls are concrete, so the runtime's `Probe` picks each argument's
//! own extractor, or none when the argument is not one; the wrapper is then
//! a handler for a router of that state in every case, and a mistake is
//! reported once, by the check, on the argument's type (with the runtime's
//! `PartsExtractor`/`BodyExtractor` messages).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The extractor impl of argument `index` (of type `written`, the user's
/// `ty` or `()` in place of a misplaced body reader) and its check.
pub(crate) fn argument(
    arg_type: &syn::Ident,
    state: &syn::Type,
    ty: &syn::Type,
    written: &TokenStream,
    index: usize,
    last: bool,
) -> TokenStream {
    let position = proc_macro2::Literal::usize_unsuffixed(index);
    let private = quote!(::policy_runtime::__private);
    let (extractor, check) = if last {
        let extractor = quote! {
            impl #private::FromRequest<#state> for #arg_type<#written, #position> {
                type Rejection = #private::Response;

                async fn from_request(
                    request: #private::Request,
                    state: &#state,
                ) -> ::core::result::Result<Self, Self::Rejection> {
                    #[allow(unused_imports)]
                    use #private::{ExtractLast as _, NotAnExtractor as _};
                    (&#private::Probe::<#written, #state>::NEW)
                        .extract_last(request, state)
                        .await
                        .map(#arg_type)
                }
            }
        };
        let check = quote_spanned!(ty.span()=> #private::body_extractor::<#written, #state, _>(););
        (extractor, check)
    } else {
        let extractor = quote! {
            impl #private::FromRequestParts<#state> for #arg_type<#written, #position> {
                type Rejection = #private::Response;

                async fn from_request_parts(
                    parts: &mut #private::Parts,
                    state: &#state,
                ) -> ::core::result::Result<Self, Self::Rejection> {
                    #[allow(unused_imports)]
                    use #private::{ExtractParts as _, NotAnExtractor as _};
                    (&#private::Probe::<#written, #state>::NEW)
                        .extract_parts(parts, state)
                        .await
                        .map(#arg_type)
                }
            }
        };
        let check = quote_spanned!(ty.span()=> #private::parts_extractor::<#written, #state>(););
        (extractor, check)
    };
    quote! {
        #extractor
        const _: () = {
            fn check() {
                #check
            }
        };
    }
}

/// The handler's argument type, with each argument's impl and check.
pub(crate) fn wrapper_type(
    arg_type: &syn::Ident,
    vis: &syn::Visibility,
    arguments: Vec<TokenStream>,
) -> TokenStream {
    quote! {
        /// An argument of a policy-wrapped handler whose attribute names the
        /// router's state (`state = ...`): the argument's own extractor, for
        /// that state. An error that names this type means the router's
        /// state is not the one named.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #arg_type<T, const INDEX: usize>(T);

        // `#[instrument]` stacked below records the arguments as the user's types show them.
        impl<T: ::core::fmt::Debug, const INDEX: usize> ::core::fmt::Debug for #arg_type<T, INDEX> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.0, f)
            }
        }

        #(#arguments)*
    }
}
