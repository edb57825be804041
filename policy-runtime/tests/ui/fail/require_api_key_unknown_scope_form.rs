use policy_runtime::require_api_key;

#[require_api_key(scope = some("read"))]
async fn handler() {}

fn main() {}
