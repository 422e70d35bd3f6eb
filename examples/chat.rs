//! A line-based chat room: each line a client sends goes to every other
//! client, whichever event loop serves them.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example chat                       # 127.0.0.1:7001, one loop per core
//! cargo run --release --example chat -- --addr 127.0.0.1:9001 --threads 4
//! ```
//!
//! Try it with several terminals, each running `nc 127.0.0.1 7001`: type a
//! line in one and it appears in all the others, prefixed with the sender's
//! connection id (`loop.slot.generation`). Clients are spread over the loops by
//! least-connections balancing; lines cross loops through `Remote`, so the
//! room is one process sharing one member list, not a process per core.
//!
//! Limits: lines over 64 KiB close the sender's connection (input limit);
//! silent members are closed after 10 minutes (idle timeout); a member that
//! never reads gets an unbounded backlog (this example sets no cap on what
//! others send it). Ctrl-C shuts down. `--help` lists the options; bad
//! arguments exit with status 2, a failure to start with status 1.

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use evloop::{Balance, CloseReason, Config, Conn, ConnId, Handler, Server};

use crate::cli::{Arg, Cli, Error, Parser};

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "chat",
    usage: "\
usage: chat [--addr HOST:PORT] [--threads N]

A line-based chat room: each line a client sends goes to every other client.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:7001)
  --threads N        event loops (default: one per core)
  -h, --help         print this help

Try it from several terminals: nc 127.0.0.1 7001",
};

/// Everyone in the room.
type Members = Arc<Mutex<HashSet<ConnId>>>;

/// One member's connection.
struct Member {
    /// The room.
    members: Members,
    /// This member's id, once open.
    id: Option<ConnId>,
}

impl Handler for Member {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.id = Some(conn.id());
        self.members.lock().unwrap().insert(conn.id());
        conn.write(format!("welcome, you are {}\n", conn.id()).as_bytes());
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            let line = input.split_to(end + 1);
            let mut message = BytesMut::with_capacity(line.len() + 16);
            message.put_slice(format!("[{}] ", conn.id()).as_bytes());
            message.put_slice(&line);
            let message = message.freeze();
            let Some(remote) = conn.remote() else { return };
            let others: Vec<ConnId> = self
                .members
                .lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|&id| id != conn.id())
                .collect();
            for id in others {
                // A member that left meanwhile is simply skipped.
                let _ = remote.write(id, message.clone());
            }
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        if let Some(id) = self.id {
            self.members.lock().unwrap().remove(&id);
            log::info!("{id} left ({reason})");
        }
    }
}

fn main() {
    let (addr, threads) = CLI.parse(parse_args);
    cli::init_logging();
    CLI.or_fail(serve(addr, threads));
}

/// Runs the room until a signal stops it.
fn serve(addr: SocketAddr, threads: Option<usize>) -> Result<(), String> {
    let members = Members::default();
    let config = Config::default()
        .max_input(64 * 1024)
        .idle_timeout(Some(Duration::from_secs(600)));
    let mut server = Server::new(addr)
        .balance(Balance::LeastConnections)
        .config(config);
    if let Some(n) = threads {
        server = server.threads(n);
    }
    let handle = server
        .start(move || Member {
            members: Arc::clone(&members),
            id: None,
        })
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    (handle.shutdown_on_signals(Duration::from_secs(2)))
        .map_err(|e| format!("cannot catch Ctrl-C and SIGTERM: {e}"))?;
    log::info!(
        "chat room on {} with {} loop(s)",
        handle.local_addr(),
        handle.loops()
    );
    let stopped = handle.join();
    log::info!("stopped: {}", handle.stats());
    stopped.map_err(|e| format!("the room on {addr} failed: {e}"))
}

/// Reads `--addr` and `--threads`.
fn parse_args(parser: &mut Parser) -> Result<(SocketAddr, Option<usize>), Error> {
    let mut addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let mut threads = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("addr") => addr = cli::addr(parser, "--addr")?,
            Arg::Long("threads") => threads = Some(cli::count(parser, "--threads")?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((addr, threads))
}
