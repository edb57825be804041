//! Every `#[api(...)]` argument on variants and fields, with thiserror's
//! `#[from]` and `#[source]`, and no warning at all.
#![deny(warnings)]

use policy_runtime::{api_error, FieldError};

#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input")]
    #[api(
        status = 422,
        code = "VALIDATION_ERROR",
        category = "validation",
        severity = "low"
    )]
    Invalid {
        #[api(errors)]
        errors: Vec<FieldError>,
    },
    #[error("you have {balance} credits")]
    #[api(status = 402, title = "You do not have enough credit")]
    OutOfCredit {
        #[api(extension)]
        balance: u32,
        #[api(extension = "accounts")]
        links: Vec<String>,
    },
    #[error("quota of {0} exhausted")]
    #[api(status = 503, expose)]
    Exhausted(#[api(extension = "quota")] u32),
    #[error("account {0} is under review")]
    #[api(status = 403, mask)]
    UnderReview(u64),
    #[error("database failed")]
    #[api(status = 500, severity = "critical")]
    Database(#[from] std::io::Error),
    #[error("upstream failed")]
    #[api(status = 502)]
    Upstream {
        #[source]
        cause: std::fmt::Error,
        #[api(extension)]
        upstream: &'static str,
    },
}

fn main() {}
