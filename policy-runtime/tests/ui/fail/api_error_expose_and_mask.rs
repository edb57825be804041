use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("quota exhausted")]
    #[api(status = 503, expose, mask)]
    Exhausted,
}

fn main() {}
