//! The `#[api_error]` model: the enum, what each variant's `#[api(...)]`
//! says, and which fields carry `#[api(extension)]` or `#[api(errors)]`.

use crate::errors::Errors;
use proc_macro2::Span;
use syn::{Ident, LitInt, LitStr};

/// An error enum under `#[api_error]`.
pub(crate) struct ApiErrorEnum {
    /// The enum, with the `#[api(...)]` attributes taken off its variants and fields.
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
    pub(crate) title: Option<LitStr>,
    pub(crate) severity: Option<LitStr>,
    pub(crate) category: Option<LitStr>,
    /// `expose`: show the message even for a 5xx.
    pub(crate) expose: Option<Ident>,
    /// `mask`: hide the message even for a 4xx.
    pub(crate) mask: Option<Ident>,
    pub(crate) fields: Vec<FieldSpec>,
}

/// A field with `#[api(...)]`.
pub(crate) struct FieldSpec {
    /// The field's name, or its index in a tuple variant.
    pub(crate) member: syn::Member,
    pub(crate) ty: syn::Type,
    pub(crate) role: FieldRole,
}

pub(crate) enum FieldRole {
    /// `#[api(extension)]` or `#[api(extension = "name")]`: an extension
    /// member; the name is the field's unless given.
    Extension {
        keyword: Ident,
        name: Option<LitStr>,
    },
    /// `#[api(errors)]`: the variant's per-field errors.
    Errors { keyword: Ident },
}

impl FieldSpec {
    /// The extension member's name: as given, else the field's name.
    pub(crate) fn extension_name(&self) -> Option<(String, Span)> {
        match &self.role {
            FieldRole::Extension {
                name: Some(name), ..
            } => Some((name.value(), name.span())),
            FieldRole::Extension {
                keyword,
                name: None,
            } => match &self.member {
                syn::Member::Named(ident) => {
                    let name = ident.to_string();
                    let name = name.strip_prefix("r#").unwrap_or(&name).to_owned();
                    Some((name, keyword.span()))
                }
                syn::Member::Unnamed(_) => None,
            },
            FieldRole::Errors { .. } => None,
        }
    }
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

const VARIANT_ARGUMENTS: &str =
    "expected `status`, `code`, `title`, `severity`, `category`, `expose` or `mask`";

impl VariantSpec {
    fn parse(variant: &mut syn::Variant, errors: &mut Errors) -> Self {
        let mut spec = VariantSpec {
            ident: variant.ident.clone(),
            attribute: None,
            status: None,
            code: None,
            title: None,
            severity: None,
            category: None,
            expose: None,
            mask: None,
            fields: Vec::new(),
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
                let duplicate = || meta.error(format!("duplicate argument `{name}`"));
                match name.as_str() {
                    "status" => {
                        let value: LitInt = meta.value()?.parse()?;
                        if spec.status.replace(value).is_some() {
                            return Err(duplicate());
                        }
                    }
                    "code" | "title" | "severity" | "category" => {
                        let value: LitStr = meta.value()?.parse()?;
                        let slot = match name.as_str() {
                            "code" => &mut spec.code,
                            "title" => &mut spec.title,
                            "severity" => &mut spec.severity,
                            _ => &mut spec.category,
                        };
                        if slot.replace(value).is_some() {
                            return Err(duplicate());
                        }
                    }
                    "expose" | "mask" => {
                        if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                            return Err(meta.error(format!(
                                "`{name}` takes no value; write `#[api(status = ..., {name})]`"
                            )));
                        }
                        let ident = meta.path.get_ident().cloned();
                        let slot = if name == "expose" {
                            &mut spec.expose
                        } else {
                            &mut spec.mask
                        };
                        if std::mem::replace(slot, ident).is_some() {
                            return Err(duplicate());
                        }
                    }
                    _ => {
                        return Err(meta.error(format!(
                            "unknown argument `{}` in `#[api(...)]`; {VARIANT_ARGUMENTS}",
                            quote::ToTokens::to_token_stream(&meta.path)
                        )));
                    }
                }
                Ok(())
            });
            if let Err(error) = result {
                errors.push(error);
            }
            spec.attribute = Some(attribute);
        }
        for (index, field) in variant.fields.iter_mut().enumerate() {
            let member = match &field.ident {
                Some(ident) => syn::Member::Named(ident.clone()),
                None => syn::Member::Unnamed(syn::Index::from(index)),
            };
            let (api, others): (Vec<_>, Vec<_>) = std::mem::take(&mut field.attrs)
                .into_iter()
                .partition(|attribute| attribute.path().is_ident("api"));
            field.attrs = others;
            let mut role = None;
            for attribute in api {
                let result = attribute.parse_nested_meta(|meta| {
                    let name = meta
                        .path
                        .get_ident()
                        .map(Ident::to_string)
                        .unwrap_or_default();
                    let keyword = meta.path.get_ident().cloned();
                    let parsed = match (name.as_str(), keyword) {
                        ("extension", Some(keyword)) => {
                            let name = if meta.input.peek(syn::Token![=]) {
                                Some(meta.value()?.parse::<LitStr>()?)
                            } else {
                                None
                            };
                            FieldRole::Extension { keyword, name }
                        }
                        ("errors", Some(keyword)) => {
                            if meta.input.peek(syn::Token![=]) {
                                return Err(meta.error(
                                    "`errors` takes no value; put it on a `Vec<policy_runtime::FieldError>` field",
                                ));
                            }
                            FieldRole::Errors { keyword }
                        }
                        _ => {
                            return Err(meta.error(format!(
                                "unknown argument `{}` in a field's `#[api(...)]`; expected `extension`, `extension = \"name\"` or `errors`",
                                quote::ToTokens::to_token_stream(&meta.path)
                            )))
                        }
                    };
                    if role.replace(parsed).is_some() {
                        return Err(meta.error(
                            "a field takes one of `extension` or `errors`, once",
                        ));
                    }
                    Ok(())
                });
                if let Err(error) = result {
                    errors.push(error);
                }
            }
            if let Some(role) = role {
                spec.fields.push(FieldSpec {
                    member,
                    ty: field.ty.clone(),
                    role,
                });
            }
        }
        spec
    }
}
