//! The JSON member names the error formats use themselves, which an
//! `#[api(extension)]` field cannot take.
//!
//! The name `policy-macros` refuses at compile time and the name
//! `policy-runtime` refuses at run time come from this one list.

/// Member names the formats use themselves.
pub const RESERVED_MEMBERS: &[&str] = &[
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
