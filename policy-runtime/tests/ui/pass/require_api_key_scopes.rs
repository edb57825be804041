//! Every scope form of `#[require_api_key]`, alone and stacked, compiling
//! without a warning and building an engine whose keys hold the scopes.
#![deny(warnings)]

use axum::routing::get;
use axum::Router;
use policy_runtime::{rate_limit, require_api_key, ApiKey, ApiKeyId, Engine};

#[require_api_key(scope = "admin")]
pub async fn admin(key: ApiKeyId) -> String {
    key.name().to_owned()
}

#[require_api_key(scope = any("reports:read", "reports:write"))]
pub async fn reports() {}

#[require_api_key(scope = all("billing.read", "billing.export",))]
pub async fn export() {}

#[rate_limit("10/minute")]
#[policy_runtime::require_api_key(scope = "admin")]
pub async fn limit_first() {}

#[require_api_key(scope = "admin")]
#[rate_limit("10/minute", key = api_key)]
pub async fn key_first() {}

fn main() {
    let engine = Engine::builder()
        .api_key_with(ApiKey::new("ops", "ops-key-0123456789abcdef").scopes([
            "admin",
            "reports:read",
            "billing.read",
            "billing.export",
        ]))
        .build()
        .unwrap();
    let _app: Router = Router::new()
        .route("/admin", get(admin))
        .route("/reports", get(reports))
        .route("/export", get(export))
        .route("/limit-first", get(limit_first))
        .route("/key-first", get(key_first))
        .layer(engine);
}
