use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("not found")]
    #[api(status = 404, status = 410)]
    NotFound,
}

fn main() {}
