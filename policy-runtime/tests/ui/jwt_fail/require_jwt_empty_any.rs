use policy_runtime::require_jwt;

#[require_jwt(scope = any())]
async fn handler() {}

#[require_jwt(scope = all("reports read"), or_api_key)]
async fn bad_scope_name() {}

fn main() {}
