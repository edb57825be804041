//! The keys tokens are verified with: an HMAC secret, PEM public keys, the
//! keys of a JWKS document, each pinned to the algorithms of its family.
//!
//! This module owns turning key material into [`VerifyKey`]s and finding
//! the candidates for a token's `kid` and `alg` ([`KeySet::candidates`]).
//! The signature checks themselves are `jsonwebtoken`'s.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::str::FromStr;

/// The most keys one JWKS document may bring; beyond it the rest are
/// ignored (and logged), so a document cannot make every token try
/// thousands of keys.
pub(crate) const MAX_JWKS_KEYS: usize = 64;

/// The shortest HMAC secret accepted (256 bits, RFC 7518 section 3.2).
pub(crate) const MIN_SECRET_LEN: usize = 32;

/// One key and the algorithms a token may use with it.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    /// The key's id; `None` for a secret or a PEM key, which any `kid` may use.
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    /// Never empty; always within the key's family, so an HMAC check can
    /// never run with a public key.
    pub(crate) algorithms: Vec<Algorithm>,
}

impl VerifyKey {
    /// An HMAC secret: HS256, HS384 or HS512.
    pub(crate) fn secret(secret: &[u8]) -> Self {
        Self::of_family(None, DecodingKey::from_secret(secret))
    }

    /// A PEM public key (RSA, EC or Ed25519, SPKI or PKCS#1), with the
    /// algorithms of its type.
    pub(crate) fn pem(pem: &[u8]) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(pem)
            .or_else(|_| DecodingKey::from_ec_pem(pem))
            .or_else(|_| DecodingKey::from_ed_pem(pem))
            .map_err(|_| {
                "is not a PEM public key (RSA, EC P-256/P-384 or Ed25519, as `-----BEGIN PUBLIC KEY-----`)"
                    .to_owned()
            })?;
        Ok(Self::of_family(None, key))
    }

    fn of_family(kid: Option<String>, key: DecodingKey) -> Self {
        let algorithms = key.family().algorithms().to_vec();
        Self {
            kid,
            key,
            algorithms,
        }
    }

    /// A JWK, pinned to its `alg` when it has one, else to its curve (EC),
    /// else to its family. `None` (with why) for an encryption key, an
    /// unsupported curve or algorithm, or key material that does not parse.
    pub(crate) fn jwk(jwk: &Jwk) -> Result<Self, String> {
        let common = &jwk.common;
        if matches!(common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("an encryption key (`use`: `enc`)".to_owned());
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|error| format!("unusable key material: {error}"))?;
        let family = key.family();
        let by_curve = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(params) => match params.curve {
                EllipticCurve::P256 => Some(Algorithm::ES256),
                EllipticCurve::P384 => Some(Algorithm::ES384),
                _ => return Err("an unsupported curve".to_owned()),
            },
            AlgorithmParameters::OctetKeyPair(params) => match params.curve {
                EllipticCurve::Ed25519 => Some(Algorithm::EdDSA),
                _ => return Err("an unsupported curve".to_owned()),
            },
            _ => None,
        };
        let algorithms = match common.key_algorithm {
            Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => {
                return Err("an unknown `alg`".to_owned());
            }
            Some(alg) => {
                let alg = Algorithm::from_str(&alg.to_string())
                    .map_err(|_| format!("an `alg` for encryption ({alg})"))?;
                if !family.algorithms().contains(&alg) || by_curve.is_some_and(|curve| curve != alg)
                {
                    return Err(format!(
                        "an `alg` ({alg:?}) that does not fit the key's type"
                    ));
                }
                vec![alg]
            }
            None => match by_curve {
                Some(alg) => vec![alg],
                None => family.algorithms().to_vec(),
            },
        };
        Ok(Self {
            kid: common.key_id.clone(),
            key,
            algorithms,
        })
    }

    fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    pub(crate) fn is_hmac(&self) -> bool {
        self.key.family() == AlgorithmFamily::Hmac
    }
}

/// A set of keys, searched in order.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerifyKey>,
}

/// The keys a token may be verified with.
pub(crate) enum Candidates<'k> {
    /// Keys whose id matches (or that have none) and that accept the `alg`.
    Found(Vec<&'k VerifyKey>),
    /// The token's `kid` is no key's, and no key without an id accepts the `alg`.
    UnknownKid,
    /// Keys exist for the `kid` (or without one), but none accepts the `alg`:
    /// an HMAC token against a public key, for one.
    WrongAlgorithm,
}

impl KeySet {
    /// The keys of a JWKS document (`{"keys": [...]}`); keys that cannot be
    /// used are skipped and returned with why, so the caller can log them.
    pub(crate) fn from_jwks(json: &[u8]) -> Result<(Self, Vec<String>), String> {
        #[derive(serde::Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(json)
            .map_err(|error| format!("is not a JWKS document (`{{\"keys\": [...]}}`): {error}"))?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (at, value) in document.keys.into_iter().enumerate() {
            if keys.len() == MAX_JWKS_KEYS {
                skipped.push(format!("keys after the first {MAX_JWKS_KEYS} are ignored"));
                break;
            }
            let kid = value
                .get("kid")
                .and_then(|kid| kid.as_str())
                .map(str::to_owned);
            let parsed = serde_json::from_value::<Jwk>(value)
                .map_err(|error| format!("not a JWK: {error}"))
                .and_then(|jwk| VerifyKey::jwk(&jwk));
            match parsed {
                Ok(key) => keys.push(key),
                Err(why) => skipped.push(format!(
                    "key {at} (kid `{}`) is skipped: {why}",
                    kid.as_deref().unwrap_or("none")
                )),
            }
        }
        Ok((Self { keys }, skipped))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key has this id.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The keys to verify a token with `kid` and `alg` against: those with
    /// that id, else those without an id; only those accepting `alg`.
    pub(crate) fn candidates<'k>(&'k self, kid: Option<&str>, alg: Algorithm) -> Candidates<'k> {
        let fitting = |keys: Vec<&'k VerifyKey>| -> (bool, Vec<&'k VerifyKey>) {
            let any = !keys.is_empty();
            let fitting = keys.into_iter().filter(|key| key.accepts(alg)).collect();
            (any, fitting)
        };
        match kid {
            Some(kid) if self.has_kid(kid) => {
                let (_, found) = fitting(
                    self.keys
                        .iter()
                        .filter(|key| key.kid.as_deref() == Some(kid))
                        .collect(),
                );
                match found.is_empty() {
                    true => Candidates::WrongAlgorithm,
                    false => Candidates::Found(found),
                }
            }
            // An unknown `kid`: only the keys that have no id, if one fits.
            Some(_) => {
                let (_, found) =
                    fitting(self.keys.iter().filter(|key| key.kid.is_none()).collect());
                match found.is_empty() {
                    true => Candidates::UnknownKid,
                    false => Candidates::Found(found),
                }
            }
            // No `kid`: every key may have signed it.
            None => match fitting(self.keys.iter().collect()) {
                (false, _) => Candidates::UnknownKid,
                (true, found) if found.is_empty() => Candidates::WrongAlgorithm,
                (true, found) => Candidates::Found(found),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> KeySet {
        let secret = VerifyKey::secret(&[7; 32]);
        let mut rsa = VerifyKey::secret(&[8; 32]);
        // An id'd HMAC key stands in for any keyed key: only ids and algorithms matter here.
        rsa.kid = Some("k1".to_owned());
        rsa.algorithms = vec![Algorithm::HS384];
        KeySet {
            keys: vec![secret, rsa],
        }
    }

    fn found(candidates: Candidates<'_>) -> Option<usize> {
        match candidates {
            Candidates::Found(keys) => Some(keys.len()),
            _ => None,
        }
    }

    #[test]
    fn a_known_kid_selects_its_keys_only() {
        assert_eq!(
            found(set().candidates(Some("k1"), Algorithm::HS384)),
            Some(1)
        );
        assert!(matches!(
            set().candidates(Some("k1"), Algorithm::HS256),
            Candidates::WrongAlgorithm
        ));
    }

    #[test]
    fn an_unknown_kid_falls_back_to_keys_without_an_id_else_is_unknown() {
        assert_eq!(
            found(set().candidates(Some("new"), Algorithm::HS256)),
            Some(1)
        );
        assert!(matches!(
            set().candidates(Some("new"), Algorithm::RS256),
            Candidates::UnknownKid
        ));
    }

    #[test]
    fn no_kid_tries_every_key_of_the_algorithm() {
        assert_eq!(found(set().candidates(None, Algorithm::HS256)), Some(1));
        assert!(matches!(
            set().candidates(None, Algorithm::RS256),
            Candidates::WrongAlgorithm
        ));
        assert!(matches!(
            KeySet::default().candidates(None, Algorithm::HS256),
            Candidates::UnknownKid
        ));
    }

    #[test]
    fn jwks_keys_are_pinned_and_unusable_ones_skipped() {
        let json = br#"{"keys": [
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "h", "alg": "HS512"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "nonsense"}
        ]}"#;
        let (keys, skipped) = KeySet::from_jwks(json).unwrap();
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].algorithms, [Algorithm::HS512]);
        assert_eq!(skipped.len(), 3);
        assert!(skipped[0].contains("encryption key"));
        assert!(KeySet::from_jwks(b"[]").is_err());
    }
}
