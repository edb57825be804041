use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("no credit left")]
    #[api(status = 402)]
    OutOfCredit {
        #[api(extension)]
        status: u32,
        #[api(extension = "balance")]
        left: u32,
        #[api(extension = "balance")]
        right: u32,
    },
}

fn main() {}
