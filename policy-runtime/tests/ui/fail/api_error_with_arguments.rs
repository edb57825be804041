use policy_runtime::api_error;

#[api_error(status = 500)]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("not found")]
    #[api(status = 404)]
    NotFound,
}

fn main() {}
