use policy_runtime::{rate_limit, ApiKeyId};

// No key check admits this handler's requests, so no key is known.
#[rate_limit("100/hour")]
async fn handler(key: ApiKeyId) -> String {
    key.name().to_owned()
}

// The optional form is fine.
#[rate_limit("100/hour")]
async fn optional(key: Option<ApiKeyId>) -> String {
    key.map(|key| key.name().to_owned()).unwrap_or_default()
}

fn main() {}
