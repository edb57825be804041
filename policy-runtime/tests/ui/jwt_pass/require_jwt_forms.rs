//! Every form of `#[require_jwt]`, alone and stacked with the other policies,
//! and the `subject` and `claim` keys below it: compiling without a warning
//! and giving the handler's policy the checks written, in order.
#![deny(warnings)]

use axum::routing::get;
use axum::Router;
use policy_runtime::__private::{Check, KeyRequirement, KeySource, Policy};
use policy_runtime::{
    body_limit, rate_limit, require_api_key, require_jwt, timeout, ApiKeyId, Claims,
};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
pub struct Tenant {
    pub sub: String,
    pub tenant_id: u64,
}

#[require_jwt(scope = "reports:read")]
#[rate_limit("60/minute; 1000/hour", key = subject)]
pub async fn reports() -> &'static str {
    "reports"
}

#[require_jwt(or_api_key)]
pub async fn either() {}

#[require_jwt(scope = any("billing:read", "billing:admin"), or_api_key)]
#[rate_limit("100/minute", key = claim("tenant_id"))]
pub async fn invoices(Claims(tenant): Claims<Tenant>) -> String {
    format!("{} {}", tenant.sub, tenant.tenant_id)
}

#[timeout("10s")]
#[rate_limit("10/second")]
#[policy_runtime::require_jwt(scope = all("a", "b"))]
#[body_limit("1MB")]
#[require_api_key]
#[rate_limit("20/minute", key = subject)]
pub async fn everything(Claims(claims): Claims, key: ApiKeyId, body: String) -> String {
    format!("{:?} {} {body}", claims.sub, key.name())
}

// Without a JWT check, the optional form is allowed.
#[rate_limit("5/minute")]
pub async fn optional(claims: Option<Claims>) -> String {
    claims.and_then(|claims| claims.0.sub).unwrap_or_default()
}

fn main() {
    let policy = <__PolicyOf_reports as Policy>::POLICY;
    match policy.checks {
        [Check::Jwt(KeyRequirement::Scope("reports:read")), Check::RateLimit(spec)] => {
            assert!(matches!(spec.key, KeySource::Subject));
        }
        other => panic!("{other:?}"),
    }

    let policy = <__PolicyOf_either as Policy>::POLICY;
    assert!(matches!(policy.checks, [Check::ApiKeyOrJwt(KeyRequirement::Any)]));

    let policy = <__PolicyOf_invoices as Policy>::POLICY;
    match policy.checks {
        [Check::ApiKeyOrJwt(KeyRequirement::AnyOf(["billing:read", "billing:admin"])), Check::RateLimit(spec)] => {
            assert!(matches!(spec.key, KeySource::Claim("tenant_id")));
        }
        other => panic!("{other:?}"),
    }

    let policy = <__PolicyOf_everything as Policy>::POLICY;
    assert!(matches!(
        policy.checks,
        [
            Check::RateLimit(_),
            Check::Jwt(KeyRequirement::AllOf(["a", "b"])),
            Check::ApiKey(KeyRequirement::Any),
            Check::RateLimit(_),
        ]
    ));
    assert_eq!(policy.body_limit, Some(1_000_000));
    assert_eq!(policy.timeout, Some(Duration::from_secs(10)));

    let _app: Router = Router::new()
        .route("/reports", get(reports))
        .route("/either", get(either))
        .route("/invoices", get(invoices))
        .route("/everything", get(everything))
        .route("/optional", get(optional));
}
