use policy_runtime::require_api_key;

#[require_api_key(admin)]
async fn handler() {}

fn main() {}
