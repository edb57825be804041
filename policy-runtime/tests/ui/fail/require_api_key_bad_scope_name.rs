use policy_runtime::require_api_key;

#[require_api_key(scope = any("read", "read write"))]
async fn handler() {}

fn main() {}
