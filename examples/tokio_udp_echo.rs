//! A UDP echo server on tokio's current-thread runtime: what a Rust user
//! would most likely write instead of `udp_echo`, for comparison.
//!
//! One task on one OS thread: `recv_from` into a 64 KiB buffer, `send_to`
//! the datagram back, forever. tokio makes one system call per datagram
//! each way (plus the poller's waits); it is the idiomatic tokio UDP echo,
//! with no tuning.
//!
//! Run:
//!
//! ```text
//! cargo run --release --example tokio_udp_echo                     # 127.0.0.1:7001
//! cargo run --release --example tokio_udp_echo -- --addr 127.0.0.1:7002
//! ```
//!
//! Poke it with `nc -u 127.0.0.1 7001`, or load it with
//! `cargo run --release --example loadgen -- --udp --addr 127.0.0.1:7001 --rate 100000`.
//!
//! Limits: one thread; a send error is printed and the datagram dropped;
//! runs until killed. `--help` prints the usage; bad arguments exit with
//! status 2, a failure such as the address in use with status 1.

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::cli::Cli;

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "tokio_udp_echo",
    usage: "\
usage: tokio_udp_echo [--addr HOST:PORT]

A UDP echo server on tokio's current-thread runtime, for comparison.

options:
  --addr HOST:PORT   where to bind (default 127.0.0.1:7001)
  -h, --help         print this help",
};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = CLI.parse(|parser| CLI.addr_only(parser, SocketAddr::from(([127, 0, 0, 1], 7001))));
    let bound = UdpSocket::bind(addr).await;
    let socket = CLI.or_fail(bound.map_err(|e| format!("cannot listen on {addr}: {e}")));
    eprintln!("tokio_udp_echo on {}", socket.local_addr().unwrap_or(addr));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if let Err(e) = socket.send_to(&buf[..n], from).await {
                    eprintln!("tokio_udp_echo: send to {from}: {e}");
                }
            }
            Err(e) => eprintln!("tokio_udp_echo: recv: {e}"),
        }
    }
}
