use policy_runtime::body_limit;

#[body_limit("10XB")]
async fn handler() {}

fn main() {}
