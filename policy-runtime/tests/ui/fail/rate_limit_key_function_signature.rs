use policy_runtime::rate_limit;

fn tenant(_parts: &axum::http::request::Parts) -> String {
    "tenant".into()
}

#[rate_limit("5/hour", key = tenant)]
async fn handler() {}

fn main() {}
