//! Token validation: shape and size first, then the header, the key, the
//! signature and the claims (`exp` and `nbf` with leeway, `iss`, `aud`),
//! each failure with its own reason.
//!
//! This module owns the order of the checks and the mapping of
//! `jsonwebtoken`'s errors to [`Failure`]s; the cryptography is
//! `jsonwebtoken`'s, the keys [`super::keys`]'.

use super::keys::{Candidates, KeySet};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};

/// A token longer than this is refused before anything is decoded.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused: each its own logged `reason` and
/// `error_description`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Not three base64url segments, over 8 KiB, a header or payload that is
    /// not JSON, a required claim missing or of the wrong type.
    Malformed(&'static str),
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// No key verifies the signature.
    BadSignature,
    /// No key has the token's `kid` (after a refresh, where one was due).
    UnknownKey,
    /// `none`, or an algorithm no key for the token accepts (an HMAC token
    /// for a public key, for one).
    WrongAlgorithm,
}

impl Failure {
    /// The `reason` of the log event and the metric.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Failure::Malformed(_) => "malformed",
            Failure::Expired => "expired",
            Failure::NotYetValid => "not_yet_valid",
            Failure::WrongIssuer => "wrong_issuer",
            Failure::WrongAudience => "wrong_audience",
            Failure::BadSignature => "bad_signature",
            Failure::UnknownKey => "unknown_key",
            Failure::WrongAlgorithm => "wrong_algorithm",
        }
    }

    /// The `error_description` of `WWW-Authenticate`, and the body's message
    /// after `Invalid token: `.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Failure::Malformed(_) => "The token is malformed",
            Failure::Expired => "The token has expired",
            Failure::NotYetValid => "The token is not valid yet",
            Failure::WrongIssuer => "The token has the wrong issuer",
            Failure::WrongAudience => "The token has the wrong audience",
            Failure::BadSignature => "The token's signature is invalid",
            Failure::UnknownKey => "The token's signing key is unknown",
            Failure::WrongAlgorithm => "The token's algorithm is not accepted",
        }
    }

    /// Whether the failure counts toward the client's lockout: a forged or
    /// garbled token does; one that merely expired (or is early), as tokens
    /// routinely do before a client refreshes them, does not.
    pub(crate) fn counts_for_lockout(self) -> bool {
        !matches!(self, Failure::Expired | Failure::NotYetValid)
    }
}

/// Whether `token` has the shape of a JWS compact serialisation: three
/// base64url segments joined by dots, the first two non-empty (the third is
/// empty in an unsigned token, which is then refused for its `alg`).
pub(crate) fn looks_like_jwt(token: &[u8]) -> bool {
    let mut segments = 0;
    for segment in token.split(|b| *b == b'.') {
        segments += 1;
        if segments > 3
            || (segment.is_empty() && segments < 3)
            || !segment
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return false;
        }
    }
    segments == 3
}

/// A token whose shape and header were read, not yet verified.
pub(crate) struct Parsed<'t> {
    pub(crate) token: &'t str,
    pub(crate) header: Header,
}

/// Reads the token's header after the size and shape checks.
pub(crate) fn parse(token: &[u8]) -> Result<Parsed<'_>, Failure> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Failure::Malformed("the token is longer than 8 KiB"));
    }
    if !looks_like_jwt(token) {
        return Err(Failure::Malformed("not three base64url segments"));
    }
    // Only ASCII is left after the shape check.
    let token = std::str::from_utf8(token).map_err(|_| Failure::Malformed("not ASCII"))?;
    match jsonwebtoken::decode_header(token) {
        Ok(header) => Ok(Parsed { token, header }),
        Err(_) if alg_is_none(token) => Err(Failure::WrongAlgorithm),
        Err(_) => Err(Failure::Malformed("the header is not a JWS header")),
    }
}

/// Whether the header names the `none` algorithm (or any other that
/// `jsonwebtoken` does not know, which is just as unacceptable).
fn alg_is_none(token: &str) -> bool {
    let header = token.split('.').next().unwrap_or_default();
    let Ok(json) = URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&json)
        .ok()
        .and_then(|header| header.get("alg")?.as_str().map(str::to_owned))
        .is_some()
}

/// The validation settings of one engine: one `Validation` per algorithm,
/// made once.
pub(crate) struct Rules {
    by_alg: Vec<(Algorithm, Validation)>,
}

impl Rules {
    pub(crate) fn new(issuer: &[String], audience: &[String], leeway_secs: u64) -> Self {
        const ALL: [Algorithm; 12] = [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ];
        let by_alg = ALL
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.leeway = leeway_secs;
                validation.validate_exp = true;
                validation.validate_nbf = true;
                let mut required = vec!["exp"];
                if issuer.is_empty() {
                    validation.iss = None;
                } else {
                    validation.set_issuer(issuer);
                    required.push("iss");
                }
                if audience.is_empty() {
                    validation.validate_aud = false;
                } else {
                    validation.set_audience(audience);
                    required.push("aud");
                }
                validation.set_required_spec_claims(&required);
                (*alg, validation)
            })
            .collect();
        Self { by_alg }
    }

    fn of(&self, alg: Algorithm) -> &Validation {
        &self
            .by_alg
            .iter()
            .find(|(each, _)| *each == alg)
            .expect("every algorithm has its rules")
            .1
    }
}

/// A refusal, with the claims when the signature was good (for the log's `sub`).
pub(crate) struct Refused {
    pub(crate) failure: Failure,
    pub(crate) claims: Option<serde_json::Value>,
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Self {
        Refused {
            failure,
            claims: None,
        }
    }
}

/// Verifies a parsed token against `keys` under `rules`: its claims, or why not.
pub(crate) fn verify(
    parsed: &Parsed<'_>,
    keys: &KeySet,
    rules: &Rules,
) -> Result<serde_json::Value, Refused> {
    let alg = parsed.header.alg;
    let candidates = match keys.candidates(parsed.header.kid.as_deref(), alg) {
        Candidates::Found(candidates) => candidates,
        Candidates::UnknownKid => return Err(Failure::UnknownKey.into()),
        Candidates::WrongAlgorithm => return Err(Failure::WrongAlgorithm.into()),
    };
    let validation = rules.of(alg);
    for key in candidates {
        match jsonwebtoken::decode::<serde_json::Value>(parsed.token, &key.key, validation) {
            Ok(data) if data.claims.is_object() => return Ok(data.claims),
            Ok(_) => return Err(Failure::Malformed("the payload is not a JSON object").into()),
            Err(error) => {
                let failure = match error.kind() {
                    // Another key may verify it.
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => continue,
                    ErrorKind::ExpiredSignature => Failure::Expired,
                    ErrorKind::ImmatureSignature => Failure::NotYetValid,
                    ErrorKind::InvalidIssuer => Failure::WrongIssuer,
                    ErrorKind::InvalidAudience => Failure::WrongAudience,
                    ErrorKind::MissingRequiredClaim(claim) => {
                        Failure::Malformed(match claim.as_str() {
                            "exp" => "the `exp` claim is missing",
                            "iss" => "the `iss` claim is missing",
                            "aud" => "the `aud` claim is missing",
                            _ => "a required claim is missing",
                        })
                    }
                    ErrorKind::InvalidClaimFormat(_) => {
                        Failure::Malformed("a claim has the wrong type")
                    }
                    ErrorKind::InvalidAlgorithm => Failure::WrongAlgorithm,
                    _ => Failure::Malformed("the token does not decode"),
                };
                // The signature was good: the claims can be read for the log.
                let claims =
                    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(parsed.token)
                        .ok()
                        .map(|data| data.claims);
                return Err(Refused { failure, claims });
            }
        }
    }
    Err(Failure::BadSignature.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_is_three_base64url_segments_the_signature_may_be_empty() {
        assert!(looks_like_jwt(b"eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt(b"a-_b.c.d"));
        assert!(looks_like_jwt(b"eyJh.eyJz."));
        for not in [
            &b"eyJh.eyJz"[..],
            b"a.b.c.d",
            b".b.c",
            b"a..c",
            b"a.b.c=",
            b"a b.c.d",
            b"",
            b"plain-api-key",
        ] {
            assert!(!looks_like_jwt(not), "{:?}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn an_oversized_token_is_refused_before_decoding() {
        let huge = vec![b'a'; MAX_TOKEN_LEN + 1];
        assert_eq!(
            parse(&huge).err(),
            Some(Failure::Malformed("the token is longer than 8 KiB"))
        );
    }

    #[test]
    fn every_failure_has_its_own_reason() {
        let all = [
            Failure::Malformed("x"),
            Failure::Expired,
            Failure::NotYetValid,
            Failure::WrongIssuer,
            Failure::WrongAudience,
            Failure::BadSignature,
            Failure::UnknownKey,
            Failure::WrongAlgorithm,
        ];
        let mut reasons: Vec<&str> = all.iter().map(|failure| failure.reason()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len());
    }
}
