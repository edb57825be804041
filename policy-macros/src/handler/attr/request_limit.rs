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

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn attribute() -> TokenStream {
        quote!(#[body_limit])
    }

    #[test]
    fn one_string_is_parsed_with_the_grammar() {
        let parsed = parse_body_limit(quote!("1 MiB"), &attribute()).unwrap();
        assert_eq!(parsed.text.value(), "1 MiB");
        assert_eq!(parsed.value, Ok(1 << 20));
        let parsed = parse_timeout(quote!("2 minutes",), &attribute()).unwrap();
        assert_eq!(parsed.value, Ok(Duration::from_secs(120)));
    }

    #[test]
    fn a_bad_value_is_kept_with_the_grammars_message() {
        let parsed = parse_timeout(quote!("1 fortnight"), &attribute()).unwrap();
        assert!(
            parsed
                .value
                .unwrap_err()
                .contains("unknown time unit `fortnight`")
        );
        let parsed = parse_body_limit(quote!("0B"), &attribute()).unwrap();
        assert!(parsed.value.unwrap_err().contains("zero"));
    }

    #[test]
    fn anything_but_one_string_is_refused() {
        let message = |result: syn::Result<BodyLimitArg>| result.err().unwrap().to_string();
        assert!(message(parse_body_limit(quote!(), &attribute())).contains("needs a size"));
        assert!(message(parse_body_limit(quote!(1024), &attribute())).contains("string literal"));
        assert!(
            message(parse_body_limit(quote!("1MB", strict), &attribute()))
                .contains("unexpected argument")
        );
        assert!(
            message(parse_body_limit(quote!("1MB" "2MB"), &attribute()))
                .contains("unexpected argument")
        );
    }
}
