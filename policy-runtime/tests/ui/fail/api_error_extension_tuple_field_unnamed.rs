use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("no credit left: {0}")]
    #[api(status = 402)]
    OutOfCredit(#[api(extension)] u32),
}

fn main() {}
