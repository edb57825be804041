//! Serves one router variant of the router benches over HTTP on 127.0.0.1,
//! for the load harness `benchmarks/http.sh`.
//!
//! ```text
//! cargo run -p benchmarks --release --example variant_server -- <variant> [port]
//! ```
//!
//! The variants are those of `benches/router_variants` (`01_bare`,
//! `02_rate_limit`, ...), served as a server runs them: with connect info,
//! on a single-threaded runtime so the server's CPU time is one core's. The
//! port defaults to 0 (an ephemeral one); the server prints the address it
//! listens on as its first line, then serves until it is stopped.

// The bench module also has what only the in-process benches use.
#[allow(dead_code)]
#[path = "../benches/router_variants/mod.rs"]
mod router_variants;

use std::io::Write;
use std::net::SocketAddr;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!(
            "usage: variant_server <variant> [port]; variants: {}",
            router_variants::NAMES.join(", ")
        );
        std::process::exit(2);
    };
    let port: u16 = match args.get(1).map(|port| port.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("the port must be a number from 0 to 65535");
            std::process::exit(2);
        }
    };
    let Some(router) = router_variants::router(name) else {
        eprintln!(
            "no served variant is named {name}; served variants: {}",
            router_variants::NAMES
                .iter()
                .filter(|name| router_variants::router(name).is_some())
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the port is free");
        let address = listener
            .local_addr()
            .expect("a bound socket has an address");
        println!("{address}");
        std::io::stdout().flush().expect("stdout is writable");
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("the server runs");
    });
}
