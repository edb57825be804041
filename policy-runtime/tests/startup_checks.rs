//! What building an engine checks and reports, by environment: key-protected
//! handlers without keys, short and demo keys, every problem at once, and the
//! start-up table of handlers and their policies.

mod common;

use common::Logs;
use policy_runtime::{ApiKey, Engine, Environment, rate_limit, require_api_key};
use std::time::{Duration, SystemTime};

const KEY: &str = "Zx8cV1bN4mQ7wE0rT3yU";

#[require_api_key]
async fn protected() -> &'static str {
    "ok"
}

#[rate_limit("5/minute")]
#[require_api_key(scope = "admin")]
async fn admin() -> &'static str {
    "ok"
}

#[rate_limit("200/day; 50/hour", key = header("x-user"), cost = 2)]
async fn public() -> &'static str {
    "ok"
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn warnings(logs: &Logs) -> Vec<String> {
    logs.events()
        .into_iter()
        .filter(|event| event["level"] == "WARN")
        .map(|event| event["fields"]["message"].as_str().unwrap().to_owned())
        .collect()
}

const NO_KEYS: &str = "the handlers `startup_checks::admin`, `startup_checks::protected` require an API key, \
but no API key is configured; set API_KEYS, API_KEY_<N> or API_KEY_FILE, or add keys with \
`EngineBuilder::api_key` (`cargo run -p policy-keygen` prints a new key)";

#[test]
fn production_refuses_to_start_without_keys_for_protected_handlers() {
    let error = Engine::builder().build().unwrap_err();
    assert_eq!(
        error.problems(),
        [format!(
            "{NO_KEYS}; for local work without keys set ENVIRONMENT=development"
        )]
    );
    // Production is also what ENVIRONMENT says when it says nothing else.
    let error = Engine::builder()
        .from_vars(vars(&[("ENVIRONMENT", "production")]))
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 1);
}

#[test]
fn development_and_staging_start_without_keys_with_a_warning() {
    for environment in ["development", "staging"] {
        let (logs, _guard) = Logs::capture();
        let engine = Engine::builder()
            .from_vars(vars(&[("ENVIRONMENT", environment)]))
            .build()
            .unwrap();
        assert_eq!(engine.environment().name(), environment);
        assert_eq!(
            warnings(&logs),
            [format!(
                "{NO_KEYS}; until then every request to them gets 401"
            )]
        );
    }
}

#[test]
fn keys_that_are_all_revoked_or_expired_count_as_none() {
    let error = Engine::builder()
        .api_key_with(
            ApiKey::new("old", KEY).expires_at(SystemTime::now() - Duration::from_secs(5)),
        )
        .build()
        .unwrap_err();
    assert!(
        error.problems()[0].contains("but every configured API key is revoked or expired"),
        "{error}"
    );
}

#[test]
fn short_and_demo_keys_are_errors_in_production_and_warnings_elsewhere() {
    let builder = || {
        Engine::builder()
            .api_key_with(ApiKey::new("ops", KEY).scopes(["admin"]))
            .api_key("ci", "s3cr3t-x")
            .api_key("sample", "demo-key-for-local-testing-only")
    };
    let error = builder().build().unwrap_err();
    let keygen = "`cargo run -p policy-keygen` prints a new key";
    assert_eq!(
        error.problems(),
        [
            format!("API key `ci` is 8 characters long; use at least 16 ({keygen})"),
            format!(
                "API key `sample` looks like a demo or placeholder key (it begins with `demo`); \
                 demo keys are refused in production ({keygen})"
            ),
        ]
    );
    assert!(!error.to_string().contains("s3cr3t"));

    let (logs, _guard) = Logs::capture();
    builder().environment(Environment::Staging).build().unwrap();
    assert_eq!(warnings(&logs).len(), 2, "{}", logs.text());
    assert!(!logs.text().contains("s3cr3t"));
}

#[test]
fn every_problem_is_listed_at_once_naming_its_variable() {
    let error = Engine::builder()
        .api_key("empty", "")
        .api_key("ci", "short")
        .from_vars(vars(&[
            ("ENVIRONMENT", "prod"),
            ("API_KEYS", ":nameless-key-0123456789"),
            ("API_KEY_FILE", "/nonexistent/keys"),
            ("RATELIMIT_DEFAULT", "5/fortnight"),
        ]))
        .build()
        .unwrap_err();
    let problems = error.problems();
    assert_eq!(problems.len(), 5, "{error}");
    assert!(problems[0].starts_with("API key `empty` is empty"));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("API_KEYS (entry 1): "))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("API_KEY_FILE: cannot read the key file /nonexistent/keys"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("RATELIMIT_DEFAULT: "))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("API key `ci` is 5 characters long"))
    );
}

#[test]
fn the_built_engine_logs_a_table_of_handlers_and_their_policies() {
    let (logs, _guard) = Logs::capture();
    Engine::builder()
        .api_key_with(ApiKey::new("ops", KEY).scopes(["admin"]))
        .build()
        .unwrap();
    let events: Vec<serde_json::Value> = logs
        .events()
        .into_iter()
        .filter(|event| event["level"] == "INFO")
        .collect();
    assert_eq!(events.len(), 4, "{}", logs.text());
    let summary = &events[0]["fields"];
    assert_eq!(summary["message"], "policy engine built");
    assert_eq!(summary["environment"], "production");
    assert_eq!(summary["handlers"], 3);
    assert_eq!(summary["api_keys"], 1);
    assert_eq!(
        summary["lockout"],
        "5 failures within 1800s lock a client out for 1800s"
    );
    assert_eq!(summary["max_body_size"], "none");
    assert_eq!(summary["request_timeout"], "none");
    let table: Vec<(&str, &str)> = events[1..]
        .iter()
        .map(|event| {
            assert_eq!(event["fields"]["message"], "handler policy");
            (
                event["fields"]["handler"].as_str().unwrap(),
                event["fields"]["policies"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        table,
        [
            (
                "startup_checks::admin",
                "rate_limit 5 per 1 minute per client ip -> api_key requiring the scope `admin`"
            ),
            (
                "startup_checks::protected",
                "api_key requiring any valid key"
            ),
            (
                "startup_checks::public",
                "rate_limit 200 per 1 day; 50 per 1 hour per header `x-user` cost 2"
            ),
        ]
    );
}
