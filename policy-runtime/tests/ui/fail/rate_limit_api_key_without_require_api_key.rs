use policy_runtime::{rate_limit, require_api_key};

// The key is only known after `#[require_api_key]` has run.
#[rate_limit("100/hour", key = api_key)]
#[require_api_key]
async fn handler() {}

fn main() {}
