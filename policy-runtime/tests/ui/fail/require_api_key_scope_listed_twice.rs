use policy_runtime::require_api_key;

#[require_api_key(scope = all("read", "write", "read"))]
async fn handler() {}

fn main() {}
