use policy_runtime::timeout;

#[timeout(30)]
async fn handler() {}

fn main() {}
