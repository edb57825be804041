//! Parsing the argument of `#[body_limit("...")]` and `#[timeout("...")]`:
//! exactly one string literal, read with the grammar of `policy_grammar`.
//!
//! ```text
//! #[body_limit("1MB")]
//! #[body_limit("512 KiB")]
//! #[timeout("30s")]
//! #[timeout("2 minutes")]
//! ```

use core::time::Duration;
use policy_grammar::duration::parse_duration;
use policy_grammar::size::parse_size;
use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::{LitStr, Token};

/// The string of one `#[body_limit]` or `#[timeout]` and what it parsed to
/// (the grammar's message if it did not), checked in `valid`.
pub(crate) struct LimitArg<T> {
    pub(crate) text: LitStr,
    pub(crate) value: Result<T, String>,
}

/// The argument of `#[body_limit("1MB")]`: the size in bytes.
pub(crate) type BodyLimitArg = LimitArg<u64>;

/// The argument of `#[timeout("30s")]`.
pub(crate) type TimeoutArg = LimitArg<Duration>;

/// Parses `#[body_limit("...")]`'s arguments; `attribute` is the
/// attribute's tokens, for the error when the argument is missing.
pub(crate) fn parse_body_limit(
    args: TokenStream,
    attribute: &TokenStream,
) -> syn::Result<BodyLimitArg> {
    let expected = Expected {
        name: "body_limit",
        what: "size",
        example: "\"1MB\"",
        other: "\"512KiB\"",
    };
    parse_one(args, attribute, &expected, parse_size)
}

/// Parses `#[timeout("...")]`'s arguments; `attribute` is the attribute's
/// tokens, for the error when the argument is missing.
pub(crate) fn parse_timeout(args: TokenStream, attribute: &TokenStream) -> syn::Result<TimeoutArg> {
    let expected = Expected {
        name: "timeout",
        what: "duration",
        example: "\"30s\"",
        other: "\"500ms\"",
    };
    parse_one(args, attribute, &expected, parse_duration)
}

/// What an attribute takes, for its messages.
struct Expected {
    name: &'static str,
    what: &'static str,
    example: &'static str,
    other: &'static str,
}

fn parse_one<T>(
    args: TokenStream,
    attribute: &TokenStream,
    expected: &Expected,
    grammar: fn(&str) -> Result<T, String>,
) -> syn::Result<LimitArg<T>> {
    let Expected {
        name,
        what,
        example,
        other,
    } = expected;
    if args.is_empty() {
        return Err(syn::Error::new_spanned(
            attribute,
            format!(
                "`#[{name}]` needs a {what}, as in `#[{name}({example})]` or `#[{name}({other})]`"
            ),
        ));
    }
    let parser = |input: ParseStream| {
        let text: LitStr = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                format!("expected the {what} as a string literal, as in `#[{name}({example})]`"),
            )
        })?;
        // One trailing comma is allowed, as in the other attributes.
        if input.peek(Token![,]) {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error(format!(
                "unexpected argument: `#[{name}]` takes only the {what}, as in `#[{name}({example})]`"
            )));
        }
        let value = grammar(&text.value());
        Ok(LimitArg { text, value })
    };
    parser.parse2(args)
}
