use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
#[error("not found")]
struct NotFound;

fn main() {}
