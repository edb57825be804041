use policy_runtime::{rate_limit, require_jwt};

#[require_jwt]
#[rate_limit("60/minute", key = claim(""))]
async fn empty() {}

#[require_jwt]
#[rate_limit("60/minute", key = claim("tenant id"))]
async fn with_a_space() {}

#[require_jwt]
#[rate_limit("60/minute", key = claim("mandant_né"))]
async fn not_ascii() {}

fn main() {}
