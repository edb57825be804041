//! Cost of rendering an error response with `policy_runtime::ErrorBody`, once
//! per body format (there is one today: JSON `{"error": ..., "code": ...}`).
//!
//! - `json_into_response`: a 429 body with a static message, as a response.
//! - `json_rate_limited_as_built`: the same as the rate-limit policy builds it,
//!   with the message formatted from the quota (`Too Many Requests: 1 per 1 day`).
//! - `json_to_json`: the serialisation alone.
//!
//! Each response is dropped inside the timed region. Run from the repository
//! root:
//!
//! ```text
//! cargo bench -p benchmarks --bench error_body
//! cargo run -p benchmarks --release --bin report
//! ```

use axum::http::StatusCode;
use axum::response::IntoResponse;
use criterion::{Criterion, criterion_group, criterion_main};
use policy_runtime::{ErrorBody, Quota};
use std::hint::black_box;
use std::time::Duration;

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("error_body");
    group.bench_function("json_into_response", |b| {
        b.iter(|| {
            drop(
                ErrorBody::new(
                    black_box(StatusCode::TOO_MANY_REQUESTS),
                    "RATE_LIMITED",
                    "Too Many Requests: 1 per 1 day",
                )
                .into_response(),
            )
        })
    });
    let quota = Quota::new(1, Duration::from_secs(86_400));
    group.bench_function("json_rate_limited_as_built", |b| {
        b.iter(|| {
            drop(
                ErrorBody::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    format!("Too Many Requests: {}", black_box(quota)),
                )
                .into_response(),
            )
        })
    });
    let body = ErrorBody::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "Too Many Requests: 1 per 1 day",
    );
    group.bench_function("json_to_json", |b| b.iter(|| black_box(&body).to_json()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = benchmarks::criterion();
    targets = render
}
criterion_main!(benches);
