use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("upstream failed")]
    #[api(status = 502, severity = "urgent")]
    Upstream,
}

fn main() {}
