//! Parsing the arguments of `#[require_jwt(...)]`: the scopes as
//! `#[require_api_key]` takes them, and the flag `or_api_key`.
//!
//! ```text
//! #[require_jwt]
//! #[require_jwt(scope = "reports:read")]
//! #[require_jwt(scope = any("read", "write"))]
//! #[require_jwt(scope = all("reports:read", "reports:export"), or_api_key)]
//! ```

use super::api_key::{ScopeArg, parse_key_check};
use syn::Ident;
use syn::parse::{Parse, ParseStream};

/// Every argument of one `#[require_jwt]`, as written (checked in `valid`).
pub(crate) struct JwtArgs {
    pub(crate) scope: Option<ScopeArg>,
    /// `or_api_key`: a valid API key is accepted too.
    pub(crate) or_api_key: Option<Ident>,
}

impl Parse for JwtArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (scope, flags) = parse_key_check(input, "require_jwt", &["or_api_key"])?;
        Ok(JwtArgs {
            scope,
            or_api_key: flags.into_iter().next(),
        })
    }
}
