use policy_runtime::rate_limit;

#[rate_limit("5/hour", on_missing = ip)]
async fn handler() {}

fn main() {}
