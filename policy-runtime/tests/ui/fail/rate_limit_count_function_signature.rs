use policy_runtime::rate_limit;

fn server_errors(status: u16) -> bool {
    status >= 500
}

#[rate_limit("5/hour", count = responses(server_errors))]
async fn handler() {}

fn main() {}
