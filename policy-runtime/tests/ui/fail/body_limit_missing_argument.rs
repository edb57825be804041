use policy_runtime::{body_limit, rate_limit, timeout};

#[body_limit]
async fn handler() {}

// The same when stacked below another policy.
#[rate_limit("10/minute")]
#[timeout()]
async fn stacked() {}

fn main() {}
