use policy_runtime::timeout;

#[timeout("1 fortnight")]
async fn handler() {}

fn main() {}
