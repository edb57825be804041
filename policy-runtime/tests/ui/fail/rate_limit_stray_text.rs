use policy_runtime::rate_limit;

#[rate_limit("20/hour please")]
async fn handler() {}

fn main() {}
