//! Forwarding a request from a policy layer to the service it wraps.
//!
//! This module owns what [`crate::DefaultLimits`] and the
//! [`crate::RateLimit`] / [`crate::RequireApiKey`] layers do alike once their
//! checks admitted a request: take the inner service that `poll_ready` made
//! ready (leaving a clone in its place, as tower asks), call it, turn any
//! response body (such as `ServeDir`'s) into axum's, and add the rate-limit
//! headers of the admitting check.

use crate::rate_limiting::headers::RateLimitHeaders;
use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::http::Request;
use axum::response::Response;
use tower::Service;

/// The inner service made ready by `poll_ready`; a clone takes its place.
pub(crate) fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// Calls `inner` with an admitted request and adds the rate-limit headers.
pub(crate) async fn forward<S, B, ResBody>(
    mut inner: S,
    request: Request<B>,
    headers: Option<&RateLimitHeaders>,
) -> Result<Response, S::Error>
where
    S: Service<Request<B>, Response = axum::http::Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let mut response = inner.call(request).await?.map(Body::new);
    if let Some(headers) = headers {
        headers.apply(response.headers_mut());
    }
    Ok(response)
}
