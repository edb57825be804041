//! The JWT policy: read a bearer token, validate it against the configured
//! keys, check its scopes, answer 401, 403 or 429, or go on with its claims.
//!
//! This module owns an engine's JWT state ([`Jwt`]: the keys, the
//! validation rules, the scope claim), where a token is read from
//! (`Authorization: Bearer`), the choice between an API key and a token for
//! `or_api_key`, and the one log event of each decision. Key material is
//! [`keys`]'s business, fetching and caching JWKS [`jwks`]'s, token
//! validation [`validate`]'s, configuration [`config`]'s, the handler's view
//! of the claims [`claims`]'s, and the responses [`refusal`]'s; the
//! macro-free layer, `RequireJwt`, is with the other policy layers, and the
//! builder's JWT methods are the engine's. Brute-force lockout is the API
//! keys' log, shared: a bad token counts as a bad key does, in the store
//! every instance shares when the rate-limit store shares the lockout
//! ([`Jwt::enforce_shared`]), else in this instance's memory ([`Jwt::enforce`]).

pub(crate) mod claims;
pub(crate) mod config;
pub(crate) mod jwks;
pub(crate) mod keys;
pub(crate) mod refusal;
pub(crate) mod validate;

use crate::api_key::ApiKeys;
use crate::api_key::lockout::Counted;
use crate::api_key::scope::KeyRequirement;
use crate::client_ip::ClientIpResolver;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use claims::VerifiedClaims;
use config::JwtConfig;
use jwks::RemoteKeys;
use std::net::IpAddr;
use std::sync::Arc;
use validate::{Failure, Refused, Rules};

/// The JWT state of one engine.
pub(crate) struct Jwt {
    pub(crate) keys: Arc<RemoteKeys>,
    rules: Rules,
    scope_claim: Option<String>,
    /// For the start-up report.
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway_secs: u64,
}

/// What a request presents as a bearer token.
enum Presented<'h> {
    Token(&'h [u8]),
    Missing,
    Malformed(&'static str),
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn presented_token(headers: &HeaderMap) -> Presented<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Presented::Missing;
    };
    if values.next().is_some() {
        return Presented::Malformed("the Authorization header was sent more than once");
    }
    let value = value.as_bytes();
    let Some(at) = value.iter().position(|b| *b == b' ') else {
        return Presented::Missing;
    };
    if !value[..at].eq_ignore_ascii_case(b"bearer") {
        return Presented::Missing;
    }
    match value[at + 1..].trim_ascii() {
        [] => Presented::Missing,
        token => Presented::Token(token),
    }
}

/// For `or_api_key`: whether the request presents a JWT rather than an API
/// key. `X-API-Key` means a key; a bearer value that has a JWT's shape
/// (three base64url segments) means a token; anything else goes to the API
/// key check, which refuses it as a key.
pub(crate) fn presents_jwt(headers: &HeaderMap) -> bool {
    static X_API_KEY: axum::http::HeaderName = axum::http::HeaderName::from_static("x-api-key");
    if headers
        .get(&X_API_KEY)
        .is_some_and(|value| !value.is_empty())
    {
        return false;
    }
    matches!(presented_token(headers), Presented::Token(token) if validate::looks_like_jwt(token))
}

impl Jwt {
    /// The state of a built engine.
    pub(crate) fn new(config: JwtConfig, clock: crate::clock::EngineClock) -> Self {
        let keys = Arc::new(RemoteKeys::new(
            config.keys,
            config.remote,
            config.fetched,
            config.refresh_interval,
            clock,
        ));
        keys.prefetch();
        let leeway_secs = config.leeway.as_secs();
        Self {
            keys,
            rules: Rules::new(&config.issuers, &config.audiences, leeway_secs),
            scope_claim: config.scope_claim,
            issuers: config.issuers,
            audiences: config.audiences,
            leeway_secs,
        }
    }

    /// The settings, for the start-up report: `2 keys (1 HMAC secret),
    /// JWKS https://..., issuer `..`, audience `..`, leeway 60s`.
    pub(crate) fn describe(&self) -> String {
        let fixed = self.keys.fixed();
        let secrets = fixed.keys.iter().filter(|key| key.is_hmac()).count();
        let mut parts = vec![format!(
            "{} configured key(s) ({secrets} HMAC secret(s))",
            fixed.keys.len()
        )];
        if let Some(remote) = self.keys.remote() {
            parts.push(remote.describe());
        }
        let quoted = |values: &[String]| match values.is_empty() {
            true => "any".to_owned(),
            false => values
                .iter()
                .map(|value| format!("`{value}`"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        parts.push(format!("issuer {}", quoted(&self.issuers)));
        parts.push(format!("audience {}", quoted(&self.audiences)));
        parts.push(format!("leeway {}s", self.leeway_secs));
        parts.join(", ")
    }

    /// Whether checking this request's token should first wait for a JWKS
    /// fetch: never fetched yet, or an unknown `kid` with a refresh due.
    pub(crate) fn refresh_due(&self, parts: &Parts) -> bool {
        if self.keys.remote().is_none() {
            return false;
        }
        let Presented::Token(token) = presented_token(&parts.headers) else {
            return false;
        };
        match validate::parse(token) {
            Ok(parsed) => self.keys.refresh_due(parsed.header.kid.as_deref()),
            Err(_) => false,
        }
    }

    /// Refreshes the keys when [`Jwt::refresh_due`]; at most one fetch per
    /// interval, however many requests ask.
    pub(crate) async fn refresh_if_due(&self, parts: &Parts) {
        if self.refresh_due(parts) {
            self.keys.refresh().await;
        }
    }

    /// Checks one JWT policy with the keys at hand; on success returns the
    /// token's claims. A failure counts in this instance's lockout log.
    pub(crate) fn enforce(
        &self,
        handler: &'static str,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        api_keys: &ApiKeys,
        resolver: &ClientIpResolver,
    ) -> Result<VerifiedClaims, Response> {
        let event = Event {
            handler,
            client_ip,
            headers: &parts.headers,
        };
        let configured = self.keys.has_source();
        let lockout = api_keys.lockout.as_ref().filter(|_| configured);
        if lockout.is_some() && client_ip.is_none() {
            return Err(crate::api_key::missing_connect_info("jwt", handler));
        }
        let lockout = lockout.zip(client_ip.map(|ip| resolver.group(ip)));
        let now = api_keys.clock.now();
        if let Some((log, client)) = lockout {
            if let Some(left) = log.locked(client, now) {
                event.deny("locked_out", None, None, None, None);
                return Err(crate::api_key::locked_out(
                    left,
                    crate::api_key::LOCKED_OUT_TOKENS,
                ));
            }
        }
        match self.attempt(handler, requirement, parts, &event) {
            Attempt::Admitted(claims) => Ok(claims),
            Attempt::Refused(refusal) => Err(refusal),
            Attempt::Failed(failed) => {
                let locked = lockout
                    .filter(|_| failed.counts())
                    .and_then(|(log, client)| log.fail(client, now));
                Err(failed.refuse(&event, locked))
            }
        }
    }

    /// [`Jwt::enforce`] with a lockout shared by every instance (see
    /// [`ApiKeys::shares_lockout`]): a failure that counts is counted in the
    /// shared store (one round trip), and a lockout this instance knows of
    /// is confirmed there before the client is refused, so bad tokens sent
    /// to several instances lock the client out of all of them, as bad API
    /// keys do. An admitted token of a client with no known lockout makes no
    /// round trip. A failure by a client locked out through another
    /// instance is refused as locked out; one the store could not count
    /// while failing closed gets a 503.
    pub(crate) async fn enforce_shared(
        &self,
        handler: &'static str,
        requirement: &KeyRequirement,
        parts: &Parts,
        client_ip: Option<IpAddr>,
        api_keys: &ApiKeys,
        resolver: &ClientIpResolver,
    ) -> Result<VerifiedClaims, Response> {
        let configured = self.keys.has_source();
        let Some(log) = api_keys.lockout.as_ref().filter(|_| configured) else {
            return self.enforce(handler, requirement, parts, client_ip, api_keys, resolver);
        };
        let event = Event {
            handler,
            client_ip,
            headers: &parts.headers,
        };
        let Some(client) = client_ip.map(|ip| resolver.group(ip)) else {
            return Err(crate::api_key::missing_connect_info("jwt", handler));
        };
        let now = api_keys.clock.now();
        if let Some(left) = log.locked_shared(client, now).await {
            event.deny("locked_out", None, None, None, None);
            return Err(crate::api_key::locked_out(
                left,
                crate::api_key::LOCKED_OUT_TOKENS,
            ));
        }
        match self.attempt(handler, requirement, parts, &event) {
            Attempt::Admitted(claims) => Ok(claims),
            Attempt::Refused(refusal) => Err(refusal),
            Attempt::Failed(failed) if !failed.counts() => Err(failed.refuse(&event, None)),
            Attempt::Failed(failed) => match log.fail_shared(client, now).await {
                Counted::Failure(locked) => Err(failed.refuse(&event, locked)),
                Counted::Locked(left) => {
                    event.deny("locked_out", None, None, None, None);
                    Err(crate::api_key::locked_out(
                        left,
                        crate::api_key::LOCKED_OUT_TOKENS,
                    ))
                }
                Counted::Unavailable => {
                    failed.log(&event, None);
                    Err(crate::api_key::uncounted())
                }
            },
        }
    }

    /// Reads and verifies the presented token and checks its scopes, before
    /// the lockout counts anything. Logs every outcome but a failure, which
    /// is logged once the lockout has counted it.
    // Inlined into both checks: the admitted path stays as it was.
    #[inline(always)]
    fn attempt(
        &self,
        handler: &'static str,
        requirement: &KeyRequirement,
        parts: &Parts,
        event: &Event<'_>,
    ) -> Attempt {
        let token = match presented_token(&parts.headers) {
            Presented::Token(token) => token,
            Presented::Missing => {
                event.deny("missing", None, None, None, None);
                return Attempt::Refused(refusal::missing());
            }
            Presented::Malformed(detail) => {
                return Attempt::Failed(Failed::new(Failure::Malformed(detail).into(), None));
            }
        };
        let parsed = match validate::parse(token) {
            Ok(parsed) => parsed,
            Err(failure) => return Attempt::Failed(Failed::new(failure.into(), None)),
        };
        let kid = parsed.header.kid.as_deref().filter(|kid| loggable(kid));
        let claims = match validate::verify(&parsed, &self.keys.current(), &self.rules) {
            Ok(claims) => claims,
            Err(refused) => return Attempt::Failed(Failed::new(refused, kid)),
        };
        let sub = subject(&claims);
        if let Some(missing) = requirement.unmet(&self.scopes(&claims)) {
            event.deny("insufficient_scope", sub, kid, None, None);
            let missing = missing.replacen("this API key", "this token", 1);
            return Attempt::Refused(refusal::insufficient_scope(requirement, &missing));
        }
        tracing::debug!(
            policy = "jwt",
            scope = handler,
            client_ip = event.client_ip.map(tracing::field::display),
            request_id = crate::api_key::request_id(&parts.headers),
            sub,
            kid,
            outcome = "allow",
            "JWT accepted"
        );
        crate::metrics::decision("jwt", "allow", "none", handler);
        Attempt::Admitted(VerifiedClaims(Arc::new(claims)))
    }

    /// The token's scopes: from the configured claim, else `scope`
    /// (space-separated), else `scp` (an array, or a space-separated string).
    fn scopes<'c>(&self, claims: &'c serde_json::Value) -> Vec<&'c str> {
        let read = |name: &str| -> Option<Vec<&'c str>> {
            match claims.get(name)? {
                serde_json::Value::String(text) => Some(text.split_ascii_whitespace().collect()),
                serde_json::Value::Array(items) => {
                    Some(items.iter().filter_map(serde_json::Value::as_str).collect())
                }
                _ => None,
            }
        };
        match &self.scope_claim {
            Some(name) => read(name),
            None => read("scope").or_else(|| read("scp")),
        }
        .unwrap_or_default()
    }
}

/// What the presented token came to, before the lockout counts anything.
enum Attempt {
    Admitted(VerifiedClaims),
    /// Refused without a failure to count: no token, or a valid token that
    /// lacks a scope.
    Refused(Response),
    /// A token that cannot be accepted.
    Failed(Failed),
}

/// A token refused, to log and answer once the lockout has counted it.
struct Failed {
    refused: Refused,
    /// The token's `kid`, when it is fit for the log.
    kid: Option<String>,
}

impl Failed {
    fn new(refused: Refused, kid: Option<&str>) -> Self {
        Self {
            refused,
            kid: kid.map(str::to_owned),
        }
    }

    /// Whether the lockout counts this failure (see
    /// [`Failure::counts_for_lockout`]).
    fn counts(&self) -> bool {
        self.refused.failure.counts_for_lockout()
    }

    /// Logs the refusal; `locked` is the lockout this failure started.
    fn log(&self, event: &Event<'_>, locked: Option<std::time::Duration>) {
        let failure = self.refused.failure;
        let detail = match failure {
            Failure::Malformed(detail) => Some(detail),
            _ => None,
        };
        let sub = self.refused.claims.as_ref().and_then(subject);
        event.deny(failure.reason(), sub, self.kid.as_deref(), detail, locked);
    }

    /// Logs the refusal and answers it with a 401.
    fn refuse(&self, event: &Event<'_>, locked: Option<std::time::Duration>) -> Response {
        self.log(event, locked);
        refusal::invalid(self.refused.failure)
    }
}

/// The `sub` claim, for the log.
fn subject(claims: &serde_json::Value) -> Option<&str> {
    claims.get("sub")?.as_str()
}

/// Who a decision is about, for its log event.
struct Event<'r> {
    handler: &'static str,
    client_ip: Option<IpAddr>,
    headers: &'r HeaderMap,
}

impl Event<'_> {
    /// The one event of a refusal: the reason, `sub` and `kid` when known,
    /// what was malformed, whether the client got locked out. Never the token.
    fn deny(
        &self,
        reason: &'static str,
        sub: Option<&str>,
        kid: Option<&str>,
        detail: Option<&'static str>,
        lockout: Option<std::time::Duration>,
    ) {
        let message = match (reason, lockout) {
            (_, Some(_)) => "JWT refused; client locked out after repeated failures",
            ("missing", _) => "JWT missing",
            ("insufficient_scope", _) => "JWT lacks the required scope",
            ("locked_out", _) => "client locked out after repeated API key or JWT failures",
            _ => "JWT invalid",
        };
        tracing::warn!(
            policy = "jwt",
            scope = self.handler,
            client_ip = self.client_ip.map(tracing::field::display),
            request_id = crate::api_key::request_id(self.headers),
            sub = sub.filter(|sub| loggable(sub)),
            kid,
            lockout_secs = lockout.map(|lockout| lockout.as_secs()),
            detail,
            reason,
            outcome = "deny",
            "{message}"
        );
        crate::metrics::decision("jwt", "deny", reason, self.handler);
    }
}

/// Whether a value from a token (a `kid`, a `sub`) is short and printable
/// enough to log as is.
fn loggable(value: &str) -> bool {
    value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}
