//! Parsing the arguments of `#[require_api_key(...)]`, and the scope
//! arguments every credential check shares (`#[require_jwt]` too).
//!
//! ```text
//! #[require_api_key]
//! #[require_api_key(scope = "admin")]
//! #[require_api_key(scope = any("read", "write"))]
//! #[require_api_key(scope = all("reports:read", "reports:export"))]
//! #[require_api_key(state = AppState)]
//! ```rust

use super::state::NamedState;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

/// Every argument of one `#[require_api_key]`, as written (checked in `valid`).
#[derive(Default)]
pub(crate) struct ApiKeyArgs {
    pub(crate) scope: Option<ScopeArg>,
    /// `state = AppState`: the router's state, to check the handler's arguments against.
    pub(crate) state: Option<NamedState>,
}

/// The value of `scope = ...`.
pub(crate) enum ScopeArg {
    /// `scope = "admin"`.
    One(LitStr),
    /// `scope = any("read", "write")`, with the `any` token.
    AnyOf(Ident, Vec<LitStr>),
    /// `scope = all("read", "write")`, with the `all` token.
    AllOf(Ident, Vec<LitStr>),
}

impl ScopeArg {
    /// Every scope name written, each with its literal to span errors on.
    pub(crate) fn names(&self) -> &[LitStr] {
        match self {
            ScopeArg::One(scope) => std::slice::from_ref(scope),
            ScopeArg::AnyOf(_, scopes) | ScopeArg::AllOf(_, scopes) => scopes,
        }
    }
}

const ARGUMENTS: &str = "`scope = \"admin\"`, `scope = any(\"read\", \"write\")`, `scope = all(\"read\", \"write\")` or `state = AppState`";

impl Parse for ApiKeyArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (scope, _, state) = parse_key_check(input, "require_api_key", &[])?;
        Ok(ApiKeyArgs { scope, state })
    }
}

/// The arguments of a credential check, `#[require_api_key]` or
/// `#[require_jwt]`: `scope = ...` and `state = ...` at most once each, and
/// the bare `flags` the attribute takes, each at most once. Returns the
/// scope, the flags written and the state.
pub(crate) fn parse_key_check(
    input: ParseStream,
    attribute: &str,
    flags: &[&str],
) -> syn::Result<(Option<ScopeArg>, Vec<Ident>, Option<NamedState>)> {
    let arguments = match flags {
        [] => ARGUMENTS.to_owned(),
        _ => {
            let flags: Vec<String> = flags.iter().map(|flag| format!("`{flag}`")).collect();
            format!(
                "`scope = \"admin\"`, `scope = any(\"read\", \"write\")`, `scope = all(\"read\", \"write\")`, `state = AppState` or {}",
                flags.join(", ")
            )
        }
    };
    let mut scope = None;
    let mut state: Option<NamedState> = None;
    let mut written: Vec<Ident> = Vec::new();
    while !input.is_empty() {
        let name: Ident = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("expected an argument of `#[{attribute}]`: {arguments}"),
            )
        })?;
        if flags.iter().any(|flag| name == flag) {
            if written.contains(&name) {
                return Err(syn::Error::new(
                    name.span(),
                    format!("duplicate argument `{name}`"),
                ));
            }
            written.push(name);
        } else if name == "scope" {
            if scope.is_some() {
                return Err(syn::Error::new(
                    name.span(),
                    "duplicate argument `scope`; to require several scopes write `scope = all(\"a\", \"b\")`",
                ));
            }
            input.parse::<Token![=]>()?;
            scope = Some(parse_scope(input)?);
        } else if name == "state" {
            if state.is_some() {
                return Err(syn::Error::new(name.span(), "duplicate argument `state`"));
            }
            state = Some(NamedState::parse_value(name, input)?);
        } else {
            return Err(syn::Error::new(
                name.span(),
                format!("unknown argument `{name}` for `#[{attribute}]`; it takes {arguments}"),
            ));
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok((scope, written, state))
}

fn parse_scope(input: ParseStream) -> syn::Result<ScopeArg> {
    if input.peek(LitStr) {
        return Ok(ScopeArg::One(input.parse()?));
    }
    let expected = "expected a scope: a string such as \"admin\", `any(\"read\", \"write\")` or `all(\"read\", \"write\")`";
    let form: Ident = input
        .parse()
        .map_err(|error| syn::Error::new(error.span(), expected))?;
    if form != "any" && form != "all" {
        return Err(syn::Error::new(form.span(), expected));
    }
    let content;
    syn::parenthesized!(content in input);
    let scopes: Vec<LitStr> = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
        .map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("`{form}(...)` takes scope names as strings, as in `{form}(\"read\", \"write\")`"),
            )
        })?
        .into_iter()
        .collect();
    Ok(if form == "any" {
        ScopeArg::AnyOf(form, scopes)
    } else {
        ScopeArg::AllOf(form, scopes)
    })
}
