use policy_runtime::rate_limit;

#[rate_limit("5/hour", count = bogus)]
async fn failures_only() {}

#[rate_limit("5/hour", count = responses)]
async fn no_function() {}

#[rate_limit("5/hour", count = responses("server_errors"))]
async fn a_string() {}

fn main() {}
