use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("invalid input")]
    #[api(status = 422)]
    Invalid {
        #[api(errors)]
        problems: Vec<String>,
    },
}

fn main() {}
