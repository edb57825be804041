//! `#[api_error]`: statuses, codes and JSON bodies, with 5xx details hidden
//! from clients and logged with their source chain.

mod common;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::app_error::{AppError, DatabaseDown};
use common::{Logs, get as get_request, send};
use policy_runtime::{ApiError, api_error};

async fn handler(
    axum::extract::Path(case): axum::extract::Path<String>,
) -> Result<&'static str, AppError> {
    match case.as_str() {
        "validation" => Err(AppError::Validation("a@".into())),
        "missing" => Err(AppError::UserNotFound { id: 42 }),
        "auth" => Err(AppError::Authentication),
        "profile" => Err(AppError::Profile(DatabaseDown)),
        "upstream" => {
            // `?` converts through thiserror's `#[from]`.
            std::fs::read("/nonexistent/policy-runtime-test")?;
            Ok("unreachable")
        }
        _ => Ok("fine"),
    }
}

fn app() -> Router {
    Router::new().route("/{case}", get(handler))
}

#[tokio::test]
async fn client_errors_carry_their_message_and_code() {
    let reply = send(&app(), get_request("/validation")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "email is not valid: a@", "code": "VALIDATION_ERROR"})
    );

    let reply = send(&app(), get_request("/missing")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "user 42 not found", "code": "USER_NOT_FOUND"})
    );

    let reply = send(&app(), get_request("/auth")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["code"], "AUTHENTICATION_ERROR");
}

#[tokio::test]
async fn server_errors_hide_details_from_clients_and_log_the_source_chain() {
    let (logs, _guard) = Logs::capture();

    let reply = send(&app(), get_request("/profile")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "Internal Server Error", "code": "PROFILE_FAILED"})
    );
    assert!(!reply.body.contains("db-primary"));

    let reply = send(&app(), get_request("/upstream")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.json(),
        serde_json::json!({"error": "Service Unavailable", "code": "UPSTREAM"})
    );

    let errors: Vec<_> = logs
        .events()
        .into_iter()
        .filter(|event| event["level"] == "ERROR")
        .collect();
    assert_eq!(errors.len(), 2, "{}", logs.text());
    assert_eq!(errors[0]["fields"]["status"], 500);
    assert_eq!(errors[0]["fields"]["code"], "PROFILE_FAILED");
    assert_eq!(errors[0]["fields"]["error"], "could not load the profile");
    assert_eq!(
        errors[0]["fields"]["sources"],
        "connection to db-primary.internal:5432 refused"
    );
    assert_eq!(errors[1]["fields"]["code"], "UPSTREAM");
    assert!(
        errors[1]["fields"]["sources"]
            .as_str()
            .unwrap()
            .contains("No such file")
    );
}

#[test]
fn the_enum_reports_status_and_code() {
    assert_eq!(AppError::Authentication.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(AppError::UserNotFound { id: 1 }.code(), "USER_NOT_FOUND");
    assert_eq!(AppError::Profile(DatabaseDown).status().as_u16(), 500);
}

/// Generic enums and `#[api_error]` below `#[derive]` work too.
#[derive(Debug, thiserror::Error)]
#[api_error]
enum Generic<T: std::fmt::Debug + std::fmt::Display> {
    #[error("conflict on {0}")]
    #[api(status = 409)]
    Conflict(T),
}

#[test]
fn generic_enums_get_the_impls() {
    let error = Generic::Conflict("order 7");
    assert_eq!(error.status(), StatusCode::CONFLICT);
    assert_eq!(error.code(), "CONFLICT");
}
