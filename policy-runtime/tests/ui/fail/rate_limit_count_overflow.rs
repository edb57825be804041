use policy_runtime::rate_limit;

#[rate_limit("4294967296/hour")]
async fn handler() {}

fn main() {}
