//! An echo server: every byte a client sends comes straight back.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example echo_server                 # 127.0.0.1:7000, one loop per core
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000 --threads 4 --balance least
//! RUST_LOG=debug cargo run --release --example echo_server  # log accepts and closes
//! ```
//!
//! Options: `--addr HOST:PORT` (default 127.0.0.1:7000), `--threads N` event
//! loops (default: one per core), `--balance reuseport|roundrobin|least`
//! (default reuseport; see `evloop::Balance`), `--model reactor|threads`
//! (default reactor; `threads` runs the same handler one OS thread per
//! connection, the baseline the comparison tools measure against).
//!
//! Poke it from another terminal with `nc 127.0.0.1 7000`: type a line, get it
//! back; Ctrl-D ends your side and the server closes after echoing the rest.
//! `printf 'hello' | nc -N 127.0.0.1 7000` does the same in one line.
//!
//! The handler echoes without copying: it splits the received bytes off the
//! input buffer and queues them as `Bytes`. Idle clients are closed after the
//! default idle timeout (60 s). Ctrl-C or SIGTERM shuts down gracefully
//! (connections get 5 s to flush); a second Ctrl-C stops at once.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use evloop::{Balance, Conn, Handler, Model, Server};

/// Echoes whatever arrives.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// Command-line options.
struct Options {
    /// Listening address.
    addr: SocketAddr,
    /// Event loops; `None` means one per core.
    threads: Option<usize>,
    /// How connections are spread over loops.
    balance: Balance,
    /// Event loops or a thread per connection.
    model: Model,
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = parse_options().unwrap_or_else(|msg| {
        eprintln!("echo_server: {msg}\n{USAGE}");
        std::process::exit(2);
    });
    let mut server = Server::new(options.addr)
        .balance(options.balance)
        .model(options.model);
    if let Some(n) = options.threads {
        server = server.threads(n);
    }
    let handle = server.start(|| Echo)?;
    handle.shutdown_on_signals(Duration::from_secs(5))?;
    match options.model {
        Model::Reactor => log::info!(
            "echo server on {} with {} loop(s)",
            handle.local_addr(),
            handle.loops()
        ),
        Model::Threads => log::info!(
            "echo server on {}, one thread per connection",
            handle.local_addr()
        ),
    }
    handle.join()?;
    log::info!("stopped; {:?}", handle.stats());
    Ok(())
}

/// Command-line synopsis.
const USAGE: &str = "usage: echo_server [--addr HOST:PORT] [--threads N] [--balance reuseport|roundrobin|least] [--model reactor|threads]";

/// Parses the command line.
fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:7000".parse().unwrap(),
        threads: None,
        balance: Balance::ReusePort,
        model: Model::Reactor,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => options.addr = value.parse().map_err(|e| format!("bad --addr {value:?}: {e}"))?,
            "--threads" => options.threads = Some(parse_threads(&value)?),
            "--balance" => options.balance = parse_balance(&value)?,
            "--model" => options.model = parse_model(&value)?,
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok(options)
}

/// A loop count of 1 or more.
fn parse_threads(value: &str) -> Result<usize, String> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "bad --threads {value:?}: expected a whole number of at least 1"
        )),
    }
}

/// An execution model by name.
fn parse_model(value: &str) -> Result<Model, String> {
    match value {
        "reactor" => Ok(Model::Reactor),
        "threads" => Ok(Model::Threads),
        _ => Err(format!("bad --model {value:?}: expected reactor or threads")),
    }
}

/// A balancing mode by name.
fn parse_balance(value: &str) -> Result<Balance, String> {
    match value {
        "reuseport" => Ok(Balance::ReusePort),
        "roundrobin" => Ok(Balance::RoundRobin),
        "least" => Ok(Balance::LeastConnections),
        _ => Err(format!(
            "bad --balance {value:?}: expected reuseport, roundrobin or least"
        )),
    }
}
