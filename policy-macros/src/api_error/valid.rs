//! The rules of `#[api_error]`: every variant has a status in 400..=599 and a
//! code that is not empty.

use super::ast::ApiErrorEnum;
use crate::errors::Errors;

pub(crate) fn check(parsed: &ApiErrorEnum, errors: &mut Errors) {
    for variant in &parsed.variants {
        match &variant.status {
            Some(status) => match status.base10_parse::<u16>() {
                Ok(400..=599) => {}
                _ => errors.spanned(
                    status,
                    format!(
                        "status {status} is not an error status; use a status from 400 to 599"
                    ),
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
        if let Some(code) = &variant.code {
            if code.value().trim().is_empty() {
                errors.spanned(
                    code,
                    "the code is empty; use a stable name such as \"NOT_FOUND\"",
                );
            }
        }
    }
}
