use policy_runtime::rate_limit;

#[rate_limit("5/hour", strict, burst = 10)]
async fn handler() {}

fn main() {}
