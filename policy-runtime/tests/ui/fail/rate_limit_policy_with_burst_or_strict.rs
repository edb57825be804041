use policy_runtime::rate_limit;

#[rate_limit(policy = "login", burst = 10)]
async fn bursty() {}

#[rate_limit(policy = "login", strict)]
async fn strict() {}

fn main() {}
