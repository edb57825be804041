//! The API-key policy: read the presented key, verify it, check its scopes,
//! answer 401, 403 or 429, or go on.
//!
//! This module owns an engine's API-key state ([`ApiKeys`]: the key set, the
//! lockout log, the clock), where a key is read from (`X-API-Key`, or
//! `Authorization: Bearer <key>`; never the query string), the refusals, and
//! the one log event of each decision. Key storage is [`store`]'s business,
//! brute-force lockout [`lockout`]'s, configuration [`config`]'s, and the
//! operators' changes while the server runs [`admin`]'s.

pub(crate) mod admin;
pub(crate) mod config;
pub(crate) mod env;
pub(crate) mod file;
pub(crate) mod id;
pub(crate) mod key;
pub(crate) mod lockout;
pub(crate) mod scope;
pub(crate) mod store;

use crate::ErrorBody;
use crate::client_ip::ClientIpResolver;
use crate::clock::EngineClock;
use arc_swap::ArcSwap;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use config::ApiKeyConfig;
use id::ApiKeyId;
use lockout::{Counted, LockoutLog};
use scope::KeyRequirement;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};
use store::{ApiKeyStore, Lookup};

/// A presented key longer than this is refused without being hashed.
const MAX_KEY_LEN: usize = 1024;

/// A request id longer than this, or with other characters than
/// `[A-Za-z0-9._-]`, is left out of the logs.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The API-key state of one engine: the keys in use (swapped whole by the
/// operators), the lockout log, and the clock it counts on.
pub(crate) struct ApiKeys {
    pub(crate) keys: ArcSwap<ApiKeyStore>,
    pub(crate) lockout: Option<LockoutLog>,
    pub(crate) clock: EngineClock,
}

impl ApiKeys {
    /// The state of a built engine, from its configuration; the lockout
    /// counts failures in `strikes` when the rate-limit store shares them.
    pub(crate) fn new(
        config: ApiKeyConfig,
        clock: EngineClock,
        strikes: Option<std::sync::Arc<dyn crate::StrikeStore>>,
    ) -> Self {
        Self {
            keys: ArcSwap::from_pointee(config.keys),
            lockout: config
                .lockout
                .map(|lockout| LockoutLog::new(lockout).shared(strikes)),
            clock,
        }
    }

    /// Checks one `#[require_api_key]` policy; on success returns the key's
    /// identity. `resolver` groups the client IP as the lockout counts it.
    pub(crate) fn enforce(
        &self,
        handler: &'static str,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<ApiKeyId, Response> {
        let event = Event {
            handler,
            client_ip,
            headers: &parts.headers,
        };
        let keys = self.keys.load();
        if self.lockout.is_some() && !keys.is_empty() && client_ip.is_none() {
            return Err(missing_connect_info("api_key", handler));
        }
        // With no key configured there is nothing to guess, so nothing to lock.
        let lockout = self
            .lockout
            .as_ref()
            .filter(|_| !keys.is_empty())
            .zip(client_ip.map(|ip| resolver.group(ip)));
        let now = self.clock.now();
        if let Some((lockout, client)) = lockout {
            if let Some(left) = lockout.locked(client, now) {
                event.deny("locked_out", None, None, None);
                return Err(locked_out(left, LOCKED_OUT_KEYS));
            }
        }
        match attempt(&keys, requirement, parts, &event) {
            Attempt::Admitted(id) => Ok(id),
            Attempt::Refused(refusal) => Err(refusal),
            Attempt::Failed(failed) => {
                let locked = lockout.and_then(|(log, client)| log.fail(client, now));
                Err(failed.refuse(&event, locked))
            }
        }
    }

    /// Whether the lockout counts failures in a store shared by every
    /// instance: then [`ApiKeys::enforce_shared`] checks keys.
    pub(crate) fn shares_lockout(&self) -> bool {
        self.lockout.as_ref().is_some_and(LockoutLog::is_shared)
    }

    /// [`ApiKeys::enforce`] with a shared lockout: a failed attempt is
    /// counted in the shared store (one round trip), and a lockout this
    /// instance knows of is confirmed there before the client is refused.
    /// An admitted request of a client with no known lockout makes no round
    /// trip. A failed attempt by a client locked out through another
    /// instance is refused as locked out; one the store could not count
    /// while failing closed gets a 503.
    pub(crate) async fn enforce_shared(
        &self,
        handler: &'static str,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        resolver: &ClientIpResolver,
    ) -> Result<ApiKeyId, Response> {
        let event = Event {
            handler,
            client_ip,
            headers: &parts.headers,
        };
        let keys = self.keys.load_full();
        let lockout = self.lockout.as_ref().filter(|_| !keys.is_empty());
        let Some(log) = lockout else {
            return self.enforce(handler, requirement, parts, client_ip, resolver);
        };
        let Some(client) = client_ip.map(|ip| resolver.group(ip)) else {
            return Err(missing_connect_info("api_key", handler));
        };
        let now = self.clock.now();
        if let Some(left) = log.locked_shared(client, now).await {
            event.deny("locked_out", None, None, None);
            return Err(locked_out(left, LOCKED_OUT_KEYS));
        }
        match attempt(&keys, requirement, parts, &event) {
            Attempt::Admitted(id) => Ok(id),
            Attempt::Refused(refusal) => Err(refusal),
            Attempt::Failed(failed) => match log.fail_shared(client, now).await {
                Counted::Failure(locked) => Err(failed.refuse(&event, locked)),
                Counted::Locked(left) => {
                    event.deny("locked_out", None, None, None);
                    Err(locked_out(left, LOCKED_OUT_KEYS))
                }
                Counted::Unavailable => {
                    failed.log(&event, None);
                    Err(uncounted())
                }
            },
        }
    }
}

/// What the presented key came to, before the lockout counts anything.
enum Attempt<'k> {
    Admitted(ApiKeyId),
    /// Refused without a failure to count: no key, or a valid key that
    /// lacks a scope.
    Refused(Response),
    /// A key that cannot be right: a failure for the lockout.
    Failed(Failed<'k>),
}

/// A failed attempt, to log and answer once the lockout has counted it.
struct Failed<'k> {
    reason: &'static str,
    key_id: Option<&'k str>,
    message: &'static str,
    detail: Option<&'static str>,
}

impl Failed<'_> {
    /// Logs the refusal; `locked` is the lockout this failure started.
    fn log(&self, event: &Event<'_>, locked: Option<Duration>) {
        event.deny_detailed(self.reason, self.key_id, None, locked, self.detail);
    }

    /// Logs the refusal and answers it with a 401.
    fn refuse(&self, event: &Event<'_>, locked: Option<Duration>) -> Response {
        self.log(event, locked);
        unauthorized(self.message)
    }
}

/// Reads and verifies the presented key against `keys` and `requirement`.
// Inlined into both checks: the admitted path stays as it was.
#[inline(always)]
fn attempt<'k>(
    keys: &'k ApiKeyStore,
    requirement: &KeyRequirement,
    parts: &Parts,
    event: &Event<'_>,
) -> Attempt<'k> {
    let presented = match presented_key(&parts.headers) {
        Presented::Key(key) => key,
        Presented::Missing => {
            event.deny("missing", None, None, None);
            return Attempt::Refused(unauthorized("Missing API key"));
        }
        Presented::Malformed(detail) => {
            return Attempt::Failed(Failed {
                reason: "invalid",
                key_id: None,
                message: "Invalid API key",
                detail: Some(detail),
            });
        }
    };
    let (reason, key_id, message) = match keys.lookup(presented, SystemTime::now) {
        Lookup::Valid(key) => {
            if let Some(missing) = requirement.unmet(&key.scopes[..]) {
                event.deny(
                    "insufficient_scope",
                    Some(key.id.name()),
                    Some(requirement),
                    None,
                );
                return Attempt::Refused(
                    ErrorBody::new(
                        StatusCode::FORBIDDEN,
                        "FORBIDDEN",
                        format!("Forbidden: {missing}"),
                    )
                    .into_response(),
                );
            }
            tracing::debug!(
                policy = "api_key",
                scope = event.handler,
                client_ip = event.client_ip.map(tracing::field::display),
                request_id = request_id(&parts.headers),
                key_id = key.id.name(),
                outcome = "allow",
                "API key accepted"
            );
            crate::metrics::decision("api_key", "allow", "none", event.handler);
            return Attempt::Admitted(key.id.clone());
        }
        Lookup::Expired(id) => ("expired", Some(id.name()), "Expired API key"),
        Lookup::Revoked(id) => ("revoked", Some(id.name()), "Revoked API key"),
        Lookup::Unknown => ("invalid", None, "Invalid API key"),
    };
    Attempt::Failed(Failed {
        reason,
        key_id,
        message,
        detail: None,
    })
}

/// Who a decision is about, for its log event.
struct Event<'r> {
    handler: &'static str,
    client_ip: Option<IpAddr>,
    /// The request's headers, for its id: read only when an event is
    /// logged, so an admitted request with debug events off never looks.
    headers: &'r HeaderMap,
}

impl Event<'_> {
    /// The one event of a refusal. The presented key is never in it; the
    /// key's name is, when the key is known.
    fn deny(
        &self,
        reason: &'static str,
        key_id: Option<&str>,
        requirement: Option<&KeyRequirement>,
        lockout: Option<Duration>,
    ) {
        self.deny_detailed(reason, key_id, requirement, lockout, None);
    }

    /// [`Event::deny`], with a `detail` field saying what was wrong with the
    /// request (the response says only `Invalid API key`).
    fn deny_detailed(
        &self,
        reason: &'static str,
        key_id: Option<&str>,
        requirement: Option<&KeyRequirement>,
        lockout: Option<Duration>,
        detail: Option<&'static str>,
    ) {
        let message = match (reason, lockout) {
            (_, Some(_)) => "API key refused; client locked out after repeated failures",
            ("missing", _) => "API key missing",
            ("expired", _) => "API key expired",
            ("revoked", _) => "API key revoked",
            ("insufficient_scope", _) => "API key lacks the required scope",
            ("locked_out", _) => "client locked out after repeated API key failures",
            _ => "API key invalid",
        };
        tracing::warn!(
            policy = "api_key",
            scope = self.handler,
            client_ip = self.client_ip.map(tracing::field::display),
            request_id = request_id(self.headers),
            key_id,
            required_scope = requirement.map(tracing::field::display),
            lockout_secs = lockout.map(|lockout| lockout.as_secs()),
            detail,
            reason,
            outcome = "deny",
            "{message}"
        );
        crate::metrics::decision("api_key", "deny", reason, self.handler);
    }
}

/// What the request presents as a key.
enum Presented<'h> {
    Key(&'h [u8]),
    /// No header, an empty value, another scheme than `Bearer`, or a bearer token-less.
    Missing,
    /// A key that cannot be right: sent twice, or absurdly long. The
    /// response says `Invalid API key`; this detail goes to the log.
    Malformed(&'static str),
}

/// The key bytes from `X-API-Key`, else from `Authorization: Bearer`. Values
/// are compared as sent: no trimming, no decoding. An empty `X-API-Key` counts
/// as absent (the bearer token, if any, is used); a header sent twice is
/// refused as ambiguous.
fn presented_key(headers: &HeaderMap) -> Presented<'_> {
    // A `HeaderName` made once: looking up by `&str` would parse the name
    // on every request.
    static X_API_KEY: axum::http::HeaderName = axum::http::HeaderName::from_static("x-api-key");
    let mut api_keys = headers.get_all(&X_API_KEY).iter();
    if let Some(value) = api_keys.next() {
        if api_keys.next().is_some() {
            return Presented::Malformed("the X-API-Key header was sent more than once");
        }
        if !value.is_empty() {
            return checked(value.as_bytes());
        }
    }
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let Some(authorization) = authorizations.next() else {
        return Presented::Missing;
    };
    if authorizations.next().is_some() {
        return Presented::Malformed("the Authorization header was sent more than once");
    }
    let authorization = authorization.as_bytes();
    let Some(at) = authorization.iter().position(|b| *b == b' ') else {
        return Presented::Missing;
    };
    let (scheme, token) = (&authorization[..at], &authorization[at + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Presented::Missing;
    }
    checked(token)
}

fn checked(key: &[u8]) -> Presented<'_> {
    if key.is_empty() {
        Presented::Missing
    } else if key.len() > MAX_KEY_LEN {
        Presented::Malformed("the key is longer than 1 KiB")
    } else {
        Presented::Key(key)
    }
}

/// The `x-request-id` header, if it is short and plain enough to log as is.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(crate::request_id::HEADER)?.to_str().ok()?;
    let plain = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    plain.then_some(value)
}

fn unauthorized(message: &'static str) -> Response {
    let mut response =
        ErrorBody::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"api\""),
    );
    response
}

/// The 500 of a key- or token-protected request whose client address is
/// unknown while the lockout is on: without it, failures could not be
/// counted, so the request is refused (as rate limits refuse it) and the fix
/// is logged under `policy` (`"api_key"` or `"jwt"`).
pub(crate) fn missing_connect_info(policy: &'static str, handler: &'static str) -> Response {
    tracing::error!(
        policy,
        scope = handler,
        outcome = "error",
        "{}",
        crate::client_ip::MISSING_CONNECT_INFO_FIX
    );
    ErrorBody::internal_error()
}

/// The answer to a failed attempt that the shared lockout could not count
/// while its store fails closed.
pub(crate) fn uncounted() -> Response {
    ErrorBody::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "Service Unavailable",
    )
    .into_response()
}

/// The lockout's message on a route that asks for an API key.
pub(crate) const LOCKED_OUT_KEYS: &str =
    "Too Many Requests: too many failed API key attempts from this client";

/// The lockout's message on a route that asks for a bearer token. The
/// lockout counts bad keys and bad tokens alike; each route names the
/// credential it asks for.
#[cfg_attr(not(any(feature = "jwt", feature = "utoipa")), allow(dead_code))]
pub(crate) const LOCKED_OUT_TOKENS: &str =
    "Too Many Requests: too many failed token attempts from this client";

/// The 429 of a locked-out client, with `message` (one of the two above)
/// and `Retry-After`.
pub(crate) fn locked_out(left: Duration, message: &'static str) -> Response {
    let mut response =
        ErrorBody::new(StatusCode::TOO_MANY_REQUESTS, "LOCKED_OUT", message).into_response();
    // Rounded up, so a retry at that time is no longer locked out.
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    fn key<'h>(presented: Presented<'h>) -> Option<&'h [u8]> {
        match presented {
            Presented::Key(key) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn the_key_comes_from_x_api_key_first_then_a_bearer_token() {
        let both = headers(&[("authorization", b"Bearer b"), ("x-api-key", b"a")]);
        assert_eq!(key(presented_key(&both)), Some(&b"a"[..]));
        let bearer = headers(&[("authorization", b"BEARER  spaced")]);
        assert_eq!(key(presented_key(&bearer)), Some(&b" spaced"[..]));
        let empty = headers(&[("x-api-key", b""), ("authorization", b"Bearer b")]);
        assert_eq!(key(presented_key(&empty)), Some(&b"b"[..]));
    }

    #[test]
    fn absent_empty_and_other_schemes_are_missing() {
        for pairs in [
            &[][..],
            &[("x-api-key", &b""[..])][..],
            &[("authorization", &b"Bearer "[..])][..],
            &[("authorization", &b"Bearer"[..])][..],
            &[("authorization", &b"Basic dXNlcjpwYXNz"[..])][..],
        ] {
            assert!(matches!(presented_key(&headers(pairs)), Presented::Missing));
        }
    }

    #[test]
    fn repeated_headers_and_huge_keys_are_malformed() {
        let twice = headers(&[("x-api-key", b"a"), ("x-api-key", b"a")]);
        assert!(matches!(presented_key(&twice), Presented::Malformed(_)));
        let twice = headers(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer b"),
        ]);
        assert!(matches!(presented_key(&twice), Presented::Malformed(_)));
        let huge = headers(&[("x-api-key", &[b'k'; MAX_KEY_LEN + 1])]);
        assert!(matches!(presented_key(&huge), Presented::Malformed(_)));
    }

    #[test]
    fn only_plain_short_request_ids_are_logged() {
        let id = |value: &[u8]| request_id(&headers(&[("x-request-id", value)])).map(str::to_owned);
        assert_eq!(id(b"req-42.a_B").as_deref(), Some("req-42.a_B"));
        assert_eq!(id(b"has space"), None);
        assert_eq!(id(b"quote\"injection"), None);
        assert_eq!(id(&[b'a'; 129]), None);
        assert_eq!(id(&[0xff]), None);
        assert_eq!(id(b""), None);
    }
}
