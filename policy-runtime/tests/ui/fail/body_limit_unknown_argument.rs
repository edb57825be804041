use policy_runtime::{body_limit, timeout};

#[body_limit("1MB", strict)]
async fn handler() {}

#[timeout("30s", "1m")]
async fn two_durations() {}

fn main() {}
