//! Servers on sockets made elsewhere, handovers between servers, and one
//! port held by one server: `Server::from_listener`, `Listeners`,
//! `ServerHandle::drain`, and the `AddrInUse` probe; a Unix socket
//! handed over with its file.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Echo, Model, assert_echoes, isolated, localhost, wait_until};
use evloop::{Listeners, Server, ServerHandle, UnixBind};
use socket2::{Domain, Protocol, Socket, Type};

on_both_models!(
    a_server_serves_a_socket_bound_elsewhere_and_leaves_it_listening,
    a_second_server_on_a_held_port_fails_naming_the_address,
    a_port_left_in_time_wait_is_free,
);

/// A server of `model` on `server`, two loops for the reactor.
fn start(server: Server, model: Model) -> io::Result<ServerHandle> {
    let server = match model {
        Model::Reactor => server.threads(2),
        Model::Threads => server,
    };
    server.model(model).start(|| Echo)
}

/// Accepts one connection from `listener` within five seconds, whatever
/// its blocking mode (a server may have changed it: it is shared).
fn accept_within(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    wait_until("a connection to accept", || match listener.accept() {
        Ok((stream, _)) => Some(stream),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("accept failed: {e}"),
    })
}

fn a_server_serves_a_socket_bound_elsewhere_and_leaves_it_listening(model: Model) {
    let listener = TcpListener::bind(localhost()).unwrap();
    let outside = listener.try_clone().unwrap();
    let addr = listener.local_addr().unwrap();
    let server = start(Server::from_listener(listener).unwrap(), model).unwrap();
    assert_eq!(server.local_addr(), addr);
    let mut client = TcpStream::connect(addr).unwrap();
    assert_echoes(&mut client, b"inherited");
    drop(client);
    server.shutdown(Duration::from_secs(1));
    server.join().unwrap();
    // The socket still listens for whoever else holds it (systemd, the
    // next process): the server closed only its own descriptors.
    let _late = TcpStream::connect(addr).unwrap();
    accept_within(&outside);
}

fn a_second_server_on_a_held_port_fails_naming_the_address(model: Model) {
    let first = start(Server::new(localhost()), Model::Reactor).unwrap();
    let addr = first.local_addr();
    let err = start(Server::new(addr), model).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // The first one serves on, alone.
    let mut client = TcpStream::connect(addr).unwrap();
    assert_echoes(&mut client, b"still here");
    drop(client);
    first.shutdown(Duration::from_secs(1));
    first.join().unwrap();
}

/// Closes each connection as soon as it sends something, so that the
/// server's side ends in `TIME_WAIT`.
struct CloseFirst;

impl evloop::Handler for CloseFirst {
    fn on_data(&mut self, conn: &mut evloop::Conn<'_>, input: &mut evloop::bytes::BytesMut) {
        input.clear();
        conn.close();
    }
}

fn a_port_left_in_time_wait_is_free(model: Model) {
    let first = Server::new(localhost()).threads(2).start(|| CloseFirst).unwrap();
    let addr = first.local_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"x").unwrap();
    assert_eq!(client.read(&mut [0; 1]).unwrap(), 0, "the server closed first");
    drop(client);
    first.shutdown(Duration::from_secs(1));
    first.join().unwrap();
    let second = start(Server::new(addr), model).expect("TIME_WAIT does not hold the port");
    second.shutdown(Duration::ZERO);
    second.join().unwrap();
}

#[test]
fn a_socket_that_does_not_listen_is_refused() {
    isolated(|| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.bind(&localhost().into()).unwrap();
        let err = Server::from_listener(socket.into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("not listening"), "{err}");
    });
}

#[test]
fn every_loop_serves_from_one_inherited_socket() {
    isolated(|| {
        let listeners = Listeners::bind(localhost()).unwrap();
        let server = listeners.server(0).unwrap().threads(4).start(|| Echo).unwrap();
        // Held open at once, so that one loop cannot take them all in turn.
        let clients: Vec<TcpStream> = (0..64)
            .map(|_| TcpStream::connect(server.local_addr()).unwrap())
            .collect();
        for (i, client) in clients.iter().enumerate() {
            let mut client = client.try_clone().unwrap();
            assert_echoes(&mut client, format!("client {i}").as_bytes());
        }
        let stats = wait_until("64 accepted", || {
            let stats = server.loop_stats();
            (stats.iter().map(|s| s.accepted).sum::<u64>() == 64).then_some(stats)
        });
        assert_eq!(stats.len(), 4);
        drop(clients);
        server.shutdown(Duration::from_secs(1));
        server.join().unwrap();
    });
}

/// Connects `count` clients one after the other to `addr`, each sending a
/// message of its own and checking its echo, until `stop` or `count`;
/// returns how many were served and the first failure of each kind.
fn connect_in_a_stream(addr: SocketAddr, stop: Arc<AtomicBool>, served: Arc<AtomicUsize>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        let msg = format!("connection {i}");
        let outcome = TcpStream::connect(addr).and_then(|mut client| {
            client.set_read_timeout(Some(Duration::from_secs(10)))?;
            client.write_all(msg.as_bytes())?;
            let mut got = vec![0; msg.len()];
            client.read_exact(&mut got)?;
            if got != msg.as_bytes() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupted echo"));
            }
            Ok(())
        });
        match outcome {
            Ok(()) => served.fetch_add(1, Ordering::Release),
            Err(e) => {
                failures.push(format!("connection {i}: {e}"));
                0
            }
        };
        i += 1;
    }
    failures
}

/// A fresh directory for this test's sockets, `evloop-NAME-PID` in the
/// system's temporary directory; the test removes it.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("evloop-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_handover_loses_no_connection() {
    isolated(|| {
        let dir = scratch_dir("handover");
        let path = dir.join("control.sock");
        let listeners = Listeners::bind(localhost()).unwrap();
        let addr = listeners.locals().unwrap()[0].tcp().unwrap();
        let old = listeners.server(0).unwrap().threads(2).start(|| Echo).unwrap();
        let offer = listeners
            .hand_over(&path, vec![old.clone()], Duration::from_secs(10))
            .unwrap();
        // A client of the old server, served on through the drain.
        let mut staying = TcpStream::connect(addr).unwrap();
        assert_echoes(&mut staying, b"before");

        let (stop, served) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let clients = {
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            std::thread::spawn(move || connect_in_a_stream(addr, stop, served))
        };
        wait_until("connections before the handover", || {
            (served.load(Ordering::Acquire) >= 50).then_some(())
        });

        let takeover = Listeners::take_over(&path).unwrap();
        let new = takeover
            .listeners()
            .server(0)
            .unwrap()
            .threads(2)
            .start(|| Echo)
            .unwrap();
        let listeners = takeover.serving().unwrap();
        assert!(offer.wait().unwrap(), "the old server handed over");
        let at_handover = served.load(Ordering::Acquire);
        wait_until("connections after the handover", || {
            (served.load(Ordering::Acquire) >= at_handover + 50).then_some(())
        });
        stop.store(true, Ordering::Release);
        let failures = clients.join().unwrap();
        assert!(failures.is_empty(), "{} failed: {failures:?}", failures.len());

        // The old server no longer accepts but still serves its client.
        assert_echoes(&mut staying, b"after");
        drop(staying);
        old.join().unwrap();
        let (old_stats, new_stats) = (old.stats(), new.stats());
        assert!(
            old_stats.accepted > 1 && new_stats.accepted > 0,
            "{old_stats}\n{new_stats}"
        );
        assert_eq!(
            (old_stats.accepted + new_stats.accepted) as usize,
            served.load(Ordering::Acquire) + 1
        );
        new.shutdown(Duration::ZERO);
        new.join().unwrap();
        drop(listeners);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// Echoes `msg` over a Unix stream.
fn unix_echoes(stream: &mut UnixStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

#[test]
fn a_unix_socket_is_handed_over_with_its_file() {
    isolated(|| {
        let dir = scratch_dir("unix-handover");
        let (path, control) = (dir.join("echo.sock"), dir.join("control.sock"));
        let connect = || {
            let stream = UnixStream::connect(&path).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream
        };
        let listeners = Listeners::bind_unix(UnixBind::path(&path)).unwrap();
        let old = listeners.server(0).unwrap().threads(2).start(|| Echo).unwrap();
        let offer = listeners
            .hand_over(&control, vec![old.clone()], Duration::from_secs(10))
            .unwrap();
        let mut staying = connect();
        unix_echoes(&mut staying, b"before");

        let takeover = Listeners::take_over(&control).unwrap();
        let new = takeover
            .listeners()
            .server(0)
            .unwrap()
            .threads(2)
            .start(|| Echo)
            .unwrap();
        let taken = takeover.serving().unwrap();
        assert!(offer.wait().unwrap(), "the old server handed over");
        // The old server drains: it serves its client on, and ends with it.
        unix_echoes(&mut staying, b"after");
        drop(staying);
        old.join().unwrap();
        drop(listeners);
        // The old process let go of everything it had; the file is the
        // new one's, and the new server serves on it.
        assert!(path.exists(), "the socket file went with the old server");
        unix_echoes(&mut connect(), b"served by the new one");
        assert!(new.stats().accepted >= 1, "{}", new.stats());

        // The last to serve it removes it.
        new.shutdown(Duration::ZERO);
        new.join().unwrap();
        drop(taken);
        assert!(!path.exists(), "the socket file outlived its last server");
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn a_takeover_abandoned_before_serving_leaves_the_old_server_serving() {
    isolated(|| {
        let dir = scratch_dir("abandoned");
        let path = dir.join("control.sock");
        let listeners = Listeners::bind(localhost()).unwrap();
        let addr = listeners.locals().unwrap()[0].tcp().unwrap();
        let old = listeners.server(0).unwrap().threads(1).start(|| Echo).unwrap();
        let offer = listeners
            .hand_over(&path, vec![old.clone()], Duration::from_secs(1))
            .unwrap();
        let takeover = Listeners::take_over(&path).unwrap();
        assert_eq!(takeover.listeners().locals().unwrap(), [evloop::Bind::Tcp(addr)]);
        drop(takeover);
        let mut client = TcpStream::connect(addr).unwrap();
        assert_echoes(&mut client, b"still the old one");
        // The offer stands for the next taker.
        let again = Listeners::take_over(&path).unwrap();
        drop(again);
        assert!(!offer.is_finished());
        drop(offer);
        assert!(!path.exists(), "a withdrawn offer removes its socket file");
        assert_echoes(&mut client, b"serving on");
        drop(client);
        old.shutdown(Duration::ZERO);
        old.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

#[test]
fn a_thread_per_connection_server_cannot_hand_over() {
    isolated(|| {
        let listeners = Listeners::bind(localhost()).unwrap();
        let server = listeners
            .server(0)
            .unwrap()
            .model(Model::Threads)
            .start(|| Echo)
            .unwrap();
        let path = std::env::temp_dir().join(format!("evloop-threads-{}.sock", std::process::id()));
        let err = listeners
            .hand_over(&path, vec![server.clone()], Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
        assert!(!path.exists());
        server.shutdown(Duration::ZERO);
        server.join().unwrap();
    });
}

/// Whether Linux moves a closing listener's queued connections to another
/// listener of its `SO_REUSEPORT` group (`net.ipv4.tcp_migrate_req`, off
/// by default).
fn migrates_requests() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").is_ok_and(|v| v.trim() == "1")
}

/// A listening socket on `addr` with `SO_REUSEPORT`, as `Balance::ReusePort` makes.
fn reuse_port_listener(addr: SocketAddr) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(128).unwrap();
    socket
}

/// Connects `count` clients to `addr` (the kernel completes each handshake
/// into a listener's queue), each sending one byte.
fn queued_clients(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let clients: Vec<TcpStream> = (0..count).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for mut client in &clients {
        client.write_all(b"?").unwrap();
        client.set_nonblocking(true).unwrap();
    }
    clients
}

/// How many of `clients` have been reset, a moment after a listener closed
/// (on loopback its resets arrive at once).
fn resets(clients: &[TcpStream]) -> usize {
    std::thread::sleep(Duration::from_millis(50));
    let reset = |mut client: &TcpStream| matches!(client.read(&mut [0; 1]), Err(e) if e.kind() == io::ErrorKind::ConnectionReset);
    clients.iter().filter(|c| reset(c)).count()
}

#[test]
fn a_closing_reuse_port_listener_resets_its_queue_where_a_passed_socket_keeps_it() {
    if !cfg!(target_os = "linux") || migrates_requests() {
        eprintln!("SKIPPED: the kernel migrates queued connections (tcp_migrate_req=1) or is not Linux");
        return;
    }
    isolated(|| {
        // Restarting with SO_REUSEPORT: the new process's listener joins
        // the group, the old one closes its own, and what waits in the old
        // one's queue is reset.
        let old = reuse_port_listener(localhost());
        let addr: SocketAddr = old.local_addr().unwrap().as_socket().unwrap();
        let new = reuse_port_listener(addr);
        let clients = queued_clients(addr, 64);
        let start = Instant::now();
        drop(old);
        let reset = resets(&clients);
        let mut accepted = 0;
        new.set_nonblocking(true).unwrap();
        while new.accept().is_ok() {
            accepted += 1;
        }
        assert!(
            reset > 0,
            "the kernel spread 64 connections and reset none of the closed queue's"
        );
        assert_eq!(
            reset + accepted,
            64,
            "each connection was reset or waits for the new listener"
        );
        eprintln!(
            "SO_REUSEPORT restart: {reset} of 64 queued connections reset ({:?})",
            start.elapsed()
        );
        drop(clients);

        // Handing the socket over instead: one queue, never closed.
        let old = TcpListener::bind(localhost()).unwrap();
        let addr = old.local_addr().unwrap();
        let passed = old.try_clone().unwrap();
        let clients = queued_clients(addr, 64);
        drop(old);
        assert_eq!(resets(&clients), 0);
        passed.set_nonblocking(true).unwrap();
        let mut accepted = 0;
        while passed.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, 64);
    });
}
