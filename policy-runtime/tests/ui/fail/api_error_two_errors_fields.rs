use policy_runtime::{api_error, FieldError};

#[api_error]
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("invalid input")]
    #[api(status = 422)]
    Invalid {
        #[api(errors)]
        body: Vec<FieldError>,
        #[api(errors)]
        query: Vec<FieldError>,
    },
}

fn main() {}
