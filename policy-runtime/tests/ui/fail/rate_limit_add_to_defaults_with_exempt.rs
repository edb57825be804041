use policy_runtime::rate_limit;

#[rate_limit(exempt, add_to_defaults)]
async fn handler() {}

fn main() {}
