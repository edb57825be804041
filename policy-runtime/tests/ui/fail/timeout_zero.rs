use policy_runtime::timeout;

#[timeout("0s")]
async fn handler() {}

fn main() {}
