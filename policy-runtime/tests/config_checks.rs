//! What building an engine checks across handlers, once named policies are
//! known: a scope shared by named policies must get one set of limits, a
//! handler's cost must fit its named policy, and two policy names must not
//! share a `POLICY_LIMIT_<NAME>` variable.
//!
//! Every engine built in this binary defines every policy its handlers use,
//! with limits that fit, unless a test means it to fail. Handlers that would
//! make every build fail have their own binaries
//! (`config_checks_shared_scope.rs`, `config_checks_policy_names.rs`).

mod common;

use axum::Router;
use axum::routing::get;
use common::{from, send};
use policy_runtime::{Engine, EngineBuilder, rate_limit};

/// One budget, spent at different rates: the same limits, different costs.
#[rate_limit("4/hour", scope = "budget")]
async fn search() -> &'static str {
    "found"
}

#[rate_limit("4/hour", cost = 2, scope = "budget")]
async fn export() -> &'static str {
    "exported"
}

#[rate_limit(policy = "tier", scope = "tiered")]
async fn tier_a() -> &'static str {
    "a"
}

#[rate_limit(policy = "tier-b", scope = "tiered")]
async fn tier_b() -> &'static str {
    "b"
}

#[rate_limit(policy = "bulk", cost = 3)]
async fn bulk() -> &'static str {
    "done"
}

#[rate_limit(policy = "report-daily")]
async fn report() -> &'static str {
    "report"
}

/// Every policy defined, with limits that agree and fit.
fn builder() -> EngineBuilder {
    Engine::builder()
        .policy("tier", "2/hour")
        .policy("tier-b", "2/hour")
        .policy("bulk", "6/hour")
        .policy("report-daily", "1/day")
}

fn problems(builder: EngineBuilder) -> Vec<String> {
    builder.build().unwrap_err().problems().to_vec()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn a_shared_scope_with_one_set_of_limits_may_differ_in_cost() {
    let engine = builder().build().unwrap();
    let app = Router::new()
        .route("/search", get(search))
        .route("/export", get(export))
        .layer(engine);
    let status = |uri: &'static str| {
        let app = app.clone();
        async move {
            let request = from("192.0.2.1", "GET", uri)
                .body(axum::body::Body::empty())
                .unwrap();
            send(&app, request).await.status.as_u16()
        }
    };
    // 1 + 2 of the 4 requests the scope admits, then 1 more; then none.
    assert_eq!(status("/search").await, 200);
    assert_eq!(status("/export").await, 200);
    assert_eq!(status("/export").await, 429);
    assert_eq!(status("/search").await, 200);
    assert_eq!(status("/search").await, 429);
}

#[test]
fn named_policies_sharing_a_scope_must_resolve_to_the_same_limits() {
    assert_eq!(
        problems(builder().policy("tier-b", "3/hour")),
        [
            "rate-limit scope `tiered` has different limits in `config_checks::tier_a` (policy `tier`: 2 per 1 hour) \
          and `config_checks::tier_b` (policy `tier-b`: 3 per 1 hour); give them the same limits or different scopes"
        ]
    );
    // Also when the limits come from the environment.
    let error = builder()
        .from_vars(vars(&[("POLICY_LIMIT_TIER", "2/minute")]))
        .build();
    // The builder's definition wins over the environment's, so these agree.
    assert!(error.is_ok(), "{error:?}");
    let error = Engine::builder()
        .policy("bulk", "6/hour")
        .policy("report-daily", "1/day")
        .from_vars(vars(&[
            ("POLICY_LIMIT_TIER", "2/minute"),
            ("POLICY_LIMIT_TIER_B", "2/hour"),
        ]))
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "rate-limit scope `tiered` has different limits in `config_checks::tier_a` (policy `tier`: 2 per 1 minute) \
          and `config_checks::tier_b` (policy `tier-b`: 2 per 1 hour); give them the same limits or different scopes"
        ]
    );
}

#[test]
fn a_cost_over_the_count_of_a_named_policy_is_a_build_error() {
    let expected = "`config_checks::bulk` has `cost = 3`, more than the 2 requests the rate-limit policy `bulk` \
                    admits at once (2 per 1 hour), so every request would be refused; lower the cost or raise \
                    the policy's count to at least 3";
    assert_eq!(problems(builder().policy("bulk", "2/hour")), [expected]);
    // Every quota of the policy must fit the cost.
    assert_eq!(
        problems(builder().policy("bulk", "100/day; 2/hour")),
        [expected]
    );
    let from_env = Engine::builder()
        .policy("tier", "2/hour")
        .policy("tier-b", "2/hour")
        .policy("report-daily", "1/day")
        .from_vars(vars(&[("POLICY_LIMIT_BULK", "2/hour")]));
    assert_eq!(problems(from_env), [expected]);
    // A count of exactly the cost admits one request at a time.
    assert!(builder().policy("bulk", "3/hour").build().is_ok());
}

#[test]
fn two_policy_names_read_from_one_variable_are_a_build_error() {
    assert_eq!(
        problems(builder().policy("report_daily", "1/day")),
        [
            "the rate-limit policies `report-daily` and `report_daily` are both read from the environment variable \
          POLICY_LIMIT_REPORT_DAILY, so one setting would change both; rename them so that each has its own variable"
        ]
    );
    // A name no handler uses and no builder defines is no collision.
    assert!(builder().policy("unrelated", "1/day").build().is_ok());
}
