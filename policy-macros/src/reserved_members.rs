//! The JSON member names the error formats use themselves, which an
//! `#[api(extension)]` field cannot take.
//!
//! This file uses only `std`: `policy-runtime` compiles it too, so the name
//! refused at compile time and the name refused at run time come from one list.

/// Member names the formats use themselves.
pub(crate) const RESERVED_MEMBERS: &[&str] = &[
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "code",
    "request_id",
    "errors",
    "error",
    "error_code",
    "message",
    "details",
    "timestamp",
    "severity",
    "category",
];
