use policy_runtime::rate_limit;

// Python's `limits` refuses this string too: there is no `decade`.
#[rate_limit("1 per decade")]
async fn handler() {}

#[rate_limit("1/second | 2 per millienium")]
async fn other() {}

fn main() {}
