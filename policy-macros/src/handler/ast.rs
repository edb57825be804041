//! The handler model: the user's function and its policies, in order.

use super::attr::{PolicyAttr, PolicyKind};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};

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

/// How a handler argument takes a credential's identity: `ApiKeyId` (the API
/// key's) or `Claims<T>` (the JWT's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyIdentity {
    /// `ApiKeyId` (`Claims<T>`), by any path: a check must have admitted the
    /// request with that credential.
    Required,
    /// `Option<ApiKeyId>` (`Option<Claims<T>>`): `None` when no check did.
    Optional,
}

impl KeyIdentity {
    /// How `ty` takes the identity whose type's last path segment is `name`, if it does.
    fn of(ty: &syn::Type, name: &str) -> Option<KeyIdentity> {
        let syn::Type::Path(path) = ty else {
            return None;
        };
        let last = path.path.segments.last()?;
        if last.ident == name {
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
                    if KeyIdentity::of(inner, name) == Some(KeyIdentity::Required))
            })
            .then_some(KeyIdentity::Optional)
    }
}

impl Handler {
    /// The arguments that take the API key's identity, with their types.
    pub(crate) fn key_identity_arguments(
        &self,
    ) -> impl Iterator<Item = (&syn::Type, KeyIdentity)> + '_ {
        self.identity_arguments("ApiKeyId")
    }

    /// The arguments that take the JWT's claims (`Claims<T>`), with their types.
    pub(crate) fn claims_arguments(&self) -> impl Iterator<Item = (&syn::Type, KeyIdentity)> + '_ {
        self.identity_arguments("Claims")
    }

    fn identity_arguments<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a syn::Type, KeyIdentity)> + 'a {
        self.function
            .sig
            .inputs
            .iter()
            .filter_map(move |input| match input {
                syn::FnArg::Typed(typed) => {
                    KeyIdentity::of(&typed.ty, name).map(|form| (&*typed.ty, form))
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
        policies.extend(PolicyAttr::parse(kind, args, &own, errors).map(|p| (own, p)));
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
            policies.extend(PolicyAttr::parse(stacked, args, &anchor, errors).map(|p| (anchor, p)));
        }
        function.attrs = others;
        Handler {
            kind,
            policies,
            function,
            wrapper_attrs,
        }
    }

    /// The router's state, as the handler's `state = ...` names it (checked
    /// in `valid` to be given once).
    pub(crate) fn named_state(&self) -> Option<&syn::Type> {
        self.policies
            .iter()
            .find_map(|(_, policy)| policy.named_state())
            .map(|state| &state.ty)
    }

    /// The `#[utoipa::path(...)]` attributes below the policy attributes:
    /// the wrapper does not take them, a copy of the user's signature does
    /// (see `openapi`).
    pub(crate) fn utoipa_paths(&self) -> impl Iterator<Item = &syn::Attribute> + '_ {
        self.wrapper_attrs
            .iter()
            .filter(|attribute| is_utoipa_path(attribute.path()))
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

/// Whether an attribute is utoipa's `#[utoipa::path(...)]`, written with
/// its crate's name (`utoipa::path` or `::utoipa::path`).
pub(crate) fn is_utoipa_path(path: &syn::Path) -> bool {
    let mut segments = path.segments.iter();
    matches!(
        (segments.next(), segments.next(), segments.next()),
        (Some(first), Some(second), None)
            if first.ident == "utoipa" && second.ident == "path" && second.arguments.is_none()
    )
}

#[cfg(test)]
mod tests {
    use super::{KeyIdentity, is_utoipa_path};

    #[test]
    fn utoipa_path_is_known_by_its_crate_and_name() {
        let is = |path: &str| is_utoipa_path(&syn::parse_str(path).unwrap());
        assert!(is("utoipa::path"));
        assert!(is("::utoipa::path"));
        assert!(!is("path"));
        assert!(!is("utoipa::path::more"));
        assert!(!is("other::path"));
    }

    fn form(ty: &str, name: &str) -> Option<KeyIdentity> {
        KeyIdentity::of(&syn::parse_str(ty).unwrap(), name)
    }

    #[test]
    fn claims_are_found_by_the_last_segment_also_inside_option() {
        assert_eq!(form("Claims", "Claims"), Some(KeyIdentity::Required));
        assert_eq!(
            form("Claims<Tenant>", "Claims"),
            Some(KeyIdentity::Required)
        );
        assert_eq!(
            form("policy_runtime::Claims<serde_json::Value>", "Claims"),
            Some(KeyIdentity::Required)
        );
        assert_eq!(
            form("Option<Claims<Tenant>>", "Claims"),
            Some(KeyIdentity::Optional)
        );
        assert_eq!(form("MyClaims", "Claims"), None);
        assert_eq!(form("Vec<Claims>", "Claims"), None);
        assert_eq!(form("ApiKeyId", "Claims"), None);
        assert_eq!(
            form("Option<ApiKeyId>", "ApiKeyId"),
            Some(KeyIdentity::Optional)
        );
    }
}
