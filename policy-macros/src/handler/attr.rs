//! Parsing the arguments of one policy attribute into a [`PolicyAttr`].

use crate::errors::Errors;
use crate::quota::{parse_limits, QuotaSpec};
use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::LitStr;

/// Which policy attribute this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    RateLimit,
    ApiKey,
}

impl PolicyKind {
    pub(crate) fn attribute_name(self) -> &'static str {
        match self {
            PolicyKind::RateLimit => "rate_limit",
            PolicyKind::ApiKey => "require_api_key",
        }
    }

    /// The policy attribute a path names, by its last segment
    /// (`rate_limit`, `policy_runtime::rate_limit`, ...).
    pub(crate) fn of_path(path: &syn::Path) -> Option<Self> {
        let last = path.segments.last()?;
        if !last.arguments.is_none() {
            return None;
        }
        if last.ident == "rate_limit" {
            Some(PolicyKind::RateLimit)
        } else if last.ident == "require_api_key" {
            Some(PolicyKind::ApiKey)
        } else {
            None
        }
    }
}

/// One policy attribute with its checked arguments.
pub(crate) enum PolicyAttr {
    RateLimit { quotas: Vec<QuotaSpec> },
    ApiKey,
}

impl PolicyAttr {
    /// Parses the arguments (the tokens inside the parentheses) of a policy
    /// attribute. `span` points at the attribute, for errors about what is missing.
    pub(crate) fn parse(
        kind: PolicyKind,
        args: TokenStream,
        span: Span,
        errors: &mut Errors,
    ) -> Option<Self> {
        match kind {
            PolicyKind::RateLimit => parse_rate_limit(args, span, errors),
            PolicyKind::ApiKey => parse_api_key(args, errors),
        }
    }
}

fn parse_rate_limit(args: TokenStream, span: Span, errors: &mut Errors) -> Option<PolicyAttr> {
    if args.is_empty() {
        errors.push(syn::Error::new(
            span,
            "`#[rate_limit]` needs a limit, as in `#[rate_limit(\"20/hour\")]` or `#[rate_limit(\"200/day; 50/hour\")]`",
        ));
        return None;
    }
    let parsed = match RateLimitArgs::parse.parse2(args) {
        Ok(parsed) => parsed,
        Err(error) => {
            errors.push(error);
            return None;
        }
    };
    match parse_limits(&parsed.limits.value()) {
        Ok(quotas) => Some(PolicyAttr::RateLimit { quotas }),
        Err(message) => {
            errors.spanned(&parsed.limits, message);
            None
        }
    }
}

struct RateLimitArgs {
    limits: LitStr,
}

impl Parse for RateLimitArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let limits: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected the limit as a string literal, as in `#[rate_limit(\"20/hour\")]`",
            )
        })?;
        if !input.is_empty() {
            let _comma: syn::Token![,] = input.parse()?;
            if !input.is_empty() {
                return Err(unknown_argument(input, "rate_limit", "the limit string"));
            }
        }
        Ok(Self { limits })
    }
}

fn parse_api_key(args: TokenStream, errors: &mut Errors) -> Option<PolicyAttr> {
    let parser = |input: ParseStream| {
        if input.is_empty() {
            Ok(())
        } else {
            Err(unknown_argument(input, "require_api_key", "no arguments"))
        }
    };
    match parser.parse2(args) {
        Ok(()) => Some(PolicyAttr::ApiKey),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// The error for an argument the attribute does not know, spanned on its first token.
fn unknown_argument(input: ParseStream, attribute: &str, accepted: &str) -> syn::Error {
    let shown = input
        .fork()
        .parse::<proc_macro2::TokenTree>()
        .map(|token| token.to_string())
        .unwrap_or_default();
    input.error(format!(
        "unknown argument `{shown}` for `#[{attribute}]`; it takes {accepted}"
    ))
}
