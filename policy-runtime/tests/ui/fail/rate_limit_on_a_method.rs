use policy_runtime::rate_limit;

struct Api;

impl Api {
    #[rate_limit("20/hour")]
    async fn handler(&self) {}
}

fn main() {}
