//! An echo server: every byte a client sends comes straight back.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example echo_server                 # 127.0.0.1:7000
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000
//! RUST_LOG=debug cargo run --release --example echo_server  # log accepts and closes
//! ```
//!
//! Poke it from another terminal with `nc 127.0.0.1 7000`: type a line, get it
//! back; Ctrl-D ends your side and the server closes after echoing the rest.
//! `printf 'hello' | nc -N 127.0.0.1 7000` does the same in one line.
//!
//! The handler echoes without copying: it splits the received bytes off the
//! input buffer and queues them as `Bytes`. Idle clients are closed after the
//! default idle timeout (60 s). The server runs until the process is killed.

use std::net::SocketAddr;

use bytes::BytesMut;
use evloop::{Config, Conn, EventLoop, Handler};

/// Echoes whatever arrives.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let addr = parse_addr()?;
    let event_loop = EventLoop::bind(addr, Config::default(), || Echo)?;
    log::info!("echo server listening on {}", event_loop.local_addr());
    event_loop.run()
}

/// Reads `--addr HOST:PORT` (default 127.0.0.1:7000).
fn parse_addr() -> std::io::Result<SocketAddr> {
    let mut addr = String::from("127.0.0.1:7000");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                return Err(invalid(format!(
                    "usage: echo_server [--addr HOST:PORT], got {arg:?}"
                )));
            }
        }
    }
    addr.parse()
        .map_err(|e| invalid(format!("bad --addr {addr:?}: {e}")))
}

/// An `InvalidInput` error with a message.
fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}
