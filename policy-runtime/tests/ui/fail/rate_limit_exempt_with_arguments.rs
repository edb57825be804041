use policy_runtime::rate_limit;

#[rate_limit(exempt, burst = 5)]
async fn handler() {}

fn main() {}
