//! The security schemes of the policies and each operation's security
//! requirements, from its checks.
//!
//! Scopes go in the requirements as OpenAPI 3.1 allows for schemes that are
//! not OAuth2 ("role names"): `scope = "admin"` is `{"api_key": ["admin"]}`,
//! `all("a", "b")` one requirement with both, and `any("a", "b")` one
//! requirement per scope, since a requirement's scopes are all required.

use crate::handler_policy::{Check, KeyRequirement};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};

/// `X-API-Key: <key>`.
pub(crate) const API_KEY: &str = "api_key";
/// `Authorization: Bearer <key>`: the API key as a bearer token.
pub(crate) const API_KEY_BEARER: &str = "api_key_bearer";
/// `Authorization: Bearer <JWT>`.
pub(crate) const JWT: &str = "jwt";

/// The security scheme named `name`.
pub(crate) fn scheme(name: &str) -> SecurityScheme {
    match name {
        API_KEY => SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key in the `X-API-Key` header.",
        ))),
        API_KEY_BEARER => SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key as a bearer token: `Authorization: Bearer <key>`.",
                ))
                .build(),
        ),
        _ => SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT as a bearer token: `Authorization: Bearer <token>`.",
                ))
                .build(),
        ),
    }
}

/// One requirement: every scheme in it, each with its scopes.
type Requirement = Vec<(&'static str, Vec<&'static str>)>;

/// The scope lists any of which meets `requirement`.
fn scope_sets(requirement: &KeyRequirement) -> Vec<Vec<&'static str>> {
    match *requirement {
        KeyRequirement::Any => vec![Vec::new()],
        KeyRequirement::Scope(scope) => vec![vec![scope]],
        KeyRequirement::AllOf(scopes) => vec![scopes.to_vec()],
        KeyRequirement::AnyOf(scopes) => scopes.iter().map(|scope| vec![*scope]).collect(),
    }
}

/// The ways to meet one check, each a scheme and its scopes.
fn alternatives(check: &Check) -> Option<Vec<(&'static str, Vec<&'static str>)>> {
    let (schemes, requirement): (&[&'static str], _) = match check {
        Check::ApiKey(requirement) => (&[API_KEY, API_KEY_BEARER], requirement),
        Check::Jwt(requirement) => (&[JWT], requirement),
        Check::ApiKeyOrJwt(requirement) => (&[API_KEY, API_KEY_BEARER, JWT], requirement),
        Check::RateLimit(_) | Check::Exempt => return None,
    };
    let sets = scope_sets(requirement);
    Some(
        schemes
            .iter()
            .flat_map(|scheme| sets.iter().map(move |scopes| (*scheme, scopes.clone())))
            .collect(),
    )
}

/// The security requirements of a handler's checks: any one of them admits
/// a request. Several checks must all pass, so their alternatives combine.
/// Empty when no check asks for a credential.
pub(crate) fn requirements(checks: &[Check]) -> Vec<Requirement> {
    let mut combined: Vec<Requirement> = Vec::new();
    for alternatives in checks.iter().filter_map(alternatives) {
        if combined.is_empty() {
            combined = alternatives
                .into_iter()
                .map(|alternative| vec![alternative])
                .collect();
            continue;
        }
        combined = combined
            .iter()
            .flat_map(|requirement| {
                alternatives.iter().map(move |(scheme, scopes)| {
                    let mut requirement = requirement.clone();
                    match requirement.iter_mut().find(|(name, _)| name == scheme) {
                        Some((_, held)) => {
                            for scope in scopes {
                                if !held.contains(scope) {
                                    held.push(scope);
                                }
                            }
                        }
                        None => requirement.push((scheme, scopes.clone())),
                    }
                    requirement
                })
            })
            .collect();
    }
    combined
}

/// A requirement as utoipa has it.
pub(crate) fn to_utoipa(requirement: &Requirement) -> SecurityRequirement {
    let mut parts = requirement.iter();
    let Some((name, scopes)) = parts.next() else {
        return SecurityRequirement::default();
    };
    parts.fold(
        SecurityRequirement::new(*name, scopes.iter().copied()),
        |built, (name, scopes)| built.add(*name, scopes.iter().copied()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_is_one_requirement_per_scope_and_checks_combine() {
        let checks = [
            Check::ApiKey(KeyRequirement::AnyOf(&["read", "write"])),
            Check::Jwt(KeyRequirement::Scope("admin")),
        ];
        assert_eq!(
            requirements(&checks),
            vec![
                vec![(API_KEY, vec!["read"]), (JWT, vec!["admin"])],
                vec![(API_KEY, vec!["write"]), (JWT, vec!["admin"])],
                vec![(API_KEY_BEARER, vec!["read"]), (JWT, vec!["admin"])],
                vec![(API_KEY_BEARER, vec!["write"]), (JWT, vec!["admin"])],
            ]
        );
        assert!(requirements(&[Check::Exempt]).is_empty());
    }
}
