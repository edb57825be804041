use policy_runtime::rate_limit;

#[rate_limit("")]
async fn handler() {}

fn main() {}
