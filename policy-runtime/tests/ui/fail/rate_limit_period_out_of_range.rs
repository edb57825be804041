use policy_runtime::rate_limit;

#[rate_limit("1/300000 days")]
async fn forever() {}

#[rate_limit("1/day", burst = 220000)]
async fn huge_burst() {}

fn main() {}
