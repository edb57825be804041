//! The rules of `#[api_error]`: every variant has a status in 400..=599, a
//! code, title and category that are not empty, a known severity, at most
//! one of `expose` and `mask`, at most one `#[api(errors)]` field, and
//! extension members with distinct names that the formats do not use.

use super::ast::{ApiErrorEnum, FieldRole, VariantSpec};
use crate::errors::Errors;
use policy_grammar::reserved_members::RESERVED_MEMBERS;

const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

pub(crate) fn check(parsed: &ApiErrorEnum, errors: &mut Errors) {
    for variant in &parsed.variants {
        check_status(variant, errors);
        for (value, message) in [
            (
                &variant.code,
                "the code is empty; use a stable name such as \"NOT_FOUND\"",
            ),
            (
                &variant.title,
                "the title is empty; write a short summary such as \"User not found\"",
            ),
            (
                &variant.category,
                "the category is empty; use a name such as \"validation\"",
            ),
        ] {
            if let Some(value) = value {
                if value.value().trim().is_empty() {
                    errors.spanned(value, message);
                }
            }
        }
        if let Some(severity) = &variant.severity {
            if !SEVERITIES.contains(&severity.value().as_str()) {
                errors.spanned(
                    severity,
                    format!(
                        "`{}` is not a severity; use \"low\", \"medium\", \"high\" or \"critical\"",
                        severity.value()
                    ),
                );
            }
        }
        if let (Some(_), Some(mask)) = (&variant.expose, &variant.mask) {
            errors.spanned(mask, "`expose` and `mask` contradict each other; keep one");
        }
        check_fields(variant, errors);
    }
}

fn check_status(variant: &VariantSpec, errors: &mut Errors) {
    match &variant.status {
        Some(status) => match status.base10_parse::<u16>() {
            Ok(400..=599) => {}
            _ => errors.spanned(
                status,
                format!("status {status} is not an error status; use a status from 400 to 599"),
            ),
        },
        None => match &variant.attribute {
            Some(attribute) => errors.spanned(
                attribute,
                format!(
                    "variant `{}` has no status; add one, as in `#[api(status = 404)]`",
                    variant.ident
                ),
            ),
            None => errors.spanned(
                &variant.ident,
                format!(
                    "variant `{}` has no status; add `#[api(status = ...)]` with a status from 400 to 599",
                    variant.ident
                ),
            ),
        },
    }
}

fn check_fields(variant: &VariantSpec, errors: &mut Errors) {
    let mut names: Vec<String> = Vec::new();
    let mut has_errors = false;
    for field in &variant.fields {
        match &field.role {
            FieldRole::Errors { keyword } => {
                if std::mem::replace(&mut has_errors, true) {
                    errors.spanned(keyword, "only one field of a variant can hold its `errors`");
                }
            }
            FieldRole::Extension { keyword, name } => {
                let Some((member, _)) = field.extension_name() else {
                    errors.spanned(
                        keyword,
                        "a field of a tuple variant needs a member name, as in `#[api(extension = \"balance\")]`",
                    );
                    continue;
                };
                let spanned_on = |errors: &mut Errors, message: String| match name {
                    Some(name) => errors.spanned(name, message),
                    None => errors.spanned(keyword, message),
                };
                if member.is_empty() {
                    spanned_on(errors, "the member name is empty".to_owned());
                } else if RESERVED_MEMBERS.contains(&member.as_str()) {
                    spanned_on(
                        errors,
                        format!(
                            "`{member}` is a member the error formats use; name the extension otherwise, as in `#[api(extension = \"{member}_value\")]`"
                        ),
                    );
                } else if names.contains(&member) {
                    spanned_on(
                        errors,
                        format!("two fields of this variant are the extension member `{member}`"),
                    );
                } else {
                    names.push(member);
                }
            }
        }
    }
}
