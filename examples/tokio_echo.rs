//! An echo server on tokio's current-thread runtime: what a Rust user would
//! most likely pick instead of evloop, and the baseline `compare` runs it as.
//!
//! One OS thread runs every connection as a task: `read` into a 16 KiB
//! buffer, `write_all` it back, until end of stream. It is the idiomatic
//! tokio echo, with TCP_NODELAY set like the other servers, and no tuning.
//! The buffer is as large as evloop's default read size, for equal system
//! calls per byte; it lives across the `await`, so every connection holds it
//! even while idle, which `compare --idle` shows (an evloop connection gets
//! its input buffer with its first data, so one that never sent any holds none).
//!
//! Run:
//!
//! ```text
//! cargo run --release --example tokio_echo                     # 127.0.0.1:7000
//! cargo run --release --example tokio_echo -- --addr 127.0.0.1:7002
//! ```
//!
//! Poke it with `printf 'hello\n' | nc -N 127.0.0.1 7000`, or load it with
//! `cargo run --release --example loadgen -- --addr 127.0.0.1:7000`.
//!
//! Limits: one thread (a multi-thread runtime would compare with several
//! evloop loops instead); accept errors such as running out of fds are
//! logged and retried after 100 ms; no idle timeout; runs until killed.
//! `--help` prints the usage; bad arguments exit with status 2, a failure
//! such as the address in use with status 1.

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::Cli;

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "tokio_echo",
    usage: "\
usage: tokio_echo [--addr HOST:PORT]

An echo server on tokio's current-thread runtime, for comparison.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:7000)
  -h, --help         print this help",
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = CLI.parse(|parser| CLI.addr_only(parser, SocketAddr::from(([127, 0, 0, 1], 7000))));
    let bound = TcpListener::bind(addr).await;
    let listener = CLI.or_fail(bound.map_err(|e| format!("cannot listen on {addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    eprintln!("tokio_echo listening on {local}");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(echo(stream));
            }
            Err(e) => {
                // EMFILE and friends: wait for fds to free up instead of spinning.
                eprintln!("tokio_echo: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Echoes one connection until the peer closes it or an error occurs.
async fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
