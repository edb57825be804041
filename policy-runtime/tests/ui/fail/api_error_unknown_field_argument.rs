use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("user {id} not found")]
    #[api(status = 404)]
    UserNotFound {
        #[api(detail)]
        id: u64,
    },
}

fn main() {}
