//! Parsing the arguments of one policy attribute into a [`PolicyAttr`].

mod api_key;
mod rate_limit;

use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;

pub(crate) use api_key::{ApiKeyArgs, ScopeArg};
pub(crate) use rate_limit::{KeyArg, RateLimitArgs};

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
    RateLimit(Box<RateLimitArgs>),
    ApiKey(ApiKeyArgs),
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
    match <RateLimitArgs as syn::parse::Parse>::parse.parse2(args) {
        Ok(parsed) => Some(PolicyAttr::RateLimit(Box::new(parsed))),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

fn parse_api_key(args: TokenStream, errors: &mut Errors) -> Option<PolicyAttr> {
    match <ApiKeyArgs as syn::parse::Parse>::parse.parse2(args) {
        Ok(parsed) => Some(PolicyAttr::ApiKey(parsed)),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}
