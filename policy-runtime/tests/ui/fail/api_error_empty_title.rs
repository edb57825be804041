use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("no credit left")]
    #[api(status = 402, title = " ", category = "")]
    OutOfCredit,
}

fn main() {}
