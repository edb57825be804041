use policy_runtime::require_api_key;

#[require_api_key(roles = "admin")]
async fn handler() {}

fn main() {}
