//! `Engine::document` (feature `utoipa`) with `#[utoipa::path]` below the
//! policy attributes: the link the attributes record finds the operation by
//! the id utoipa gives it, even one that is not the function's name.
#![deny(warnings)]

use policy_runtime::{rate_limit, require_api_key, Engine};
use utoipa::OpenApi;

#[require_api_key(scope = all("reports:read", "reports:export"))]
#[rate_limit("100/hour", key = api_key)]
#[utoipa::path(get, path = "/reports", operation_id = "listReports", responses((status = 200)))]
pub async fn reports() -> &'static str {
    "reports"
}

#[derive(OpenApi)]
#[openapi(paths(reports))]
struct ApiDoc;

fn main() {
    let engine = Engine::builder()
        .api_key("ops", "ops-key-0123456789abcdef")
        .build()
        .unwrap();
    let mut openapi = ApiDoc::openapi();
    let report = engine.document(&mut openapi);
    assert!(report.is_complete(), "{report}");
    assert!(!report.operations()[0].by_name);
    let spec = serde_json::to_value(&openapi).unwrap();
    let operation = &spec["paths"]["/reports"]["get"];
    assert_eq!(
        operation["security"],
        serde_json::json!([
            {"api_key": ["reports:read", "reports:export"]},
            {"api_key_bearer": ["reports:read", "reports:export"]}
        ])
    );
    assert_eq!(operation["x-rate-limit"][0], "100 per 1 hour, per API key");
}
