use policy_runtime::{body_limit, rate_limit, timeout};

#[body_limit("1MB")]
#[body_limit("2MB")]
async fn handler() {}

// Also when other policies sit between them.
#[timeout("30s")]
#[rate_limit("10/minute")]
#[timeout("1m")]
async fn twice_apart() {}

fn main() {}
