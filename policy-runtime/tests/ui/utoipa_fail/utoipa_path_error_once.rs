//! A mistake in a `#[utoipa::path]` below the policy attributes is one
//! error, on the user's token: utoipa reads the attribute once.
use policy_runtime::rate_limit;

#[rate_limit("20/hour")]
#[utoipa::path(get, path = "/notes", responses((status = 200, body = NoSuchType)))]
pub async fn notes() -> &'static str {
    "notes"
}

fn main() {}
