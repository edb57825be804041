//! Instructions per request of each router variant, counted by callgrind.
//!
//! Wall-clock figures on a shared machine move by tens of percent; an
//! instruction count does not move at all for the same binary and input, so
//! it shows what a change to the hot path saved, whatever else the machine is
//! doing. The bench serves `N` prepared requests through one variant, and
//! callgrind counts only the function that serves them (`serve_all`), so the
//! figure is that count divided by `N`. `benchmarks/instructions.sh` does
//! that for every variant:
//!
//! ```text
//! benchmarks/instructions.sh          # needs valgrind
//! ```
//!
//! Run by hand: `cargo bench -p benchmarks --bench router_instructions --
//! <variant> <N>`; without valgrind it only serves the requests.

mod router_variants;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use router_variants::{Visit, request, serve};
use std::convert::Infallible;
use tower::Service;

struct Counted {
    wanted: String,
    requests: usize,
    found: bool,
}

impl Visit for Counted {
    fn variant<S>(&mut self, name: &str, mut router: S, expected: StatusCode)
    where
        S: Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        if name != self.wanted {
            return;
        }
        self.found = true;
        // Two warm-up requests: the first of a route is admitted even on the
        // rejected variant, and the second is checked against `expected`.
        serve(&mut router, request());
        let response = serve(&mut router, request());
        assert_eq!(response.status(), expected, "variant {name}");
        let requests: Vec<Request<Body>> = (0..self.requests).map(|_| request()).collect();
        let answered = serve_all(&mut router, requests, expected);
        assert_eq!(answered, self.requests, "variant {name}");
    }
}

/// The counted region (callgrind's `--toggle-collect=*serve_all*`): serves
/// each request and drops its response, as the criterion bench does, and
/// returns how many were answered with `expected`.
#[inline(never)]
fn serve_all<S>(router: &mut S, requests: Vec<Request<Body>>, expected: StatusCode) -> usize
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let mut answered = 0;
    for request in requests {
        answered += usize::from(serve(router, request).status() == expected);
    }
    answered
}

fn main() {
    // `cargo bench` passes `--bench`; the bench's own arguments come after it.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let (Some(wanted), Some(requests)) = (args.first(), args.get(1)) else {
        eprintln!("usage: router_instructions <variant> <requests>");
        return;
    };
    let mut counted = Counted {
        wanted: wanted.clone(),
        requests: requests.parse().expect("<requests> is a number"),
        found: false,
    };
    router_variants::each(&mut counted);
    assert!(counted.found, "no variant is named {wanted}");
}
