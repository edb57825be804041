use policy_runtime::{rate_limit, require_jwt};

#[require_jwt]
#[rate_limit("60/minute")]
#[require_jwt(or_api_key)]
async fn handler() {}

fn main() {}
