use policy_runtime::rate_limit;

// `default:` scopes belong to the engine's default limits.
#[rate_limit("100/hour", scope = "default:/search")]
async fn handler() {}

fn main() {}
