use policy_runtime::rate_limit;

#[rate_limit(exempt, count = failures)]
async fn handler() {}

fn main() {}
