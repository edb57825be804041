use policy_runtime::{rate_limit, timeout};

#[timeout("25h")]
async fn handler() {}

// The same when stacked below another policy.
#[rate_limit("10/minute")]
#[timeout("86401 seconds")]
async fn stacked() {}

fn main() {}
