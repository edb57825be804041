use policy_runtime::rate_limit;

#[rate_limit("5/hour", policy = "login")]
async fn handler() {}

fn main() {}
