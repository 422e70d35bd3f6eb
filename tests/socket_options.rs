//! Kernel socket buffer sizes from [`Config::send_buffer`] and
//! [`Config::recv_buffer`], on both execution models and on outbound
//! connections.
//!
//! A slow reader (a client that sends without end and never reads) fills
//! every buffer between itself and the server. What the server holds in
//! user space is bounded by the write watermarks; what its kernel holds is
//! not, by default: auto-tuning lets that socket's send buffer grow to
//! `net.ipv4.tcp_wmem`'s maximum (4 MiB by default), and its receive buffer,
//! full once backpressure pauses reading, to what the connection's first
//! reads grew it to. With the sizes set, the server's kernel queues for the
//! slow reader stay within them. A server that never reads shows that the
//! receive size holds from the handshake on, and a dialing event loop that
//! both hold on outbound connections. Where the default queues are stable
//! they are checked to be larger than the caps, so that the bounds are shown
//! to mean something.
//!
//! The server's socket is not reachable from a test, so its queues are read
//! where the kernel reports them for every socket, `/proc/net/tcp`: its
//! `tx_queue` is the bytes written and not yet acknowledged (sent or not),
//! its `rx_queue` the bytes received and not yet read. Every measurement is
//! printed with [`figure`].

mod common;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Echo, Model, TestServer, figure, isolated, localhost, pattern, wait_until};
use evloop::{Config, Conn, EventLoop, Handler};

/// The send buffer the capped configs ask for.
const SEND_CAP: usize = 64 * 1024;
/// The most a socket with [`SEND_CAP`] queues for sending: Linux doubles the
/// size asked for, and may queue one more segment (64 KiB on loopback) past
/// a full buffer, as it checks for room before each one.
const SEND_QUEUE_BOUND: usize = 2 * SEND_CAP + 64 * 1024;
/// The receive buffer the capped configs ask for.
const RECV_CAP: usize = 8 * 1024;
/// The most a socket with [`RECV_CAP`] queues unread: the doubled size, which
/// the window offered to the peer never exceeds.
const RECV_QUEUE_BOUND: usize = 2 * RECV_CAP;
/// Writes and queues are taken as settled once unchanged for this long.
const SETTLE: Duration = Duration::from_millis(250);

/// The config under test: both buffer sizes set.
fn capped() -> Config {
    Config::default()
        .send_buffer(Some(SEND_CAP))
        .recv_buffer(Some(RECV_CAP))
}

on_both_models!(
    a_slow_reader_queues_within_the_buffer_sizes,
    a_server_that_never_reads_queues_within_the_receive_buffer_from_the_handshake,
);

#[test]
fn an_outbound_connection_queues_within_the_buffer_sizes() {
    isolated(|| {
        let default = outbound_queues(Config::default());
        let capped = outbound_queues(capped());
        report("outbound: client", default, capped);
        assert_within_caps(capped);
        assert_default_send_queue_exceeds_cap(default.tx);
        assert_default_receive_queue_exceeds_cap(default.rx);
    });
}

/// A slow reader against an echo server of `model`, with the default config
/// and with [`capped`]: the capped server's queues stay within the sizes.
///
/// The default receive queue is only reported: it holds whatever window was
/// open when backpressure paused reading, from a few KiB to hundreds; the
/// deaf server shows the receive size at work.
fn a_slow_reader_queues_within_the_buffer_sizes(model: Model) {
    let default = flooded_server_queues(model, Config::default(), || Echo);
    let capped = flooded_server_queues(model, capped(), || Echo);
    report(&format!("{model:?}: server").to_lowercase(), default, capped);
    assert_within_caps(capped);
    assert_default_send_queue_exceeds_cap(default.tx);
}

/// A client writing to a server of `model` whose handler never reads, with
/// the default config and with [`capped`]. Nothing has been read to make
/// room, so the capped queue stays within the size only if the window the
/// server offered in the handshake already followed it.
fn a_server_that_never_reads_queues_within_the_receive_buffer_from_the_handshake(model: Model) {
    let default = flooded_server_queues(model, Config::default(), || Deaf);
    let capped = flooded_server_queues(model, capped(), || Deaf);
    report_receive(&format!("{model:?}: deaf server").to_lowercase(), default, capped);
    assert_within_caps(capped);
    assert_default_receive_queue_exceeds_cap(default.rx);
}

/// The same through a multi-loop server's acceptor thread, whose listener is
/// the one that offers the window.
#[test]
fn a_round_robin_server_that_never_reads_queues_within_the_receive_buffer() {
    isolated(|| {
        let server = evloop::Server::new(common::localhost())
            .threads(2)
            .balance(evloop::Balance::RoundRobin)
            .config(capped())
            .start(|| Deaf)
            .unwrap();
        let client = TcpStream::connect(server.local_addr()).unwrap();
        write_until_stalled(&client);
        assert_within_caps(settled(|| {
            queues_of(server.local_addr(), client.local_addr().unwrap())
        }));
        drop(client);
        server.shutdown(std::time::Duration::ZERO);
        server.join().unwrap();
    });
}

/// Pauses reading as soon as its connection opens, and so never reads.
struct Deaf;

impl Handler for Deaf {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.pause_reading();
    }

    fn on_data(&mut self, _: &mut Conn<'_>, _: &mut BytesMut) {
        unreachable!("reading is paused");
    }
}

/// A socket's kernel queues, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Queues {
    /// Written by the socket's owner, not yet acknowledged by the peer.
    tx: usize,
    /// Received from the peer, not yet read by the socket's owner.
    rx: usize,
}

/// Asserts that queues measured under [`capped`] are within its sizes.
#[track_caller]
fn assert_within_caps(capped: Queues) {
    assert!(
        capped.tx <= SEND_QUEUE_BOUND,
        "{} bytes in the send queue",
        capped.tx
    );
    assert!(
        capped.rx <= RECV_QUEUE_BOUND,
        "{} bytes in the receive queue",
        capped.rx
    );
}

/// Asserts that a send queue measured under the default config exceeds the
/// cap, where the kernel's own limit lets it: else the scenario would not
/// show the size being applied.
#[track_caller]
fn assert_default_send_queue_exceeds_cap(tx: usize) {
    if tcp_sysctl("tcp_wmem")[2] >= 4 * SEND_QUEUE_BOUND {
        assert!(
            tx > SEND_QUEUE_BOUND,
            "auto-tuning let only {tx} bytes queue for sending"
        );
    }
}

/// Asserts that a receive queue measured under the default config, on a
/// socket never read from, exceeds the cap where the kernel's initial
/// buffer size lets it.
#[track_caller]
fn assert_default_receive_queue_exceeds_cap(rx: usize) {
    if tcp_sysctl("tcp_rmem")[1] >= 4 * RECV_QUEUE_BOUND {
        assert!(
            rx > RECV_QUEUE_BOUND,
            "auto-tuning let only {rx} bytes queue unread"
        );
    }
}

/// Prints the queues measured on `side` as figures.
fn report(side: &str, default: Queues, capped: Queues) {
    figure(
        "socket_options",
        &format!("{side} send queue, default (bytes)"),
        default.tx,
    );
    figure(
        "socket_options",
        &format!("{side} send queue, send_buffer 64 KiB (bytes)"),
        capped.tx,
    );
    report_receive(side, default, capped);
}

/// Prints the receive queues measured on `side` as figures.
fn report_receive(side: &str, default: Queues, capped: Queues) {
    figure(
        "socket_options",
        &format!("{side} receive queue, default (bytes)"),
        default.rx,
    );
    figure(
        "socket_options",
        &format!("{side} receive queue, recv_buffer 8 KiB (bytes)"),
        capped.rx,
    );
}

/// Connects a client that writes to a server of `model` with `config` and
/// handlers from `factory` until nothing more goes in, never reading, and
/// returns the server socket's queues then.
fn flooded_server_queues<H>(model: Model, config: Config, factory: fn() -> H) -> Queues
where
    H: Handler + Send + 'static,
{
    let server = TestServer::start(model, config, factory);
    let client = server.connect();
    write_until_stalled(&client);
    settled(|| queues_of(server.addr, client.local_addr().unwrap()))
}

/// Writes to `stream`, without blocking, until it has taken nothing for
/// [`SETTLE`]; returns the bytes written.
#[track_caller]
fn write_until_stalled(mut stream: &TcpStream) -> usize {
    stream.set_nonblocking(true).unwrap();
    let chunk = pattern(64 * 1024, 1);
    let start = Instant::now();
    let (mut sent, mut last_progress) = (0, Instant::now());
    while last_progress.elapsed() < SETTLE {
        assert!(start.elapsed() < Duration::from_secs(10), "writes never stalled");
        match stream.write(&chunk) {
            Ok(n) => (sent, last_progress) = (sent + n, Instant::now()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("write failed after {sent} bytes: {e}"),
        }
    }
    sent
}

/// What a [`Flood`] writes once connected: far more than any send buffer.
const FLOOD: usize = 16 * 1024 * 1024;

/// Writes [`FLOOD`] bytes once connected and never reads: the slow reader,
/// on the client's side.
struct Flood;

impl Handler for Flood {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.pause_reading();
        conn.write(&vec![0; FLOOD]);
    }

    fn on_data(&mut self, _: &mut Conn<'_>, _: &mut BytesMut) {
        unreachable!("reading is paused");
    }
}

/// Connects a [`Flood`] from an event loop with `config` to a peer that
/// writes until stalled and never reads; returns the loop socket's queues.
fn outbound_queues(config: Config) -> Queues {
    let listener = TcpListener::bind(localhost()).unwrap();
    let mut client = EventLoop::new(config, || Flood).unwrap();
    client
        .connect(listener.local_addr().unwrap(), Duration::from_secs(5))
        .unwrap();
    let handle = client.handle();
    let thread = std::thread::spawn(move || client.run());
    let (peer, client_addr) = listener.accept().unwrap();
    write_until_stalled(&peer);
    let queues = settled(|| queues_of(client_addr, peer.local_addr().unwrap()));
    handle.shutdown(Duration::ZERO);
    thread.join().unwrap().unwrap();
    queues
}

/// Polls `probe` until it has returned the same queues for [`SETTLE`].
#[track_caller]
fn settled(mut probe: impl FnMut() -> Queues) -> Queues {
    let start = Instant::now();
    let (mut last, mut since) = (probe(), Instant::now());
    while since.elapsed() < SETTLE {
        assert!(start.elapsed() < Duration::from_secs(10), "queues never settled");
        std::thread::sleep(Duration::from_millis(20));
        let now = probe();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

/// The queues of the IPv4 TCP socket from `local` to `remote`, from
/// `/proc/net/tcp`. Panics if it is not there within five seconds.
#[track_caller]
fn queues_of(local: SocketAddr, remote: SocketAddr) -> Queues {
    let (local, remote) = (proc_addr(local), proc_addr(remote));
    wait_until("the socket in /proc/net/tcp", || {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("Linux /proc/net/tcp");
        // sl local_address rem_address st tx_queue:rx_queue ...
        table.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1..3)? != [local.as_str(), remote.as_str()] {
                return None;
            }
            let (tx, rx) = fields.get(4)?.split_once(':')?;
            Some(Queues {
                tx: usize::from_str_radix(tx, 16).ok()?,
                rx: usize::from_str_radix(rx, 16).ok()?,
            })
        })
    })
}

/// An IPv4 address as `/proc/net/tcp` writes it: the address's bytes, in
/// network order, printed as one native 32-bit integer, and the port, both
/// in hex.
fn proc_addr(addr: SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4");
    };
    format!("{:08X}:{:04X}", u32::from_ne_bytes(v4.ip().octets()), v4.port())
}

/// The three values (min, default, max) of `/proc/sys/net/ipv4/{name}`.
fn tcp_sysctl(name: &str) -> [usize; 3] {
    let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap();
    let values: Vec<usize> = text.split_whitespace().map(|v| v.parse().unwrap()).collect();
    values.try_into().expect("three values")
}
