//! An `#[api_error]` enum as `utoipa::IntoResponses` (feature `utoipa`):
//! one response per status, an example per variant, the message shown or
//! masked as the response would be; usable in `responses(...)`.
#![deny(warnings)]

use policy_runtime::api_error;
use utoipa::{IntoResponses, OpenApi};

#[api_error]
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("user {0} not found")]
    #[api(status = 404, code = "USER_NOT_FOUND")]
    UserNotFound(u64),
    #[error("gone for good")]
    #[api(status = 404, title = "Gone")]
    Removed,
    #[error("database at 10.0.0.7 unreachable")]
    #[api(status = 503)]
    Database,
    #[error("the quota of the day is used up")]
    #[api(status = 503, expose)]
    QuotaUsedUp,
}

#[utoipa::path(get, path = "/users/{id}", responses((status = 200, body = String), AppError))]
pub async fn user() -> Result<String, AppError> {
    Err(AppError::Removed)
}

#[derive(OpenApi)]
#[openapi(paths(user))]
struct ApiDoc;

fn main() {
    let responses = serde_json::to_value(AppError::responses()).unwrap();
    let keys: Vec<&String> = responses.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["404", "503"]);
    let examples = &responses["404"]["content"]["application/json"]["examples"];
    assert_eq!(
        examples["USER_NOT_FOUND"]["value"],
        serde_json::json!({"error": "user {0} not found", "code": "USER_NOT_FOUND"})
    );
    assert_eq!(
        examples["REMOVED"]["value"],
        serde_json::json!({"error": "gone for good", "code": "REMOVED"})
    );
    let unavailable = &responses["503"]["content"]["application/json"]["examples"];
    // A 5xx is masked unless exposed: its message is the status's reason.
    assert_eq!(
        unavailable["DATABASE"]["value"],
        serde_json::json!({"error": "Service Unavailable", "code": "DATABASE"})
    );
    assert_eq!(
        unavailable["QUOTA_USED_UP"]["value"]["error"],
        "the quota of the day is used up"
    );
    let spec = serde_json::to_value(ApiDoc::openapi()).unwrap();
    let documented = &spec["paths"]["/users/{id}"]["get"]["responses"];
    assert_eq!(documented["404"], responses["404"]);
}
