//! UDP over real sockets on loopback: exact echoes from many senders,
//! several loops on one `SO_REUSEPORT` address all serving, truncated
//! datagrams counted and not delivered, ICMP errors on a connected socket
//! reported, oversized sends refused before any system call, batched
//! receives visible in the counters, loops pinned to CPUs, IPv6, a
//! panicking handler, and every fd closed at shutdown.
//!
//! Backpressure (a full send buffer pauses reading) is tested in
//! `src/udp/tests.rs` through a seam: loopback never fills a UDP socket's
//! send buffer, so the kernel gives no `EAGAIN` to test against here.

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{isolated, pattern, wait_until};
use evloop::udp::{DatagramHandler, UdpConfig, UdpHandle, UdpServer, UdpSock, UdpStats};

/// Echoes every whole datagram to its sender; reports what else happens.
struct Echo {
    /// Where truncations, errors and refused sends are reported, if anywhere.
    events: Option<Sender<Event>>,
}

/// What an [`Echo`] reports.
#[derive(Debug)]
#[allow(dead_code)] // the fields of some variants are read only through Debug, in failures
enum Event {
    /// `on_truncated`: the sender and the datagram's full length.
    Truncated(SocketAddr, usize),
    /// `on_error`: the error's kind and the peer.
    Error(io::ErrorKind, Option<SocketAddr>),
    /// A send the socket refused at once.
    Refused(io::ErrorKind, String),
}

impl Echo {
    fn report(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

impl DatagramHandler for Echo {
    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
        if let Err(e) = sock.send_to(data, from) {
            self.report(Event::Refused(e.kind(), e.to_string()));
        }
    }

    fn on_truncated(&mut self, _: &mut UdpSock<'_>, from: SocketAddr, len: usize) {
        self.report(Event::Truncated(from, len));
    }

    fn on_error(&mut self, _: &mut UdpSock<'_>, err: &io::Error, peer: Option<SocketAddr>) {
        self.report(Event::Error(err.kind(), peer));
    }
}

/// An echo server of `loops` loops on a free port, reporting to the
/// returned receiver.
fn echo_server(loops: usize, config: UdpConfig) -> (UdpHandle, Receiver<Event>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let handle = UdpServer::new("127.0.0.1:0".parse().unwrap())
        .threads(loops)
        .config(config)
        .start(move || Echo {
            events: Some(tx.lock().unwrap().clone()),
        })
        .unwrap();
    (handle, rx)
}

/// A client socket on a free port, reads bounded by 5 s.
fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket
}

/// Receives one datagram from `server` on `socket`.
#[track_caller]
fn recv_from_server(socket: &UdpSocket, server: SocketAddr) -> Vec<u8> {
    let mut buf = vec![0; 70_000];
    let (n, from) = socket.recv_from(&mut buf).expect("an echo within 5 s");
    assert_eq!(from, server, "the reply comes from the server's address");
    buf.truncate(n);
    buf
}

/// The next event reported, within 5 s.
#[track_caller]
fn next_event(events: &Receiver<Event>) -> Event {
    events
        .recv_timeout(Duration::from_secs(5))
        .expect("an event within 5 s")
}

/// Stops the server and waits for its loops.
fn stop(handle: UdpHandle) -> UdpStats {
    handle.shutdown();
    handle.join().unwrap();
    handle.stats()
}

#[test]
fn every_byte_comes_back_from_many_sockets() {
    isolated(|| {
        let (server, _events) = echo_server(2, UdpConfig::default());
        let clients: Vec<UdpSocket> = (0..16).map(|_| client()).collect();
        let sizes = [0, 1, 64, 1_472, 9_000, 65_507];
        for (c, socket) in clients.iter().enumerate() {
            for (i, &size) in sizes.iter().enumerate() {
                let payload = pattern(size, (c * 100 + i) as u64);
                socket.send_to(&payload, server.local_addr()).unwrap();
                let echoed = recv_from_server(socket, server.local_addr());
                assert!(echoed == payload, "client {c}, {size} bytes: echo differs");
            }
        }
        let stats = stop(server);
        let n = (clients.len() * sizes.len()) as u64;
        assert_eq!((stats.datagrams_in, stats.datagrams_out), (n, n), "{stats}");
        assert_eq!(
            (stats.truncated, stats.errors, stats.dropped),
            (0, 0, 0),
            "{stats}"
        );
    });
}

#[test]
fn several_loops_on_one_address_all_serve() {
    isolated(|| {
        let loops = 4;
        let (server, _events) = echo_server(loops, UdpConfig::default());
        // The kernel hashes each sender to one socket: with 64 senders, a
        // loop left without any has odds of 4 × (3/4)^64, about 10^-7.
        let clients: Vec<UdpSocket> = (0..64).map(|_| client()).collect();
        for (c, socket) in clients.iter().enumerate() {
            let payload = format!("from client {c}");
            socket.send_to(payload.as_bytes(), server.local_addr()).unwrap();
            assert_eq!(recv_from_server(socket, server.local_addr()), payload.as_bytes());
        }
        let per_loop = wait_until("every echo counted", || {
            let per_loop = server.loop_stats();
            let out: u64 = per_loop.iter().map(|s| s.datagrams_out).sum();
            (out == 64).then_some(per_loop)
        });
        assert_eq!(per_loop.len(), loops);
        for (i, stats) in per_loop.iter().enumerate() {
            assert!(stats.datagrams_in > 0, "loop {i} served nothing: {per_loop:?}");
        }
        stop(server);
    });
}

#[test]
fn a_datagram_longer_than_the_maximum_is_counted_as_truncated_not_delivered() {
    isolated(|| {
        let (server, events) = echo_server(1, UdpConfig::default().max_datagram(16));
        let socket = client();
        socket.send_to(&[7; 100], server.local_addr()).unwrap();
        socket.send_to(&[8; 16], server.local_addr()).unwrap();
        assert_eq!(recv_from_server(&socket, server.local_addr()), [8; 16]);
        match next_event(&events) {
            Event::Truncated(from, len) => {
                // Only Linux tells the full length; elsewhere, max + 1.
                let full = if cfg!(any(target_os = "linux", target_os = "android")) {
                    100
                } else {
                    17
                };
                assert_eq!((from, len), (socket.local_addr().unwrap(), full));
            }
            other => panic!("expected a truncation, got {other:?}"),
        }
        let stats = stop(server);
        assert_eq!(
            (stats.truncated, stats.datagrams_in, stats.datagrams_out),
            (1, 1, 1),
            "{stats}"
        );
    });
}

/// Sends one datagram to its connected peer when it starts; reports errors.
struct Pinger {
    /// Where errors go.
    errors: Sender<(io::ErrorKind, Option<SocketAddr>)>,
}

impl DatagramHandler for Pinger {
    fn on_start(&mut self, sock: &mut UdpSock<'_>) {
        sock.send(b"ping").unwrap();
    }

    fn on_datagram(&mut self, _: &mut UdpSock<'_>, _: &[u8], _: SocketAddr) {}

    fn on_error(&mut self, _: &mut UdpSock<'_>, err: &io::Error, peer: Option<SocketAddr>) {
        let _ = self.errors.send((err.kind(), peer));
    }
}

#[test]
fn an_icmp_port_unreachable_reaches_the_handler_of_a_connected_socket() {
    isolated(|| {
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (tx, errors) = mpsc::channel();
        let tx = Mutex::new(tx);
        let server = UdpServer::new("127.0.0.1:0".parse().unwrap())
            .threads(1)
            .connect(closed)
            .start(move || Pinger {
                errors: tx.lock().unwrap().clone(),
            })
            .unwrap();
        let (kind, peer) = errors.recv_timeout(Duration::from_secs(5)).expect("an error");
        assert_eq!((kind, peer), (io::ErrorKind::ConnectionRefused, Some(closed)));
        let stats = stop(server);
        assert_eq!((stats.errors, stats.datagrams_out), (1, 1), "{stats}");
    });
}

#[test]
fn an_oversized_send_is_refused_before_any_system_call() {
    isolated(|| {
        let (server, events) = echo_server(1, UdpConfig::default().max_datagram(100));
        let sender = server.sender();
        let target = client();
        let to = target.local_addr().unwrap();
        let err = sender.send_to(&vec![0; 65_508], to).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("65508 bytes is over the limit of 65507"),
            "{err}"
        );
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(
            sender.send_to(&vec![0; 65_528], v6).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );

        // The handler's reply to a 100-byte datagram passes; a handler
        // sending more than max_datagram from the loop is refused at once.
        let socket = client();
        socket.send_to(&[1; 100], server.local_addr()).unwrap();
        assert_eq!(recv_from_server(&socket, server.local_addr()), [1; 100]);
        let stats = stop(server);
        assert_eq!(
            (stats.send_calls, stats.datagrams_out),
            (1, 1),
            "one send, the echo: {stats}"
        );
        assert!(events.try_recv().is_err(), "nothing refused or failed");
    });
}

/// Replies with a datagram one byte over the configured maximum.
struct Oversized {
    /// Where the refusal goes.
    refusals: Sender<io::Error>,
}

impl DatagramHandler for Oversized {
    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
        let err = sock.send_to(&vec![0; data.len() + 1], from).unwrap_err();
        let _ = self.refusals.send(err);
    }
}

#[test]
fn a_handler_sending_over_the_configured_maximum_is_refused_at_once() {
    isolated(|| {
        let (tx, refusals) = mpsc::channel();
        let tx = Mutex::new(tx);
        let server = UdpServer::new("127.0.0.1:0".parse().unwrap())
            .threads(1)
            .config(UdpConfig::default().max_datagram(32))
            .start(move || Oversized {
                refusals: tx.lock().unwrap().clone(),
            })
            .unwrap();
        client().send_to(&[0; 32], server.local_addr()).unwrap();
        let err = refusals.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("33 bytes is over the limit of 32"),
            "{err}"
        );
        let stats = stop(server);
        assert_eq!((stats.send_calls, stats.datagrams_out), (0, 0), "{stats}");
    });
}

/// An echo whose loop starts reading only once the test says so.
struct Gated {
    /// Closed (or sent to) by the test when datagrams are queued.
    gate: Arc<Mutex<Receiver<()>>>,
}

impl DatagramHandler for Gated {
    fn on_start(&mut self, _: &mut UdpSock<'_>) {
        let _ = self.gate.lock().unwrap().recv();
    }

    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
        sock.send_to(data, from).unwrap();
    }
}

#[test]
fn datagrams_queued_before_the_loop_reads_take_one_receive_per_batch() {
    isolated(|| {
        let (open, gate) = mpsc::channel();
        let gate = Arc::new(Mutex::new(gate));
        let batch = 32;
        let server = UdpServer::new("127.0.0.1:0".parse().unwrap())
            .threads(1)
            .config(UdpConfig::default().batch(batch))
            .start(move || Gated {
                gate: Arc::clone(&gate),
            })
            .unwrap();
        let socket = client();
        let n = 100;
        for i in 0..n {
            socket
                .send_to(&pattern(64, i as u64), server.local_addr())
                .unwrap();
        }
        open.send(()).unwrap();
        for i in 0..n {
            let echoed = recv_from_server(&socket, server.local_addr());
            assert!(
                echoed == pattern(64, i as u64),
                "echo {i} differs or is out of order"
            );
        }
        let stats = stop(server);
        assert_eq!(
            (stats.datagrams_in, stats.datagrams_out),
            (n as u64, n as u64),
            "{stats}"
        );
        if cfg!(any(target_os = "linux", target_os = "android")) {
            // 100 = 32 + 32 + 32 + 4: four receives, the short one saying
            // the socket is empty; their replies in one send each.
            assert_eq!((stats.recv_calls, stats.send_calls), (4, 4), "{stats}");
        } else {
            assert_eq!(stats.send_calls, n as u64, "{stats}");
        }
    });
}

#[test]
fn shutdown_closes_every_socket_poller_and_waker() {
    let _serial = common::serial();
    let before = common::open_fds();
    let (server, _events) = echo_server(3, UdpConfig::default());
    let sender = server.sender();
    assert!(
        common::open_fds() >= before + 3 * 3,
        "a socket, a poller and a waker per loop"
    );
    let socket = client();
    socket.send_to(b"x", server.local_addr()).unwrap();
    assert_eq!(recv_from_server(&socket, server.local_addr()), b"x");
    drop(socket);
    server.shutdown();
    server.join().unwrap();
    // The handle and a sender are still held: the loops closed it all.
    assert_eq!(common::open_fds(), before);
    let err = sender
        .send_to(b"late", "127.0.0.1:9".parse().unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

/// Panics on every datagram.
struct Panics;

impl DatagramHandler for Panics {
    fn on_datagram(&mut self, _: &mut UdpSock<'_>, _: &[u8], _: SocketAddr) {
        panic!("a handler panicked on purpose");
    }
}

#[test]
fn a_panicking_handler_ends_its_loop_which_join_reports_and_closes_its_fds() {
    isolated(|| {
        let server = UdpServer::new("127.0.0.1:0".parse().unwrap())
            .threads(1)
            .start(|| Panics)
            .unwrap();
        client().send_to(b"boom", server.local_addr()).unwrap();
        let err = server.join().unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        assert_eq!(server.stats().datagrams_in, 1, "counted before the panic");
        let late = server.sender().send_to(b"late", "127.0.0.1:9".parse().unwrap());
        assert_eq!(late.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn datagrams_over_ipv6_come_back_whole() {
    isolated(|| {
        let Ok(socket) = UdpSocket::bind("[::1]:0") else {
            eprintln!("SKIPPED: no IPv6 loopback (::1) to bind");
            return;
        };
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let server = UdpServer::new("[::1]:0".parse().unwrap())
            .threads(2)
            .start(|| Echo { events: None })
            .unwrap();
        for size in [1, 1_200, 65_507] {
            let payload = pattern(size, size as u64);
            socket.send_to(&payload, server.local_addr()).unwrap();
            assert!(
                recv_from_server(&socket, server.local_addr()) == payload,
                "{size} bytes"
            );
        }
        let err = server
            .sender()
            .send_to(&[0; 65_528], socket.local_addr().unwrap())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        stop(server);
    });
}

/// The CPU lists the kernel allows this process's threads named `name`.
#[cfg(target_os = "linux")]
fn allowed_cpus_of(name: &str) -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap().flatten();
    let status_of = |task: &std::fs::DirEntry| {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        (comm.trim() == name).then(|| std::fs::read_to_string(task.path().join("status")).unwrap_or_default())
    };
    (tasks.filter_map(|task| status_of(&task)))
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(line["Cpus_allowed_list:".len()..].trim().to_owned())
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn each_loop_runs_on_the_cpu_it_is_pinned_to() {
    isolated(|| {
        let cpu = *evloop::sys::cpu_affinity().unwrap().last().unwrap();
        let server = UdpServer::new("127.0.0.1:0".parse().unwrap())
            .threads(1)
            .pin(evloop::Pin::Cpus(vec![cpu]))
            .start(|| Echo { events: None })
            .unwrap();
        let socket = client();
        socket.send_to(b"pinned", server.local_addr()).unwrap();
        assert_eq!(recv_from_server(&socket, server.local_addr()), b"pinned");
        assert_eq!(allowed_cpus_of("evloop-udp-0"), [cpu.to_string()]);
        stop(server);
    });
}
