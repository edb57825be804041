//! The rules `policy-macros` checks at compile time and `policy-runtime`
//! checks at run time, kept in one place so both apply exactly the same ones.
//!
//! This crate owns the limit-string grammar of `#[rate_limit("...")]` and its
//! supported range ([`quota`]), the sizes of `#[body_limit("1MB")]` ([`size`])
//! and the durations of `#[timeout("30s")]` ([`duration`]), what a scope name
//! may be ([`scope_name`]), and the JSON member names the error formats
//! reserve ([`reserved_members`]).
//! It uses only `std`. It is an implementation detail of `policy-runtime`,
//! which pins its exact version: depend on `policy-runtime` instead.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod duration;
mod measure;
pub mod quota;
pub mod reserved_members;
pub mod scope_name;
pub mod size;
