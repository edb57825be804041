use policy_runtime::require_api_key;

#[require_api_key(scope = any(read))]
async fn handler() {}

fn main() {}
