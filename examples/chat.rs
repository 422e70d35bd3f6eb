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
//! others send it). Ctrl-C shuts down.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use evloop::{Balance, CloseReason, Config, Conn, ConnId, Handler, Server};

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

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (addr, threads) = parse_args().unwrap_or_else(|msg| {
        eprintln!("chat: {msg}\nusage: chat [--addr HOST:PORT] [--threads N]");
        std::process::exit(2);
    });
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
    let handle = server.start(move || Member {
        members: Arc::clone(&members),
        id: None,
    })?;
    handle.shutdown_on_signals(Duration::from_secs(2))?;
    log::info!(
        "chat room on {} with {} loop(s)",
        handle.local_addr(),
        handle.loops()
    );
    handle.join()
}

/// Reads `--addr` and `--threads`.
fn parse_args() -> Result<(SocketAddr, Option<usize>), String> {
    let mut addr: SocketAddr = "127.0.0.1:7001".parse().unwrap();
    let mut threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = value.parse().map_err(|e| format!("bad --addr {value:?}: {e}"))?,
            "--threads" => match value.parse() {
                Ok(n) if n >= 1 => threads = Some(n),
                _ => return Err(format!("bad --threads {value:?}")),
            },
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok((addr, threads))
}
