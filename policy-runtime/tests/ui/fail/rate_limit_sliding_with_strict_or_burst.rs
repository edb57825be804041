use policy_runtime::rate_limit;

#[rate_limit("10000/hour", sliding, strict)]
async fn both() {}

#[rate_limit("10000/hour", sliding, burst = 20000)]
async fn bursty() {}

#[rate_limit(policy = "search", sliding)]
async fn named() {}

#[rate_limit(exempt, sliding)]
async fn exempt() {}

fn main() {}
