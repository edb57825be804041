//! Request limits: how large a request body may be and how long a request
//! may take, engine-wide ([`EngineBuilder::max_body_size`],
//! [`EngineBuilder::request_timeout`], `REQUEST_MAX_BODY_SIZE`,
//! `REQUEST_TIMEOUT`) and per handler (`#[body_limit("1MB")]`,
//! `#[timeout("30s")]`, which override the engine's).
//!
//! This module owns the settings, their start-up checks, the two refusals
//! (413 `PAYLOAD_TOO_LARGE`, 504 `TIMEOUT`) and the per-request pieces the
//! engine layer ([`crate::layer`]) and the handler guard ([`crate::guard`])
//! apply:
//!
//! - **Body size.** The limit is applied where the body is read, by axum's
//!   own mechanism: the engine layer sets axum's [`DefaultBodyLimit`] to the
//!   engine's limit, which every axum body extractor honours (they stop
//!   reading at the limit, so no more than the limit is ever buffered, with
//!   or without `Content-Length`); a handler's own limit replaces it for its
//!   requests, as a `DefaultBodyLimit` layered closer to a route does. A
//!   `Content-Length` over the limit is refused before any byte of the body
//!   is read: by the engine layer, and by the guard of a handler whose limit
//!   differs from the engine's. tower-http's `RequestBodyLimit` is not used:
//!   it fixes one limit per layer, so a handler could not raise the engine's,
//!   and it answers in plain text.
//! - **Time.** The engine layer starts one timer per request when the engine
//!   or any handler in the program has a timeout, and a handler's guard moves
//!   its deadline to the handler's own timeout, counted from the request's
//!   arrival at the engine layer. When the deadline passes, the request's
//!   future (extractors, handler, everything inside the engine layer) is
//!   dropped and the answer is a 504. tower-http's `Timeout` is not used for
//!   the same reason: its deadline is fixed per layer.

use crate::ErrorBody;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The longest request timeout: a day. Longer is a configuration mistake.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// The settings given to the builder or read from the environment.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestLimitsConfig {
    pub(crate) max_body_size: Option<u64>,
    pub(crate) timeout: Option<Duration>,
}

impl RequestLimitsConfig {
    /// Reads `REQUEST_MAX_BODY_SIZE` and `REQUEST_TIMEOUT`; each value that
    /// does not parse is a problem naming the variable.
    pub(crate) fn read_vars(&mut self, vars: &[(String, String)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (variable, value) in vars {
            match variable.as_str() {
                "REQUEST_MAX_BODY_SIZE" => match policy_grammar::size::parse_size(value.trim()) {
                    Ok(bytes) => self.max_body_size = Some(bytes),
                    Err(error) => problems.push(format!("{variable}: {error}")),
                },
                "REQUEST_TIMEOUT" => match policy_grammar::duration::parse_duration(value.trim()) {
                    Ok(timeout) => self.timeout = Some(timeout),
                    Err(error) => problems.push(format!("{variable}: {error}")),
                },
                _ => {}
            }
        }
        problems
    }

    /// The problems of values given to the builder directly.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_body_size == Some(0) {
            problems.push(
                "the maximum body size is 0 bytes; use at least 1 byte, such as `max_body_size(1024 * 1024)`"
                    .to_owned(),
            );
        }
        if let Some(timeout) = self.timeout {
            if timeout.is_zero() {
                problems.push(
                    "the request timeout is 0; use a positive duration, such as `Duration::from_secs(30)`"
                        .to_owned(),
                );
            } else if timeout > MAX_TIMEOUT {
                problems.push(format!(
                    "the request timeout of {} is over the longest allowed, 24 hours",
                    policy_grammar::duration::display_duration(timeout)
                ));
            }
        }
        problems
    }

    /// The engine's request limits, given the limits of every handler in
    /// the program (they decide what the engine layer may refuse alone, and
    /// whether it needs a timer).
    pub(crate) fn build(&self, handlers: impl IntoIterator<Item = OwnLimits>) -> RequestLimits {
        let (mut largest_own, mut any_timeout) = (None, false);
        for own in handlers {
            largest_own = largest_own.max(own.body_limit);
            any_timeout |= own.timeout.is_some();
        }
        let body = self.max_body_size.map(|limit| BodyDefault {
            limit,
            refused_above: largest_own.map_or(limit, |own| own.max(limit)),
        });
        let timed = self.timeout.is_some() || any_timeout;
        RequestLimits {
            active: (body.is_some() || timed).then_some(Box::new(Active {
                body,
                timeout: self.timeout,
                timed,
            })),
        }
    }
}

/// A handler's own request limits: `#[body_limit]` and `#[timeout]`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OwnLimits {
    pub(crate) body_limit: Option<u64>,
    pub(crate) timeout: Option<Duration>,
}

/// An engine's request limits, as the engine layer applies them. `None`
/// when nothing is configured, so that an engine without them pays one
/// branch per request.
#[derive(Debug, Default)]
pub(crate) struct RequestLimits {
    pub(crate) active: Option<Box<Active>>,
}

/// The request limits of an engine that has some.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) body: Option<BodyDefault>,
    /// The engine's own timeout.
    pub(crate) timeout: Option<Duration>,
    /// Whether requests get a timer: the engine or a handler has a timeout.
    pub(crate) timed: bool,
}

/// The engine's body limit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyDefault {
    pub(crate) limit: u64,
    /// What the engine layer refuses by `Content-Length` alone: its limit,
    /// or the largest handler limit when a handler allows more.
    pub(crate) refused_above: u64,
}

impl RequestLimits {
    /// The engine's body limit for the start-up report: `1MB`, or `none`.
    pub(crate) fn describe_body(&self) -> String {
        self.body_default().map_or("none".to_owned(), |body| {
            policy_grammar::size::display_size(body.limit)
        })
    }

    /// The engine's timeout for the start-up report: `30s`, or `none`.
    pub(crate) fn describe_timeout(&self) -> String {
        self.active
            .as_ref()
            .and_then(|active| active.timeout)
            .map_or(
                "none".to_owned(),
                policy_grammar::duration::display_duration,
            )
    }

    /// The engine's body limit, if it has one.
    pub(crate) fn body_default(&self) -> Option<BodyDefault> {
        self.active.as_ref().and_then(|active| active.body)
    }
}

/// What a request's `Content-Length` says, when it says it.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Sets the body limit the request's axum extractors honour.
pub(crate) fn limit_body<B>(request: &mut Request<B>, limit: u64) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    DefaultBodyLimit::max(limit).apply(request);
}

/// [`limit_body`], on the parts of a request (as a guard holds them).
pub(crate) fn limit_body_of_parts(extensions: &mut axum::http::Extensions, limit: u64) {
    // `DefaultBodyLimit::apply` takes a request: lend it the extensions.
    let mut carrier = Request::new(());
    std::mem::swap(carrier.extensions_mut(), extensions);
    limit_body(&mut carrier, limit);
    std::mem::swap(carrier.extensions_mut(), extensions);
}

/// The body-size refusal, in every error format.
pub(crate) const PAYLOAD_TOO_LARGE: &str = "Payload Too Large: the request body is over the limit";

/// 413 `PAYLOAD_TOO_LARGE`, logged at info with the limit and what the
/// request declared.
pub(crate) fn payload_too_large(limit: u64, declared: u64, route: Option<&str>) -> Response {
    tracing::info!(
        policy = "body_limit",
        outcome = "deny",
        reason = "too_large",
        route = route.unwrap_or("unmatched"),
        limit,
        content_length = declared,
        "request refused: its Content-Length is over the body limit"
    );
    too_large_response()
}

/// The 413 of a body found over the limit while it was read.
pub(crate) fn too_large_response() -> Response {
    ErrorBody::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        PAYLOAD_TOO_LARGE,
    )
    .into_response()
}

/// Whether a response is axum's own plain-text rejection of a body over the
/// limit (from a handler whose extractors are axum's, not the policies').
pub(crate) fn is_plain_payload_too_large(response: &Response) -> bool {
    response.status() == StatusCode::PAYLOAD_TOO_LARGE
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"))
}

/// 504 `TIMEOUT`, logged at warn with the route and the elapsed time.
pub(crate) fn timed_out(route: &str, timeout: Duration, elapsed: Duration) -> Response {
    let limit = policy_grammar::duration::display_duration(timeout);
    tracing::warn!(
        policy = "timeout",
        outcome = "deny",
        reason = "timeout",
        route,
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "request timed out; its handler was stopped"
    );
    ErrorBody::new(
        StatusCode::GATEWAY_TIMEOUT,
        "TIMEOUT",
        format!("Gateway Timeout: the request took longer than {limit}"),
    )
    .into_response()
}

/// A request's deadline, shared by the engine layer's timer and the
/// handler's guard: the time allowed from the request's arrival at the
/// engine layer, in nanoseconds (`u64::MAX`: none).
#[derive(Clone, Debug)]
pub(crate) struct Deadline(Arc<AtomicU64>);

/// No deadline.
const NONE: u64 = u64::MAX;

impl Deadline {
    pub(crate) fn new(allowed: Option<Duration>) -> Self {
        Deadline(Arc::new(AtomicU64::new(allowed.map_or(NONE, nanos))))
    }

    /// The time allowed from arrival, if any.
    pub(crate) fn allowed(&self) -> Option<Duration> {
        match self.0.load(Ordering::Acquire) {
            NONE => None,
            allowed => Some(Duration::from_nanos(allowed)),
        }
    }

    /// Gives the request `allowed` from its arrival, instead of the engine's timeout.
    pub(crate) fn set(&self, allowed: Duration) {
        self.0.store(nanos(allowed), Ordering::Release);
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos())
        .unwrap_or(NONE - 1)
        .min(NONE - 1)
}

/// What the guard of a handler does about request limits, before its other
/// checks: refuse a `Content-Length` over the handler's limit, let its body
/// extractors read up to that limit, and move the request's deadline to the
/// handler's timeout.
pub(crate) fn admit(
    policy: OwnLimits,
    engine_body: Option<BodyDefault>,
    parts: &mut axum::http::request::Parts,
) -> Result<(), Response> {
    let limit = policy.body_limit.or(engine_body.map(|body| body.limit));
    if let Some(limit) = limit {
        // The engine layer refused what is over its threshold; what is
        // between the handler's limit and that threshold is refused here.
        if engine_body.is_none_or(|body| body.refused_above != limit) {
            if let Some(declared) = content_length(&parts.headers).filter(|&n| n > limit) {
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map(|path| path.as_str());
                return Err(payload_too_large(limit, declared, route));
            }
        }
        if let Some(own) = policy.body_limit {
            limit_body_of_parts(&mut parts.extensions, own);
        }
    }
    if let Some(timeout) = policy.timeout {
        if let Some(deadline) = parts.extensions.get::<Deadline>() {
            deadline.set(timeout);
        }
    }
    Ok(())
}

/// What the engine layer makes of a request's arrival: a refusal of its
/// own, or a timer to run beside the request.
pub(crate) struct Arrival {
    pub(crate) refused: Option<Response>,
    pub(crate) timer: Option<Box<RequestTimer>>,
}

impl Active {
    /// Applies the engine's request limits to an arriving request.
    pub(crate) fn arrive<B>(&self, request: &mut Request<B>) -> Arrival {
        let route = |request: &Request<B>| {
            request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|path| path.as_str().to_owned())
        };
        if let Some(body) = self.body {
            let declared = content_length(request.headers());
            if let Some(declared) = declared.filter(|&n| n > body.refused_above) {
                let route = route(request);
                return Arrival {
                    refused: Some(payload_too_large(
                        body.refused_above,
                        declared,
                        route.as_deref(),
                    )),
                    timer: None,
                };
            }
            // A `Content-Length` between the engine's limit and a larger
            // handler limit: the guard of a handler that allows it raises the
            // limit again, the guard of any other refuses it, and a handler
            // without a guard refuses the body at its first bytes.
            let between = declared.is_some_and(|n| n > body.limit);
            limit_body(request, if between { 0 } else { body.limit });
        }
        let timer = self.timed.then(|| {
            let deadline = Deadline::new(self.timeout);
            request.extensions_mut().insert(deadline.clone());
            Box::new(RequestTimer {
                deadline,
                start: tokio::time::Instant::now(),
                armed: None,
                sleep: None,
                route: request
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .cloned(),
            })
        });
        Arrival {
            refused: None,
            timer,
        }
    }
}

/// The timer of one request: sleeps until the request's deadline, which the
/// handler's guard may move while the request runs.
pub(crate) struct RequestTimer {
    deadline: Deadline,
    start: tokio::time::Instant,
    /// The time allowed that `sleep` was set for.
    armed: Option<Duration>,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// The matched route, for the log (none when the engine wraps the
    /// router rather than its routes: then the log says `unmatched`).
    route: Option<axum::extract::MatchedPath>,
}

impl RequestTimer {
    /// Ready with the 504 once the request's deadline has passed. Polled
    /// after the request's own future, which is where the guard moves the
    /// deadline, so the timer always sleeps until the latest one.
    pub(crate) fn poll_expired(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Response> {
        let Some(allowed) = self.deadline.allowed() else {
            self.sleep = None;
            return std::task::Poll::Pending;
        };
        let at = self.start + allowed;
        if self.armed != Some(allowed) {
            self.armed = Some(allowed);
            match &mut self.sleep {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let Some(sleep) = &mut self.sleep else {
            return std::task::Poll::Pending;
        };
        std::task::ready!(sleep.as_mut().poll(cx));
        let route = self
            .route
            .as_ref()
            .map_or("unmatched", |path| path.as_str());
        std::task::Poll::Ready(timed_out(route, allowed, self.start.elapsed()))
    }
}
