//! Hello world over HTTP/1.1: `evloop::http` answering every request with
//! `Hello world!`, one event loop per core (or `--threads N`).
//!
//! Run it:
//!
//! ```text
//! RUST_LOG=debug cargo run --release --example hello_http [-- --addr 127.0.0.1:3000 --threads 1 --nodelay off]
//! ```
//!
//! then, from another terminal:
//!
//! ```text
//! curl -v http://127.0.0.1:3000/
//! wrk -t1 -c64 -d5s http://127.0.0.1:3000/
//! cargo run --release --example loadgen -- --addr 127.0.0.1:3000 --http / --depth 16
//! ```
//!
//! Ctrl-C stops it (responses in flight get five seconds). Limits: it
//! answers every method and path alike; bad arguments exit with status 2.

#[cfg(feature = "http")]
fn main() -> std::io::Result<()> {
    use std::net::ToSocketAddrs;
    use std::time::Duration;

    use evloop::http::{HttpServer, Request, Response};

    const USAGE: &str = "usage: hello_http [--addr HOST:PORT] [--threads N] [--nodelay on|off]
defaults: --addr 127.0.0.1:3000, --threads one per core, --nodelay on
(--nodelay off leaves Nagle's algorithm on, as servers that never set TCP_NODELAY do)";
    let usage = |msg: String| -> ! {
        eprintln!("hello_http: {msg}\n{USAGE}");
        std::process::exit(2)
    };
    let (mut addr, mut threads, mut nodelay) = ("127.0.0.1:3000".to_string(), None, true);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(format!("{flag} needs a value")));
        match flag.as_str() {
            "--addr" => addr = value,
            "--threads" => match value.parse::<usize>() {
                Ok(n) if n > 0 => threads = Some(n),
                _ => usage(format!("bad value {value:?} for --threads")),
            },
            "--nodelay" => match value.as_str() {
                "on" => nodelay = true,
                "off" => nodelay = false,
                _ => usage(format!("bad value {value:?} for --nodelay")),
            },
            _ => usage(format!("unknown argument {flag:?}")),
        }
    }
    let addr = (addr.to_socket_addrs().ok().and_then(|mut a| a.next()))
        .unwrap_or_else(|| usage(format!("cannot resolve --addr {addr:?}")));

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut server = HttpServer::new(addr).config(evloop::Config::default().nodelay(nodelay));
    if let Some(n) = threads {
        server = server.threads(n);
    }
    let server = server.start(|_req: &Request| Response::text("Hello world!"))?;
    log::info!("serving http://{}/", server.local_addr());
    // As `evloop::http::serve`: five seconds for responses in flight on the
    // first signal, a second one stops at once.
    server.shutdown_on_signals(Duration::from_secs(5))?;
    server.join()
}

#[cfg(not(feature = "http"))]
fn main() {
    eprintln!("hello_http needs the `http` feature (on by default)");
}
