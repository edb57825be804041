use policy_runtime::rate_limit;

#[rate_limit("5/hour", key = header("x user id"))]
async fn handler() {}

fn main() {}
