use policy_runtime::rate_limit;

#[rate_limit("5/hour", burst = 5, burst = 6)]
async fn handler() {}

fn main() {}
