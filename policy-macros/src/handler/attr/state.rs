//! Parsing `state = AppState`, which `#[rate_limit]`, `#[require_api_key]`
//! and `#[require_jwt]` take: the router's state, so that the handler's
//! arguments can be checked against it where they are written.

use syn::parse::ParseStream;
use syn::{Ident, Token};

/// `state = Type`, with the `state` token to span errors on.
pub(crate) struct NamedState {
    pub(crate) name: Ident,
    pub(crate) ty: syn::Type,
}

impl NamedState {
    /// Parses `= Type` after the `state` token `name`.
    pub(crate) fn parse_value(name: Ident, input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![=]>()?;
        let ty = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "`state` takes the router's state type, as in `state = AppState`",
            )
        })?;
        Ok(NamedState { name, ty })
    }
}
