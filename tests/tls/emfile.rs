//! Running out of fds over TLS, on both models: the server survives, the
//! TLS connections it has keep echoing, and once fds come back the
//! connections that waited in the backlog and new ones complete their
//! handshakes and are served; no fd is left behind.
//!
//! `tests/emfile/` floods a server in a child process of its own; here the
//! test shares its process with the server, so it runs the fds out itself:
//! every TLS test runs alone (`isolated`), so the test lowers the process's
//! fd limit to a little above what is open, makes the sockets of the
//! connections that will wait while fds are still there, fills every fd
//! left with `/dev/null`, and only then connects them: `connect` needs no
//! new fd, the kernel completes them into the listen backlog, and every
//! `accept` fails with `EMFILE`.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use evloop::Config;
use evloop::tls::rustls::{ClientConnection, StreamOwned};
use socket2::{Domain, Socket, Type};

use crate::client::Client;
use crate::common::{Echo, Model, TestServer, open_fds, set_fd_limit};
use crate::on_both_models;
use crate::pki::{localhost_name, pki};

on_both_models!(tls_connections_are_served_through_fd_exhaustion_and_new_ones_after_it);

/// TLS connections made before fds run out, which must keep echoing.
const EXISTING: usize = 3;
/// Connections made while fds are out, waiting in the backlog.
const WAITING: usize = 8;
/// Fds the lowered limit allows beyond those open, before the filler.
const HEADROOM: usize = 16;

fn tls_connections_are_served_through_fd_exhaustion_and_new_ones_after_it(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    let config = pki().client_config(&[]);
    let mut existing: Vec<Client> = (0..EXISTING)
        .map(|_| Client::connect(server.addr, config.clone()))
        .collect();
    assert_all_echo(&mut existing, "before fds run out");

    let waiting: Vec<Socket> = (0..WAITING)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    let lowered = LoweredFdLimit::to(open_fds() + HEADROOM);
    let filler = fill_every_fd();
    for socket in &waiting {
        socket.connect(&server.addr.into()).unwrap();
    }
    server.wait_for_stats("accept to back off", |s| s.accept_backoffs > 0);
    for _ in 0..3 {
        assert_all_echo(&mut existing, "while fds are out");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Linux reserves the new fd's number as `accept` begins, before it
    // sleeps: the baseline's acceptor, blocked in `accept` as the fds ran
    // out, takes one waiting connection with the number it holds.
    let reserved = usize::from(model == Model::Threads);
    let accepted = server.stats().accepted as usize;
    assert!(
        (EXISTING..=EXISTING + reserved).contains(&accepted),
        "{accepted} accepted while fds are out"
    );

    drop((filler, lowered));
    let mut waited: Vec<Client> = waiting.into_iter().map(|s| handshake(s, server.addr)).collect();
    assert_all_echo(&mut waited, "after waiting in the backlog");
    let mut fresh: Vec<Client> = (0..EXISTING)
        .map(|_| Client::connect(server.addr, config.clone()))
        .collect();
    assert_all_echo(&mut fresh, "after fds came back");
    assert_all_echo(&mut existing, "after fds came back");

    for mut client in existing.into_iter().chain(waited).chain(fresh) {
        client.close_notify();
        assert_eq!(client.read_to_end().expect("the server's close_notify"), b"");
    }
    let stats = server.wait_for_stats("every connection closed", |s| s.open == 0);
    assert_eq!(stats.accepted, (2 * EXISTING + WAITING) as u64, "{stats}");
}

/// The process's fd limit lowered, until dropped (also when the test fails,
/// so that the tests after it have their fds).
struct LoweredFdLimit {
    /// The soft limit before.
    before: usize,
}

impl LoweredFdLimit {
    /// Lowers the soft limit to `limit`.
    fn to(limit: usize) -> LoweredFdLimit {
        LoweredFdLimit {
            before: set_fd_limit(limit),
        }
    }
}

impl Drop for LoweredFdLimit {
    fn drop(&mut self) {
        set_fd_limit(self.before);
    }
}

/// Opens `/dev/null` until the process has no fd left; returns the files.
fn fill_every_fd() -> Vec<File> {
    let mut files = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(file) => files.push(file),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return files,
            Err(e) => panic!("filling the fd table: {e}"),
        }
    }
}

/// Completes a TLS handshake on `socket`, connected to `addr` while the
/// server could not accept it.
fn handshake(socket: Socket, addr: SocketAddr) -> Client {
    let sock = TcpStream::from(socket);
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(sock.peer_addr().unwrap(), addr);
    let conn = ClientConnection::new(pki().client_config(&[]), localhost_name()).unwrap();
    let mut client = Client {
        tls: StreamOwned::new(conn, sock),
    };
    while client.tls.conn.is_handshaking() {
        (client.tls.conn.complete_io(&mut client.tls.sock)).expect("TLS handshake after waiting");
    }
    client
}

/// Asserts that each client echoes a message of its own.
#[track_caller]
fn assert_all_echo(clients: &mut [Client], when: &str) {
    for (i, client) in clients.iter_mut().enumerate() {
        let msg = format!("connection {i}, {when}");
        assert_eq!(client.echo(msg.as_bytes()), msg.as_bytes(), "{when}");
    }
}
