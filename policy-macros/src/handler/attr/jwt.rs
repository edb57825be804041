//! Parsing the arguments of `#[require_jwt(...)]`: the scopes as
//! `#[require_api_key]` takes them, and the flag `or_api_key`.
//!
//! ```text
//! #[require_jwt]
//! #[require_jwt(scope = "reports:read")]
//! #[require_jwt(scope = any("read", "write"))]
//! #[require_jwt(scope = all("reports:read", "reports:export"), or_api_key)]
//! #[require_jwt(state = AppState)]
//! ```

use super::api_key::{ScopeArg, parse_key_check};
use super::state::NamedState;
use syn::Ident;
use syn::parse::{Parse, ParseStream};

/// Every argument of one `#[require_jwt]`, as written (checked in `valid`).
pub(crate) struct JwtArgs {
    pub(crate) scope: Option<ScopeArg>,
    /// `or_api_key`: a valid API key is accepted too.
    pub(crate) or_api_key: Option<Ident>,
    /// `state = AppState`: the router's state, to check the handler's arguments against.
    pub(crate) state: Option<NamedState>,
}

impl Parse for JwtArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (scope, flags, state) = parse_key_check(input, "require_jwt", &["or_api_key"])?;
        Ok(JwtArgs {
            scope,
            or_api_key: flags.into_iter().next(),
            state,
        })
    }
}
