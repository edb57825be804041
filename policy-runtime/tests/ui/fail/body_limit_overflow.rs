use policy_runtime::body_limit;

#[body_limit("99999999999999999999B")]
async fn handler() {}

fn main() {}
