use policy_runtime::require_jwt;

#[require_jwt(admin)]
async fn handler() {}

#[require_jwt(or_api_key, or_api_key)]
async fn flag_twice() {}

fn main() {}
