use policy_runtime::{rate_limit, require_api_key, Claims};

// No JWT check admits this handler's requests, so no token is known.
#[rate_limit("100/hour")]
async fn handler(Claims(claims): Claims) -> String {
    claims.sub.unwrap_or_default()
}

// An API key is not a token either.
#[require_api_key]
async fn with_a_key(claims: policy_runtime::Claims<serde_json::Value>) -> String {
    claims.0.to_string()
}

// The optional form is fine.
#[rate_limit("100/hour")]
async fn optional(claims: Option<Claims>) -> String {
    claims.and_then(|claims| claims.0.sub).unwrap_or_default()
}

fn main() {}
