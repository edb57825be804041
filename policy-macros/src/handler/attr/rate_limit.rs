//! Parsing the arguments of `#[rate_limit(...)]`.
//!
//! ```text
//! #[rate_limit("20/hour")]
//! #[rate_limit("20/hour", key = api_key, burst = 30, cost = 2, scope = "search", strict)]
//! #[rate_limit("20/hour", key = header("x-user-id"), on_missing = ip)]
//! #[rate_limit("20/hour", key = crate::keys::tenant)]
//! #[rate_limit("20/hour", key = subject)]
//! #[rate_limit("20/hour", key = claim("tenant_id"))]
//! #[rate_limit("5/15 minutes", count = failures)]
//! #[rate_limit("5/minute", count = responses(crate::limits::server_errors))]
//! #[rate_limit("10/minute", add_to_defaults)]
//! #[rate_limit("10000/hour", sliding)]
//! #[rate_limit(policy = "login")]
//! #[rate_limit(exempt)]
//! #[rate_limit("20/hour", state = AppState)]
//! ```

use super::state::NamedState;
use policy_grammar::quota::{QuotaSpec, parse_limits};
use syn::parse::{Parse, ParseStream};
use syn::{Ident, LitInt, LitStr, Path, Token};

/// Every argument of one `#[rate_limit]`, as written (checked in `valid`).
#[derive(Default)]
pub(crate) struct RateLimitArgs {
    /// The limit string and what it parsed to (an error message if it did not).
    pub(crate) limits: Option<(LitStr, Result<Vec<QuotaSpec>, String>)>,
    pub(crate) policy: Option<LitStr>,
    pub(crate) exempt: Option<Ident>,
    pub(crate) key: Option<(Ident, KeyArg)>,
    pub(crate) burst: Option<LitInt>,
    pub(crate) cost: Option<LitInt>,
    pub(crate) scope: Option<LitStr>,
    pub(crate) strict: Option<Ident>,
    pub(crate) sliding: Option<Ident>,
    pub(crate) on_missing: Option<Ident>,
    /// `count = failures` or `count = responses(path)`, with the `count` token.
    pub(crate) count: Option<(Ident, CountArg)>,
    /// `add_to_defaults`: the engine's default limits apply too.
    pub(crate) add_to_defaults: Option<Ident>,
    /// `state = AppState`: the router's state, to check the handler's arguments against.
    pub(crate) state: Option<NamedState>,
}

/// The value of `count = ...`.
pub(crate) enum CountArg {
    /// `failures`: responses with a status of 400 or more.
    Failures,
    /// `responses(path::to::fn)`: a `fn(StatusCode) -> bool`.
    Responses(Path),
}

/// The value of `key = ...`.
pub(crate) enum KeyArg {
    Ip,
    ApiKey(Ident),
    Global,
    Header(LitStr),
    /// `key = subject`, with the `subject` token.
    Subject(Ident),
    /// `key = claim("tenant_id")`, with the `claim` token and the name.
    Claim(Ident, LitStr),
    Custom(Path),
}

const ARGUMENTS: &str = "`key`, `burst`, `cost`, `count`, `scope`, `strict`, `sliding`, `on_missing`, `add_to_defaults`, `state`, `policy` or `exempt`";

impl Parse for RateLimitArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = RateLimitArgs::default();
        if input.peek(LitStr) {
            let text: LitStr = input.parse()?;
            let parsed = parse_limits(&text.value());
            args.limits = Some((text, parsed));
            if input.is_empty() {
                return Ok(args);
            }
            input.parse::<Token![,]>()?;
        }
        while !input.is_empty() {
            let name: Ident = input.parse().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "expected the limit as a string literal, as in `#[rate_limit(\"20/hour\")]`, or an argument such as `key = api_key`",
                )
            })?;
            let duplicate = || syn::Error::new(name.span(), format!("duplicate argument `{name}`"));
            match name.to_string().as_str() {
                "exempt" => set(&mut args.exempt, name.clone()).map_err(|_| duplicate())?,
                "strict" => set(&mut args.strict, name.clone()).map_err(|_| duplicate())?,
                "sliding" => set(&mut args.sliding, name.clone()).map_err(|_| duplicate())?,
                "add_to_defaults" => {
                    set(&mut args.add_to_defaults, name.clone()).map_err(|_| duplicate())?
                }
                "policy" => {
                    input.parse::<Token![=]>()?;
                    set(&mut args.policy, input.parse()?).map_err(|_| duplicate())?;
                }
                "burst" => {
                    input.parse::<Token![=]>()?;
                    set(&mut args.burst, input.parse()?).map_err(|_| duplicate())?;
                }
                "cost" => {
                    input.parse::<Token![=]>()?;
                    set(&mut args.cost, input.parse()?).map_err(|_| duplicate())?;
                }
                "scope" => {
                    input.parse::<Token![=]>()?;
                    set(&mut args.scope, input.parse()?).map_err(|_| duplicate())?;
                }
                "on_missing" => {
                    input.parse::<Token![=]>()?;
                    let value: Ident = input.parse()?;
                    if value != "reject" && value != "ip" {
                        return Err(syn::Error::new(
                            value.span(),
                            "`on_missing` is `reject` (answer 400) or `ip` (count against the client IP)",
                        ));
                    }
                    set(&mut args.on_missing, value).map_err(|_| duplicate())?;
                }
                "count" => {
                    input.parse::<Token![=]>()?;
                    let count = parse_count(input)?;
                    set(&mut args.count, (name.clone(), count)).map_err(|_| duplicate())?;
                }
                "state" => {
                    let state = NamedState::parse_value(name.clone(), input)?;
                    set(&mut args.state, state).map_err(|_| duplicate())?;
                }
                "key" => {
                    input.parse::<Token![=]>()?;
                    let key = parse_key(input)?;
                    set(&mut args.key, (name.clone(), key)).map_err(|_| duplicate())?;
                }
                _ => {
                    return Err(syn::Error::new(
                        name.span(),
                        format!(
                            "unknown argument `{name}` for `#[rate_limit]`; expected {ARGUMENTS}"
                        ),
                    ));
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

const COUNT_VALUES: &str = "`count` is `failures` (responses with a status of 400 or more) or `responses(path::to::fn)` with a `fn(StatusCode) -> bool`";

fn parse_count(input: ParseStream) -> syn::Result<CountArg> {
    let name: Ident = input
        .parse()
        .map_err(|error| syn::Error::new(error.span(), COUNT_VALUES))?;
    match name.to_string().as_str() {
        "failures" => Ok(CountArg::Failures),
        "responses" if input.peek(syn::token::Paren) => {
            let content;
            syn::parenthesized!(content in input);
            let path: Path = content.parse().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "`responses(...)` takes the path of a `fn(StatusCode) -> bool`, as in `responses(crate::limits::server_errors)`",
                )
            })?;
            if !content.is_empty() {
                return Err(content.error("`responses(...)` takes one function"));
            }
            Ok(CountArg::Responses(path))
        }
        _ => Err(syn::Error::new(name.span(), COUNT_VALUES)),
    }
}

fn parse_key(input: ParseStream) -> syn::Result<KeyArg> {
    let path: Path = input.parse().map_err(|error| {
        syn::Error::new(
            error.span(),
            "expected a key: `ip`, `api_key`, `global`, `header(\"x-user-id\")`, `subject`, `claim(\"tenant_id\")` or the path of a key function",
        )
    })?;
    if let Some(ident) = path.get_ident() {
        match ident.to_string().as_str() {
            "ip" => return Ok(KeyArg::Ip),
            "api_key" => return Ok(KeyArg::ApiKey(ident.clone())),
            "global" => return Ok(KeyArg::Global),
            "header" => {
                let content;
                syn::parenthesized!(content in input);
                let name: LitStr = content.parse()?;
                return Ok(KeyArg::Header(name));
            }
            "subject" => return Ok(KeyArg::Subject(ident.clone())),
            "claim" => {
                let content;
                syn::parenthesized!(content in input);
                let name: LitStr = content.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "`claim(...)` takes the claim's name as a string, as in `claim(\"tenant_id\")`",
                    )
                })?;
                if !content.is_empty() {
                    return Err(content.error("`claim(...)` takes one claim name"));
                }
                return Ok(KeyArg::Claim(ident.clone(), name));
            }
            _ => {}
        }
    }
    Ok(KeyArg::Custom(path))
}
