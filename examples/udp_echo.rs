//! A UDP echo server: every datagram comes straight back to its sender.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example udp_echo                      # 127.0.0.1:7001, one loop per core
//! cargo run --release --example udp_echo -- --addr 127.0.0.1:9001 --threads 2 --pin
//! ```
//!
//! Poke it from another terminal with `nc -u 127.0.0.1 7001` (type a line,
//! get it back), or load it with
//! `cargo run --release --example loadgen -- --udp --addr 127.0.0.1:7001 --rate 100000`.
//!
//! Options (`--help` lists them): `--addr HOST:PORT` (default
//! 127.0.0.1:7001), `--threads N` loops, each with its own socket on the
//! address through `SO_REUSEPORT` (default: one per core), `--batch N`
//! datagrams per `recvmmsg` (default 32; 1 turns batching off), `--pin` to
//! pin loop i to the i-th CPU this process may use (Linux). Bad arguments
//! exit with status 2, a failure to start (the address in use) with 1.
//!
//! Ctrl-C or SIGTERM stops it; on the way out it logs its counters
//! (`evloop::udp::UdpStats`), system calls per datagram among them.
//! Limits: datagrams longer than 65,507 bytes cannot be sent over IPv4
//! anyway; nothing is logged per datagram.

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;

use evloop::Pin;
use evloop::udp::{DatagramHandler, UdpConfig, UdpServer, UdpSock};

use crate::cli::{Arg, Cli, Error, Parser};

/// Echoes every datagram.
struct Echo;

impl DatagramHandler for Echo {
    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
        // A full send queue drops the echo, as a lost datagram would be.
        let _ = sock.send_to(data, from);
    }
}

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "udp_echo",
    usage: "\
usage: udp_echo [--addr HOST:PORT] [--threads N] [--batch N] [--pin]

A UDP echo server: every datagram comes back to its sender.

options:
  --addr HOST:PORT   where to bind (default 127.0.0.1:7001)
  --threads N        loops, each with its own SO_REUSEPORT socket
                     (default: one per core)
  --batch N          datagrams per receive call, 1 to 1024 (default 32)
  --pin              pin loop i to the i-th CPU this process may use (Linux)
  -h, --help         print this help

Try it: nc -u 127.0.0.1 7001
Ctrl-C stops it and logs its counters.",
};

/// Command-line options.
struct Options {
    /// Where to bind.
    addr: SocketAddr,
    /// Loops; `None`: one per core.
    threads: Option<usize>,
    /// Datagrams per receive call.
    batch: usize,
    /// Pin each loop to a CPU.
    pin: bool,
}

fn main() {
    let options = CLI.parse(parse_options);
    cli::init_logging();
    CLI.or_fail(serve(&options));
}

/// Serves until a signal stops it.
fn serve(options: &Options) -> Result<(), String> {
    let addr = options.addr;
    let mut server = UdpServer::new(addr).config(UdpConfig::default().batch(options.batch));
    if let Some(n) = options.threads {
        server = server.threads(n);
    }
    if options.pin {
        server = server.pin(Pin::Allowed);
    }
    let handle = server
        .start(|| Echo)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    (handle.shutdown_on_signals()).map_err(|e| format!("cannot catch Ctrl-C and SIGTERM: {e}"))?;
    log::info!(
        "udp echo on {} with {} loop(s)",
        handle.local_addr(),
        handle.loops()
    );
    let stopped = handle.join();
    log::info!("stopped: {}", handle.stats());
    stopped.map_err(|e| format!("the server on {addr} failed: {e}"))
}

/// Parses the command line.
fn parse_options(parser: &mut Parser) -> Result<Options, Error> {
    let mut options = Options {
        addr: "127.0.0.1:7001".parse().unwrap(),
        threads: None,
        batch: 32,
        pin: false,
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => options.addr = cli::addr(parser, "--addr")?,
            Arg::Long("threads") => options.threads = Some(cli::count(parser, "--threads")?),
            Arg::Long("batch") => match cli::count(parser, "--batch")? {
                n @ 1..=1024 => options.batch = n,
                n => return Err(cli::bad(format!("bad --batch {n}: expected 1 to 1024"))),
            },
            Arg::Long("pin") => options.pin = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(options)
}
