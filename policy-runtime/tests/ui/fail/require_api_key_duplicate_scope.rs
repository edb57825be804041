use policy_runtime::require_api_key;

#[require_api_key(scope = "read", scope = "write")]
async fn handler() {}

fn main() {}
