//! Two handlers giving one scope different limits: every engine build in
//! this program fails, naming the scope and both handlers. (Its own test
//! binary, since the handlers of a program are registered program-wide.)
//!
//! Before this was a build error, the two limits reset each other's state:
//! alternating the handlers admitted every request.

use policy_runtime::{Engine, rate_limit};

#[rate_limit("2/hour", scope = "shared")]
async fn a() -> &'static str {
    "a"
}

#[rate_limit("3/hour", scope = "shared")]
async fn b() -> &'static str {
    "b"
}

#[test]
fn a_scope_with_two_sets_of_limits_is_a_build_error() {
    let error = Engine::builder().build().unwrap_err();
    assert_eq!(
        error.problems(),
        [
            "rate-limit scope `shared` has different limits in `config_checks_shared_scope::a` (2 per 1 hour) \
          and `config_checks_shared_scope::b` (3 per 1 hour); give them the same limits or different scopes"
        ]
    );
}
