use policy_runtime::rate_limit;

#[rate_limit(20)]
async fn handler() {}

fn main() {}
