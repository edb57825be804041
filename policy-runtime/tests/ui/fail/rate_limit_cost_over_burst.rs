use policy_runtime::rate_limit;

#[rate_limit("10/minute", cost = 20)]
async fn handler() {}

fn main() {}
