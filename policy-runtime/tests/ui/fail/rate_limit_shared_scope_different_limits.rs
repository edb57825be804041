use policy_runtime::rate_limit;

#[rate_limit("2/hour", scope = "shared")]
#[rate_limit("3/hour", scope = "shared")]
async fn handler() {}

#[rate_limit("5/minute", scope = "bursty")]
#[rate_limit("5/minute", burst = 10, scope = "bursty")]
async fn burst_differs() {}

#[rate_limit("5/hour", scope = "strict")]
#[rate_limit("5/hour", strict, scope = "strict")]
async fn strictness_differs() {}

// The cost may differ: one budget, spent at different rates.
#[rate_limit("10/hour", scope = "budget")]
#[rate_limit("10/hour", cost = 2, scope = "budget")]
async fn cost_differs() {}

fn main() {}
