//! The application error the error-shape tests render: one enum with a
//! variant per case they need (a message shown, a 5xx hidden with its source
//! chain, an explicit and a default code, an extension, field errors).

use policy_runtime::{FieldError, api_error};

/// A 5xx cause whose text must never reach a client.
#[derive(Debug, thiserror::Error)]
#[error("connection to db-primary.internal:5432 refused")]
pub struct DatabaseDown;

#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("email is not valid: {0}")]
    #[api(status = 400, code = "VALIDATION_ERROR")]
    Validation(String),
    #[error("user {id} not found")]
    #[api(
        status = 404,
        code = "USER_NOT_FOUND",
        title = "User not found",
        severity = "low",
        category = "lookup"
    )]
    UserNotFound {
        #[api(extension)]
        id: u64,
    },
    #[error("authentication failed")]
    #[api(status = 401, code = "AUTHENTICATION_ERROR")]
    Authentication,
    #[error("could not load the profile")]
    #[api(status = 500, code = "PROFILE_FAILED")]
    Profile(#[source] DatabaseDown),
    /// No `code`: the variant's name in SCREAMING_SNAKE_CASE, `UPSTREAM`.
    #[error("scoring service unavailable")]
    #[api(status = 503)]
    Upstream(#[from] std::io::Error),
    #[error("invalid signup")]
    #[api(status = 422, code = "VALIDATION_ERROR")]
    Invalid {
        #[api(errors)]
        errors: Vec<FieldError>,
    },
}
