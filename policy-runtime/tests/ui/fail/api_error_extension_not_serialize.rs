use policy_runtime::api_error;

#[derive(Debug)]
struct Account;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("account locked")]
    #[api(status = 423)]
    Locked {
        #[api(extension)]
        account: Account,
    },
}

fn main() {}
