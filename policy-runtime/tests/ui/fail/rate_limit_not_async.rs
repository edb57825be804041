use policy_runtime::rate_limit;

#[rate_limit("20/hour")]
fn handler() -> &'static str {
    "ok"
}

fn main() {}
