use policy_runtime::rate_limit;

#[rate_limit("20/hour", burts = 5)]
async fn handler() {}

fn main() {}
