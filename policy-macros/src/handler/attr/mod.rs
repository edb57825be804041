//! Parsing the arguments of one policy attribute into a [`PolicyAttr`].

mod api_key;
mod jwt;
mod rate_limit;
mod request_limit;
mod state;

use crate::errors::Errors;
use proc_macro2::TokenStream;
use syn::parse::Parser;

pub(crate) use api_key::{ApiKeyArgs, ScopeArg};
pub(crate) use jwt::JwtArgs;
pub(crate) use rate_limit::{CountArg, KeyArg, RateLimitArgs};
pub(crate) use request_limit::{BodyLimitArg, LimitArg, TimeoutArg};
pub(crate) use state::NamedState;

/// Which policy attribute this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    RateLimit,
    ApiKey,
    Jwt,
    BodyLimit,
    Timeout,
}

impl PolicyKind {
    const ALL: [PolicyKind; 5] = [
        PolicyKind::RateLimit,
        PolicyKind::ApiKey,
        PolicyKind::Jwt,
        PolicyKind::BodyLimit,
        PolicyKind::Timeout,
    ];

    pub(crate) fn attribute_name(self) -> &'static str {
        match self {
            PolicyKind::RateLimit => "rate_limit",
            PolicyKind::ApiKey => "require_api_key",
            PolicyKind::Jwt => "require_jwt",
            PolicyKind::BodyLimit => "body_limit",
            PolicyKind::Timeout => "timeout",
        }
    }

    /// The policy attribute a path names, by its last segment
    /// (`rate_limit`, `policy_runtime::rate_limit`, ...).
    pub(crate) fn of_path(path: &syn::Path) -> Option<Self> {
        let last = path.segments.last()?;
        if !last.arguments.is_none() {
            return None;
        }
        PolicyKind::ALL
            .into_iter()
            .find(|kind| last.ident == kind.attribute_name())
    }
}

/// One policy attribute with its checked arguments.
pub(crate) enum PolicyAttr {
    RateLimit(Box<RateLimitArgs>),
    ApiKey(ApiKeyArgs),
    Jwt(JwtArgs),
    BodyLimit(BodyLimitArg),
    Timeout(TimeoutArg),
}

impl PolicyAttr {
    /// The `state = ...` written on this attribute, if any.
    pub(crate) fn named_state(&self) -> Option<&NamedState> {
        match self {
            PolicyAttr::RateLimit(args) => args.state.as_ref(),
            PolicyAttr::ApiKey(args) => args.state.as_ref(),
            PolicyAttr::Jwt(args) => args.state.as_ref(),
            PolicyAttr::BodyLimit(_) | PolicyAttr::Timeout(_) => None,
        }
    }

    pub(crate) fn kind(&self) -> PolicyKind {
        match self {
            PolicyAttr::RateLimit(_) => PolicyKind::RateLimit,
            PolicyAttr::ApiKey(_) => PolicyKind::ApiKey,
            PolicyAttr::Jwt(_) => PolicyKind::Jwt,
            PolicyAttr::BodyLimit(_) => PolicyKind::BodyLimit,
            PolicyAttr::Timeout(_) => PolicyKind::Timeout,
        }
    }

    /// Parses the arguments (the tokens inside the parentheses) of a policy
    /// attribute. `attribute` is the attribute's tokens, for errors about what
    /// is missing.
    pub(crate) fn parse(
        kind: PolicyKind,
        args: TokenStream,
        attribute: &TokenStream,
        errors: &mut Errors,
    ) -> Option<Self> {
        let parsed = match kind {
            PolicyKind::RateLimit => return parse_rate_limit(args, attribute, errors),
            PolicyKind::ApiKey => <ApiKeyArgs as syn::parse::Parse>::parse
                .parse2(args)
                .map(PolicyAttr::ApiKey),
            PolicyKind::Jwt => <JwtArgs as syn::parse::Parse>::parse
                .parse2(args)
                .map(PolicyAttr::Jwt),
            PolicyKind::BodyLimit => {
                request_limit::parse_body_limit(args, attribute).map(PolicyAttr::BodyLimit)
            }
            PolicyKind::Timeout => {
                request_limit::parse_timeout(args, attribute).map(PolicyAttr::Timeout)
            }
        };
        parsed.map_err(|error| errors.push(error)).ok()
    }
}

fn parse_rate_limit(
    args: TokenStream,
    attribute: &TokenStream,
    errors: &mut Errors,
) -> Option<PolicyAttr> {
    if args.is_empty() {
        errors.push(syn::Error::new_spanned(
            attribute,
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

#[cfg(test)]
mod tests {
    use super::PolicyKind;

    fn kind(path: &str) -> Option<PolicyKind> {
        PolicyKind::of_path(&syn::parse_str(path).unwrap())
    }

    #[test]
    fn policy_attributes_are_known_by_their_last_segment() {
        assert_eq!(kind("body_limit"), Some(PolicyKind::BodyLimit));
        assert_eq!(kind("policy_runtime::timeout"), Some(PolicyKind::Timeout));
        assert_eq!(kind("require_jwt"), Some(PolicyKind::Jwt));
        assert_eq!(kind("rate_limit"), Some(PolicyKind::RateLimit));
        assert_eq!(kind("require_api_key"), Some(PolicyKind::ApiKey));
        assert_eq!(kind("tokio::main"), None);
        assert_eq!(kind("timeouts"), None);
    }
}
