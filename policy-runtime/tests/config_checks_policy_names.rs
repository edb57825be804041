//! Two handlers naming policies that share one environment variable: every
//! engine build in this program fails, naming both policies and the
//! variable. (Its own test binary, since the handlers of a program are
//! registered program-wide.)

use policy_runtime::{Engine, rate_limit};

#[rate_limit(policy = "login-a")]
async fn dashed() -> &'static str {
    "-"
}

#[rate_limit(policy = "login_a")]
async fn underscored() -> &'static str {
    "_"
}

#[test]
fn policy_names_sharing_a_variable_are_a_build_error() {
    let error = Engine::builder()
        .policy("login-a", "5/hour")
        .policy("login_a", "5/hour")
        .build()
        .unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "the rate-limit policies `login-a` and `login_a` are both read from the environment variable \
          POLICY_LIMIT_LOGIN_A, so one setting would change both; rename them so that each has its own variable"
        ]
    );
    // Whether the variable is set or not.
    let error = Engine::builder()
        .from_vars([("POLICY_LIMIT_LOGIN_A".to_string(), "5/hour".to_string())])
        .build()
        .unwrap_err();
    assert_eq!(error.problems().len(), 1, "{:?}", error.problems());
}
