use policy_runtime::{rate_limit, require_api_key};

// A bad limit, a stacked bad limit and a missing `async`: three errors, one run.
#[rate_limit("5/eon")]
#[require_api_key]
#[rate_limit("zero/hour")]
fn handler() {}

fn main() {}
