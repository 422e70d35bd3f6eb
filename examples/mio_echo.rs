//! A minimal hand-written single-threaded echo server on plain mio: the
//! reference that `evloop`'s echo server is measured against (see
//! `scripts/measure_echo.sh`).
//!
//! One `mio::Poll`, a slab of connections, edge-triggered readiness. On
//! readable it reads until `WouldBlock` into a 16 KiB buffer and writes each
//! chunk straight back. A partial write keeps the rest in a `Vec`, stops
//! reading and registers WRITABLE until that is flushed; then the connection
//! goes back to READABLE only.
//!
//! Run: `cargo run --release --example mio_echo -- --addr 127.0.0.1:7001`
//! (`--help` prints the usage; bad arguments exit with status 2, a failure
//! such as the address in use with status 1). It runs until killed.

#[path = "common/cli.rs"]
mod cli;

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::cli::Cli;

const LISTENER: Token = Token(usize::MAX);

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "mio_echo",
    usage: "\
usage: mio_echo [--addr HOST:PORT]

A minimal echo server on plain mio, the reference evloop is measured against.

options:
  --addr HOST:PORT   where to listen (default 127.0.0.1:7001)
  -h, --help         print this help",
};

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back.
    pending: Vec<u8>,
    /// Whether WRITABLE is part of the registered interest.
    writable: bool,
}

fn main() {
    let addr = CLI.parse(|parser| CLI.addr_only(parser, SocketAddr::from(([127, 0, 0, 1], 7001))));
    let listener = CLI.or_fail(TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}")));
    CLI.or_fail(serve(listener).map_err(|e| format!("serving on {addr}: {e}")));
}

/// Serves connections on `listener`, forever unless an error stops it.
fn serve(mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!("listening on {}", listener.local_addr()?);

    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            result => result?,
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&poll, &listener, &mut conns)?;
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let mut open = echo(conn, &mut buf).unwrap_or(false);
            let want = !conn.pending.is_empty();
            if open && want != conn.writable {
                conn.writable = want;
                let token = event.token();
                open = (poll.registry())
                    .reregister(&mut conn.stream, token, interest(want))
                    .is_ok();
            }
            if !open {
                conns.remove(key); // dropping the stream closes it
            }
        }
    }
}

fn interest(writable: bool) -> Interest {
    if writable {
        Interest::READABLE | Interest::WRITABLE
    } else {
        Interest::READABLE
    }
}

fn accept_all(poll: &Poll, listener: &TcpListener, conns: &mut Slab<Conn>) -> io::Result<()> {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.set_nodelay(true)?;
        let entry = conns.vacant_entry();
        poll.registry()
            .register(&mut stream, Token(entry.key()), Interest::READABLE)?;
        entry.insert(Conn {
            stream,
            pending: Vec::new(),
            writable: false,
        });
    }
}

/// Echoes everything that can be echoed now; `Ok(false)` once the peer closed.
fn echo(conn: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    // Flush what an earlier partial write left; read again only once it is gone.
    while !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => drop(conn.pending.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            match conn.stream.write(&buf[done..n]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(k) => done += k,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.pending.extend_from_slice(&buf[done..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
