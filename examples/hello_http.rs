//! Hello world over HTTP/1.1: `evloop::http` answering every request with
//! `Hello world!`, one event loop per core.
//!
//! Run it:
//!
//! ```text
//! RUST_LOG=debug cargo run --release --example hello_http
//! ```
//!
//! then, from another terminal:
//!
//! ```text
//! curl -v http://127.0.0.1:3000/
//! wrk -t1 -c64 -d5s http://127.0.0.1:3000/
//! ```
//!
//! Ctrl-C stops it (responses in flight get five seconds). Limits: it
//! listens on 127.0.0.1 only, and answers every method and path alike.

#[cfg(feature = "http")]
fn main() -> std::io::Result<()> {
    use evloop::http::{Request, Response};

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    log::info!("serving http://127.0.0.1:3000/");
    evloop::http::serve("127.0.0.1:3000", |_req: &Request| Response::text("Hello world!"))
}

#[cfg(not(feature = "http"))]
fn main() {
    eprintln!("hello_http needs the `http` feature (on by default)");
}
