//! The JWT policy: read a bearer token, validate it against the configured
//! keys, check its scopes, answer 401 or 403, or go on with its claims.
//!
//! This module owns the engine's JWT state and the one log event of each
//! decision. Key material is [`keys`]'s business, fetching and caching JWKS
//! [`jwks`]'s, token validation [`validate`]'s, configuration [`config`]'s,
//! the handler's view of the claims [`claims`]'s, the responses
//! [`refusal`]'s, and the macro-free layer [`layer`]'s.

pub(crate) mod claims;
pub(crate) mod refusal;
