#![deny(warnings)]

use axum::response::IntoResponse;
use policy_runtime::{api_error, ApiError};

#[derive(Debug, thiserror::Error)]
#[error("io")]
pub struct Io;

#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("unit")]
    #[api(status = 400)]
    Unit,
    #[error("tuple {0}")]
    #[api(status = 404, code = "MISSING")]
    Tuple(u32),
    #[error("struct {name}")]
    #[api(code = "CONFLICT", status = 409)]
    Struct { name: String },
    #[error("source")]
    #[api(status = 500)]
    Source(#[from] Io),
}

fn main() {
    assert_eq!(AppError::Tuple(1).code(), "MISSING");
    assert_eq!(AppError::Struct { name: "n".into() }.status().as_u16(), 409);
    let _ = AppError::from(Io).into_response();
    let _ = AppError::Unit.into_response();
}
