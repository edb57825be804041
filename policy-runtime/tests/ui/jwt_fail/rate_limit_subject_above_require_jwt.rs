use policy_runtime::{rate_limit, require_jwt};

// The subject is only known after `#[require_jwt]` has run.
#[rate_limit("60/minute", key = subject)]
#[require_jwt]
async fn handler() {}

fn main() {}
