//! The `#[api_error]` model: the enum, and what each variant's `#[api(...)]` says.

use crate::errors::Errors;
use syn::{Ident, LitInt, LitStr};

/// An error enum under `#[api_error]`.
pub(crate) struct ApiErrorEnum {
    /// The enum, with the `#[api(...)]` attributes taken off its variants.
    pub(crate) item: syn::ItemEnum,
    pub(crate) variants: Vec<VariantSpec>,
}

/// One variant and its `#[api(...)]` arguments, as written.
pub(crate) struct VariantSpec {
    pub(crate) ident: Ident,
    /// The first `#[api]` attribute, for errors about what it lacks.
    pub(crate) attribute: Option<syn::Attribute>,
    pub(crate) status: Option<LitInt>,
    pub(crate) code: Option<LitStr>,
}

impl ApiErrorEnum {
    pub(crate) fn parse(mut item: syn::ItemEnum, errors: &mut Errors) -> Self {
        let variants = item
            .variants
            .iter_mut()
            .map(|variant| VariantSpec::parse(variant, errors))
            .collect();
        ApiErrorEnum { item, variants }
    }
}

impl VariantSpec {
    fn parse(variant: &mut syn::Variant, errors: &mut Errors) -> Self {
        let mut spec = VariantSpec {
            ident: variant.ident.clone(),
            attribute: None,
            status: None,
            code: None,
        };
        let (api, others): (Vec<_>, Vec<_>) = std::mem::take(&mut variant.attrs)
            .into_iter()
            .partition(|attribute| attribute.path().is_ident("api"));
        variant.attrs = others;
        for attribute in api {
            if spec.attribute.is_some() {
                errors.spanned(
                    &attribute,
                    "duplicate `#[api(...)]` on this variant; put every argument in one attribute",
                );
                continue;
            }
            let result = attribute.parse_nested_meta(|meta| {
                let name = meta
                    .path
                    .get_ident()
                    .map(Ident::to_string)
                    .unwrap_or_default();
                match name.as_str() {
                    "status" => {
                        let value: LitInt = meta.value()?.parse()?;
                        if spec.status.replace(value).is_some() {
                            return Err(meta.error("duplicate argument `status`"));
                        }
                    }
                    "code" => {
                        let value: LitStr = meta.value()?.parse()?;
                        if spec.code.replace(value).is_some() {
                            return Err(meta.error("duplicate argument `code`"));
                        }
                    }
                    _ => {
                        return Err(meta.error(format!(
                            "unknown argument `{}` in `#[api(...)]`; expected `status` or `code`",
                            quote::ToTokens::to_token_stream(&meta.path)
                        )))
                    }
                }
                Ok(())
            });
            if let Err(error) = result {
                errors.push(error);
            }
            spec.attribute = Some(attribute);
        }
        spec
    }
}
