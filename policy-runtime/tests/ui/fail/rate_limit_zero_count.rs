use policy_runtime::rate_limit;

#[rate_limit("0/hour")]
async fn handler() {}

fn main() {}
