use policy_runtime::api_error;

#[api_error]
#[derive(Debug)]
enum AppError {
    #[api(status = 404)]
    NotFound,
}

fn main() {}
