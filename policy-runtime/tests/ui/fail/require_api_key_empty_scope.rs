use policy_runtime::require_api_key;

#[require_api_key(scope = "")]
async fn handler() {}

fn main() {}
