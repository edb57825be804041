use policy_runtime::api_error;

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("moved")]
    #[api(status = 302)]
    Moved,
    #[error("broken")]
    #[api(status = 600)]
    Broken,
}

fn main() {}
