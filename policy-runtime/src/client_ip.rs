//! The client address a policy keys on.
//!
//! This module owns reading the peer address that axum's `ConnectInfo` puts
//! on the request (or `MockConnectInfo` in tests). It must never invent an
//! address: when none is there, callers refuse the request instead of sharing
//! one bucket between all clients.

use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};

/// The peer IP address of the connection, if the server recorded it.
pub(crate) fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        return Some(addr.ip());
    }
    parts
        .extensions
        .get::<MockConnectInfo<SocketAddr>>()
        .map(|MockConnectInfo(addr)| addr.ip())
}

/// The log line that tells an operator how to give the server connect info.
pub(crate) const MISSING_CONNECT_INFO_FIX: &str = "the client address is unknown because the server was not started with connect info; \
serve the router with `axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())` \
(or add `MockConnectInfo` in tests)";
