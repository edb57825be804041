//! The handler model: the user's function and its policies, in order.

use super::attr::{PolicyAttr, PolicyKind};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;

/// A policy-wrapped handler.
pub(crate) struct Handler {
    /// The attribute being expanded: the top policy attribute.
    pub(crate) kind: PolicyKind,
    /// Every policy on the handler, top first, with its attribute's tokens to
    /// span errors on.
    pub(crate) policies: Vec<(TokenStream, PolicyAttr)>,
    /// The user's function, without its policy attributes.
    pub(crate) function: syn::ItemFn,
    /// The function's attributes for the wrapper: the others as written, and
    /// each stacked policy attribute replaced by its composed form.
    pub(crate) wrapper_attrs: Vec<syn::Attribute>,
}

/// The argument that marks a stacked policy attribute as already composed
/// into the wrapper. The attribute is kept (in this form) rather than removed
/// so that rustc still resolves its path: the user's `use` of it stays used.
pub(crate) const COMPOSED: &str = "__composed";

/// How a handler argument takes the API key's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyIdentity {
    /// `ApiKeyId`, by any path: a key check must have admitted the request.
    Required,
    /// `Option<ApiKeyId>`: `None` when no key check admitted it.
    Optional,
}

impl KeyIdentity {
    /// How `ty` takes the key's identity, if it does.
    fn of(ty: &syn::Type) -> Option<KeyIdentity> {
        let syn::Type::Path(path) = ty else {
            return None;
        };
        let last = path.path.segments.last()?;
        if last.ident == "ApiKeyId" {
            return Some(KeyIdentity::Required);
        }
        if last.ident != "Option" {
            return None;
        }
        let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        args.args
            .iter()
            .any(|arg| {
                matches!(arg, syn::GenericArgument::Type(inner)
                    if KeyIdentity::of(inner) == Some(KeyIdentity::Required))
            })
            .then_some(KeyIdentity::Optional)
    }
}

impl Handler {
    /// The arguments that take the API key's identity, with their types.
    pub(crate) fn key_identity_arguments(
        &self,
    ) -> impl Iterator<Item = (&syn::Type, KeyIdentity)> + '_ {
        self.function
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                syn::FnArg::Typed(typed) => {
                    KeyIdentity::of(&typed.ty).map(|form| (&*typed.ty, form))
                }
                syn::FnArg::Receiver(_) => None,
            })
    }

    /// Builds the model from the expanding attribute's arguments and the
    /// function, taking the policy attributes stacked below it off the function.
    pub(crate) fn parse(
        kind: PolicyKind,
        args: TokenStream,
        mut function: syn::ItemFn,
        errors: &mut Errors,
    ) -> Self {
        let mut policies = Vec::new();
        let own = quote::ToTokens::to_token_stream(&proc_macro2::Ident::new(
            kind.attribute_name(),
            Span::call_site(), // the attribute being expanded
        ));
        policies.extend(PolicyAttr::parse(kind, args, Span::call_site(), errors).map(|p| (own, p)));
        let mut others = Vec::new();
        let mut wrapper_attrs = Vec::new();
        for attribute in std::mem::take(&mut function.attrs) {
            let Some(stacked) = PolicyKind::of_path(attribute.path()) else {
                others.push(attribute.clone());
                wrapper_attrs.push(attribute);
                continue;
            };
            let mut composed = attribute.clone();
            let path = attribute.path();
            let marker = quote::format_ident!("{}", COMPOSED);
            composed.meta = syn::parse_quote!(#path(#marker));
            wrapper_attrs.push(composed);
            let args = match &attribute.meta {
                syn::Meta::Path(_) => TokenStream::new(),
                syn::Meta::List(list) => list.tokens.clone(),
                syn::Meta::NameValue(pair) => {
                    errors.spanned(
                        pair.eq_token,
                        format!(
                            "write the arguments in parentheses, as in `#[{}(...)]`",
                            stacked.attribute_name()
                        ),
                    );
                    continue;
                }
            };
            let anchor = quote::ToTokens::to_token_stream(&attribute);
            policies.extend(
                PolicyAttr::parse(stacked, args, attribute.span(), errors).map(|p| (anchor, p)),
            );
        }
        function.attrs = others;
        Handler {
            kind,
            policies,
            function,
            wrapper_attrs,
        }
    }

    /// The function as the user wrote it, its stacked policy attributes in
    /// composed form: what is emitted beside the errors when the input is
    /// wrong, so that no other error or warning follows from the same mistake.
    pub(crate) fn original(&self) -> syn::ItemFn {
        syn::ItemFn {
            attrs: self.wrapper_attrs.clone(),
            ..self.function.clone()
        }
    }
}
