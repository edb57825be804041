use policy_runtime::rate_limit;

// No token is verified, so there is no subject to count by.
#[rate_limit("60/minute", key = subject)]
async fn handler() {}

// Nor claims.
#[rate_limit("60/minute", key = claim("tenant_id"))]
async fn by_claim() {}

fn main() {}
