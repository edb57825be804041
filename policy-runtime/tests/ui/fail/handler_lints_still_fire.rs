#![deny(unused_variables)]

use policy_runtime::rate_limit;

#[rate_limit("20/hour")]
async fn handler() -> &'static str {
    let forgotten = 1;
    "ok"
}

fn main() {}
